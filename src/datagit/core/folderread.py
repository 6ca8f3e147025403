"""A whole image folder read into records: list and check first, then read on both cores.

The listing (`folderscan.list_folders`) packs each folder's names and stats, so
a 100,000-file `add` holds one string and one array per folder instead of a
list of per-file tuples and paths; the read-and-hash pass then goes folder by
folder and sends back one string of addresses per folder. That is ~40 MiB less
at the peak of a first commit, where records, shards and the content index
already compete for memory.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path

from datagit.core.config import DatasetConfig
from datagit.core.folderscan import Listed, list_folders
from datagit.core.layouts import Hasher, list_imagefolder, read_new
from datagit.core.records import Record, validate_id
from datagit.progress import Progress, Reporter
from datagit.storage import parallel
from datagit.storage.content import PackWriter
from datagit.storage.statcache import cached_key
from datagit.storage.stattable import StatTable, packed_from

Row = tuple[int, int, int, str, int]
_KEY = 32  # hex digits of an address


def read_folders(
    cfg: DatasetConfig,
    hasher: Hasher,
    known: Mapping[str, Row] | None = None,
    record_stats: bool = True,
    progress: Progress | None = None,
) -> tuple[list[Record], StatTable]:
    """Every record of an image folder, and the stat table a snapshot of it keeps.

    Every id is checked before a byte is read, so a refused listing stores nothing.
    ``known`` adds stat-cache rows from elsewhere (`snapshot_rows`); with
    ``record_stats=False`` the stat cache is not written, because the caller keeps
    the same facts in a snapshot. ``progress`` hears of every file, as phase
    ``adding <dataset>`` (the helper process's half is counted when it reports back).
    """
    listed, _labels = list_folders(cfg, hasher.workdir, StatTable(), fork=False)
    folders = [_unpacked(cfg, item) for item in listed]
    _check_ids(cfg, hasher.workdir, folders)
    rows: Mapping[str, Row] = {} if hasher.cache.empty() else hasher.cache.rows
    if known:
        rows = {**known, **rows} if rows else known
    writer = hasher.writer
    side: list[Path] = []
    root = str(hasher.workdir) + "/"
    report = Reporter(progress, f"adding {cfg.name}", sum(len(f[3]) for f in folders), "files")

    def run(part: Sequence[_Folder], in_child: bool) -> list[tuple[str, bytes]]:
        w = writer
        if in_child and writer is not None:
            w = PackWriter(writer.store, pack=side[0])
        out = []
        advance = None if in_child or progress is None else report.advance
        for path, _label, _prefix, names, nums in part:
            keys: list[str] = []
            fresh = bytearray(len(names))
            base = path + "/"
            for i, name in enumerate(names):
                st = (nums[3 * i], nums[3 * i + 1], nums[3 * i + 2])
                rel = base + name
                key = cached_key(rows.get(rel), st) if rows else None
                if key is None or len(key) != _KEY or (w is not None and not w.store.has(key)):
                    key = read_new(rel, root + rel, st[0], w)
                    fresh[i] = 1
                keys.append(key)
                if advance is not None:
                    advance()
            out.append(("".join(keys), bytes(fresh)))
        if w is not None and w is not writer:
            w.flush()  # complete, fsynced and indexed before the parent adopts it
        return out

    ordered, half = _halves(folders)
    if writer is not None and sum(len(f[3]) for f in folders) >= parallel.parallel_min():
        side.append(writer.side_pack())
    got, helped = parallel.split_run(ordered, run, at=half, minimum=2 if side else 1 << 62)
    if helped and side:
        writer.adopt(side[0])  # type: ignore[union-attr]
    report.advance(max(0, (report.total or 0) - report.done))  # the helper's half
    report.finish()
    return _records(ordered, got, hasher, record_stats), _table(listed)


# (workspace path of the folder, its label, the id prefix, names, stats three by three)
_Folder = tuple[str, str | None, str, list[str], Sequence[int]]


def _unpacked(cfg: DatasetConfig, item: Listed) -> _Folder:
    path, joined, got = item
    names = joined.split("\0") if joined else []
    stats: Sequence[int]
    if isinstance(got, bytes):
        stats = array("Q")
        stats.frombytes(got)
    else:
        stats = [x for st in got or () for x in st]
    if path == cfg.path:
        return path, None, "", names, stats
    label, _, sub = path[len(cfg.path) + 1 :].partition("/")
    return path, label, sub + "/" if sub else "", names, stats


def _check_ids(cfg: DatasetConfig, workdir: Path, folders: list[_Folder]) -> None:
    """Every id valid, and none given twice (the careful listing names both files)."""
    seen: set[str] = set()
    count = 0
    for path, _label, prefix, names, _stats in folders:
        base = path + "/"
        for name in names:
            validate_id(prefix + name, base + name)
        seen.update(prefix + name for name in names)
        count += len(names)
    if len(seen) != count:
        list_imagefolder(cfg, workdir)  # raises the duplicate-id error naming both files


def _halves(folders: list[_Folder]) -> tuple[list[_Folder], int]:
    """Folders reordered so the first ``half`` of them hold about half the files."""
    bins: tuple[list[_Folder], list[_Folder]] = ([], [])
    load = [0, 0]
    for f in sorted(folders, key=lambda f: -len(f[3])):
        side = 0 if load[0] <= load[1] else 1
        bins[side].append(f)
        load[side] += len(f[3])
    return bins[0] + bins[1], len(bins[0])


def _records(
    folders: list[_Folder], got: list[tuple[str, bytes]], hasher: Hasher, record_stats: bool
) -> list[Record]:
    record, started = hasher.cache.record_stat, hasher.started
    records = []
    for (path, label, prefix, names, nums), (keys, fresh) in zip(folders, got, strict=True):
        base = path + "/"
        for i, name in enumerate(names):
            st = (nums[3 * i], nums[3 * i + 1], nums[3 * i + 2])
            key = keys[i * _KEY : (i + 1) * _KEY]
            if fresh[i]:
                if record_stats:
                    record(base + name, st, key, started)
                hasher.hashed += 1
            records.append(Record(prefix + name, label, key, st[0]))
    return records


def _table(listed: list[Listed]) -> StatTable:
    table = StatTable()
    for path, joined, got in listed:
        if isinstance(got, bytes):
            table.packed[path] = packed_from(joined or "", got)
        else:
            names = joined.split("\0") if joined else []
            table.open[path] = dict(zip(names, got or (), strict=True))
    return table
