"""Sharing with a teammate: tags travel, and the content URL travels with the history."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from datagit import Repo
from datagit.api import branches, remotes, workspace
from datagit.api.maintenance import fsck
from datagit.core.config import Config
from datagit.errors import InvalidInputError, RemoteError


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def _remote_ref(url: str, ref: str) -> str | None:
    out = subprocess.run(
        ["git", "--git-dir", url, "rev-parse", "--verify", "-q", ref + "^{commit}"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or None


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".datagit" not in p.parts and p.name != "datagit.toml"
    }


@pytest.fixture
def tagged(digits_repo: Repo, tmp_path: Path) -> tuple[Repo, str]:
    """Two commits on main, v1 on the first; a side commit tagged `side` on no pushed branch."""
    repo = digits_repo
    repo.commit("300 digits", all=True)
    branches.create_tag(repo, "v1")
    workspace.switch(repo, "side", create=True)
    (repo.workdir / "train" / "0" / "side.png").write_bytes(b"only on the side branch")
    repo.commit("side", all=True)
    branches.create_tag(repo, "side-tag", message="an annotated tag")
    workspace.switch(repo, "main")
    branches.delete_branch(repo, "side", force=True)
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    remotes.push(repo)
    return repo, url


def test_push_one_tag_sends_it_and_the_content_it_needs(tagged: tuple[Repo, str]) -> None:
    repo, url = tagged
    assert _remote_ref(url, "refs/tags/side-tag") is None
    result = remotes.push_tags(repo, "origin", ["side-tag"])
    assert result.pushed == {"side-tag": repo.resolve("side-tag")}
    assert result.uploaded == 1  # side.png; the rest was pushed with main
    assert _remote_ref(url, "refs/tags/side-tag") == repo.resolve("side-tag")
    assert _remote_ref(url, "refs/tags/v1") is None  # only the named tag
    again = remotes.push_tags(repo, "origin")  # --tags: v1 is new, side-tag already there
    assert list(again.pushed) == ["v1"] and again.already_there == ["side-tag"]


def test_clone_brings_tags_and_their_content(tagged: tuple[Repo, str], tmp_path: Path) -> None:
    repo, url = tagged
    remotes.push_tags(repo, "origin")
    clone = remotes.clone(url, tmp_path / "clone")
    assert branches.list_tags(clone) == branches.list_tags(repo)
    workspace.checkout(clone, "side-tag")
    assert (clone.workdir / "train" / "0" / "side.png").read_bytes() == b"only on the side branch"
    assert fsck(clone).ok


def test_a_moved_tag_is_refused_unless_forced_and_bad_names_change_nothing(
    tagged: tuple[Repo, str],
) -> None:
    repo, url = tagged
    remotes.push_tags(repo, "origin", ["v1"])
    old = _remote_ref(url, "refs/tags/v1")
    (repo.workdir / "train" / "1" / "new.png").write_bytes(b"a later image")
    repo.commit("later", all=True)
    branches.delete_tag(repo, "v1")
    branches.create_tag(repo, "v1")
    with pytest.raises(RemoteError, match="tag 'v1' already exists there"):
        remotes.push_tags(repo, "origin", ["v1"])
    assert _remote_ref(url, "refs/tags/v1") == old
    with pytest.raises(InvalidInputError, match="no tag named 'nope'"):
        remotes.push_tags(repo, "origin", ["v1", "nope"])
    assert _remote_ref(url, "refs/tags/v1") == old  # checked before anything was sent
    remotes.push_tags(repo, "origin", ["v1"], force=True)
    assert _remote_ref(url, "refs/tags/v1") == repo.head()


# -- the content URL travels with the history -------------------------------------------------
def test_clone_of_the_git_url_alone_finds_content_named_in_the_history(
    digits_repo: Repo, tmp_path: Path
) -> None:
    repo = digits_repo
    url = _bare(tmp_path / "origin.git")
    elsewhere = str(tmp_path / "bucket" / "cats")  # not derivable from the git URL
    remotes.add_remote(
        repo,
        "origin",
        url,
        elsewhere,
        {"auto_mkdir": True, "secret_token": "s3cr3t"},
        share=True,
    )
    shared = Config.load(repo.workdir / "datagit.toml").extra["remotes"]["origin"]
    assert shared == {"url": url, "content": elsewhere, "options": {"auto_mkdir": "true"}}
    assert "s3cr3t" not in (repo.workdir / "datagit.toml").read_text()  # secrets never written
    repo.commit("300 digits, and where their bytes are", all=True)
    remotes.push(repo)
    clone = remotes.clone(url, tmp_path / "clone")  # one URL
    assert remotes.get_remote(clone, "origin").content == elsewhere
    assert remotes.get_remote(clone, "origin").options == {"auto_mkdir": "true"}
    assert _files(clone.workdir) == _files(repo.workdir)
    assert fsck(clone).ok


def test_an_explicit_content_url_wins_over_the_history(digits_repo: Repo, tmp_path: Path) -> None:
    repo = digits_repo
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url, str(tmp_path / "c"), share=True)
    repo.commit("digits", all=True)
    remotes.push(repo)
    mirror = tmp_path / "mirror"
    subprocess.run(["cp", "-r", str(tmp_path / "c"), str(mirror)], check=True)
    clone = remotes.clone(url, tmp_path / "clone", content=str(mirror))
    assert remotes.get_remote(clone, "origin").content == str(mirror)


def test_a_malformed_remotes_table_in_history_is_named(digits_repo: Repo, tmp_path: Path) -> None:
    repo = digits_repo
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    cfg = repo.workdir / "datagit.toml"
    cfg.write_text(cfg.read_text() + '\n[remotes.origin]\nurl = "x"\n')
    repo.commit("digits", all=True)
    remotes.push(repo)
    target = tmp_path / "clone"
    with pytest.raises(InvalidInputError, match=r"\[remotes.origin\] needs content = URL"):
        remotes.clone(url, target)
    assert not target.exists()  # a failed clone leaves nothing behind


def test_content_url_on_s3_travels_to_a_clone(digits_repo: Repo, tmp_path: Path, s3) -> None:  # type: ignore[no-untyped-def]
    repo = digits_repo
    for png in sorted((repo.workdir / "train").rglob("*.png"))[40:]:
        png.unlink()  # 40 real digits keep the S3 traffic short
    url = _bare(tmp_path / "origin.git")
    endpoint = s3.server.endpoint
    remotes.add_remote(
        repo,
        "origin",
        url,
        s3.url,
        {"endpoint_url": endpoint, "key": "testing", "secret": "testing"},
        share=True,
    )
    repo.commit("forty digits", all=True)
    remotes.push(repo)
    s3.reset()
    clone = remotes.clone(url, tmp_path / "clone")
    cfg = remotes.get_remote(clone, "origin")
    assert (cfg.content, cfg.options) == (s3.url, {"endpoint_url": endpoint})
    assert s3.counts()["GET"] >= 1  # the bytes came from the moto server
    assert _files(clone.workdir) == _files(repo.workdir)
