"""gc repacks git objects: one pack of everything datagit keeps, nothing else, never a loss.

Real digits repositories with a long history; every commit is forced into its
own pack (as a big dataset's commits are) by lowering the loose-object cutoff.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

import datagit.storage.git as git_storage
from datagit import STAGED, Repo
from datagit.api import branches, history, maintenance, workspace
from datagit.errors import CorruptObjectError
from datagit.storage import gitgc
from datagit.storage.gitpack import index_ids

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git CLI")

COMMITS = 40


def git(repo: Repo, *args: str, ok: bool = True) -> str:
    result = subprocess.run(
        ["git", "--git-dir", str(repo.dotdir), *args], capture_output=True, text=True, check=False
    )
    assert (result.returncode == 0) == ok, result.stderr
    return result.stdout + result.stderr


def git_fsck_clean(repo: Repo) -> str:
    """`git fsck --full --strict` passes; dangling objects (the stage, crash leftovers) may show."""
    out = git(repo, "fsck", "--full", "--strict")
    problems = [ln for ln in out.splitlines() if not ln.startswith("dangling ")]
    assert problems == [], out
    return out


def packs(repo: Repo) -> list[Path]:
    return sorted((repo.dotdir / "objects" / "pack").glob("*.pack"))


def loose(repo: Repo) -> list[Path]:
    return [p for p in (repo.dotdir / "objects").glob("??/*") if p.is_file()]


def everything_reads_back(ws: Path) -> int:
    """Every commit a ref or HEAD names: its records, each one's bytes verified."""
    fresh = Repo.open(ws)
    n = 0
    try:
        for c in fresh.git.walk(maintenance.reachable_roots(fresh)):
            for name in fresh.datasets_at(c.id):
                for r in fresh.records(name, c.id):
                    fresh.read(r)
                    n += 1
        return n
    finally:
        fresh.close()


def relabel(repo: Repo, name: str, old: int, new: int) -> None:
    shutil.move(repo.workdir / f"train/{old}/{name}", repo.workdir / f"train/{new}/{name}")


