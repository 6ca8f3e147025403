"""push, fetch, pull and clone on real repositories: a bare git remote plus a content folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datagit import CorruptObjectError, DatagitError, RemoteError, Repo
from datagit.api import remotes, workspace
from datagit.api.maintenance import fsck
from datagit.errors import InvalidInputError
from datagit.storage.remote import ContentRemote


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".datagit" not in p.parts
    }


@pytest.fixture
def origin(digits_repo: Repo, tmp_path: Path) -> tuple[Repo, str]:
    """digits_repo committed and pushed to a bare repo with content beside it."""
    digits_repo.commit("300 digits", all=True)
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(digits_repo, "origin", url)
    remotes.push(digits_repo, "origin")
    return digits_repo, url


def _edit_commit(repo: Repo, name: str, data: bytes, message: str) -> str:
    path = repo.workdir / "train" / "0" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return repo.commit(message, all=True).id


# -- configuration ------------------------------------------------------------------------------
def test_add_list_remove_and_default_content_url(tmp_repo: Repo, tmp_path: Path) -> None:
    url = _bare(tmp_path / "r.git")
    cfg = remotes.add_remote(tmp_repo, "origin", url)
    assert cfg.content == os.path.join(url, "datagit-content")
    remotes.add_remote(tmp_repo, "s3", url, content="s3://bucket/prefix")
    assert {n: c.content for n, c in remotes.list_remotes(tmp_repo).items()} == {
        "origin": os.path.join(url, "datagit-content"),
        "s3": "s3://bucket/prefix",
    }
    with pytest.raises(InvalidInputError, match="already exists"):
        remotes.add_remote(tmp_repo, "origin", url)
    with pytest.raises(InvalidInputError, match="not a valid remote name"):
        remotes.add_remote(tmp_repo, "../x", url)
    remotes.remove_remote(tmp_repo, "s3")
    assert list(remotes.list_remotes(tmp_repo)) == ["origin"]
    scp = remotes.add_remote(tmp_repo, "hub", "git@example.com:team/cats.git")
    assert (scp.url, scp.content) == ("git@example.com:team/cats.git", None)
    with pytest.raises(RemoteError, match="no content URL"):
        remotes.content_remote(tmp_repo, scp)


def test_options_are_stored_as_a_git_multivar_typed_on_use_and_removed_with_the_remote(
    tmp_repo: Repo, tmp_path: Path
) -> None:
    url = _bare(tmp_path / "r.git")
    cfg = remotes.add_remote(
        tmp_repo,
        "s3",
        url,
        content="s3://bucket/prefix",
        options={"endpoint_url": "http://127.0.0.1:9000", "anon": False, "max_concurrency": 4},
    )
    assert cfg.options == {
        "endpoint_url": "http://127.0.0.1:9000",
        "anon": "false",
        "max_concurrency": "4",
    }
    git = ["git", "--git-dir", str(tmp_repo.dotdir), "config", "--get-all"]
    stored = subprocess.run(
        [*git, "remote.s3.datagit-option"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert sorted(stored) == [
        "anon=false",
        "endpoint_url=http://127.0.0.1:9000",
        "max_concurrency=4",
    ]

    remotes.set_remote_option(tmp_repo, "s3", "endpoint_url", "http://127.0.0.1:9001")
    remotes.set_remote_option(tmp_repo, "s3", "client_kwargs.region_name", "eu-west-1")
    remotes.set_remote_option(tmp_repo, "s3", "account", "0123")
    cfg = remotes.get_remote(tmp_repo, "s3")
    assert remotes.storage_options(cfg.options, "s3") == {
        "endpoint_url": "http://127.0.0.1:9001",
        "anon": False,
        "max_concurrency": 4,
        "account": "0123",  # not canonical as an int: stays text
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    remotes.unset_remote_option(tmp_repo, "s3", "client_kwargs")  # and what is nested under it
    remotes.unset_remote_option(tmp_repo, "s3", "account")
    assert set(remotes.get_remote(tmp_repo, "s3").options) == {
        "endpoint_url",
        "anon",
        "max_concurrency",
    }
    remotes.remove_remote(tmp_repo, "s3")
    assert tmp_repo.git.config_get_all("remote.s3.datagit-option") == []
    again = remotes.add_remote(tmp_repo, "s3", url, content="s3://bucket/prefix")
    assert again.options == {}


def test_bad_options_are_refused_before_anything_is_written(tmp_repo: Repo, tmp_path: Path) -> None:
    url = _bare(tmp_path / "r.git")
    config = tmp_repo.dotdir / "config"
    before = config.read_bytes()
    for options, match in [
        ({"a b": "x"}, "option name 'a b' is not valid"),
        ({"anon": ""}, "option 'anon' has an empty value"),
        ({"a": "1\n2"}, "holds a newline"),
        ({"client_kwargs": "x", "client_kwargs.region_name": "y"}, "conflicts with option"),
        ({"x": 1.5}, "must be text, a bool or an int"),
    ]:
        with pytest.raises(InvalidInputError, match=match):
            remotes.add_remote(tmp_repo, "o", url, options=options)  # type: ignore[arg-type]
        assert config.read_bytes() == before
    with pytest.raises(InvalidInputError, match="is not KEY=VALUE"):
        remotes.parse_options(["endpoint_url"], "o")
    with pytest.raises(InvalidInputError, match="given twice"):
        remotes.parse_options(["a=1", "a=2"], "o")
    remotes.add_remote(tmp_repo, "o", url, options={"client_kwargs.region_name": "eu"})
    before = config.read_bytes()
    with pytest.raises(InvalidInputError, match=r"'client_kwargs\.region_name' conflicts"):
        remotes.set_remote_option(tmp_repo, "o", "client_kwargs", "x")
    with pytest.raises(InvalidInputError, match="remote 'o' has no option 'nope'"):
        remotes.unset_remote_option(tmp_repo, "o", "nope")
    with pytest.raises(RemoteError, match="no remote named 'p'"):
        remotes.set_remote_option(tmp_repo, "p", "anon", True)
    assert config.read_bytes() == before


def test_secret_looking_options_are_masked() -> None:
    shown = remotes.masked(
        {"key": "AKIA1", "secret": "s", "client_kwargs.aws_session_token": "t", "password": "p",
         "endpoint_url": "http://x", "profile": "team"}
    )  # fmt: skip
    assert shown == {
        "client_kwargs.aws_session_token": "****",
        "endpoint_url": "http://x",
        "key": "****",
        "password": "****",
        "profile": "team",
        "secret": "****",
    }


def test_a_hand_broken_option_is_named_and_the_remote_can_still_be_removed(
    tmp_repo: Repo, tmp_path: Path
) -> None:
    remotes.add_remote(tmp_repo, "o", _bare(tmp_path / "r.git"))
    tmp_repo.git.config_replace("remote.o.datagit-option", "^$", "no equals sign")
    with pytest.raises(InvalidInputError, match=r"value 1 of remote\.o\.datagit-option"):
        remotes.get_remote(tmp_repo, "o")
    remotes.remove_remote(tmp_repo, "o")
    assert remotes.list_remotes(tmp_repo) == {}


def test_a_local_content_remote_takes_options(origin: tuple[Repo, str], tmp_path: Path) -> None:
    repo, _ = origin
    remotes.set_remote_option(repo, "origin", "auto_mkdir", True)
    assert remotes.check_remote(repo, "origin") == []


def test_unknown_remote_is_named(tmp_repo: Repo) -> None:
    with pytest.raises(RemoteError, match="no remote named 'upstream'") as err:
        remotes.push(tmp_repo, "upstream")
    assert err.value.hint and "remote add upstream" in err.value.hint


# -- push and clone -----------------------------------------------------------------------------
def test_clone_reproduces_the_workspace_and_passes_fsck(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    repo, url = origin
    clone = remotes.clone(url, tmp_path / "clone")
    assert _files(clone.workdir) == _files(repo.workdir)
    assert clone.branch() == "main" and clone.head() == repo.head()
    assert fsck(clone).ok
    assert clone.git.config_get("branch.main.remote") == "origin"
    assert remotes.list_remotes(clone)["origin"].url == url
    assert clone.status().clean


def test_second_push_with_nothing_new_only_lists(origin: tuple[Repo, str]) -> None:
    repo, _ = origin
    content = ContentRemote(remotes.get_remote(repo, "origin").content or "")
    result = remotes.push(repo, "origin", content=content)
    assert result.uploaded == 0 and result.already_there == 300
    assert content.stats.list_calls == 1
    assert content.stats.upload_calls == 0 and content.stats.downloaded == 0


def test_push_sends_only_new_content(origin: tuple[Repo, str]) -> None:
    repo, _ = origin
    _edit_commit(repo, "new.png", b"\x89PNG fresh bytes", "one more")
    assert remotes.push(repo).uploaded == 1


def test_non_fast_forward_push_is_refused_unless_forced(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    repo, url = origin
    other = remotes.clone(url, tmp_path / "other")
    _edit_commit(repo, "a.png", b"from a", "A's change")
    remotes.push(repo)
    mine = _edit_commit(other, "b.png", b"from b", "B's change")
    with pytest.raises(RemoteError, match="non-fast-forward") as err:
        remotes.push(other)
    assert "--force" in (err.value.hint or "")
    assert remotes.push(other, force=True).new == mine
    assert (
        subprocess.run(
            ["git", "--git-dir", url, "rev-parse", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        == mine
    )


def test_clone_into_a_non_empty_directory_is_refused(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    _, url = origin
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(DatagitError, match="not an empty directory"):
        remotes.clone(url, target)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


# -- fetch and pull -----------------------------------------------------------------------------
def test_pull_fast_forwards_and_then_is_up_to_date(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    repo, url = origin
    clone = remotes.clone(url, tmp_path / "clone")
    new = _edit_commit(repo, "late.png", b"late bytes", "late")
    remotes.push(repo)
    r = remotes.pull(clone)
    assert (r.kind, r.new, r.fetch.downloaded) == ("fast-forward", new, 1)
    assert (clone.workdir / "train/0/late.png").read_bytes() == b"late bytes"
    assert remotes.pull(clone).kind == "up-to-date"
    assert fsck(clone).ok


def test_pull_of_diverged_branches_merges_records(origin: tuple[Repo, str], tmp_path: Path) -> None:
    repo, url = origin
    clone = remotes.clone(url, tmp_path / "clone")
    theirs = _edit_commit(repo, "a.png", b"a", "a")
    remotes.push(repo)
    mine = _edit_commit(clone, "b.png", b"b", "b")
    r = remotes.pull(clone)
    assert r.kind == "merged" and not r.conflicts
    assert set(clone.commit_info().parents) == {mine, theirs}
    assert (clone.workdir / "train/0/a.png").read_bytes() == b"a"
    assert (clone.workdir / "train/0/b.png").read_bytes() == b"b"
    assert remotes.push(clone).uploaded == 1


def test_corrupt_remote_object_is_named_and_nothing_corrupt_is_kept(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    repo, url = origin
    clone = remotes.clone(url, tmp_path / "clone")
    before = clone.git.ref("refs/remotes/origin/main")
    _edit_commit(repo, "bad.png", b"good bytes", "will be corrupted")
    remotes.push(repo)
    key = next(k for k in remotes.needed_content(repo, [repo.head()]) if not clone.store.has(k))
    obj = Path(remotes.get_remote(repo, "origin").content or "") / key[:2] / key[2:]
    obj.write_bytes(b"evil bytes")
    with pytest.raises(CorruptObjectError, match=key):
        remotes.fetch(clone)
    assert clone.git.ref("refs/remotes/origin/main") == before
    assert not clone.store.has(key)
    assert fsck(clone).ok
    with pytest.raises(CorruptObjectError, match=key):
        remotes.clone(url, tmp_path / "second")
    assert not (tmp_path / "second").exists()
    assert any(key in p for p in remotes.check_remote(repo))


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/nothing.git", "/no/such/repo.git"])
def test_unreachable_git_remote_is_one_line_and_changes_nothing(
    origin: tuple[Repo, str], url: str
) -> None:
    repo, _ = origin
    remotes.add_remote(repo, "far", url, content=str(repo.workdir.parent / "c"))
    refs = repo.git.refs()
    for verb in (remotes.fetch, remotes.push):
        with pytest.raises(RemoteError) as err:
            verb(repo, "far")
        assert "\n" not in err.value.message and url.rsplit("/", 1)[-1] in err.value.message
    assert repo.git.refs() == refs


def test_missing_content_remote_fails_fetch_before_any_ref_moves(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    repo, url = origin
    clone = remotes.clone(url, tmp_path / "clone")
    _edit_commit(repo, "x.png", b"x bytes", "x")
    remotes.push(repo)
    refs = clone.git.refs()
    clone.git.config_set("remote.origin.datagit-content", str(tmp_path / "empty-content"))
    with pytest.raises(RemoteError, match="not on the remote"):
        remotes.fetch(clone)
    assert clone.git.refs() == refs


# -- a push killed halfway ----------------------------------------------------------------------
_KILLER = """
import os, signal, sys
from datagit import Repo
from datagit.api import remotes
def progress(event):
    if event.phase == "upload" and event.done >= 256:
        os.kill(os.getpid(), signal.SIGKILL)
