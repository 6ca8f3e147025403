"""The fast path for image folders: compare stats to a snapshot, touch only what moved.

A snapshot records the (size, mtime, inode) of every file at a moment when the
workspace matched a known dataset tree. If the stage still holds that tree, the
files whose stat differs are the only possible changes, so `status` and `add`
cost a directory listing plus work in proportion to the change.
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from datagit.core.changes import Change, classify
from datagit.core.checkout import Groups
from datagit.core.config import DatasetConfig
from datagit.core.folderscan import Listing, scan_changes, start_listing
from datagit.core.layouts import (
    FileEntry,
    Hasher,
    entry_for,
    file_record,
    list_imagefolder,
    narrow_changes,
    split_path,
)
from datagit.core.manifest import DatasetTree
from datagit.core.records import SAME_CONTENT, Record
from datagit.core.shardsplice import apply_changes
from datagit.errors import DatagitError
from datagit.storage import fsmonitor, stattable
from datagit.storage.git import GitStore
from datagit.storage.loosetrust import LinkedStats
from datagit.storage.parallel import can_fork
from datagit.storage.statcache import RACY_NS, Snapshot, Snapshots, StatCache
from datagit.storage.stattable import StatTable


def _id_of(cfg: DatasetConfig, path: str) -> str:
    """``train/cat/a/1.png`` → ``a/1.png``: the id is the path under the class folder
    (``train/1.png``, an unlabelled file, → ``1.png``)."""
    return split_path(cfg, path)[1]


class Ahead(NamedTuple):
    """A scan's start: the snapshot it compares with, when it began, the monitor's
    answer, and the listing already under way in a second process (None: not begun)."""

    snap: Snapshot
    started: int
    answer: fsmonitor.Answer | None
    listing: Listing | None


def look_ahead(
    cfg: DatasetConfig, workdir: Path, snapshots: Snapshots, tree: str, *, fork: bool = False
) -> Ahead | None:
    """Start comparing the workspace with the snapshot of ``tree``; None without a
    usable snapshot. With ``fork``, a listing the monitor cannot spare begins at
    once in a forked child, so the caller's other work (a table) overlaps it."""
    snap = snapshots.load(cfg.name)
    if snap is None or snap[0] != tree:
        return None
    started = time.time_ns()
    answer = snapshots.ask(snap.token)
    listing = None
    if fork and (answer is None or answer.paths is None) and can_fork():
        listing = start_listing(cfg, workdir, snap.stats, diff=True)
    return Ahead(snap, started, answer, listing)


def listing_delta(
    cfg: DatasetConfig,
    hasher: Hasher,
    snapshots: Snapshots,
    tree: str,
    ahead: Ahead | None = None,
) -> Delta | None:
    """What changed in the workspace since the snapshot of ``tree``; None when there
    is no usable snapshot for ``tree``. With a filesystem monitor running, only the
    paths it names are looked at. ``ahead``: `look_ahead` for the same tree."""
    ahead = ahead or look_ahead(cfg, hasher.workdir, snapshots, tree)
    if ahead is None:
        return None
    (_, taken, stats, _), started, answer, listing = ahead
    settled = taken - RACY_NS
    narrowed = None
    if answer is not None and answer.paths is not None:
        narrowed = narrow_changes(cfg, hasher.workdir, stats, settled, answer.paths)
    rescanned = narrowed is None and answer is not None
    reordered = False
    if narrowed is None:
        snapshots.full_scanned += len(stats)
        scanned = scan_changes(cfg, hasher.workdir, stats, settled, listing)
        changed, gone, now, reordered = scanned
    else:
        changed, gone = narrowed
        now = stats  # the snapshot's own table, brought up to date below
    # A file moved to another class folder keeps size, mtime and inode: if it was
    # last written before the snapshot, its bytes are the ones the old record names,
    # so a re-label reads and hashes nothing.
    moved_from = {stats[p]: p for p in gone}
    upserts = {}
    for path, st in changed.items():
        src = moved_from.get(st)
        if src is not None and st[1] < settled and _id_of(cfg, src) == _id_of(cfg, path):
            label, example_id = split_path(cfg, path)
            upserts[example_id] = Record(example_id, label, SAME_CONTENT, st[0])
            continue
        rec = file_record(path, entry_for(cfg, hasher.workdir, path), hasher)
        upserts[rec.id] = rec
    deletes = [i for i in (_id_of(cfg, p) for p in gone) if i not in upserts]
    if narrowed is not None:
        for p in gone:
            del now[p]
        now.update(changed)
    token_now = answer.token if answer else None
    return Delta(now, upserts, deletes, started, token_now, rescanned or reordered)


