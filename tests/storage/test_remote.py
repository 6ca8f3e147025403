"""Content remotes for real: a local directory and S3 (moto on 127.0.0.1, through s3fs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from datagit import CorruptObjectError, RemoteError, Repo
from datagit.api import remotes
from datagit.api.maintenance import fsck
from datagit.storage.content import address
from datagit.storage.remote import ContentRemote


def _objects(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        data = f"object {seed}-{i} ".encode() * (20 + i % 50)
        out.append((address(data), data))
    return out


@pytest.fixture(params=["local", "s3"])
def content(request: pytest.FixtureRequest, tmp_path: Path) -> ContentRemote:
    if request.param == "local":
        return ContentRemote(str(tmp_path / "remote-content"))
    s3 = request.getfixturevalue("s3")
    return ContentRemote(s3.url)


def test_upload_list_download_round_trip(content: ContentRemote) -> None:
    objs = _objects(30)
    assert content.list() == set()
    content.upload(objs)
    assert content.list() == {k for k, _ in objs}
    got = dict(content.download(sorted(k for k, _ in objs)))
    assert got == dict(objs)


def test_download_of_a_corrupt_object_names_it(content: ContentRemote) -> None:
    (key, data), (good, good_data) = _objects(2)
    content.upload([(good, good_data)])
    content.upload([(key, b"not the bytes of " + data)])  # upload trusts its caller
    with pytest.raises(CorruptObjectError, match=key) as err:
        list(content.download([key]))
    assert "corrupt" in err.value.message


def test_download_of_a_missing_object_is_a_remote_error(content: ContentRemote) -> None:
    key = address(b"never uploaded")
    with pytest.raises(RemoteError, match=key):
        list(content.download([key]))


def test_local_listing_ignores_torn_temp_files(tmp_path: Path) -> None:
    content = ContentRemote(str(tmp_path / "c"))
    (key, data), (torn, _) = _objects(2)
    content.upload([(key, data)])
    folder = tmp_path / "c" / torn[:2]
    folder.mkdir(exist_ok=True)
    (folder / (torn[2:] + ".tmp-123")).write_bytes(b"half")
    assert content.list() == {key}


# -- S3: request counts ------------------------------------------------------------------------
def test_s3_upload_costs_one_request_per_object(s3) -> None:  # type: ignore[no-untyped-def]
    content = ContentRemote(s3.url)
    objs = _objects(40)
    content.upload(objs)
    counts = s3.counts()
    assert counts["PUT"] == 40
    assert sum(counts.values()) <= 40
    s3.reset()
    assert len(content.list()) == 40
    assert set(s3.counts()) == {"LIST"}


def test_s3_unreachable_endpoint_is_one_clear_error(s3, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(RemoteError, match=r"content remote s3://.* failed") as err:
        ContentRemote(s3.url).list()
    assert "\n" not in err.value.message


# -- S3 end to end: push, clone, partial clone -----------------------------------------------
def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return str(path)


@pytest.fixture
def pushed(digits_repo: Repo, tmp_path: Path, s3):  # type: ignore[no-untyped-def]
    tmp_repo = digits_repo
    for png in sorted((tmp_repo.workdir / "train").rglob("*.png"))[60:]:
        png.unlink()  # 60 real digits keep the S3 traffic short
    tmp_repo.commit("sixty digits", all=True)
    git_url = _bare(tmp_path / "origin.git")
    remotes.add_remote(tmp_repo, "origin", git_url, content=s3.url)
    return tmp_repo, git_url


def test_push_to_s3_sends_each_missing_object_once_then_only_lists(pushed, s3) -> None:  # type: ignore[no-untyped-def]
    repo, _ = pushed
    objects = len(remotes.needed_content(repo, [repo.head()]))
    s3.reset()
    result = remotes.push(repo, "origin")
    assert result.uploaded == objects
    counts = s3.counts()
    assert counts["PUT"] == objects
    # one PUT per pushed object; everything else is the one listing pass (an empty
    # prefix costs s3fs a second LIST and a HEAD to tell "empty" from "missing")
    assert set(counts) <= {"PUT", "LIST", "HEAD"}
    assert sum(counts.values()) - objects <= 3
    s3.reset()
    again = remotes.push(repo, "origin")
    assert again.uploaded == 0
    assert set(s3.counts()) == {"LIST"}


def test_clone_from_s3_and_partial_clone_fetch_on_demand(pushed, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, git_url = pushed
    remotes.push(repo, "origin")
    full = remotes.clone(git_url, tmp_path / "full", content=s3.url)
    assert sorted(p.name for p in (full.workdir / "train").rglob("*.png")) == sorted(
        p.name for p in (repo.workdir / "train").rglob("*.png")
    )
    assert fsck(full).ok

    s3.reset()
    partial = remotes.clone(git_url, tmp_path / "partial", content=s3.url, no_content=True)
    # the checkout fetched the tip's content in batched GETs, nothing more
    assert s3.counts()["GET"] <= len(list(partial.store.keys())) + 5
    rec = next(iter(partial.records("train")))
    reopened = Repo.open(partial.workdir)
    assert reopened.read(rec) == (repo.workdir / "train" / str(rec.label) / rec.id).read_bytes()
    report = fsck(reopened)
    assert report.ok


def test_partial_clone_reads_missing_content_on_demand(pushed, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, git_url = pushed
    remotes.push(repo, "origin")
    partial = remotes.clone(git_url, tmp_path / "p", content=s3.url, no_content=True)
    rec = next(iter(partial.records("train")))
    # drop the local copy so the next read must come from S3
    partial.store.close()
    for p in (partial.dotdir / "content" / "packs").iterdir():
        p.unlink()
    fresh = Repo.open(partial.workdir)
    assert not fresh.store.has(rec.content)
    s3.reset()
    assert fresh.read(rec) == (repo.workdir / "train" / str(rec.label) / rec.id).read_bytes()
    assert fresh.store.has(rec.content)
    assert s3.counts()["GET"] == 1
