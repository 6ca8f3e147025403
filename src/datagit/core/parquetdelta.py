"""A changed Parquet table costs what changed: the CSV line delta, for lines made in bulk.

A Parquet file has no text lines, but each row has one canonical line: its record's
manifest line, which `parquetlines` builds for every row at once in Arrow. The
table's line map (`storage/tablecache.py`) holds, per row in file order, a digest
of that line (xxh3-64 and length: `parquetlines.line_digests`) and the row's id. When the file
changes, the new lines' digests are compared with the old ones (`linedelta.match_lines`)
and only the rows whose line is new are decoded into records, then patched into
the dataset tree as shard lines (`shardsplice.apply_changes`), as a CSV relabel is.
The map's header is the file's column names: with other columns (or another order,
which writes the same records as other lines) the careful full read decides.
"""

from __future__ import annotations

from typing import Any

import orjson
from xxhash import xxh3_64_intdigest

from datagit.core.config import DatasetConfig
from datagit.core.linedelta import _IdIndex, match_lines
from datagit.core.manifest import DatasetTree
from datagit.core.parquet import _open, _pyarrow
from datagit.core.parquetlines import EncodedRows, _joined, _lit, line_digests
from datagit.core.records import Record, decode_lines
from datagit.core.shardsplice import apply_changes
from datagit.errors import InvalidInputError
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
    when the full read must decide: other columns, or another column order (which a
    map made from the tree cannot tell, so more than half the rows new decides)."""
    import numpy as np

    lazy = old.header == LAZY_HEADER
    if not lazy and header(encoded) != old.header:
        return None
    src = match_lines(encoded.digests(), old.hashes)
    changed = np.flatnonzero(src < 0).astype(np.int64)
    if lazy and 2 * len(changed) > len(src):
        return None  # most lines new (other columns, another order?): the full read decides
    used = np.zeros(len(old.hashes), dtype=bool)
    used[src[src >= 0]] = True
    old_ids = _IdIndex(old.ids)
    gone = {old_ids[i] for i in np.flatnonzero(~used).tolist()}
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


# -- Against the copy the last commit kept, row by row --------------------------------
# A commit keeps a copy of the file (`tablesnap.save_read`, `tablesnap._stage_parquet`).
# When the new file has the copy's columns, types and row count, its rows are compared
# with the copy's in place, a column at a time in Arrow: no line is made or hashed for
# an unchanged row (a map from the copy cost ~0.8 s, the new file's map ~0.45 s more).
# A row that differs in any value (floats by their bits: 0.0 and -0.0 are other lines)
# is decoded and upserted; one that only moved is upserted unchanged, which
# `shardsplice.apply_changes` drops as no change. So the answer is `delta`'s.

PLACE_LIMIT = 2  # past 1 row in this many differing in place, `delta` (moves join) decides


def in_place(
    cfg: DatasetConfig, encoded: EncodedRows, copy: bytes
) -> tuple[dict[str, Record], list[str]] | None:
    """`delta` of ``encoded`` against ``copy`` (the committed file's bytes), comparing
    rows in place; None when the copy is not the same shape (columns, types, row
    count) or most rows differ: the map decides."""
    import numpy as np

    pa = _pyarrow()
    pc = pa.compute
    new = encoded.columns()
    try:
        old = _open(cfg, copy).read()
    except (InvalidInputError, pa.ArrowException, OSError):
        return None  # the copy is a cache: unreadable, the map decides
    if old.num_rows != new.num_rows or old.schema.names != encoded.names:
        return None  # another column order writes other lines: the map decides
    same: Any = None
    for name in encoded.names:
        a = new.column(name)
        b = old.column(name).combine_chunks()
        if pa.types.is_large_string(b.type):
            b = pc.cast(b, pa.string())  # as `encode_rows` casts the new file's
        if a.type != b.type:
            return None
        if pa.types.is_null(a.type):
            continue  # every row null on both sides
        eq = _bits_equal(a, b) if pa.types.is_floating(a.type) else _values_equal(pc, a, b)
        same = eq if same is None else same & eq
    changed = (
        np.zeros(0, dtype=np.int64) if same is None else np.flatnonzero(~same).astype(np.int64)
    )
    if PLACE_LIMIT * len(changed) > new.num_rows:
        return None
    upserts = {r.id: r for r in decode_lines(encoded.lines_at(changed))} if len(changed) else {}
    at = pa.Array.from_buffers(pa.int64(), len(changed), [None, pa.py_buffer(changed)])
    old_ids = pc.cast(old.column(cfg.id), pa.string()).take(at).to_pylist()
    return upserts, sorted(set(old_ids) - upserts.keys())


def _values_equal(pc: Any, a: Any, b: Any) -> Any:
    """Per row: both null, or both set and equal (numpy bool)."""
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    same = pc.or_kleene(pc.equal(a, b), both_null)  # null: one side null, so not the same
    return _bools(same) & ~_bools(pc.is_null(same)) if same.null_count else _bools(same)


def _bits_equal(a: Any, b: Any) -> Any:
    """Per row of two float arrays: both null, or both set with the same bits."""
    import numpy as np

    if not len(a):
        return np.ones(0, dtype=bool)  # an empty array may have no buffer at all
    width = {2: np.uint16, 4: np.uint32, 8: np.uint64}[a.type.bit_width // 8]

    def parts(x: Any) -> tuple[Any, Any]:
        bits = np.frombuffer(x.buffers()[1], dtype=width)[x.offset : x.offset + len(x)]
        if x.null_count == 0:
            return bits, np.ones(len(x), dtype=bool)
        valid = np.frombuffer(x.buffers()[0], dtype=np.uint8)
        mask = np.unpackbits(valid, bitorder="little")[x.offset : x.offset + len(x)]
        return bits, mask.view(bool)

    a_bits, a_set = parts(a)
    b_bits, b_set = parts(b)
    return (a_set == b_set) & (~a_set | (a_bits == b_bits))


# -- The map of a committed tree, built when a changed file finds none saved ----------
# A first commit saves no map (~0.4 s of a million-row commit). A row's bare line is
# its committed record's line less the content address and size (which the fields
# decide), so `committed_map` makes the map from the dataset tree's shards, once, when a
# later status or commit of the changed file needs it; the commit then saves the new
# file's own map.

LAZY_HEADER = b""  # a map made from a committed tree: the file's columns are not known
# A line as `Record.to_dict` through orjson writes a bulk table's record, up to the end
# of its size: id and label plain (no quote or escape inside), the content address, the
# size. Whatever follows is compared byte for byte, never read.
LINE_SHAPE = (
    r'^\{"id":"[^"\\]*","label":(?:"[^"\\]*"|null|true|false|-?[0-9][0-9.eE+-]*)'
    r',"content":"[0-9a-f]{32}","size":[0-9]+[,}]'
)
_CONTENT = ',"content":"'  # then 32 hex digits, '","size":' and the size's digits
_TO_SIZE = len(_CONTENT) + 32 + len('","size":')
_ID = r'^\{"id":"(?P<id>[^"\\]*)"'
_CHUNK = 64 << 20  # shard bytes taken at once: well inside Arrow's 32-bit offsets


def committed_map(git: GitStore, tree: str, digest: str) -> LineMap | None:
    """The map of dataset tree ``tree``'s records, in shard order, as the map of the file
    with address ``digest`` (which the table's snapshot says is that tree); None when a
    line will not decode (the full read decides)."""
    import numpy as np

    hashes: list[Any] = []
    ids: list[bytes] = []
    chunk: list[bytes] = []
    size = 0
    blobs = list(DatasetTree(git, tree).shards().values())
    for k, blob in enumerate(blobs):
        data = git.read_blob(blob)
        chunk.append(data)
        size += len(data)
        if size < _CHUNK and k + 1 < len(blobs):
            continue
        got = _chunk_map(b"".join(chunk))
        if got is None:
            return None
        hashes.append(got[0])
        ids.append(got[1])
        chunk, size = [], 0
    both = np.concatenate(hashes) if hashes else np.zeros((0, 2), dtype=np.uint64)
    return LineMap(digest, LAZY_HEADER, both, b"\n".join(ids), np.zeros(0, dtype="<u8"))


def bare_line(record: Record) -> bytes:
    """A record's line less its content address and size: the line `_encode` makes bare
    for its row (the decoder's way, for a line `LINE_SHAPE` does not take)."""
    d = record.to_dict()
    del d["content"], d["size"]
    return orjson.dumps(d) + b"\n"


def _chunk_map(data: bytes) -> tuple[Any, bytes] | None:
    """(`line_digests` of the bare lines, the ids joined by newlines) of shard lines."""
    import numpy as np

    if not data:
        return np.zeros((0, 2), dtype=np.uint64), b""
    if not data.endswith(b"\n"):
        return None
    pa = _pyarrow()
    pc = pa.compute
    raw = np.frombuffer(data, dtype=np.uint8)
    offs = np.zeros(1, dtype=np.int32)
    offs = np.append(offs, (np.flatnonzero(raw == 10) + 1).astype(np.int32))
    n = len(offs) - 1
    lines = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offs), pa.py_buffer(data)])
    try:
        lines.validate(full=True)  # UTF-8, as orjson writes it
    except pa.ArrowInvalid:
        return None
    known = _bools(pc.match_substring_regex(lines, LINE_SHAPE))
    starts = offs[:-1].astype(np.int64)
    # A recognised line's first ',"content":"' is its record's own (nothing before it
    # holds a quote); its size's digits run up to the ',' or '}' the shape ends with.
    cut_at = starts + _ints(pc.find_substring(lines, _CONTENT))
    cut_len = np.full(n, _TO_SIZE, dtype=np.int64)
    while True:
        more = known & (raw[np.minimum(cut_at + cut_len, len(raw) - 1)] - np.uint8(48) < 10)
        if not more.any():
            break
        cut_len += more
    # Bytes kept: each line but a recognised one's content address and size.
    cut_len[~known] = 0
    cut_at[~known] = starts[~known]
    runs = np.stack([cut_at - starts, cut_len, np.diff(offs) - (cut_at - starts) - cut_len], 1)
    keep = np.repeat(np.tile(np.array([True, False, True]), n), runs.ravel())
    new_offs = offs.copy()
    new_offs[1:] -= np.cumsum(cut_len).astype(np.int32)
    stripped = pa.Array.from_buffers(
        pa.string(), n, [None, pa.py_buffer(new_offs), pa.py_buffer(raw[keep])]
    )
    hashes = line_digests(stripped)
    found = pc.struct_field(pc.extract_regex(lines, _ID), [0])
    known_at = np.flatnonzero(known)
    if len(known_at) == n:
        return hashes, _joined(pc.binary_join_element_wise(found, _lit("\n"), _lit("")))[:-1]
    # Lines of another shape: decoded, and their bare lines made from the records.
    out_ids: list[bytes] = pc.cast(found, pa.binary()).to_pylist()
    for k in np.flatnonzero(~known).tolist():
        try:
            (rec,) = decode_lines(data[offs[k] : offs[k + 1]])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if "\n" in rec.id:
            return None
        line = bare_line(rec)
        hashes[k] = (xxh3_64_intdigest(line), len(line))
        out_ids[k] = rec.id.encode()
    return hashes, b"\n".join(out_ids)


# numpy views of Arrow results, made from their buffers: `np.asarray` on an Arrow
# array imports pandas (~0.25 s).
def _bools(array: Any) -> Any:
    """A null-free Arrow boolean array as a numpy bool array."""
    import numpy as np

    bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[array.offset : array.offset + len(array)].view(
        bool
    )


def _ints(array: Any) -> Any:
    """A null-free Arrow int32 array as a numpy int64 array."""
    import numpy as np

    return np.frombuffer(array.buffers()[1], dtype=np.int32)[
        array.offset : array.offset + len(array)
    ].astype(np.int64)
