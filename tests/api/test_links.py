"""core.link: checkout materialises examples as hard links (or reflinks) of the store's copy."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from datagit import Repo
from datagit.api import maintenance, workspace
from datagit.errors import DatagitError, InvalidInputError
from datagit.progress import Event
from datagit.storage import links
from datagit.storage.statcache import RACY_NS


def _pngs(repo: Repo) -> list[Path]:
    return sorted((repo.workdir / "train").rglob("*.png"))


@pytest.fixture
def two_commits(digits_repo: Repo) -> Repo:
    """HEAD~1: 300 digits; HEAD: none (so checking out HEAD~1 writes all 300)."""
    repo = digits_repo
    repo.commit("300 digits", all=True)
    for p in _pngs(repo):
        p.unlink()
    repo.commit("empty", all=True)
    return repo


def test_hardlink_checkout_shares_inodes_with_read_only_loose_objects(two_commits: Repo) -> None:
    repo = two_commits
    repo.git.config_set("core.link", "hardlink")
    events: list[Event] = []
    workspace.checkout(repo, "HEAD~1", progress=events.append)
    files = _pngs(repo)
    assert len(files) == 300
    rec = next(iter(repo.records("train")))
    work = repo.workdir / "train" / str(rec.label) / rec.id
    loose = repo.store.loose_file(rec.content)
    assert os.stat(work).st_ino == os.stat(loose).st_ino
    assert os.stat(work).st_mode & 0o777 == 0o444  # an in-place edit cannot reach history
    assert all(p.stat().st_nlink >= 2 for p in files)
    assert events[0] == Event("checkout", 0, 300, "files") and events[-1].finished
    assert repo.status().clean and maintenance.fsck(repo).ok


def test_gc_drops_packed_copies_of_linked_objects_so_bytes_are_stored_once(
    two_commits: Repo,
) -> None:
    repo = two_commits
    repo.git.config_set("core.link", "hardlink")
    workspace.checkout(repo, "HEAD~1")
    keys = {r.content for r in repo.records("train")}
    assert keys <= set(repo.store.index)  # packed and loose: twice, until gc
    report = maintenance.gc(repo)
    assert report.removed >= len(keys)
    fresh = Repo.open(repo.workdir)
    assert not keys & set(fresh.store.index)  # only the loose (linked) copy is left
    assert all(fresh.store.has(k) for k in keys)
    assert maintenance.fsck(fresh).ok and fresh.status().clean
    workspace.checkout(fresh, "main")  # deleting links leaves the store whole
    workspace.checkout(fresh, "HEAD~1")
    assert len(_pngs(fresh)) == 300 and maintenance.fsck(fresh).ok


def test_replacing_a_linked_file_leaves_history_intact(two_commits: Repo) -> None:
    repo = two_commits
    repo.git.config_set("core.link", "hardlink")
    workspace.checkout(repo, "HEAD~1")
    target = _pngs(repo)[0]
    before = repo.store.loose_file(next(iter(repo.records("train"))).content).read_bytes()
    tmp = target.with_suffix(".new")
    tmp.write_bytes(b"edited by an editor that writes a new file")
    os.replace(tmp, target)
    status = repo.status()
    assert [c.kind for d in status.datasets for c in d.unstaged] == ["modified"]
    assert maintenance.fsck(repo).ok
    assert repo.store.loose_file(next(iter(repo.records("train"))).content).read_bytes() == before


def test_copy_and_auto_write_independent_files(two_commits: Repo) -> None:
    repo = two_commits
    for mode in ("copy", "auto"):
        repo.git.config_set("core.link", mode)
        workspace.checkout(repo, "HEAD~1")
        cloning = links.can_reflink(repo.store.root)
        assert all(p.stat().st_nlink == 1 for p in _pngs(repo))
        if mode == "auto" and not cloning:
            assert not any((repo.store.root / "loose").rglob("*"))  # nothing promoted
        workspace.checkout(repo, "main")


def test_reflink_where_the_filesystem_cannot_clone_is_refused_before_any_change(
    two_commits: Repo,
) -> None:
    repo = two_commits
    repo.git.config_set("core.link", "reflink")
    if links.can_reflink(repo.store.root):
        workspace.checkout(repo, "HEAD~1")
        assert len(_pngs(repo)) == 300 and all(p.stat().st_nlink == 1 for p in _pngs(repo))
        return
    head = repo.head()
    with pytest.raises(DatagitError, match="cannot clone files"):
        workspace.checkout(repo, "HEAD~1")
    assert repo.head() == head and _pngs(repo) == [] and repo.branch() == "main"


def test_an_unknown_link_mode_is_named_and_changes_nothing(two_commits: Repo) -> None:
    repo = two_commits
    repo.git.config_set("core.link", "symlink")
    head = repo.head()
    with pytest.raises(InvalidInputError, match=r"core\.link = 'symlink' is not one of"):
        workspace.checkout(repo, "HEAD~1")
    assert repo.head() == head and _pngs(repo) == []


def test_a_large_loose_object_is_linked_read_only_too(tmp_repo: Repo) -> None:
    big = os.urandom(3 << 19)  # 1.5 MiB: stored loose by `add` itself
    (tmp_repo.workdir / "train" / "scan").mkdir()
    (tmp_repo.workdir / "train" / "scan" / "big.bin").write_bytes(big)
    tmp_repo.commit("big", all=True)
    (tmp_repo.workdir / "train" / "scan" / "big.bin").unlink()
    tmp_repo.commit("none", all=True)
    tmp_repo.git.config_set("core.link", "hardlink")
    workspace.checkout(tmp_repo, "HEAD~1")
    linked = tmp_repo.workdir / "train" / "scan" / "big.bin"
    assert linked.stat().st_nlink == 2 and linked.stat().st_mode & 0o777 == 0o444
    assert linked.read_bytes() == big


def test_status_after_a_linked_checkout_hashes_nothing(two_commits: Repo) -> None:
    """Linked files skip the stat cache: the followed snapshot vouches for them."""
    import time

    from datagit.core.layouts import Hasher, scan
    from datagit.core.snapshot import snapshot_rows
    from datagit.storage.statcache import RACY_NS

    repo = two_commits
    repo.git.config_set("core.link", "hardlink")
    workspace.checkout(repo, "HEAD~1")
    past = time.time_ns() - 10 * RACY_NS  # loose objects as old as a real store's
    for p in (repo.store.root / "loose").rglob("*"):
        if p.is_file():
            os.utime(p, ns=(past, past))
    workspace.checkout(repo, "main")
    workspace.checkout(repo, "HEAD~1")  # every file linked again, from aged objects
    cold = Repo.open(repo.workdir)
    cfg = cold.config.datasets["train"]
    hasher = Hasher(cold.workdir, cold.statcache)
    hasher.known = snapshot_rows(cold.git, cfg, cold.snapshots)
    assert len(scan(cfg, hasher)) == 300
    assert hasher.hashed == 0 and cold.status().clean


@pytest.mark.parametrize("link", ["hardlink", "copy"])
def test_a_dataset_checked_out_again_from_nothing_comes_from_its_kept_listing(
    two_commits: Repo, link: str
) -> None:
    """The second checkout of a tree from nothing reads the listing the first kept
    (`cache/listing-train.marshal`), not the shards: the same files, inodes and a clean
    status; a damaged listing is ignored and the checkout is just as right."""
    repo = two_commits
    repo.git.config_set("core.link", link)
    workspace.checkout(repo, "HEAD~1")
    want = {p.relative_to(repo.workdir): p.read_bytes() for p in _pngs(repo)}
    kept = repo.dotdir / "cache" / "listing-train.marshal"
    assert kept.exists() and len(want) == 300
    for damage in (False, True):
        workspace.checkout(repo, "main")
        assert not _pngs(repo)
        if damage:
            kept.write_bytes(kept.read_bytes()[:-5])
        workspace.checkout(repo, "HEAD~1")
        assert {p.relative_to(repo.workdir): p.read_bytes() for p in _pngs(repo)} == want
        if link == "hardlink":
            rec = next(iter(repo.records("train")))
            work = repo.workdir / "train" / str(rec.label) / rec.id
            assert os.stat(work).st_ino == os.stat(repo.store.loose_name(rec.content)).st_ino
        assert repo.status().clean and maintenance.fsck(repo).ok


def _disk_stats(repo: Repo) -> dict[str, tuple[int, int, int]]:
    out = {}
    for p in _pngs(repo):
        st = p.stat()
        out[p.relative_to(repo.workdir).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return out


def test_copies_on_two_cores_leave_a_snapshot_that_vouches_for_them(
    two_commits: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy mode with the forked helper engaged: every file a copy of its record's
    bytes, the snapshot holds the stats of the files on disk and is dated after them
    (so the next status hashes only the last RACY_NS of copies, not all), and status
    is clean; a checkout right after keeps the old date while an entry it carries is
    racy under it."""
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "50")
    repo = two_commits
    repo.git.config_set("core.link", "copy")
    before = repo.snapshots.load("train")
    assert before is not None
    workspace.checkout(repo, "HEAD~1")
    by_path = {f"train/{r.label}/{r.id}": r.content for r in repo.records("train")}
    files = _pngs(repo)
    assert len(files) == 300 and all(p.stat().st_nlink == 1 for p in files)
    for p in files:
        assert repo.store.read(by_path[p.relative_to(repo.workdir).as_posix()]) == p.read_bytes()
    snap = repo.snapshots.load("train")
    assert snap is not None and dict(snap.stats.items()) == _disk_stats(repo)
    assert snap.taken >= max(st[1] for st in snap.stats.values()) > before.taken
    assert repo.status().clean and maintenance.fsck(repo).ok
    assert not list(repo.workdir.rglob("*.datagit-tmp"))

    # Re-label one example and come back: the carried entries decide the date.
    moved = files[0]
    label = moved.parent.name
    other = repo.workdir / "train" / ("0" if label != "0" else "1") / moved.name
    os.replace(moved, other)
    repo.commit("relabel one", all=True)
    snap = repo.snapshots.load("train")
    assert snap is not None
    racy = next(snap.stats.racy(snap.taken - RACY_NS), None) is not None
    workspace.checkout(repo, "HEAD~1")
    after = repo.snapshots.load("train")
    assert after is not None and dict(after.stats.items()) == _disk_stats(repo)
    assert (after.taken == snap.taken) if racy else (after.taken >= snap.taken)
    assert repo.status().clean