class Delta(NamedTuple):
    stats: StatTable  # path → stat now
    upserts: dict[str, Record]  # new or changed records by id
    deletes: list[str]  # ids gone
    started: int  # when the scan started (the new snapshot's time)
    token: str | None  # the monitor's token from before the scan
    # A monitor runs but could not narrow this scan (worth a new token), or folders
    # listed in a new order: worth saving even when nothing changed.
    rescanned: bool


def stage_fast(
    git: GitStore,
    cfg: DatasetConfig,
    hasher: Hasher,
    snapshots: Snapshots,
    base: str,
    ahead: Ahead | None = None,
) -> tuple[str, list[Change]] | None:
    """Stage an image folder against ``base`` by its stat delta; None without a snapshot."""
    delta = listing_delta(cfg, hasher, snapshots, base, ahead)
    if delta is None:
        return None
    now, upserts, deletes, started, token, _ = delta
    tree, pairs = apply_changes(git, base, upserts, deletes, keep_annotator=True)
    snapshots.save(cfg.name, tree, started, now, token)
    return tree, _changes(pairs)


def status_fast(
    git: GitStore, cfg: DatasetConfig, hasher: Hasher, snapshots: Snapshots, base: str
) -> list[Change] | None:
    """Unstaged changes of an image folder against stage tree ``base``; None without a snapshot."""
    delta = listing_delta(cfg, hasher, snapshots, base)
    if delta is None:
        return None
    now, upserts, deletes, started, token, rescanned = delta
    old = DatasetTree(git, base).get_many([*upserts, *deletes])
    pairs: list[tuple[Record | None, Record | None]] = [
        (old.get(i), _fill(r, old.get(i))) for i, r in upserts.items()
    ]
    pairs += [(old.get(i), None) for i in deletes]
    changes = _changes(pairs)
    # Only racy entries, or a full scan a monitor could narrow next time: refresh the
    # snapshot so they stop being re-hashed (or re-stat'ed).
    if not changes and (upserts or rescanned):
        snapshots.save(cfg.name, base, started, now, token)
    return changes


def snapshot_rows(
    git: GitStore, cfg: DatasetConfig, snapshots: Snapshots
) -> dict[str, tuple[int, int, int, str, int]]:
    """Stat-cache rows (size, mtime, inode, address, time) that a snapshot vouches for.

    A snapshot says each path had that stat when the workspace matched its
    tree, so a file whose stat has not moved since (and was not racy then) holds
    the bytes its record in that tree names: what the stat cache would say,
    without the cache having to hold 100,000 rows of its own.
    """
    snap = snapshots.load(cfg.name)
    if snap is None:
        return {}
    try:
        records = DatasetTree(git, snap.tree).by_id()
    except DatagitError:
        return {}
    rows = {}
    for path, st in snap.stats.items():
        label, example_id = split_path(cfg, path)
        rec = records.get(example_id)
        if rec is not None and rec.label == label:
            rows[path] = (*st, rec.content, snap.taken)
    return rows


def retire(git: GitStore, cfg: DatasetConfig, snapshots: Snapshots, cache: StatCache) -> None:
    """Drop a dataset's snapshot, first handing what it vouches for to the stat cache.

    A bulk `add` writes no stat-cache rows (its snapshot holds the same facts),
    so a snapshot that stops describing the stage must not take them with it:
    the next full scan would otherwise re-read every file.
    """
    for path, row in snapshot_rows(git, cfg, snapshots).items():
        cache.record_stat(path, row[:3], row[3], row[4])
    snapshots.drop(cfg.name)


def save_listing(
    cfg: DatasetConfig,
    hasher: Hasher,
    snapshots: Snapshots,
    tree: str,
    listing: dict[str, FileEntry] | None = None,
    started: int | None = None,
) -> None:
    """Record that the workspace now matches ``tree`` (after a full add or a checkout)."""
    token = None
    if started is None or listing is None:
        token = snapshots.token_now()
        started = time.time_ns()
        listing = list_imagefolder(cfg, hasher.workdir)
    snapshots.save(cfg.name, tree, started, {p: e.stat for p, e in listing.items()}, token)


