"""A changed Parquet table costs what changed: the CSV line delta, for lines made in bulk.

A Parquet file has no text lines, but each row has one canonical line: its record's
manifest line, which `parquetlines` builds for every row at once in Arrow. The
table's line map (`storage/tablecache.py`) holds, per row in file order, a digest
of that line (xxh3-64 and length: `parquetlines.line_digests`) and the row's id. When the file
changes, the new lines' digests are compared with the old ones (`linedelta.match_lines`)
and only the rows whose line is new are decoded into records, then patched into
the dataset tree as shard lines (`manifest.apply_changes`), as a CSV relabel is.
The map's header is the file's column names: with other columns (or another order,
which writes the same records as other lines) the careful full read decides.
"""

from __future__ import annotations

import orjson

from datagit.core.linedelta import _IdIndex, match_lines
from datagit.core.manifest import apply_changes
from datagit.core.parquet import _pyarrow
from datagit.core.parquetlines import EncodedRows, _joined, _lit
from datagit.core.records import Record, decode_lines
from datagit.storage.git import GitStore
from datagit.storage.tablecache import LineMap


def header(encoded: EncodedRows) -> bytes:
    """The line map's header for a Parquet table: its column names, in file order."""
    return orjson.dumps(encoded.names)


def line_map(encoded: EncodedRows, digest: str) -> LineMap:
    """The map of the Parquet file with address ``digest``, read in bulk as ``encoded``."""
    import numpy as np

    ids = encoded.id_array()
    blob = b""
    if len(ids):
        pc = _pyarrow().compute
        blob = _joined(pc.binary_join_element_wise(ids, _lit("\n"), _lit("")))[:-1]
    keys = np.sort(encoded.keys()).astype("<u8")
    return LineMap(digest, header(encoded), encoded.digests(), blob, keys)


def delta(encoded: EncodedRows, old: LineMap) -> tuple[dict[str, Record], list[str]] | None:
    """The rows whose lines are new (decoded), and the ids no row holds any more; None
    when the full read must decide (other columns, or another column order)."""
    import numpy as np

    if header(encoded) != old.header:
        return None
    src = match_lines(encoded.digests(), old.hashes)
    used = np.zeros(len(old.hashes), dtype=bool)
    used[src[src >= 0]] = True
    old_ids = _IdIndex(old.ids)
    gone = {old_ids[i] for i in np.flatnonzero(~used).tolist()}
    changed = np.flatnonzero(src < 0).astype(np.int64)
    upserts = {r.id: r for r in decode_lines(encoded.lines_at(changed))} if len(changed) else {}
    return upserts, sorted(gone - upserts.keys())


def stage(
    git: GitStore, encoded: EncodedRows, old: LineMap, base: str, digest: str
) -> tuple[str, list[tuple[Record | None, Record | None]], LineMap] | None:
    """Patch ``base`` (the tree the file of ``old`` was) with `delta`; None when the
    full read must decide."""
    got = delta(encoded, old)
    if got is None:
        return None
    tree, pairs = apply_changes(git, base, *got, keep_annotator=True)
    return tree, pairs, line_map(encoded, digest)
