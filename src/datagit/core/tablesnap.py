"""The fast path for tables: an unchanged table costs a stat, a changed one what changed.

A table's snapshot (`storage/tablecache.py`) says which dataset tree the file
matched, with its stat, its address and a map from each row's raw line to its
id. `status` and `add` then stat the file (or ask the filesystem monitor) and
stop there when nothing moved; when the file changed, its lines are hashed and
looked up, and only lines the map does not know are parsed and validated —
the same idea as shard patching, which copies unchanged record lines as bytes.
A checkout between two clean commits rewrites only the rows whose records
differ and keeps every other line as the user wrote it (`tablecheckout`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import orjson

from datagit.core.changes import Change, classify
from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.linematch import LINED, lined
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record, decode_lines
from datagit.core.shardsplice import apply_changes
from datagit.core.tables import RowMaker, read_table_bytes, table_records
from datagit.storage.content import address
from datagit.storage.git import GitStore
from datagit.storage.statcache import RACY_NS, Snapshots
from datagit.storage.tablecache import LineMap, TableCache, TableState, make_line_map

if TYPE_CHECKING:  # the Parquet reader (and `decimal`) loads only for a Parquet table
    from datagit.core.parquetlines import EncodedRows


def fingerprint(cfg: DatasetConfig) -> str:
    """The settings a table's records depend on: other columns, other records."""
    return orjson.dumps(cfg.to_toml(), option=orjson.OPT_SORT_KEYS).decode()


class TableRead:
    """A full read of a table: its records, and the snapshot to save once staged.

    A bulk-read table (`parquetlines.encode_rows`) holds its records as manifest lines,
    written as they are (`manifest.write_encoded`) and decoded only if asked for.
    """

    def __init__(
        self,
        records: list[Record] | None,
        state: TableState | None,  # tree left empty: the caller knows it once it has written one
        lines: LineMap | None,
        encoded: EncodedRows | None = None,
        data: bytes | None = None,
    ) -> None:
        self._records = records
        self.state = state
        self._lines = lines
        self.encoded = encoded
        self.data = data  # a bulk-read table's file: kept, to make its map from later

    @property
    def lines(self) -> LineMap | None:
        """The line map to save; None for a bulk-read table, whose map is made from its
        tree when it is first needed (`parquetdelta.committed_map`)."""
        return self._lines

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            self._records = decode_lines(self.encoded.text()) if self.encoded else []
        return self._records


def read_full(cfg: DatasetConfig, hasher: Hasher, snapshots: Snapshots) -> TableRead:
    """Every record of a table, plus the line map and stats a snapshot needs."""
    token = snapshots.token_now()
    started = time.time_ns()
    data = read_table_bytes(cfg, hasher.workdir)
    if data is None:
        return TableRead([], None, None)
    st = os.stat(hasher.workdir / cfg.path)
    if cfg.table_format == "parquet":
        from datagit.core.parquetlines import encode_rows

        encoded = encode_rows(cfg, data)
        if encoded is not None:
            stats = {cfg.path: (st.st_size, st.st_mtime_ns, st.st_ino)}
            state = TableState("", fingerprint(cfg), started, stats, address(data), token, False)
            return TableRead(None, state, None, encoded, data)
    raw = data.split(b"\n") if cfg.table_format in LINED and lined(data) else []
    start = 1 if cfg.table_format == "csv" and raw else 0
    ids = [b""] * (len(raw) - start)  # the id on each line after the header
    records = []
    single = 0
    maker = RowMaker(cfg, hasher)
    for rec, first, last in table_records(cfg, data, hasher, maker):
        records.append(rec)
        if first == last and raw:
            ids[first - 1 - start] = rec.id.encode()
            single += 1
    stats = {cfg.path: (st.st_size, st.st_mtime_ns, st.st_ino), **maker.stats}
    digest = address(data)
    has_lines = bool(raw) and not cfg.file and single == len(records)
    header = raw[0] if start else b""
    state = TableState("", fingerprint(cfg), started, stats, digest, token, has_lines)
    lines = make_line_map(digest, header, raw[start:], ids) if has_lines else None
    return TableRead(records, state, lines)


# The copy doubles the file on disk until its first change; past this size the later
# change makes its map from the committed tree instead (slower, once) than keep it.
COPY_LIMIT = 256 << 20


def save_read(tables: TableCache, cfg: DatasetConfig, read: TableRead, tree: str) -> None:
    """Record that the table, as `read_full` found it, is dataset tree ``tree``."""
    if read.state is None or read.lines is None:
        tables.drop(cfg.name)  # no map saved before can describe this file any more
    if read.state is not None:
        if read.data is not None and len(read.data) <= COPY_LIMIT:
            tables.save_copy(cfg.name, read.data)
        tables.save(cfg.name, read.state._replace(tree=tree), read.lines)