def follow_plan(
    cfg: DatasetConfig,
    snapshots: Snapshots,
    old_tree: str,
    new_tree: str,
    moves: dict[str, tuple[str, str]],
    groups: Groups,
    deletes: set[str],
    workdir: str,
    by_key: LinkedStats | None = None,
    copied: Mapping[str, bytes] | None = None,
    copied_at: int | None = None,
) -> bool:
    """Carry the snapshot of ``old_tree`` over a checkout to ``new_tree`` without re-listing.

    A rename keeps size, mtime and inode, so moved entries keep their stat;
    written files are stat'ed, unless ``by_key`` holds the (size, mtime_ns, inode)
    of each written address (a hard link's stat is its object's, known before the
    link is made), or ``copied`` holds a written folder's stats (`checkout.apply`'s
    answer for copies: three uint64 per file, in ``groups``' order); ``groups``
    holds the writes by folder (`checkout.write_groups`).

    ``copied_at`` (a time taken after the copies were written and stat'ed) becomes
    the snapshot's time, so that only copies made in its last `RACY_NS` are racy
    and the next status hashes those, not every copy (as git's index, written
    after the checkout's files). It is taken only when no entry carried over from
    the old snapshot was racy under the old time, which would vouch for it.
    Returns False (and drops the snapshot) when the snapshot did not describe
    ``old_tree``.
    """
    snap = snapshots.load(cfg.name)
    if snap is None or snap[0] != old_tree:
        snapshots.drop(cfg.name)
        return False
    _, taken, stats, token = snap  # the old token: the next scan re-checks our renames
    prefix = cfg.path + "/"
    for old, (new, _key) in moves.items():
        if old.startswith(prefix):
            kept = stats.pop(old, None)
            if kept is not None:
                stats[new] = kept
    for path in deletes:
        if path.startswith(prefix):
            stats.pop(path, None)
    if copied_at is not None and next(stats.racy(taken - RACY_NS), None) is None:
        taken = copied_at  # what it carries was settled already; the copies are older
    _add_written(stats, prefix, groups, workdir + os.sep, by_key, copied or {})
    snapshots.save(cfg.name, new_tree, taken, stats, token)
    return True


def _add_written(
    stats: StatTable,
    prefix: str,
    groups: Groups,
    root: str,
    by_key: LinkedStats | None,
    copied: Mapping[str, bytes],
) -> None:
    """Enter the stats of the files a checkout wrote under ``prefix``, folder by folder:
    a folder the snapshot did not hold (a whole dataset checked out) is packed straight
    from its names and the links' (or copies') stats as bytes, without a per-file entry."""
    for folder, (names, keys) in groups.items():
        if not (folder + "/").startswith(prefix):
            continue
        raw = copied.get(folder)
        if raw is not None and len(raw) == 24 * len(names):
            if not stats.has_folder(folder) and len(set(names)) == len(names):
                stats.packed[folder] = stattable.packed_from("\0".join(names), raw)
                continue
            nums = array("Q", raw)
            inner = folder + "/"
            for i, name in enumerate(names):
                stats[inner + name] = (nums[3 * i], nums[3 * i + 1], nums[3 * i + 2])
            continue
        if by_key is not None and not stats.has_folder(folder) and len(set(names)) == len(names):
            raw = by_key.folders.get(folder)  # packed as the links were made, if they were
            if raw is None or len(raw) != 24 * len(keys):
                raw = by_key.packed(keys)
            stats.packed[folder] = stattable.packed_from("\0".join(names), raw)
            continue
        inner = folder + "/"
        for name, key in zip(names, keys, strict=True):
            if by_key is not None:
                stats[inner + name] = by_key[key]
            else:
                st = os.stat(root + inner + name)
                stats[inner + name] = (st.st_size, st.st_mtime_ns, st.st_ino)


def _fill(new: Record, old: Record | None) -> Record:
    if new.content == SAME_CONTENT and old is not None:
        return Record(new.id, new.label, old.content, new.size, source=new.source)
    return new


def _changes(pairs: list[tuple[Record | None, Record | None]]) -> list[Change]:
    out = []
    for old, new in pairs:
        kind = classify(old, new)
        if kind:
            out.append(Change((old or new).id, kind, old, new))  # type: ignore[union-attr]
    return sorted(out, key=lambda c: c.id)