remotes.push(Repo.open(sys.argv[1]), "origin", progress=progress)
"""


def test_killed_push_resumes_without_resending_and_remote_checks_clean(
    digits_repo: Repo, tmp_path: Path
) -> None:
    repo = digits_repo
    repo.commit("300 digits", all=True)
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(repo, "origin", url)
    proc = subprocess.run([sys.executable, "-c", _KILLER, str(repo.workdir)], env=os.environ)
    assert proc.returncode == -9
    content = ContentRemote(remotes.get_remote(repo, "origin").content or "")
    arrived = content.list()
    assert len(arrived) == 256
    unmoved = subprocess.run(["git", "--git-dir", url, "rev-parse", "--verify", "-q", "main"])
    assert unmoved.returncode != 0  # the remote branch was never created
    result = remotes.push(repo)
    assert (result.uploaded, result.already_there) == (300 - 256, 256)
    assert remotes.check_remote(repo) == []
    assert fsck(remotes.clone(url, tmp_path / "clone")).ok


_PULL_KILLER = """
import os, signal, sys
from datagit import Repo
from datagit.api import remotes
def progress(event):
    if event.phase == "download":
        os.kill(os.getpid(), signal.SIGKILL)
remotes.pull(Repo.open(sys.argv[1]), progress=progress)
"""


def test_a_pull_killed_before_its_content_arrived_leaves_fsck_clean(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    """The fetch's commits wait under refs/datagit/fetching until their content is here:
    content they name and nothing else does is not missing, and the next pull takes it."""
    repo, url = origin
    clone = remotes.clone(url, tmp_path / "clone")
    head = clone.head()
    new = _edit_commit(repo, "late.png", b"late bytes", "late")
    remotes.push(repo)
    proc = subprocess.run([sys.executable, "-c", _PULL_KILLER, str(clone.workdir)], env=os.environ)
    assert proc.returncode == -9
    after = Repo.open(clone.workdir)
    assert after.head() == head and after.git.refs("refs/datagit/fetching/")  # killed mid-fetch
    report = fsck(after)
    assert report.ok, report.problems
    assert report.missing == []
    r = remotes.pull(after)
    assert (r.kind, r.new) == ("fast-forward", new)
    assert (clone.workdir / "train/0/late.png").read_bytes() == b"late bytes"
    assert fsck(after).ok and not after.git.refs("refs/datagit/fetching/")
    after.close()


# -- partial clones -----------------------------------------------------------------------------
def test_partial_clone_fetches_history_only_and_content_on_demand(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    repo, url = origin
    old = sorted((repo.workdir / "train").rglob("*.png"))[:50]
    for p in old:
        p.unlink()
    repo.commit("drop 50", all=True)
    remotes.push(repo)
    part = remotes.clone(url, tmp_path / "part", no_content=True)
    assert len(list(part.store.keys())) == 250  # only what the checkout needed
    report = fsck(part)
    assert report.ok and len(report.missing) == 50
    workspace.checkout(part, "HEAD~1")  # needs the 50 dropped examples: fetched on demand
    assert _files(part.workdir)["train/" + old[0].relative_to(repo.workdir / "train").as_posix()]
    assert len(list(part.store.keys())) == 300


def test_partial_clone_pull_dataset_fetches_that_datasets_content(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    _, url = origin
    part = remotes.clone(url, tmp_path / "part", no_content=True)
    part.store.invalidate()
    for p in (part.dotdir / "content" / "packs").iterdir():
        p.unlink()  # as if the checkout had not needed them
    assert remotes.fetch_content(part, "HEAD", datasets=["train"]) == 300
    with pytest.raises(InvalidInputError, match="no dataset named 'nope'"):
        remotes.fetch_content(part, "HEAD", datasets=["nope"])


def test_the_package_re_exports_every_public_name_of_its_modules() -> None:
    import importlib
    import inspect
    import pkgutil

    public: set[str] = set()
    for mod in pkgutil.iter_modules(remotes.__path__):
        module = importlib.import_module(f"datagit.api.remotes.{mod.name}")
        public |= {
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and name not in {"annotations", "TYPE_CHECKING"}
            and not inspect.ismodule(value)
            and getattr(value, "__module__", module.__name__) == module.__name__
        }
    assert public <= set(remotes.__all__)
    assert all(hasattr(remotes, name) for name in remotes.__all__)


def test_refs_a_killed_fetch_left_are_not_taken_for_the_next_fetchs(
    origin: tuple[Repo, str], tmp_path: Path
) -> None:
    """A branch a killed fetch saw, and the remote has deleted since, must not come back
    as a remote-tracking ref when the next fetch finds the leftover under
    refs/datagit/fetching."""
    _repo, url = origin
    clone = remotes.clone(url, tmp_path / "clone")
    head = clone.head()
    assert head is not None
    clone.git.update_ref("refs/datagit/fetching/heads/gone", head)  # what the kill left
    result = remotes.fetch(clone)
    assert "refs/remotes/origin/gone" not in clone.git.refs("refs/remotes/")
    assert "refs/remotes/origin/gone" not in result.updated
    assert not clone.git.refs("refs/datagit/fetching/")
    clone.close()
