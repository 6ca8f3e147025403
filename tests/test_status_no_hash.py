"""A no-change `status` hashes nothing: the stat cache (size, mtime, inode) answers for every file.

Proved two ways: the `Hasher.hashed` counter stays at 0, and — without looking inside —
bytes swapped under an unchanged stat go unnoticed, which they could not if a file were read.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.core.layouts import Hasher, scan
from datagit.core.snapshot import snapshot_rows
from datagit.storage.statcache import RACY_NS


def age_files(root: Path) -> None:
    """Move every mtime out of the racy window, as a real workspace's files are."""
    past = time.time_ns() - 10 * RACY_NS
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, ns=(past, past))


def committed(repo: Repo) -> Repo:
    age_files(repo.workdir / "train")
    repo.commit("digits", all=True)
    return repo


def test_scan_after_commit_hashes_nothing(digits_repo: Repo) -> None:
    repo = committed(digits_repo)
    cold = Repo.open(repo.workdir)  # a new process: only what is on disk helps
    cfg = cold.config.datasets["train"]
    hasher = Hasher(cold.workdir, cold.statcache)
    hasher.known = snapshot_rows(cold.git, cfg, cold.snapshots)  # what Repo.scan does
    recs = scan(cfg, hasher)
    assert len(recs) == 300 and hasher.hashed == 0


def test_a_retired_snapshot_hands_its_facts_to_the_stat_cache(digits_repo: Repo) -> None:
    """A bulk add writes no stat-cache rows (its snapshot holds them); when a partial
    add makes the snapshot stale, the rows move to the stat cache, so nothing is re-read."""
    repo = committed(digits_repo)
    (repo.workdir / "train/3/new.png").write_bytes(digits_pngs(301)[300][0])
    past = time.time_ns() - 10 * RACY_NS  # not racy: the cache may trust it
    os.utime(repo.workdir / "train/3/new.png", ns=(past, past))
    # A path add: the snapshot no longer describes the stage.
    repo.add([str(repo.workdir / "train/3")])
    cold = Repo.open(repo.workdir)
    assert cold.snapshots.load("train") is None
    hasher = Hasher(cold.workdir, cold.statcache)
    recs = scan(cold.config.datasets["train"], hasher)
    assert len(recs) == 301 and hasher.hashed == 0
    cold.add(None)
    (ds,) = Repo.open(repo.workdir).status().datasets
    assert not ds.unstaged and [c.id for c in ds.staged] == ["new.png"]


def test_scan_hashes_exactly_the_changed_files(digits_repo: Repo) -> None:
    repo = committed(digits_repo)
    write_tree(repo.workdir, {"train/3/new.png": digits_pngs(301)[300][0]})
    (repo.workdir / "train/0/img_0000.png").write_bytes(digits_pngs(2)[1][0])
    cold = Repo.open(repo.workdir)
    hasher = Hasher(repo.workdir, cold.statcache)
    hasher.known = snapshot_rows(cold.git, repo.config.datasets["train"], cold.snapshots)
    scan(repo.config.datasets["train"], hasher)
    assert hasher.hashed == 2


def test_no_change_status_reads_no_file(digits_repo: Repo) -> None:
    repo = committed(digits_repo)
    assert Repo.open(repo.workdir).status().clean
    # Same size, same inode, same mtime, different bytes: only a read could see it.
    victim = repo.workdir / "train/0/img_0000.png"
    st = victim.stat()
    data = bytearray(victim.read_bytes())
    data[-5] ^= 0xFF
    with open(victim, "r+b") as f:
        f.write(data)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert victim.stat().st_ino == st.st_ino and victim.stat().st_size == st.st_size
    assert Repo.open(repo.workdir).status().clean
    # A touch (new mtime) makes it re-hashed and seen.
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    (ds,) = Repo.open(repo.workdir).status().datasets
    assert [(c.id, c.kind) for c in ds.unstaged] == [("img_0000.png", "modified")]


def test_racily_clean_files_are_rehashed(tmp_repo: Repo) -> None:
    write_tree(tmp_repo.workdir, {"train/1/a.png": digits_pngs(1)[0][0]})
    tmp_repo.commit("fresh file", all=True)  # mtime ≈ hash time: not trusted later
    hasher = Hasher(tmp_repo.workdir, Repo.open(tmp_repo.workdir).statcache)
    scan(tmp_repo.config.datasets["train"], hasher)
    assert hasher.hashed == 1


def test_a_move_between_class_folders_reads_nothing(digits_repo: Repo) -> None:
    """A re-label by `mv` keeps size, mtime and inode: status and commit take the bytes
    from the old record. Bytes swapped under the kept stat prove no file was read."""
    repo = committed(digits_repo)
    before = repo.record("train", "img_0000.png")
    src = repo.workdir / "train/0/img_0000.png"
    st = src.stat()
    data = bytearray(src.read_bytes())
    data[-5] ^= 0xFF
    with open(src, "r+b") as f:
        f.write(data)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    (repo.workdir / "train/7").mkdir(exist_ok=True)
    src.rename(repo.workdir / "train/7/img_0000.png")
    (ds,) = Repo.open(repo.workdir).status().datasets
    assert [(c.id, c.kind, c.new.label) for c in ds.unstaged] == [
        ("img_0000.png", "relabeled", "7")
    ]
    info = Repo.open(repo.workdir).commit("move", all=True)
    after = repo.record("train", "img_0000.png", info.id)
    assert (after.label, after.content) == ("7", before.content)


def test_forked_scans_agree_with_one_process(digits_repo: Repo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With the threshold lowered, status and the re-label commit stat on both cores
    (and a full add reads on both): the answers are the single-process answers."""
    from datagit.storage import parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN", 10)
    repo = committed(digits_repo)
    assert Repo.open(repo.workdir).status().clean
    train = repo.workdir / "train"
    moved = sorted(p for p in train.rglob("*.png") if p.parent.name == "3")[:7]
    for p in moved:
        (train / "8").mkdir(exist_ok=True)
        os.replace(p, train / "8" / p.name)
    (ds,) = Repo.open(repo.workdir).status().datasets
    assert sorted(c.id for c in ds.unstaged) == sorted(p.name for p in moved)
    assert {c.kind for c in ds.unstaged} == {"relabeled"}
    info = Repo.open(repo.workdir).commit("relabel", all=True)
    recs = {r.id: r for r in Repo.open(repo.workdir).records("train", info.id)}
    assert len(recs) == 300 and all(recs[p.name].label == "8" for p in moved)
    assert Repo.open(repo.workdir).status().clean


def test_a_copy_into_another_class_folder_is_a_duplicate_id_on_the_fast_path(
    digits_repo: Repo,
) -> None:
    """The snapshot scan counts ids only when a path is new; a copy is new, so it is caught."""
    import shutil

    import pytest

    from datagit.errors import InvalidInputError

    repo = committed(digits_repo)
    shutil.copy(repo.workdir / "train/0/img_0000.png", repo.workdir / "train/5/img_0000.png")
    with pytest.raises(InvalidInputError, match="given by both"):
        Repo.open(repo.workdir).status()
