"""Loose objects verified once are trusted by their stat; a write through a hard link is caught."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from datagit import Repo
from datagit.api import maintenance, workspace
from datagit.errors import CorruptObjectError
from datagit.progress import Reporter
from datagit.storage import links, loosetrust


def _pngs(repo: Repo) -> list[Path]:
    return sorted((repo.workdir / "train").rglob("*.png"))


@pytest.fixture
def linked(digits_repo: Repo) -> Repo:
    """HEAD~1: 300 digits; HEAD: none; core.link = hardlink; HEAD~1 checked out (linked)."""
    repo = digits_repo
    repo.commit("300 digits", all=True)
    for p in _pngs(repo):
        p.unlink()
    repo.commit("empty", all=True)
    repo.git.config_set("core.link", "hardlink")
    workspace.checkout(repo, "HEAD~1")
    return repo


def _write_through_link(path: Path, *, keep_mtime: bool) -> bytes:
    """Overwrite a hard-linked workspace file in place (same size), as `cp -p` would."""
    st = path.stat()
    old = path.read_bytes()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.write(bytes(b ^ 0xFF for b in old[:8]))
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.chmod(path, 0o444)
    return old


def test_a_stat_that_has_not_moved_is_trusted_and_our_own_links_keep_it_so(
    tmp_path: Path,
) -> None:
    import time

    trust = loosetrust.LooseTrust(tmp_path / "verified.marshal")
    obj = tmp_path / "obj"
    loosetrust.write_loose(obj, b"bytes")
    trust.vouch("k", os.stat(obj))
    assert trust.trusts("k", os.stat(obj))
    time.sleep(0.02)  # stands in for a long checkout: the link lands a tick later
    os.link(obj, tmp_path / "work")  # a checkout's own link moves the ctime
    assert not trust.trusts("k", os.stat(obj))
    time.sleep(0.02)
    trust.raise_bound(["k"], trust.ctime_now())
    assert trust.trusts("k", os.stat(obj))
    trust.save()
    again = loosetrust.LooseTrust(tmp_path / "verified.marshal")
    assert again.trusts("k", os.stat(obj))
    time.sleep(0.02)
    os.chmod(obj, 0o644)  # anything after the bound: never trusted
    assert not again.trusts("k", os.stat(obj))
    again.distrust("k")
    os.chmod(obj, 0o444)
    again.raise_bound(["k"], again.ctime_now())
    assert not again.trusts("k", os.stat(obj))


def test_linked_checkouts_keep_the_cache_and_the_store_whole(linked: Repo) -> None:
    repo = linked
    keys = {r.content for r in repo.records("train")}
    fresh = Repo.open(repo.workdir)  # the cache is on disk, not only in memory
    assert all(k in fresh.store.trust for k in keys)
    workspace.checkout(fresh, "main")  # unlinks: the objects' ctimes move, bounds follow
    workspace.checkout(fresh, "HEAD~1")
    again = Repo.open(repo.workdir)
    assert all(again.store.trust.bound(k) > 0 for k in keys)
    assert again.status().clean and maintenance.fsck(again).ok


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_a_write_through_a_hard_link_is_caught_by_status_fsck_and_checkout(
    linked: Repo, keep_mtime: bool
) -> None:
    repo = linked
    rec = next(iter(repo.records("train")))
    work = repo.workdir / "train" / str(rec.label) / rec.id
    original = _write_through_link(work, keep_mtime=keep_mtime)
    fresh = Repo.open(repo.workdir)
    loose = fresh.store.loose_name(rec.content)
    assert not fresh.store.trust.trusts(rec.content, os.stat(loose))  # the ctime moved
    if not keep_mtime:  # an ordinary write moves the mtime: status sees it
        changed = [c.id for d in fresh.status().datasets for c in d.unstaged]
        assert changed == [rec.id]
    report = maintenance.fsck(fresh)
    assert not report.ok and any(rec.content in p and loose in p for p in report.problems)
    # Checkout never links the damaged object: the packed copy replaces it, and the
    # edited workspace file keeps the user's bytes.
    workspace.checkout(fresh, "main", force=True)
    workspace.checkout(fresh, "HEAD~1")
    assert work.read_bytes() == original and os.stat(loose).st_nlink == 2
    assert maintenance.fsck(Repo.open(repo.workdir)).ok


def test_a_damaged_object_without_a_packed_copy_refuses_the_checkout(linked: Repo) -> None:
    repo = linked
    maintenance.gc(repo)  # the packed copies of linked objects are dropped
    rec = next(iter(repo.records("train")))
    work = repo.workdir / "train" / str(rec.label) / rec.id
    _write_through_link(work, keep_mtime=True)
    fresh = Repo.open(repo.workdir)
    workspace.checkout(fresh, "main", force=True)
    head, files = fresh.head(), _pngs(fresh)
    with pytest.raises(CorruptObjectError, match=rf"content {rec.content} is corrupt \(.*loose"):
        workspace.checkout(fresh, "HEAD~1")
    assert fresh.head() == head and _pngs(fresh) == files == []


def test_a_commit_never_trusts_an_object_changed_through_a_link(linked: Repo) -> None:
    """After gc the loose file is the only copy: adding the same bytes again repairs it."""
    repo = linked
    maintenance.gc(repo)
    rec = next(iter(repo.records("train")))
    work = repo.workdir / "train" / str(rec.label) / rec.id
    original = _write_through_link(work, keep_mtime=True)
    fresh = Repo.open(repo.workdir)
    (fresh.workdir / "train" / str(rec.label) / "again.png").write_bytes(original)
    fresh.commit("the same image again", all=True)
    assert Path(fresh.store.loose_name(rec.content)).read_bytes() == original
    fresh.store.check_loose(rec.content)


def test_a_damaged_cache_file_means_verify_again(linked: Repo) -> None:
    repo = linked
    path = repo.store.trust.path
    path.write_bytes(path.read_bytes()[:-5] + b"xxxxx")
    fresh = Repo.open(repo.workdir)
    assert len(fresh.store.trust) == 0
    workspace.checkout(fresh, "main")
    workspace.checkout(fresh, "HEAD~1")
    assert len(Repo.open(repo.workdir).store.trust) >= 300


def test_verify_many_names_a_damaged_object_from_the_parent(linked: Repo) -> None:
    repo = linked
    maintenance.gc(repo)
    keys = sorted({r.content for r in repo.records("train")})
    fresh = Repo.open(repo.workdir)
    loose = Path(fresh.store.loose_name(keys[0]))
    os.chmod(loose, 0o644)
    loose.write_bytes(b"not the bytes")
    with pytest.raises(CorruptObjectError, match=keys[0]):
        loosetrust.verify_many(fresh.store, keys)


def test_the_forked_halves_link_and_verify_like_one_process(
    linked: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past `parallel_min` items the verification and the links run on both cores."""
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "50")
    repo = linked
    workspace.checkout(repo, "main")
    workspace.checkout(repo, "HEAD~1")  # both halves verify by stat, then link
    files = _pngs(repo)
    assert len(files) == 300 and all(p.stat().st_nlink == 2 for p in files)
    fresh = Repo.open(repo.workdir)
    assert fresh.status().clean and maintenance.fsck(fresh).ok
    maintenance.gc(fresh)
    keys = sorted({r.content for r in fresh.records("train")})
    loose = Path(fresh.store.loose_name(keys[-1]))  # in the helper's half
    workspace.checkout(fresh, "main")
    os.chmod(loose, 0o644)
    loose.write_bytes(b"not the bytes")
    with pytest.raises(CorruptObjectError, match=keys[-1]):
        workspace.checkout(Repo.open(repo.workdir), "HEAD~1")
    assert _pngs(fresh) == []


