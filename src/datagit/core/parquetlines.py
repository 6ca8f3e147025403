"""A Parquet table's manifest lines made in bulk, with no Python object per row.

For the common table (plain typed columns, no content or file column) each
record's line is built column by column by Arrow — text between its quotes,
numbers as orjson writes them, one join per slice of rows — byte for byte the
line `Record.to_dict` through orjson gives (so diff, blame and the harness see
what a CSV or JSON Lines table of the same records gives). Python touches a row
only to hash its fields (the record's content address); the ids' shard keys are
hashed in numpy (`xxh3vec`). Anything unusual returns None, and `parquet.rows`
with `RowMaker` take over.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import orjson
from xxhash import xxh3_128_hexdigest

from datagit.core.config import DatasetConfig
from datagit.core.parquet import _is_plain, _open, _pyarrow
from datagit.core.paths import PLAIN_PATTERN, path_problem
from datagit.errors import InvalidInputError
from datagit.storage.content import address

SLICE_ROWS = 1 << 16  # lines are made this many rows at a time: ~8 MB, reused, not ~130 MB


class EncodedRows:
    """A table read in bulk and checked: its records' manifest lines (`Record.to_dict`
    through orjson, each ending in a newline) are made on demand, a slice at a time.

    It is what `manifest.write_encoded` takes. The table's own columns (~45 bytes a row
    here) are taken into shard order, and the lines (~130) are built from them slice
    by slice, so each shard's bytes are cut straight out of a slice's buffer: the lines
    never exist whole, nor twice. Every byte of fresh memory costs a page fault, and
    at a million rows the faults of three whole copies were ~1 s of system time.
    """

    def __init__(
        self,
        cfg: DatasetConfig,
        table: Any,
        ids: Any,
        order: Any,
        slice_rows: int = SLICE_ROWS,
        keys: Any = None,
    ) -> None:
        self._cfg = cfg
        self._table = table  # every row group's columns, combined into one chunk each
        self._ids = ids  # the id column as text (Arrow), in file order
        self.order = order  # numpy int64: the row holding the smallest id first
        self._keys: Any = keys
        special = {cfg.id, cfg.label, cfg.annotator}
        self._fields = [c for c in table.schema.names if c not in special]
        self.names = list(table.schema.names)
        self._digests: Any = None  # `line_digests` of every row's bare line, once made
        # A slice's lines stay well inside 32-bit offsets whatever the rows hold.
        per_row = 200 + table.nbytes // max(table.num_rows, 1)
        self._slice_rows = max(1, min(slice_rows, (256 << 20) // per_row))

    @property
    def ids(self) -> list[str]:
        """The ids, in file order (Python strings: for whoever asks, not the bulk path)."""
        return list(self._ids.to_pylist())

    def keys(self) -> Any:
        """Each id's shard key (xxh3-64 of its UTF-8 bytes, as `manifest.shard_key`), in
        file order, as a numpy uint64 array."""
        if self._keys is None:
            self._keys = _keys(self._ids)
        return self._keys

    def columns(self) -> Any:
        """The table's columns as read and checked (text as 32-bit-offset strings), in
        file order: an Arrow record batch."""
        return self._table

    def id_array(self) -> Any:
        """The ids, in file order, as an Arrow string array."""
        return self._ids

    def _lines(self, rows: Any) -> Any:
        """The lines of the rows at positions ``rows`` (numpy), as one Arrow string array."""
        pa = _pyarrow()
        at = pa.Array.from_buffers(pa.int64(), len(rows), [None, pa.py_buffer(rows)])
        return _encode(pa, self._cfg, self._table.take(at), self._fields)

    def digests(self) -> Any:
        """`line_digests` of every row's bare line (`_encode`: no content address, which
        costs Python per row), in file order: equal digests, equal lines, under one
        schema (the line map's header holds it)."""
        import numpy as np

        if self._digests is None:
            pa = _pyarrow()
            n = self._table.num_rows
            out = np.empty((n, 2), dtype=np.uint64)
            for a in range(0, n, self._slice_rows):
                part = self._table.slice(a, self._slice_rows)
                out[a : a + part.num_rows] = line_digests(
                    _encode(pa, self._cfg, part, self._fields, bare=True)
                )
            self._digests = out
        return self._digests

    def lines_at(self, rows: Any) -> bytes:
        """The lines of the rows at positions ``rows`` (numpy int64), back to back."""
        return _joined(self._lines(rows))

    def text(self) -> bytes:
        """Every line, in file order (to decode the records when they are asked for)."""
        import numpy as np

        n = self._table.num_rows
        step = self._slice_rows
        return b"".join(
            _joined(self._lines(np.arange(a, min(a + step, n), dtype=np.int64)))
            for a in range(0, n, step)
        )

    def bodies(self, order: Any, spans: list[tuple[int, int]]) -> Iterator[memoryview]:
        """The lines at positions ``order``, cut into the ``[start, end)`` spans given (which
        follow each other from 0), a slice of whole spans at a time.

        The next slice's lines are made on a thread while the caller hashes and stores
        this one's shards: Arrow's joins and hashlib's SHA-1 release the GIL. Each shard
        is a view of its slice's buffer (which it keeps alive), not a copy.
        """
        import numpy as np

        order = np.ascontiguousarray(order, dtype=np.int64)
        cuts = _slices(spans, self._slice_rows)
        with ThreadPoolExecutor(1, thread_name_prefix="datagit-lines") as pool:

            def make(cut: tuple[int, int]) -> Future[Any]:
                return pool.submit(self._lines, order[spans[cut[0]][0] : spans[cut[1] - 1][1]])

            ahead = make(cuts[0]) if cuts else None
            for n, (k, j) in enumerate(cuts):
                assert ahead is not None
                lines = ahead.result()
                ahead = make(cuts[n + 1]) if n + 1 < len(cuts) else None
                first = spans[k][0]
                _, offsets, data = lines.buffers()
                offs = np.frombuffer(offsets, dtype=np.int32)[lines.offset :]
                view = memoryview(data)
                for a, b in spans[k:j]:
                    yield view[int(offs[a - first]) : int(offs[b - first])]  # not copied


def line_digests(lines: Any) -> Any:
    """The (rows, 2) uint64 digests of an Arrow string array of lines: xxh3-64 and length.

    Vectorised (`xxh3vec`): a million lines need no Python object each. A row's digest
    is compared with its own old line's (or joined by it, `linedelta.match_lines`), so
    a collision is a 2**-64 event per changed row.
    """
    import numpy as np

    from datagit.core.xxh3vec import xxh3_64

    out = np.empty((len(lines), 2), dtype=np.uint64)
    if len(lines):
        out[:, 0] = xxh3_64(lines)
        offs = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        out[:, 1] = np.diff(offs[lines.offset : lines.offset + len(lines) + 1])
    return out


def _keys(ids: Any) -> Any:
    """`EncodedRows.keys` of an Arrow text column (null-free)."""
    from datagit.core.xxh3vec import xxh3_64

    return xxh3_64(ids)


def _slices(spans: list[tuple[int, int]], rows: int) -> list[tuple[int, int]]:
    """``spans`` grouped into runs ``spans[k:j]`` of at most ``rows`` rows (or one span)."""
    out = []
    k = 0
    while k < len(spans):
        j = k + 1
        while j < len(spans) and spans[j][1] - spans[k][0] <= rows:
            j += 1
        out.append((k, j))
        k = j
    return out


def _joined(lines: Any) -> bytes:
    """The values of a string array back to back, from its data buffer."""
    import numpy as np

    if not len(lines):
        return b""
    _, offsets, data = lines.buffers()
    offs = np.frombuffer(offsets, dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return bytes(memoryview(data)[int(offs[0]) : int(offs[-1])])


_UNREADABLE = "rewrite the file; a truncated copy loses its last row groups"


def encode_rows(
    cfg: DatasetConfig, data: bytes, slice_rows: int = SLICE_ROWS, *, eager_keys: bool = True
) -> EncodedRows | None:
    """The table read in bulk, every row checked; None when the row-by-row path must
    decide (a content or file column, a nested or typed value, text JSON must escape,
    an id outside the plain shape, a duplicate id, a missing id or label column).
    Its lines will be made at most ``slice_rows`` rows at a time. ``eager_keys``: hash
    every id's shard key now, on a thread beside the checks (a write of every row needs
    them); otherwise only if asked (a change compared in place never asks)."""
    import numpy as np

    pa = _pyarrow()
    pc = pa.compute
    pf = _open(cfg, data)
    schema = pf.schema_arrow
    names = list(schema.names)
    t = pa.types
    if (
        cfg.content
        or cfg.file
        or cfg.id not in names
        or cfg.label not in names
        or len(set(names)) != len(names)
        or not all(_is_plain(t, f) for f in schema)
        or not (t.is_string(schema.field(cfg.id).type) or t.is_integer(schema.field(cfg.id).type))
        or (cfg.annotator and cfg.annotator in names and not _is_text(t, schema, cfg.annotator))
    ):
        return None
    # One column at a time, every row group, then concatenated: the row groups' chunks
    # of a column are freed before the next is decoded into the same pages (the whole
    # file decoded, then concatenated, was 45 MB more fresh memory at a million rows).
    arrays = [_column(pa, cfg, pf, name) for name in names]
    if any(_is_text_type(pa, a.type) and _needs_escape(a) for a in arrays):
        return None  # text JSON must escape: the row-by-row path writes it
    if sum(a.nbytes for a in arrays) > _MAX_BYTES:
        return None  # past 32-bit offsets: the row-by-row path has no such limit
    # Text as 32-bit-offset strings: one type for every join (a large_string mixed in
    # would make the lines large_string too).
    arrays = [pc.cast(a, pa.string()) if _is_text_type(pa, a.type) else a for a in arrays]
    table = pa.RecordBatch.from_arrays(arrays, names=names)
    ids = pc.cast(table.column(cfg.id), pa.string())
    if ids.null_count:
        return None
    # The shard keys are hashed (numpy) on a thread while Arrow checks and sorts the ids:
    # both release the GIL.
    with ThreadPoolExecutor(1, thread_name_prefix="datagit-keys") as pool:
        keys = pool.submit(_keys, ids) if eager_keys else None
        odd = ids.filter(pc.invert(pc.match_substring_regex(ids, PLAIN_PATTERN))).to_pylist()
        if any(path_problem(i) for i in odd):  # ids outside the plain shape: one by one
            return None
        if len(ids) > 1 and pc.all(pc.less(ids[:-1], ids[1:])).as_py():
            # Already in id order (bytes order: str order), so no duplicate: a file
            # written sorted by id (the common case) is not sorted again (~0.1 s).
            at = np.arange(len(ids), dtype=np.int64)
            return EncodedRows(cfg, table, ids, at, slice_rows, keys and keys.result())
        order = pc.sort_indices(ids)  # UTF-8 bytes order: str order
        ranked = ids.take(order)
        if len(ranked) > 1 and pc.any(pc.equal(ranked[1:], ranked[:-1])).as_py():
            return None  # a duplicate id: the row-by-row read names both rows
        at = np.frombuffer(order.buffers()[1], dtype=np.int64)[order.offset :][: len(order)]
        return EncodedRows(cfg, table, ids, at, slice_rows, keys and keys.result())


def _column(pa: Any, cfg: DatasetConfig, pf: Any, name: str) -> Any:
    """Column ``name`` of every row group, as one Arrow array."""
    chunks = []
    for g in range(pf.num_row_groups):
        try:
            chunks.extend(pf.read_row_group(g, columns=[name]).column(0).chunks)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(
                f"{cfg.path} row group {g}: unreadable ({exc})", hint=_UNREADABLE
            ) from None
    if len(chunks) == 1:
        return chunks[0]
    if chunks:
        return pa.concat_arrays(chunks)  # one array: a take from chunks is ~25x slower
    return pa.nulls(0, pf.schema_arrow.field(name).type)


_MAX_BYTES = 1 << 30  # a table's columns past this take the row-by-row path


def _is_text(t: Any, schema: Any, name: str) -> bool:
    f = schema.field(name)
    return bool(t.is_string(f.type) or t.is_large_string(f.type))


_LITERALS: dict[str, Any] = {}


def _lit(s: str) -> Any:
    """``s`` as an Arrow string scalar, made from its bytes: converting a Python value
    makes pyarrow import pandas (~0.25 s) to check whether it is one of pandas' types."""
    got = _LITERALS.get(s)
    if got is None:
        import numpy as np

        pa = _pyarrow()
        raw = s.encode()
        offsets = np.array([0, len(raw)], dtype=np.int32)
        got = pa.StringArray.from_buffers(1, pa.py_buffer(offsets), pa.py_buffer(raw))[0]
        _LITERALS[s] = got
    return got


def _encode(pa: Any, cfg: DatasetConfig, table: Any, fields: list[str], bare: bool = False) -> Any:
    """The lines of ``table``'s rows (checked by `encode_rows`), as one string array.

    Each line is one Arrow join of its pieces, column by column; Python touches each
    row only to hash its fields (the record's content address). ``bare`` leaves out
    the content address and size, which the fields decide: what is left tells lines
    apart (under one schema) with no Python per row.
    """
    pc = pa.compute
    n = table.num_rows
    id_json = _pieces(pa, pc.cast(table.column(cfg.id), pa.string()))
    label = table.column(cfg.label)
    if _is_text_type(pa, label.type) and _any_empty(pc, label):
        empty = pc.equal(pc.fill_null(label, _lit("-")), _lit(""))  # a null is not empty
        label_json = [pc.if_else(empty, _lit("null"), _json(pa, label))]
    else:
        label_json = _pieces(pa, label)
    cols = {c: _pieces(pa, table.column(c)) for c in fields}
    parts: list[Any] = ['{"id":', *id_json, ',"label":', *label_json]
    if not bare and fields:
        canonical = _object(pa, sorted(fields), cols)  # content: the fields, keys sorted
        raw = pc.cast(canonical, pa.binary()).to_pylist()
        hexes = map(xxh3_128_hexdigest, raw)
        content = _fixed_text(pa, "".join(hexes).encode(), 32, n)  # Python's xxh3, in Arrow
        size = pc.cast(pc.binary_length(canonical), pa.string())
    elif not bare:
        empty = b"{}"
        content = _fixed_text(pa, address(empty).encode() * n, 32, n)
        size = _fixed_text(pa, str(len(empty)).encode() * n, len(str(len(empty))), n)
    if not bare:
        parts += [',"content":"', content, '","size":', size]
    if cfg.annotator and cfg.annotator in table.schema.names:
        a = table.column(cfg.annotator)
        if a.null_count or _any_empty(pc, a):  # some rows have none: chosen row by row
            given = _join(pa, [',"annotator":', _json(pa, a)])
            none = pc.equal(pc.fill_null(a, _lit("")), _lit(""))  # null or empty: no annotator
            parts.append(pc.if_else(none, _lit(""), given))
        else:
            parts += [',"annotator":', *_pieces(pa, a)]
    for k, name in enumerate(fields):  # the fields object, in file order
        parts += [(',"fields":{' if k == 0 else ",") + orjson.dumps(name).decode() + ":"]
        parts += cols[name]
    parts.append("}}\n" if fields else "}\n")
    return _join(pa, parts)


def _pieces(pa: Any, column: Any) -> list[Any]:
    """A column's JSON values as pieces of a join: text with no null as its quotes (which
    join the literals beside them) around the column, so no quoted copy is made."""
    if _is_text_type(pa, column.type) and not column.null_count:
        return ['"', pa.compute.cast(column, pa.string()), '"']
    return [_json(pa, column)]


def _join(pa: Any, parts: list[Any]) -> Any:
    """Per row, ``parts`` (text, and Arrow arrays of as many rows) back to back: adjacent
    text merged, then one Arrow join."""
    merged: list[Any] = []
    for p in parts:
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    args = [_lit(p) if isinstance(p, str) else p for p in merged]
    return pa.compute.binary_join_element_wise(*args, _lit(""))


def _any_empty(pc: Any, column: Any) -> bool:
    """Whether any value of a text column is the empty string (which a record stores as
    null, so those rows need a per-row choice)."""
    return bool(pc.any(pc.equal(column, _lit(""))).as_py())


def _fixed_text(pa: Any, blob: bytes, width: int, n: int) -> Any:
    """``n`` strings of ``width`` bytes laid end to end in ``blob``, as an Arrow string array."""
    import numpy as np

    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)  # no casts: one array
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(blob))