class Probe(NamedTuple):
    """What a snapshot says about the table now: unchanged, or changed with these bytes."""

    state: TableState
    data: bytes | None  # None: unchanged
    refreshed: TableState | None  # a racy entry proved clean: save this to stop re-hashing
    stat: tuple[int, int, int] | None = None  # the table's stat, taken before ``data``…
    read_at: int = 0  # …and the time before both: a new snapshot's moment


def probe(
    cfg: DatasetConfig, workdir: Path, tables: TableCache, snapshots: Snapshots, tree: str
) -> Probe | None:
    """Compare the table to its snapshot of ``tree``; None when only a full read can tell."""
    state = tables.load(cfg.name)
    if state is None or state.tree != tree or state.config != fingerprint(cfg):
        return None
    settled = state.taken - RACY_NS
    racy = any(st[1] >= settled for st in state.stats.values())
    if not racy and state.token is not None and _monitor_clean(snapshots, state):
        return Probe(state, None, None)
    path = workdir / cfg.path
    started = time.time_ns()
    try:
        st = os.stat(path)
    except OSError:
        return None  # gone or unreadable: the full read says which
    now = (st.st_size, st.st_mtime_ns, st.st_ino)
    for p, old in state.stats.items():
        if p == cfg.path:
            continue
        try:
            other = os.stat(workdir / p)
        except OSError:
            return None
        if (other.st_size, other.st_mtime_ns, other.st_ino) != old or old[1] >= settled:
            return None  # a file the table names moved: the stat cache re-hashes it
    if now == state.stats[cfg.path] and now[1] < settled:
        return Probe(state, None, None)
    data = read_table_bytes(cfg, workdir)
    if data is None:
        return None
    if address(data) != state.digest:
        return Probe(state, data, None, now, started)
    # Same bytes (touched, or written just before the snapshot): trust the new stat
    # from a new moment on.
    stats = {**state.stats, cfg.path: now}
    return Probe(state, None, state._replace(taken=started, stats=stats))


def _monitor_clean(snapshots: Snapshots, state: TableState) -> bool:
    """True when the monitor names no path of the table (nor a folder above one)."""
    answer = snapshots.ask(state.token)
    if answer is None or answer.paths is None:
        return False
    folders = []
    for p in answer.paths:
        if p in state.stats:
            return False
        folders.append(p + "/")
    if not folders:
        return True
    prefixes = tuple(folders)
    return not any(s.startswith(prefixes) for s in state.stats)


def status_fast(
    git: GitStore,
    cfg: DatasetConfig,
    hasher: Hasher,
    tables: TableCache,
    snapshots: Snapshots,
    base: str,
) -> list[Change] | None:
    """Unstaged changes of a table against stage tree ``base``; None without a usable snapshot."""
    got = probe(cfg, hasher.workdir, tables, snapshots, base)
    if got is None:
        return None
    if got.data is None:
        if got.refreshed is not None:
            tables.save(cfg.name, got.refreshed, None)
        return []
    if cfg.table_format == "parquet":
        found = _parquet_delta(git, cfg, tables, got)
    else:
        from datagit.core.linedelta import line_delta  # only for a changed table

        lm = tables.load_packed(cfg.name, got.state.digest) if got.state.has_lines else None
        delta = line_delta(cfg, hasher, lm, got.data) if lm is not None else None
        found = (delta.upserts, delta.deletes) if delta is not None else None
    if found is None:
        return None
    upserts, deletes = found
    old = DatasetTree(git, base).get_many([*upserts, *deletes])
    pairs: list[tuple[Record | None, Record | None]] = [
        (old.get(i), _inherit(r, old.get(i))) for i, r in upserts.items()
    ]
    pairs += [(old.get(i), None) for i in deletes]
    return _changes(pairs)


def _parquet_delta(
    git: GitStore, cfg: DatasetConfig, tables: TableCache, got: Probe
) -> tuple[dict[str, Record], list[str]] | None:
    """`parquetdelta.delta` of a changed Parquet file against its map; None without one."""
    from datagit.core.parquetdelta import delta, in_place
    from datagit.core.parquetlines import encode_rows

    encoded = encode_rows(cfg, got.data) if got.data is not None else None
    if encoded is None:
        return None
    copy = tables.load_copy(cfg.name, got.state.digest)
    found = in_place(cfg, encoded, copy) if copy is not None else None
    if found is not None:
        return found
    lm = _parquet_map(git, cfg, tables, got, copy=copy)
    return delta(encoded, lm) if lm is not None else None