def test_an_older_or_inconsistent_cache_file_means_verify_again(linked: Repo) -> None:
    """The cache is flat arrays behind a checksum: a file of the older marshalled-dict
    format, or one whose checksum holds but whose counts disagree with its addresses
    or arrays, is ignored (every object read again), never misread."""
    import marshal
    import struct

    import xxhash

    repo = linked
    path = repo.store.trust.path
    keys = {r.content for r in repo.records("train")}
    old = marshal.dumps(({k: (1, 2, 3, 4) for k in keys}, {}))
    path.write_bytes(b"DGLT3\0\0\n" + xxhash.xxh3_64_digest(old) + old)
    assert len(Repo.open(repo.workdir).store.trust) == 0
    names = "\0".join(sorted(keys)).encode()
    for n, body in [
        (len(keys), names + b"\0" * 40),  # arrays for one object, addresses for all
        (1, names + b"\0" * 40),  # a count that the addresses do not bear out
    ]:
        rest = struct.pack("<QQ", n, len(names)) + body
        path.write_bytes(loosetrust._MAGIC + xxhash.xxh3_64_digest(rest) + rest)
        assert len(Repo.open(repo.workdir).store.trust) == 0
    fresh = Repo.open(repo.workdir)
    workspace.checkout(fresh, "main")
    workspace.checkout(fresh, "HEAD~1")  # re-verified, then trusted again
    again = Repo.open(repo.workdir)
    assert all(k in again.store.trust and again.store.trust.bound(k) > 0 for k in keys)
    assert again.status().clean and maintenance.fsck(again).ok


