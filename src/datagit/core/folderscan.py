"""An image folder compared with its snapshot, folder by folder, in bulk.

Each folder is listed once (``scandir`` on a directory descriptor) and each
regular file ``lstat``'ed by name relative to it; the names and stats are packed
the way the snapshot keeps them (`storage/stattable.py`), so a folder nobody
touched compares equal as two strings and two byte strings: a status of
100,000 unchanged files builds no per-file object beyond the stat call itself.
Only a folder that differs is decoded and compared entry by entry.

Every layout rule `layouts.list_imagefolder` enforces holds here too: hidden
names and ignored paths are skipped, links are checked, class folders nested in
class folders and special files are refused, and new ids are validated and
checked for a twin in another class folder.
"""

from __future__ import annotations

import errno
import os
from array import array
from collections.abc import Callable, Container
from pathlib import Path
from typing import NamedTuple

from datagit.core import ignore
from datagit.core.config import DatasetConfig
from datagit.core.layouts import (
    _check_link,
    _class_folders,
    _refuse_special,
    _stat_path,
    list_imagefolder,
    split_path,
)
from datagit.core.records import validate_id
from datagit.errors import InvalidInputError
from datagit.storage import parallel
from datagit.storage.stattable import Packed, Stat, StatTable, packed_from, unpack

# One listed folder: (workspace path, names joined by NUL, packed stats) — both None
# when they equal the snapshot's — or, for a folder with a stat a uint64 cannot hold,
# (path, names joined, tuple of stats).
Listed = tuple[str, str | None, bytes | tuple[Stat, ...] | None]


# How a listed folder differs from the snapshot's: (name, stat) of entries new or
# changed, names new, names gone, and whether its entries are the same but listed in
# another order.
Diff = tuple[list[tuple[str, Stat]], list[str], list[str], bool]


class FolderScan(NamedTuple):
    changed: dict[str, Stat]  # path → stat of files new, changed or racy
    gone: list[str]  # paths in the snapshot that are no more
    now: StatTable  # the workspace as listed (unchanged folders keep the snapshot's bytes)
    reordered: bool  # a folder listed in another order, nothing else: worth re-saving


class _Job(NamedTuple):
    path: str  # workspace path of a top-level folder (the dataset root or a class folder)
    abspath: str
    loose: bool  # the dataset root: its files are unlabelled examples, its folders skipped
    size: int  # files the snapshot has under it (to balance the two halves)


def scan_changes(
    cfg: DatasetConfig,
    workdir: Path,
    table: StatTable,
    limit: int,
    listing: Listing | None = None,
) -> FolderScan:
    """What differs between the workspace and ``table``; entries with an mtime at or
    past ``limit`` are racy and count as changed. ``listing``: one `start_listing`
    began earlier for this table."""
    listing = listing or start_listing(cfg, workdir, table, diff=True)
    listed, labels = listing.finish()
    return _compare(cfg, workdir, table, listed, limit, labels, listing.diffs)


def list_folders(
    cfg: DatasetConfig, workdir: Path, table: StatTable, fork: bool | None = None
) -> tuple[list[Listed], list[str]]:
    """Every folder of an image folder, listed, stat'ed and packed (a folder equal to
    ``table``'s comes back as ``(path, None, None)``), and the class folders.

    ``fork`` (default: when ``table`` is big) shares the listing with a second process.
    """
    return start_listing(cfg, workdir, table, fork).finish()


class Listing:
    """A listing under way: a forked child takes folders as soon as it starts, this
    process joins in at `finish` (`parallel.Shared`). Started before other work (a
    commit's table), it has that work overlap the listing on the second core.
    `cancel` stops it if that work fails first."""

    def __init__(
        self, shared: parallel.Shared[_Job, list[tuple[Listed, Diff | None]]], labels: list[str]
    ) -> None:
        self._shared, self._labels = shared, labels
        self.diffs: dict[str, Diff] = {}  # by folder: those the jobs compared (``diff``)

    def finish(self) -> tuple[list[Listed], list[str]]:
        listed = []
        for part in self._shared.finish():
            for item, diff in part:
                listed.append(item)
                if diff is not None:
                    self.diffs[item[0]] = diff
        return listed, self._labels

    def cancel(self) -> None:
        self._shared.cancel()