def _is_text_type(pa: Any, t: Any) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


_ESCAPED = re.compile(rb'[\x00-\x1f"\\]')  # what orjson escapes in a string


def _needs_escape(column: Any) -> bool:
    """Whether any text in ``column`` holds what JSON escapes (``"``, ``\\``, a control
    character; orjson escapes nothing else), checked over its bytes in one scan (numpy's
    comparisons made three temporary arrays as large as the text). Bytes a sliced column
    does not use may be checked too: that only costs the slow path."""
    data = column.buffers()[2]
    return data is not None and _ESCAPED.search(memoryview(data)) is not None


def _json(pa: Any, column: Any) -> Any:
    """A plain column (text checked by `_needs_escape`) as the text orjson writes for
    each value, as an Arrow string array."""
    import numpy as np

    pc = pa.compute
    t = pa.types
    n = len(column)
    if _is_text_type(pa, column.type):
        quoted = pc.binary_join_element_wise(
            _lit('"'), pc.cast(column, pa.string()), _lit('"'), _lit("")
        )
        return pc.fill_null(quoted, _lit("null"))
    if t.is_null(column.type):
        return _fixed_text(pa, b"null" * n, 4, n)
    if t.is_boolean(column.type):
        return pc.fill_null(pc.if_else(column, _lit("true"), _lit("false")), _lit("null"))
    if t.is_integer(column.type):
        return pc.fill_null(pc.cast(column, pa.string()), _lit("null"))
    # Floats: orjson's own shortest form (a missing value and NaN both write null), cut
    # at its commas into an Arrow array by numpy: no Python object per value.
    values = pc.cast(column, pa.float64())
    if values.null_count:
        values = pc.fill_null(values, _nan(pa))
    floats = np.frombuffer(values.buffers()[1], dtype=np.float64)[values.offset : values.offset + n]
    text = orjson.dumps(floats, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
    if not n:
        return _fixed_text(pa, b"", 0, 0)
    raw = np.frombuffer(text, dtype=np.uint8)
    comma = raw == 0x2C
    offsets = np.empty(n + 1, dtype=np.int32)
    offsets[0] = 0
    offsets[1:n] = np.flatnonzero(comma) + 1 - np.arange(1, n, dtype=np.int64)
    offsets[n] = len(raw) - (n - 1)
    body = raw[~comma].tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(body))


def _nan(pa: Any) -> Any:
    """NaN as an Arrow scalar, made from its bytes (see `_lit`)."""
    import numpy as np

    return pa.Array.from_buffers(pa.float64(), 1, [None, pa.py_buffer(np.array([np.nan]))])[0]


def _object(pa: Any, names: list[str], cols: dict[str, list[Any]]) -> Any:
    """Per row, the JSON object of ``names`` (in that order) from their `_pieces`."""
    parts: list[Any] = []
    for k, name in enumerate(names):
        parts.append(("{" if k == 0 else ",") + orjson.dumps(name).decode() + ":")
        parts += cols[name]
    return _join(pa, [*parts, "}"])