@pytest.fixture
def long_history(digits_repo: Repo, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """300 digits, then COMMITS re-labels of one image each: a pack per commit."""
    monkeypatch.setattr(git_storage, "SMALL_BATCH", 1)
    monkeypatch.setattr(gitgc, "AUTO_PACK_LIMIT", 10_000)  # gc's job here, not commit's
    digits_repo.commit("digits", all=True)
    labels = [t for _, t in digits_pngs(300)]
    for k in range(COMMITS):
        relabel(digits_repo, f"img_{k:04d}.png", labels[k], (labels[k] + 1) % 10)
        digits_repo.commit(f"relabel img_{k:04d}.png", all=True)
    return digits_repo


def test_gc_leaves_one_pack_that_git_and_datagit_read(long_history: Repo) -> None:
    repo = long_history
    packs_before, loose_before = len(packs(repo)), len(loose(repo))
    assert packs_before > COMMITS and loose_before > COMMITS  # commit objects are loose
    records_before = everything_reads_back(repo.workdir)
    log_before = git(repo, "log", "--format=%H %an %s")
    report = maintenance.gc(repo).git
    assert report is not None and report.rewritten
    assert (report.packs_before, report.loose_before) == (packs_before, loose_before)
    assert report.packs == 1 and len(packs(repo)) == 1 and loose(repo) == []
    assert [p.name for p in (repo.dotdir / "objects").iterdir()] in (["pack"], ["info", "pack"])
    (pack,) = packs(repo)
    assert len(index_ids(pack.with_suffix(".idx"))) == report.objects
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    assert (counts["count"], counts["packs"], counts["in-pack"]) == ("0", "1", str(report.objects))
    git(repo, "verify-pack", str(pack.with_suffix(".idx")))
    assert "dangling" not in git_fsck_clean(repo)  # no stage: nothing unreachable is left
    assert git(repo, "log", "--format=%H %an %s") == log_before
    assert len(log_before.splitlines()) == COMMITS + 1
    assert everything_reads_back(repo.workdir) == records_before == 300 * (COMMITS + 1)
    assert maintenance.fsck(Repo.open(repo.workdir)).ok
    # The same Repo (its libgit2 handle was reopened) goes on working: a commit, then log.
    last = digits_pngs(300)[299][1]
    relabel(repo, "img_0299.png", last, (last + 1) % 10)
    repo.commit("after gc", all=True)
    assert [c.summary for c in repo.log(limit=2)] == [
        "after gc",
        f"relabel img_{COMMITS - 1:04d}.png",
    ]


def test_gc_twice_rewrites_nothing(long_history: Repo) -> None:
    maintenance.gc(long_history)
    (pack,) = packs(long_history)
    inode = pack.stat().st_ino
    again = maintenance.gc(long_history).git
    assert again is not None and not again.rewritten and again.dropped == 0
    assert packs(long_history) == [pack] and pack.stat().st_ino == inode


def test_gc_keeps_stage_branch_tag_and_reflog_objects(long_history: Repo) -> None:
    repo, ws = long_history, long_history.workdir
    workspace.switch(repo, "side", create=True)
    write_tree(ws, {"train/2/side.png": digits_pngs(301)[300][0]})
    side = repo.commit("only a branch keeps me", all=True).id
    workspace.switch(repo, "tagged", create=True)
    write_tree(ws, {"train/2/tagged.png": b"only a tag keeps me"})
    tagged = repo.commit("only a tag keeps me", all=True).id
    branches.create_tag(repo, "keep", "HEAD", "annotated, so a tag object too")
    workspace.switch(repo, "logged", create=True)
    write_tree(ws, {"train/2/logged.png": b"only the reflog keeps me"})
    logged = repo.commit("only the reflog keeps me", all=True).id
    workspace.switch(repo, "main")
    branches.delete_branch(repo, "tagged", force=True)
    branches.delete_branch(repo, "logged", force=True)
    write_tree(ws, {"train/3/staged.png": b"staged, not committed"})
    repo.add()
    staged_tree = repo.stage_tree()
    tag_object = repo.git.ref_targets()["refs/tags/keep"]
    maintenance.gc(repo)
    fresh = Repo.open(ws)
    for oid in (side, tagged, logged, staged_tree, tag_object):
        assert fresh.git.has(oid)
    assert fresh.record("train", "staged.png", STAGED).label == "3"
    assert fresh.read(fresh.record("train", "staged.png", STAGED)) == b"staged, not committed"
    assert fresh.read(fresh.record("train", "tagged.png", "keep")) == b"only a tag keeps me"
    assert fresh.record("train", "side.png", "side").label == "2"
    logged_rec = fresh.record("train", "logged.png", logged)
    assert logged_rec.label == "2"  # history, and (until gc.reflogExpire) the bytes
    assert fresh.read(logged_rec) == b"only the reflog keeps me"
    assert [c.summary for c in fresh.log("keep", limit=1)] == ["only a tag keeps me"]
    fresh.commit("commit the stage after gc")
    assert fresh.record("train", "staged.png").label == "3"
    git_fsck_clean(fresh)
    assert maintenance.fsck(fresh).ok


def test_gc_drops_what_nothing_keeps(long_history: Repo) -> None:
    repo, ws = long_history, long_history.workdir
    head = repo.commit_info()
    dangling = repo.git.create_commit(head.tree, [head.id], "nobody\n", head.author, head.author)
    workspace.switch(repo, "gone", create=True)
    write_tree(ws, {"train/2/gone.png": b"a deleted branch and no reflog"})
    gone = repo.commit("on a branch that is deleted", all=True).id
    workspace.switch(repo, "main")
    branches.delete_branch(repo, "gone", force=True)
    shutil.rmtree(repo.dotdir / "logs")  # reflogs are optional: without them, gone is gone
    report = maintenance.gc(repo).git
    assert report is not None and report.dropped >= 2
    fresh = Repo.open(ws)
    assert not fresh.git.has(dangling) and not fresh.git.has(gone)
    git(fresh, "cat-file", "-e", gone, ok=False)
    assert fresh.git.has(head.id) and len(list(fresh.log())) == COMMITS + 1
    git_fsck_clean(fresh)


def test_gc_keeps_both_sides_of_a_merge_in_progress(long_history: Repo) -> None:
    repo = long_history
    last = digits_pngs(300)[299][1]
    ours_label, theirs_label = (last + 1) % 10, (last + 2) % 10
    workspace.switch(repo, "theirs", create=True)
    relabel(repo, "img_0299.png", last, theirs_label)
    theirs = repo.commit("theirs", all=True).id
    workspace.switch(repo, "main")
    relabel(repo, "img_0299.png", last, ours_label)
    repo.commit("ours", all=True)
    outcome = history.merge(repo, "theirs")
    assert outcome.kind == "conflicts"
    branches.delete_branch(repo, "theirs", force=True)
    shutil.rmtree(repo.dotdir / "logs")  # only MERGE_STATE names their commit now
    maintenance.gc(repo)
    fresh = Repo.open(repo.workdir)
    assert fresh.git.has(theirs)
    history.resolve(fresh, side="theirs")
    merged = fresh.commit("merge theirs")
    assert merged.parents[1] == theirs
    assert fresh.record("train", "img_0299.png").label == str(theirs_label)
    git_fsck_clean(fresh)


def crash_after(k: int, real_unlink: Callable[..., None]) -> Callable[..., None]:
    """A `Path.unlink` that deletes ``k`` files under objects/ and then raises."""
    deleted = 0

    def unlink(self: Path, missing_ok: bool = False) -> None:
        nonlocal deleted
        if "objects" in self.parts and not self.name.startswith("tmp_"):
            if deleted == k:
                raise OSError("simulated crash")
            deleted += 1
        real_unlink(self, missing_ok=missing_ok)

    return unlink


def test_a_crash_while_deleting_loses_nothing(
    long_history: Repo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Fail the k-th deletion, for several k, each on a copy of the same repository: it
    stays whole, takes a new commit, and the next gc finishes the job."""
    template = long_history.workdir
    records = everything_reads_back(template)
    real_unlink = Path.unlink
    # 0: before any pack goes; 4: an index deleted, its pack not yet; 500: loose files.
    for k in (0, 4, 60, 300, 500):
        ws = tmp_path / f"crash{k}"
        shutil.copytree(template, ws, symlinks=True)
        monkeypatch.setattr(Path, "unlink", crash_after(k, real_unlink))
        with pytest.raises(OSError, match="simulated crash"):
            maintenance.gc(Repo.open(ws))
        monkeypatch.setattr(Path, "unlink", real_unlink)
        repo = Repo.open(ws)
        assert everything_reads_back(ws) == records
        assert maintenance.fsck(repo).ok
        git_fsck_clean(repo)
        write_tree(ws, {"train/4/after.png": f"after crash {k}".encode()})
        repo.commit(f"after crash {k}", all=True)
        report = maintenance.gc(Repo.open(ws)).git
        assert report is not None and report.packs == 1 and len(packs(repo)) == 1
        assert loose(repo) == [] and everything_reads_back(ws) == records + 301
        assert "dangling" not in git_fsck_clean(repo)


def test_a_missing_object_refuses_gc_before_anything_is_deleted(long_history: Repo) -> None:
    repo = long_history
    victim = repo.resolve("HEAD~3")  # commit objects are written loose
    (repo.dotdir / "objects" / victim[:2] / victim[2:]).unlink()
    files_before = sorted(p for p in (repo.dotdir / "objects").rglob("*") if p.is_file())
    with pytest.raises(CorruptObjectError, match=victim):
        gitgc.repack(Repo.open(repo.workdir).git)
    assert sorted(p for p in (repo.dotdir / "objects").rglob("*") if p.is_file()) == files_before


def test_gc_of_a_repository_without_commits(tmp_repo: Repo) -> None:
    report = maintenance.gc(tmp_repo).git
    assert report is not None and report.objects == 0 and report.packs == 0
    write_tree(tmp_repo.workdir, {"train/1/a.png": digits_pngs(1)[0][0]})
    tmp_repo.add()  # a stage and no commit: its objects are all that is kept
    report = maintenance.gc(tmp_repo).git
    assert report is not None and report.objects > 0 and report.packs == 1
    assert Repo.open(tmp_repo.workdir).record("train", "a.png", STAGED).label == "1"


@pytest.mark.parametrize(("setting", "kept"), [("now", False), ("never", True), ("90.days", True)])
def test_gc_keeps_a_reflog_entrys_content_until_it_expires(
    long_history: Repo, setting: str, kept: bool
) -> None:
    """gc.reflogExpire (default 90 days) bounds how long content only a reflog names is
    kept; its history (records, labels) stays either way."""
    from datagit.storage.content import MissingContentError

    repo, ws = long_history, long_history.workdir
    workspace.switch(repo, "logged", create=True)
    write_tree(ws, {"train/2/logged.png": b"only the reflog keeps me"})
    logged = repo.commit("only the reflog keeps me", all=True).id
    workspace.switch(repo, "main")
    branches.delete_branch(repo, "logged", force=True)
    repo.git.config_set("gc.reflogExpire", setting)
    maintenance.gc(repo)
    fresh = Repo.open(ws)
    rec = fresh.record("train", "logged.png", logged)
    if kept:
        assert fresh.read(rec) == b"only the reflog keeps me"
    else:
        with pytest.raises(MissingContentError):
            fresh.read(rec)
    assert maintenance.fsck(fresh).ok


def test_reflog_expiry_settings_read_as_git_writes_them() -> None:
    from datagit.storage.gitgc import expiry_seconds

    day = 86400.0
    assert expiry_seconds(None) == 90 * day
    assert expiry_seconds("90.days.ago") == 90 * day
    assert expiry_seconds("2 weeks") == 14 * day
    assert expiry_seconds("30") == 30 * day
    assert expiry_seconds("never") is None and expiry_seconds("now") == 0
    assert expiry_seconds("gibberish") == 90 * day  # never drop more than the default would