def start_listing(
    cfg: DatasetConfig,
    workdir: Path,
    table: StatTable,
    fork: bool | None = None,
    *,
    diff: bool = False,
) -> Listing:
    """Begin `list_folders`'s work; errors in it surface from `Listing.finish`. With
    ``diff``, each folder that differs from ``table`` is also compared with it where
    it was listed (`Listing.diffs`): on both cores, not after the listing on one."""
    root, labels, real_workdir = _class_folders(cfg, workdir)
    ignored = ignore.load(real_workdir)
    label_set = frozenset(labels)
    sizes: dict[str, int] = {}
    for folder in table.folders():
        top = folder if folder == cfg.path else "/".join(folder.split("/", 2)[:2])
        sizes[top] = sizes.get(top, 0) + _count(table, folder)
    jobs = []
    if labels or os.path.isdir(root):
        jobs.append(_Job(cfg.path, str(root), True, sizes.get(cfg.path, 0)))
    for label in sorted(labels):
        path = f"{cfg.path}/{label}"
        jobs.append(_Job(path, str(root / label), False, sizes.get(path, 0)))
    # Biggest first, so that whichever process takes the last folder is not left
    # with a big one alone. Results come back in this order, whoever ran them.
    jobs.sort(key=lambda j: (-j.size, j.path))

    def run(job: _Job) -> list[tuple[Listed, Diff | None]]:
        listed = _list_tree(job, table, ignored, label_set, real_workdir, cfg)
        return [(item, _diff(item, table) if diff else None) for item in listed]

    if fork is None:
        fork = len(table) >= parallel.parallel_min()
    shared = parallel.Shared.start(jobs, run) if fork else parallel.Shared(jobs, run)
    return Listing(shared, labels)


def _count(table: StatTable, folder: str) -> int:
    packed = table.packed.get(folder)
    return len(packed[1]) // 24 if packed is not None else len(table.open.get(folder, ()))


def _list_tree(
    job: _Job,
    table: StatTable,
    ignored: ignore.Ignore | None,
    label_set: frozenset[str],
    real_workdir: str,
    cfg: DatasetConfig,
) -> list[Listed]:
    """Every folder under a top-level job, listed and compared with the snapshot's bytes."""
    out: list[Listed] = []
    stack = [(job.path, job.abspath)]
    while stack:
        path, abspath = stack.pop()
        names: list[str] = []
        nums: array | None = array("Q")  # type: ignore[type-arg]
        stats: list[Stat] = []
        extend: Callable[[Stat], object] = nums.extend  # type: ignore[union-attr]
        others = _list_files(path, abspath, ignored, names, extend)
        if others is None:  # a stat a uint64 cannot hold: keep this folder as tuples
            nums, extend = None, stats.append
            others = _list_files(path, abspath, ignored, names, extend)
            assert others is not None
        for name in others:
            sub = _other(job, path, abspath, name, label_set, real_workdir, cfg)
            if sub is True:
                stack.append((f"{path}/{name}", f"{abspath}/{name}"))
                continue
            if sub is None or sub is False:
                continue
            try:
                extend(sub)
            except OverflowError:
                it = iter(nums or ())
                stats = [*zip(it, it, it, strict=True), sub]
                nums, extend = None, stats.append
            names.append(name)
        out.append(_listed(path, names, nums if nums is not None else stats, table))
    return out


def _other(
    job: _Job,
    path: str,
    abspath: str,
    name: str,
    label_set: frozenset[str],
    real_workdir: str,
    cfg: DatasetConfig,
) -> Stat | bool | None:
    """What a folder's entry other than a regular file is: True for a folder to list,
    None for one to skip (a class folder, seen from the dataset root), or the stat of
    a linked file; links leaving the workspace and special files are refused."""
    rel, full = f"{path}/{name}", f"{abspath}/{name}"
    loose = job.loose and path == job.path
    if loose and _isdir(full, rel):
        return None  # a class folder: its own job (its link was checked with the folders)
    if os.path.islink(full):
        _check_link(full, rel, real_workdir)
    if not loose and _isdir(full, rel):
        if name in label_set:
            label = path[len(cfg.path) + 1 :].split("/", 1)[0]
            raise InvalidInputError(
                f"{rel}/ is a class folder nested inside class folder {label}/",
                hint=f"move its files to {cfg.path}/{name}/ or rename the folder",
            )
        return True
    if not os.path.isfile(full):
        _refuse_special(full, rel)
    st = _stat_path(full, rel)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _isdir(full: str, rel: str) -> bool:
    try:
        os.stat(full)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link that leads back to itself
            raise InvalidInputError(
                f"{rel} is a symlink that cannot be resolved ({exc.strerror})",
                hint="fix or remove the link",
            ) from None
        return False
    return os.path.isdir(full)


def _listed(path: str, names: list[str], stats: object, table: StatTable) -> Listed:
    joined = "\0".join(names)
    if isinstance(stats, array):
        raw = stats.tobytes()
        old = table.packed.get(path)
        if old is not None and old[0] == joined and old[1] == raw:
            return path, None, None
        return path, joined, raw
    return path, joined, tuple(stats)  # type: ignore[arg-type]


def _diff(item: Listed, table: StatTable) -> Diff | None:
    """How a listed folder differs from ``table``'s; None when it does not."""
    path, joined, got = item
    if joined is None:
        return None
    entries = _entries(joined, got)
    before = table.folder(path) or {}
    # Set operations on the dicts' views run in C: a folder of 10,000 files with
    # 100 moved in costs a millisecond, not a Python loop over every entry.
    moved = list(entries.items() - before.items())
    lost = list(before.keys() - entries.keys())
    added = list(entries.keys() - before.keys())
    other_order = not (moved or lost) and (isinstance(got, bytes) or list(entries) != list(before))
    return moved, added, lost, other_order