def _parquet_map(
    git: GitStore,
    cfg: DatasetConfig,
    tables: TableCache,
    got: Probe,
    keep: bool = True,
    copy: bytes | None = None,
) -> LineMap | None:
    """The Parquet table's saved map or, when none is (a first commit saves none), one
    made from the copy of the file the first commit kept or, without a good copy, from
    the tree the snapshot names; saved for the next look if ``keep`` (a commit saves
    the new file's map instead)."""
    from datagit.core.parquetdelta import committed_map, line_map
    from datagit.core.parquetlines import encode_rows

    digest = got.state.digest
    lm = tables.load_lines(cfg.name, digest)
    if lm is not None:
        return lm
    copy = copy if copy is not None else tables.load_copy(cfg.name, digest)
    encoded = encode_rows(cfg, copy) if copy is not None else None
    if encoded is not None:
        lm = line_map(encoded, digest)
    else:
        lm = committed_map(git, got.state.tree, digest)
    if lm is not None and keep:
        tables.save(cfg.name, got.state, lm)
    return lm


def stage_fast(
    git: GitStore,
    cfg: DatasetConfig,
    hasher: Hasher,
    tables: TableCache,
    snapshots: Snapshots,
    base: str,
) -> tuple[str, list[Change]] | None:
    """Stage a table against ``base`` by its line delta; None without a usable snapshot."""
    token = snapshots.token_now()
    got = probe(cfg, hasher.workdir, tables, snapshots, base)
    if got is None:
        return None
    if got.data is None:
        if got.refreshed is not None:
            tables.save(cfg.name, got.refreshed, None)
        return base, []
    if cfg.table_format == "parquet":
        return _stage_parquet(git, cfg, tables, got, base, token)
    from datagit.core.linedelta import line_delta  # only for a changed table

    lm = tables.load_packed(cfg.name, got.state.digest) if got.state.has_lines else None
    delta = line_delta(cfg, hasher, lm, got.data) if lm is not None else None
    if delta is None or got.stat is None:
        return None
    tree, pairs = apply_changes(git, base, delta.upserts, delta.deletes, keep_annotator=True)
    # The stat and the moment from before the read: a write after it is racy or moves it.
    stats = {cfg.path: got.stat}
    state = TableState(tree, got.state.config, got.read_at, stats, delta.lines.digest, token, True)
    tables.save(cfg.name, state, delta.lines)
    return tree, _changes(pairs)


def _stage_parquet(
    git: GitStore, cfg: DatasetConfig, tables: TableCache, got: Probe, base: str, token: str | None
) -> tuple[str, list[Change]] | None:
    """`stage_fast` for a changed Parquet file read in bulk (`parquetdelta`): its map
    holds digests of the rows' manifest lines, not of raw lines (``has_lines`` stays
    False, so no line-based reader takes it for one)."""
    from datagit.core.parquetdelta import in_place, stage
    from datagit.core.parquetlines import encode_rows

    if got.data is None or got.stat is None:
        return None
    copy = tables.load_copy(cfg.name, got.state.digest)
    encoded = encode_rows(cfg, got.data, eager_keys=copy is None)
    if encoded is None:
        return None
    digest = address(got.data)
    stats = {cfg.path: got.stat}
    found = in_place(cfg, encoded, copy) if copy is not None else None
    if found is not None and len(got.data) <= COPY_LIMIT:
        # Compared with the copy in place: keep the new file as the next copy, not a
        # map (whose digests of every row cost ~0.45 s at a million rows).
        tree, pairs = apply_changes(git, base, *found, keep_annotator=True)
        tables.save_copy(cfg.name, got.data)
        state = TableState(tree, got.state.config, got.read_at, stats, digest, token, False)
        tables.save(cfg.name, state, None)
        return tree, _changes(pairs)
    lm = _parquet_map(git, cfg, tables, got, keep=False, copy=copy)
    if lm is None:
        return None
    done = stage(git, encoded, lm, base, digest)
    if done is None:
        return None
    tree, pairs, lines = done
    state = TableState(tree, got.state.config, got.read_at, stats, lines.digest, token, False)
    tables.save(cfg.name, state, lines)
    return tree, _changes(pairs)


def follow_stamp(tables: TableCache, dataset: str, before: str, after: str) -> None:
    """Carry a table snapshot of ``before`` to ``after``, the same tree with annotators
    stamped on rows that had none (`commit --annotator`)."""
    state = tables.load(dataset)
    if state is not None and state.tree == before:
        tables.save(dataset, state._replace(tree=after), None)


def same_records(staged: dict[str, Record], work: dict[str, Record]) -> bool:
    """Whether adding ``work`` onto ``staged`` would leave the tree as it is."""
    if len(staged) != len(work):
        return False
    get = staged.get
    return all(_inherit(r, get(i)) == get(i) for i, r in work.items())


def _inherit(new: Record, old: Record | None) -> Record:
    """A row without an annotator keeps the one its unchanged label had (as `add` does)."""
    if new.annotator is None and old is not None and old.annotator and old.label == new.label:
        return new.with_annotator(old.annotator)
    return new


def _changes(pairs: Sequence[tuple[Record | None, Record | None]]) -> list[Change]:
    out = []
    for old, new in pairs:
        kind = classify(old, new)
        if kind:
            out.append(Change((old or new).id, kind, old, new))  # type: ignore[union-attr]
    return sorted(out, key=lambda c: c.id)
