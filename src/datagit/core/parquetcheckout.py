"""Checkout of a Parquet table by patching the file the user has, row by row.

Without this, a checkout turned the workspace's Parquet file into every one of
the target's records: the file parsed into a million `Record` objects, the
target's shards decoded into a million more, and a new file rendered in
datagit's own layout (rows in shard order, column types as pyarrow guesses them
from Python values): 14–30 s and 1.7 GiB at a million rows.

When the file is the one the table's snapshot vouches for (its bytes have the
snapshot's address, and the snapshot is of the tree checked out from), only the
rows whose records differ between the two trees change, as `tablesnap.
plan_checkout` does for CSV and JSON Lines: the file is read by pyarrow (its
schema, row order and row groups kept), the changed rows are found by one
hash join of their ids (`pyarrow.compute.index_in`), their cells replaced
column by column, removed rows filtered out and new rows appended in id order.

Every rewritten row is parsed back by the same `RowMaker` a full read uses and
must give exactly the target's record; a value a column's type cannot hold as
it is (a float in an int column, a new column, a date) sends the checkout back
to the full render. So the file written always reads as the target's records,
which is what lets the checkout record it as the target's snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from datagit.core.changes import Change
from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.parquet import _is_plain, _pyarrow
from datagit.core.records import Record
from datagit.core.tables import RowMaker, read_table_bytes, table_row
from datagit.core.tablesnap import probe
from datagit.storage.content import address
from datagit.storage.git import GitStore
from datagit.storage.statcache import Snapshots
from datagit.storage.tablecache import TableCache


def plan(
    git: GitStore,
    cfg: DatasetConfig,
    hasher: Hasher,
    tables: TableCache,
    snapshots: Snapshots,
    now_tree: str,
    changes: Callable[[], list[Change]],
) -> bytes | None:
    """The Parquet file for the tree ``changes`` (asked only when needed) lead to from
    ``now_tree``, patched from the file that is ``now_tree``; None when the snapshot
    cannot vouch for the file, or a row cannot be patched in (the caller renders the
    table whole)."""
    if cfg.table_format != "parquet" or cfg.file is not None:
        return None
    got = probe(cfg, hasher.workdir, tables, snapshots, now_tree)
    if got is None or got.data is not None:
        return None
    data = read_table_bytes(cfg, Path(hasher.workdir))
    if data is None or address(data) != got.state.digest:
        return None
    return patch(cfg, data, changes(), RowMaker(cfg, hasher))


def patch(cfg: DatasetConfig, data: bytes, changes: list[Change], maker: RowMaker) -> bytes | None:
    """``data`` with ``changes`` applied (see the module doc); None when it cannot be."""
    pa = _pyarrow()
    pc = pa.compute
    try:
        pf = pa.parquet.ParquetFile(pa.BufferReader(data))
        schema = pf.schema_arrow
        if cfg.id not in schema.names or not all(_is_plain(pa.types, f) for f in schema):
            return None
        table = pf.read()
    except (pa.ArrowException, OSError):
        return None
    if table.num_rows and table.column(cfg.id).null_count:
        return None
    ids = table.column(cfg.id).cast(pa.string())
    changed = [c for c in changes if c.old is not None and c.new is not None]
    gone = [c.id for c in changes if c.new is None]
    added: list[Record] = sorted((c.new for c in changes if c.old is None), key=lambda r: r.id)  # type: ignore[misc]
    asked = [c.id for c in changed] + gone
    at = pc.index_in(pa.array(asked, pa.string()), value_set=ids).to_pylist() if asked else []
    if any(i is None for i in at):
        return None  # a record the file does not hold: not the file the snapshot saw
    where = dict(zip(asked, at, strict=True))
    changed.sort(key=lambda c: where[c.id])
    try:
        if changed:
            rows = [table_row(cfg, c.new) for c in changed]  # type: ignore[arg-type]
            cells = _cells(pa, schema, rows)
            if cells is None or not _parses_back(maker, schema.names, cells, changed):
                return None
            mask = [False] * table.num_rows
            for c in changed:
                mask[where[c.id]] = True
            mask_array = pa.array(mask, pa.bool_())
            table = pa.table(
                [
                    pc.replace_with_mask(table.column(i), mask_array, cells[i])
                    for i in range(len(schema.names))
                ],
                schema=schema,
            )
        if gone:
            keep = [True] * table.num_rows
            for i in gone:
                keep[where[i]] = False
            table = table.filter(pa.array(keep, pa.bool_()))
        if added:
            rows = [table_row(cfg, r) for r in added]
            cells = _cells(pa, schema, rows)
            if cells is None or not _parses_back(
                maker, schema.names, cells, [Change(r.id, "added", None, r) for r in added]
            ):
                return None
            table = pa.concat_tables([table, pa.table(cells, schema=schema)])
        return _write(pa, pf, table)
    except (pa.ArrowException, OSError, ValueError, TypeError):
        return None


def _cells(pa: Any, schema: Any, rows: list[dict[str, Any]]) -> list[Any] | None:
    """Each column's new values for ``rows`` as arrays of the column's own type; None
    when a row has other columns than the file, or a value the type cannot hold."""
    names = schema.names
    if any(len(row) != len(names) or not all(n in row for n in names) for row in rows):
        return None
    out = []
    for field in schema:
        values = [row[field.name] for row in rows]
        try:
            out.append(pa.array(values, type=field.type))
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            return None
    return out


def _parses_back(
    maker: RowMaker, names: list[str], cells: list[Any], changes: list[Change]
) -> bool:
    """Whether each written row, read back as a full read reads it, is its target record."""
    columns = [c.to_pylist() for c in cells]
    for k, change in enumerate(changes):
        row = {name: col[k] for name, col in zip(names, columns, strict=True)}
        try:
            got = maker(row, k + 1)
        except Exception:
            return False
        want = change.new
        if want is None:
            return False
        mine, theirs = got.to_dict(), want.to_dict()
        if maker.cfg.annotator is None:  # a commit's annotator is not in the file: status
            mine.pop("annotator", None)  # lets an unchanged label keep it (`_inherit`)
            theirs.pop("annotator", None)
        if mine != theirs:
            return False
    return True


def _write(pa: Any, pf: Any, table: Any) -> bytes:
    """``table`` as Parquet, in the original file's row-group size and compression."""
    meta = pf.metadata
    options: dict[str, Any] = {}
    if meta.num_row_groups:
        options["row_group_size"] = max(meta.row_group(0).num_rows, 1)
        if meta.row_group(0).num_columns:
            codec = str(meta.row_group(0).column(0).compression).lower()
            if codec in ("snappy", "gzip", "brotli", "zstd", "lz4", "none", "uncompressed"):
                options["compression"] = "none" if codec == "uncompressed" else codec
    sink = pa.BufferOutputStream()
    pa.parquet.write_table(table, sink, **options)
    return bytes(sink.getvalue().to_pybytes())