def _entries(joined: str, got: bytes | tuple[Stat, ...] | None) -> dict[str, Stat]:
    if isinstance(got, bytes):
        return unpack(packed_from(joined, got))
    return dict(zip(joined.split("\0") if joined else [], got or (), strict=True))


def _compare(
    cfg: DatasetConfig,
    workdir: Path,
    table: StatTable,
    listed: list[Listed],
    limit: int,
    labels: list[str],
    diffs: dict[str, Diff] | None = None,
) -> FolderScan:
    """The listing against the snapshot: unchanged folders by their bytes, the rest
    entry by entry (``diffs``: folders the listing compared already)."""
    now = StatTable()
    changed: dict[str, Stat] = {}
    gone: list[str] = []
    new: list[str] = []
    reordered = False
    seen = set()
    for item in listed:
        path, joined, got = item
        seen.add(path)
        base = path + "/"
        if joined is None:
            old = table.packed[path]
            now.packed[path] = old
            if old[2] >= limit:  # a racy entry: trusted only once hashed again
                changed.update((base + n, st) for n, st in unpack(old).items() if st[1] >= limit)
            continue
        if isinstance(got, bytes):
            now.packed[path] = packed_from(joined, got)
        else:
            now.open[path] = _entries(joined, got)
        found = (diffs or {}).get(path) or _diff(item, table)
        assert found is not None
        moved, added, lost, other_order = found
        changed.update((base + n, tuple(st)) for n, st in moved)  # type: ignore[misc]
        new += [base + n for n in added]
        gone += [base + n for n in lost]
        reordered = reordered or other_order
        if now.packed.get(path, _NO_RACE)[2] >= limit:
            entries = now.open.get(path) or unpack(now.packed[path])
            changed.update((base + n, st) for n, st in entries.items() if st[1] >= limit)
    for folder in table.folders():
        if folder not in seen:
            gone += [f"{folder}/{n}" for n in table.folder(folder) or ()]
    if new:
        check_new(cfg, workdir, now, {}, new, labels)
    return FolderScan(changed, gone, now, reordered)


_NO_RACE: Packed = ("", b"", 1 << 63)  # a folder kept as a dict: look at every entry


def check_new(
    cfg: DatasetConfig,
    workdir: Path,
    now: StatTable,
    decoded: dict[str, dict[str, Stat]],
    new: list[str],
    labels: list[str],
) -> None:
    """Validate the ids of paths the snapshot did not have, and refuse an id that a
    file in another class folder (or loose in the dataset root) also gives."""
    names: dict[str, Container[str]] = dict(decoded)

    def has(folder: str, name: str) -> bool:
        got = names.get(folder)
        if got is None:
            packed = now.packed.get(folder)
            if packed is not None:
                got = set(packed[0].split("\0")) if packed[0] else set()
            else:
                got = set(now.open.get(folder, ()))
            names[folder] = got
        return name in got

    for path in new:
        label, example_id = split_path(cfg, path)
        validate_id(example_id, path)
        sub, _, name = example_id.rpartition("/")
        for other in [*labels, None]:
            if other == label or (other is None and sub):
                continue
            folder = cfg.path if other is None else f"{cfg.path}/{other}"
            folder += f"/{sub}" if sub and other is not None else ""
            if has(folder, name):
                list_imagefolder(cfg, workdir)  # raises the duplicate-id error naming both


def _list_files(
    path: str,
    abspath: str,
    ignored: ignore.Ignore | None,
    names: list[str],
    extend: Callable[[Stat], object],
) -> list[str] | None:
    """List one folder: regular files into ``names``/``extend``; returns the names of
    everything else (folders, links, special files), or None on a uint64 overflow."""
    base = path + "/"
    others = []
    add = names.append
    try:
        fd = os.open(abspath, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {path}/: {exc.strerror or exc}",
            hint="fix the folder's permissions or remove it from the dataset",
        ) from None
    stat = os.stat
    try:
        with os.scandir(fd) as it:
            for entry in it:
                name = entry.name
                if name[0] == ".":
                    continue
                if ignored is not None and ignored(base + name, entry.is_dir()):
                    continue
                if entry.is_file(follow_symlinks=False):
                    try:
                        st = stat(name, dir_fd=fd, follow_symlinks=False)
                    except OSError:
                        st = _stat_path(f"{abspath}/{name}", base + name)
                    extend((st.st_size, st.st_mtime_ns, st.st_ino))
                    add(name)
                else:
                    others.append(name)
    except OverflowError:
        names.clear()
        return None
    finally:
        os.close(fd)
    return others
