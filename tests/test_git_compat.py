"""`.datagit` is a real git repository: the real `git` CLI checks it and reads datagit's history."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

from datagit import Repo, Signature
from datagit.api import branches, maintenance, workspace

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git CLI")


def git(repo: Repo, *args: str) -> str:
    result = subprocess.run(
        ["git", "--git-dir", str(repo.dotdir), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.fixture
def two_authors(digits_repo: Repo) -> Repo:
    """Three commits by two authors, a branch, both kinds of tag, and a gc."""
    ws = digits_repo.workdir
    ada = Signature("Ada Lovelace", "ada@example.com", 1_700_000_000, 0)
    bob = Signature("Bob Labeller", "bob@example.com", 1_700_000_100, 60)
    digits_repo.commit("add 300 digits", all=True, author=ada)
    shutil.move(ws / "train/0/img_0000.png", ws / "train/8/img_0000.png")
    digits_repo.commit("relabel a zero", all=True, author=bob, annotator="bob")
    branches.create_tag(digits_repo, "v1", "HEAD", "first release")
    branches.create_tag(digits_repo, "light")
    workspace.switch(digits_repo, "more", create=True)
    write_tree(ws, {"train/5/extra.png": digits_pngs(301)[300][0]})
    digits_repo.commit("add one more", all=True, author=ada)
    workspace.switch(digits_repo, "main")
    maintenance.gc(digits_repo)
    return digits_repo


def test_git_fsck_reports_no_error(two_authors: Repo) -> None:
    out = git(two_authors, "fsck", "--full", "--strict")
    for word in ("error", "broken", "missing", "corrupt", "bad"):
        assert word not in out.lower(), out


def test_git_log_shows_datagit_commits_and_authors(two_authors: Repo) -> None:
    lines = git(two_authors, "log", "--format=%an <%ae>|%cn|%s").splitlines()
    assert lines == [
        "Bob Labeller <bob@example.com>|Ada Tester|relabel a zero",
        "Ada Lovelace <ada@example.com>|Ada Tester|add 300 digits",
    ]
    ours = [c.id for c in two_authors.log()]
    assert git(two_authors, "log", "--format=%H").split() == ours
    assert "Annotator: bob" in git(two_authors, "log", "-1", "--format=%B")
    assert git(two_authors, "rev-parse", "v1^{commit}").strip() == ours[0]
    assert sorted(git(two_authors, "tag").split()) == ["light", "v1"]
    assert git(two_authors, "log", "--format=%s", "more", "-1").strip() == "add one more"


def test_git_reads_the_manifest(two_authors: Repo) -> None:
    toml = git(two_authors, "show", "HEAD:datagit.toml")
    assert "[datasets.train]" in toml
    tree = git(two_authors, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert "datasets/train/meta.json" in tree
    shards = [p for p in tree if p.startswith("datasets/train/records/")]
    lines = "".join(git(two_authors, "show", f"HEAD:{p}") for p in shards).splitlines()
    assert len(lines) == 300 and '"id":"img_0000.png"' in "".join(lines)
    changed = git(two_authors, "diff", "--name-only", "HEAD~1", "HEAD").split()
    assert len([p for p in changed if "/records/" in p]) == 1  # one relabel, one shard


def test_git_sees_a_repository_written_only_by_datagit(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "ws")
    assert git(repo, "rev-parse", "--is-bare-repository").strip() == "true"
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"


def test_git_reads_datagit_packs(tmp_repo: Repo) -> None:
    """A big commit's shards and trees go to a pack datagit writes itself: git must read it."""
    pngs = digits_pngs(1200)
    write_tree(tmp_repo.workdir, {f"train/{t}/d{i:04d}.png": p for i, (p, t) in enumerate(pngs)})
    tmp_repo.commit("1200 digits", all=True)
    packs = list((tmp_repo.dotdir / "objects" / "pack").glob("*.pack"))
    assert packs, "expected a pack for a commit of this size"
    for pack in packs:
        git(tmp_repo, "verify-pack", "-v", str(pack.with_suffix(".idx")))
    out = git(tmp_repo, "fsck", "--full", "--strict")
    assert "error" not in out.lower() and "broken" not in out.lower(), out
    shards = [
        p for p in git(tmp_repo, "ls-tree", "-r", "--name-only", "HEAD").split() if "/records/" in p
    ]
    assert len(shards) == 16
    rows = "".join(git(tmp_repo, "show", f"HEAD:{p}") for p in shards).splitlines()
    assert len(rows) == 1200
    for i in range(0, 1200, 100):  # a 1% re-label, committed on top, read back by git
        t = pngs[i][1]
        shutil.move(
            tmp_repo.workdir / f"train/{t}/d{i:04d}.png",
            tmp_repo.workdir / f"train/{(t + 1) % 10}/d{i:04d}.png",
        )
    tmp_repo.commit("relabel 1%", all=True)
    changed = git(tmp_repo, "diff", "--name-only", "HEAD~1", "HEAD").split()
    assert 1 <= len([p for p in changed if "/records/" in p]) <= 12
    assert "error" not in git(tmp_repo, "fsck", "--full", "--strict").lower()


def test_git_fsck_is_clean_after_commits_that_name_the_empty_tree(tmp_repo: Repo) -> None:
    """An allow-empty commit has an empty ``changes`` tree and an emptied dataset an empty
    records tree; libgit2 reports the empty tree present without storing it, so git's
    fsck found it missing (a merge commit made again after a kill did this too)."""
    write_tree(tmp_repo.workdir, {"train/3/a.png": digits_pngs(1)[0][0]})
    tmp_repo.commit("one", all=True)
    tmp_repo.commit("nothing changed", allow_empty=True)
    assert "4b825dc642cb6eb9a060e54bf8d69288fbee4904" in git(tmp_repo, "ls-tree", "HEAD")
    out = git(tmp_repo, "fsck", "--full", "--strict")
    assert "missing" not in out and "error" not in out.lower(), out
    (tmp_repo.workdir / "train/3/a.png").unlink()
    tmp_repo.commit("emptied", all=True)
    out = git(tmp_repo, "fsck", "--full", "--strict")
    assert "missing" not in out and "error" not in out.lower(), out
    maintenance.gc(tmp_repo)  # gc packs it with the rest; git still finds it
    out = git(tmp_repo, "fsck", "--full", "--strict")
    assert "missing" not in out and "error" not in out.lower(), out