def test_the_snapshot_takes_each_link_stat_from_the_cache(linked: Repo) -> None:
    """A linked checkout stats no workspace file: the snapshot's stats come from the
    verified objects (`LinkedStats.packed`) and must be exactly what a stat says."""
    repo = linked
    snap = repo.snapshots.load("train")
    assert snap is not None
    files = _pngs(repo)
    assert len(snap.stats) == len(files) == 300
    for p in files:
        st = p.stat()
        rel = p.relative_to(repo.workdir).as_posix()
        assert snap.stats[rel] == (st.st_size, st.st_mtime_ns, st.st_ino)


@pytest.mark.parametrize("helper", ["50", "100000"])
def test_links_by_folder_handle_take_the_careful_path_for_what_is_in_the_way(
    linked: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, helper: str
) -> None:
    """`hardlink_many` links by short names from folders it holds open; a stale file in
    the way is replaced, and a folder it cannot open (a file where the folder should be)
    still fails with the error naming it, on one core or two."""
    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", helper)
    store = linked.store
    keys = sorted({r.content for r in linked.records("train")})
    root = tmp_path / "ws"
    (root / "a").mkdir(parents=True)
    (root / "a" / "0.png").write_bytes(b"stale")  # in the way: replaced by the link
    groups = {"a": ([f"{i}.png" for i in range(200)], keys[:200]), "b": (["x.png"], keys[:1])}
    made = links.hardlink_many(
        store, groups, f"{root}/", Reporter(None, "checkout"), lambda ks: "".join(ks).encode()
    )  # each folder's keys packed by whichever core linked it, back in file order
    assert made == {"a": "".join(keys[:200]).encode(), "b": keys[0].encode()}
    for i in range(200):
        got = os.stat(root / "a" / f"{i}.png")
        assert got.st_ino == os.stat(store.loose_name(keys[i])).st_ino
    assert os.stat(root / "b" / "x.png").st_ino == os.stat(store.loose_name(keys[0])).st_ino
    (root / "c").write_bytes(b"a file, not a folder")
    with pytest.raises(OSError, match=re.escape(str(root / "c"))):
        links.hardlink_many(store, {"c": (["y.png"], keys[:1])}, f"{root}/", Reporter(None, "x"))
    assert (root / "c").read_bytes() == b"a file, not a folder"