def test_a_copying_helper_killed_mid_way_is_redone_and_the_checkout_is_whole(
    two_commits: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forked helper dies after some of its copies (killed, out of memory): the
    checkout redoes its half here, the files and the snapshot are right, status clean."""
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "50")
    repo = two_commits
    parent, real = os.getpid(), os.copy_file_range
    done = [0]

    def dies_in_the_helper(*args: int) -> int:
        if os.getpid() != parent:
            done[0] += 1
            if done[0] == 20:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", dies_in_the_helper)
    workspace.checkout(repo, "HEAD~1")
    by_path = {f"train/{r.label}/{r.id}": r.content for r in repo.records("train")}
    files = _pngs(repo)
    assert sorted(p.relative_to(repo.workdir).as_posix() for p in files) == sorted(by_path)
    for p in files:
        assert repo.store.read(by_path[p.relative_to(repo.workdir).as_posix()]) == p.read_bytes()
    snap = repo.snapshots.load("train")
    assert snap is not None and dict(snap.stats.items()) == _disk_stats(repo)
    assert repo.status().clean and maintenance.fsck(repo).ok
    assert not list(repo.workdir.rglob("*.datagit-tmp"))


def test_status_after_a_copy_checkout_hashes_only_the_racy_copies(two_commits: Repo) -> None:
    """The snapshot is dated after the copies: a cold scan hashes exactly the copies
    made within RACY_NS of that date (git's racily clean entries), none of the rest."""
    from datagit.core.layouts import Hasher, scan
    from datagit.core.snapshot import snapshot_rows

    repo = two_commits
    workspace.checkout(repo, "HEAD~1")
    cold = Repo.open(repo.workdir)
    snap = cold.snapshots.load("train")
    assert snap is not None
    racy = sum(st[1] >= snap.taken - RACY_NS for st in snap.stats.values())
    cfg = cold.config.datasets["train"]
    hasher = Hasher(cold.workdir, cold.statcache)
    hasher.known = snapshot_rows(cold.git, cfg, cold.snapshots)
    assert len(scan(cfg, hasher)) == 300
    assert hasher.hashed == racy and cold.status().clean
