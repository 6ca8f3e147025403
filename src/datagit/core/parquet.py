"""Parquet tables, through pyarrow (the optional ``parquet`` extra).

Rows become records exactly as CSV and JSON Lines rows do (`tables.RowMaker`),
so diff, blame, merge and the harness see no difference. The file is decoded
one row group at a time, so a million-row table never exists as Python dicts
all at once. pyarrow is imported only when a Parquet table is read or written.

`encode_rows` is the bulk path for the common table (plain typed columns, no
content or file column): each record's manifest line is built column by column
— every value encoded by orjson in one call per column, the lines joined in C —
so no row becomes a dict or a `Record`. Anything else, or any doubt (an id that
needs the careful check, a duplicate), takes `rows` and `RowMaker`, which name
the row at fault.
"""

from __future__ import annotations

import base64
import datetime
import decimal
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
from xxhash import xxh3_128_hexdigest

from datagit.core.config import DatasetConfig
from datagit.core.paths import PLAIN_PATTERN, path_problem
from datagit.errors import InvalidInputError
from datagit.storage.content import address

_PLAIN = (str, int, float, bool, type(None))


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise InvalidInputError(
            "Parquet tables need pyarrow, which is not installed",
            hint="install it with `pip install 'datagit[parquet]'`",
        ) from None
    return pyarrow


def columns(cfg: DatasetConfig, data: bytes) -> list[str]:
    """The file's column names, from its footer (no row group is read)."""
    pa = _pyarrow()
    try:
        return list(pa.parquet.ParquetFile(pa.BufferReader(data)).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(
            f"{cfg.path}: not a readable Parquet file ({exc})",
            hint="rewrite it with pyarrow or pandas, or fix the path in datagit.toml",
        ) from None


def _open(cfg: DatasetConfig, data: bytes) -> Any:
    pa = _pyarrow()
    try:
        return pa.parquet.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(
            f"{cfg.path}: not a readable Parquet file ({exc})",
            hint="rewrite it with pyarrow or pandas, or fix the path in datagit.toml",
        ) from None


def _is_plain(t: Any, f: Any) -> bool:
    """A column whose pyarrow values are JSON values already (no per-value conversion)."""
    return bool(
        t.is_string(f.type)
        or t.is_large_string(f.type)
        or t.is_integer(f.type)
        or t.is_floating(f.type)
        or t.is_boolean(f.type)
        or t.is_null(f.type)
    )


def rows(cfg: DatasetConfig, data: bytes) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(row number, row number, row) of each row, numbered from 1, one row group at a time."""
    pa = _pyarrow()
    pf = _open(cfg, data)
    groups = pf.num_row_groups
    plain = all(_is_plain(pa.types, f) for f in pf.schema_arrow)
    n = 0
    for g in range(groups):
        try:
            batch = pf.read_row_group(g).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(
                f"{cfg.path} row group {g}: unreadable ({exc})",
                hint="rewrite the file; a truncated copy loses its last row groups",
            ) from None
        for row in batch:
            n += 1
            yield n, n, row if plain else {k: _plain(v) for k, v in row.items()}


class EncodedRows(NamedTuple):
    """A table's records as manifest lines (`Record.to_dict` through orjson, each ending in
    a newline), in file order as one Arrow array, and the permutation sorting them by id.

    It is what `manifest.write_encoded` takes: shards are cut out of the lines taken in
    shard order by Arrow, so no line becomes a Python object.
    """

    ids: list[str]
    lines: Any  # pyarrow large_string array
    order: Any  # numpy array: ids[order[0]] is the smallest id

    def text(self) -> bytes:
        """Every line, in file order (to decode the records when they are asked for)."""
        return _joined(self.lines)

    def bodies(self, order: Any, spans: list[tuple[int, int]]) -> Iterator[bytes]:
        """The lines at positions ``order``, cut into the ``[start, end)`` spans given."""
        taken = self.lines.combine_chunks().take(order)  # one array: ~10x a chunked take
        for start, end in spans:
            yield _joined(taken.slice(start, end - start))


def _joined(lines: Any) -> bytes:
    """The values of a (chunked) large_string array back to back, from its data buffer."""
    import numpy as np

    out = []
    for chunk in getattr(lines, "chunks", [lines]):
        if not len(chunk):
            continue
        _, offsets, data = chunk.buffers()
        offs = np.frombuffer(offsets, dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
        out.append(memoryview(data)[int(offs[0]) : int(offs[-1])])
    return b"".join(out)


def encode_rows(cfg: DatasetConfig, data: bytes) -> EncodedRows | None:
    """Every row's manifest line, built column by column; None when the row-by-row path
    must decide (a content or file column, a nested or typed value, an id outside the
    plain shape, a duplicate id, a missing id or label column)."""
    pa = _pyarrow()
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
    special = {cfg.id, cfg.label, cfg.annotator}
    fields = [c for c in names if c not in special]
    lines: list[Any] = []
    id_chunks = []
    for g in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(g)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(
                f"{cfg.path} row group {g}: unreadable ({exc})",
                hint="rewrite the file; a truncated copy loses its last row groups",
            ) from None
        got = _encode_group(pa, cfg, table, fields)
        if got is None:
            return None
        id_chunks.extend(got[0].chunks)
        lines.append(got[1])
    all_ids = pa.concat_arrays(id_chunks) if id_chunks else pa.array([], pa.string())
    order = pa.compute.sort_indices(all_ids)  # UTF-8 bytes order: str order
    ids = all_ids.take(order)
    if len(ids) > 1 and pa.compute.any(pa.compute.equal(ids[1:], ids[:-1])).as_py():
        return None  # a duplicate id: the row-by-row read names both rows
    text = pa.chunked_array(lines, pa.large_string())
    return EncodedRows(_pylist(all_ids), text, order.to_numpy())


def _is_text(t: Any, schema: Any, name: str) -> bool:
    f = schema.field(name)
    return bool(t.is_string(f.type) or t.is_large_string(f.type))


def _encode_group(
    pa: Any, cfg: DatasetConfig, table: Any, fields: list[str]
) -> tuple[Any, Any] | None:
    """One row group's (ids as an Arrow array, manifest lines); None to take the careful path.

    The lines are concatenated by Arrow, column by column; Python touches each row only
    to hash its fields (the record's content address).
    """
    pc = pa.compute
    n = table.num_rows
    ids = pc.cast(table.column(cfg.id), pa.string())
    if ids.null_count:
        return None
    odd = ids.filter(pc.invert(pc.match_substring_regex(ids, PLAIN_PATTERN))).to_pylist()
    if any(path_problem(i) for i in odd):  # ids outside the plain shape: checked one by one
        return None
    id_json = _json(pa, ids)
    label = table.column(cfg.label)
    label_json = _json(pa, label)
    if label_json is None or id_json is None:
        return None
    if _is_text_type(pa, label.type) and _any_empty(pc, label):
        label_json = pc.if_else(pc.fill_null(pc.equal(label, ""), False), "null", label_json)
    cols = {c: _json(pa, table.column(c)) for c in fields}
    if any(v is None for v in cols.values()):
        return None
    # One join builds every line: each pre-joined piece (a fields object, an annotator
    # pair) was another pass copying ~100 bytes a row.
    if fields:
        canonical = _object(pa, sorted(fields), cols)  # content: the fields, keys sorted
        hexes = map(xxh3_128_hexdigest, _pylist(pc.cast(canonical, pa.binary())))
        content = _fixed_text(pa, "".join(hexes).encode(), 32, n)  # Python's xxh3, in Arrow
        size = pc.cast(pc.binary_length(canonical), pa.string())
    else:
        empty = b"{}"
        content = _fixed_text(pa, address(empty).encode() * n, 32, n)
        size = _fixed_text(pa, str(len(empty)).encode() * n, len(str(len(empty))), n)
    parts: list[Any] = ['{"id":', id_json, ',"label":', label_json, ',"content":"', content]
    parts += ['","size":', size]
    if cfg.annotator and cfg.annotator in table.column_names:
        a = table.column(cfg.annotator)
        a_json = _json(pa, a)
        if a_json is None:
            return None
        if a.null_count or _any_empty(pc, a):  # some rows have none: chosen row by row
            given = pc.binary_join_element_wise(',"annotator":', a_json, "")
            parts.append(pc.if_else(pc.fill_null(pc.equal(a, ""), True), "", given))
        else:
            parts += [',"annotator":', a_json]
    for k, name in enumerate(fields):  # the fields object, in file order
        parts += [(',"fields":{' if k == 0 else ",") + orjson.dumps(name).decode() + ":"]
        parts.append(cols[name])
    parts.append("}}\n" if fields else "}\n")
    line = pc.binary_join_element_wise(*parts, "")
    return ids, pc.cast(line, pa.large_string())


def _any_empty(pc: Any, column: Any) -> bool:
    """Whether any value of a text column is the empty string (which a record stores as
    null, so those rows need a per-row choice)."""
    return bool(pc.any(pc.equal(column, "")).as_py())


def _fixed_text(pa: Any, blob: bytes, width: int, n: int) -> Any:
    """``n`` strings of ``width`` bytes laid end to end in ``blob``, as an Arrow string array."""
    import numpy as np

    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)  # no casts: one array
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(blob))


def _is_text_type(pa: Any, t: Any) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _needs_escape(column: Any) -> bool:
    """Whether any text in ``column`` holds what JSON escapes (``"``, ``\\``, a control
    character; orjson escapes nothing else), checked over its bytes in one numpy pass.
    Bytes a sliced column does not use may be checked too: that only costs the slow path."""
    import numpy as np

    data = column.buffers()[2]
    if data is None:
        return False
    raw = np.frombuffer(data, dtype=np.uint8)
    return bool(((raw < 0x20) | (raw == 0x22) | (raw == 0x5C)).any())


def _json(pa: Any, column: Any) -> Any:
    """A plain column as the text orjson writes for each value (an Arrow string array);
    None for text that needs escaping (the row-by-row path writes it)."""
    pc = pa.compute
    t = pa.types
    column = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    if _is_text_type(pa, column.type):
        if _needs_escape(column):
            return None
        quoted = pc.binary_join_element_wise('"', pc.cast(column, pa.string()), '"', "")
        return pc.fill_null(quoted, "null")
    if t.is_null(column.type):
        return pa.array(["null"] * len(column), pa.string())
    if t.is_boolean(column.type):
        return pc.fill_null(pc.if_else(column, "true", "false"), "null")
    if t.is_integer(column.type):
        return pc.fill_null(pc.cast(column, pa.string()), "null")
    # Floats: orjson's own shortest form (a missing value and NaN both write null).
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
    return pa.array(text.split(b",") if len(values) else [], pa.string())


def _pylist(column: Any) -> list[Any]:
    """A column's values as Python objects through numpy (one C loop); pyarrow's own
    (one object per value) only when there are nulls."""
    if column.null_count:
        return list(column.to_pylist())
    return list(column.to_numpy(zero_copy_only=False).tolist())


def _object(pa: Any, names: list[str], cols: dict[str, Any]) -> Any:
    """Per row, the JSON object of ``names`` (in that order) from their encoded values."""
    parts: list[Any] = []
    for k, name in enumerate(names):
        parts.append(("{" if k == 0 else ",") + orjson.dumps(name).decode() + ":")
        parts.append(cols[name])
    return pa.compute.binary_join_element_wise(*parts, "}", "")


def _plain(value: Any) -> Any:
    """A Parquet value as a JSON value (records are JSON Lines): dates and decimals as
    text, bytes as base64, lists and structs element by element."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return str(value) if isinstance(value, datetime.timedelta) else value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


def render(cfg: DatasetConfig, table_rows: list[dict[str, Any]]) -> bytes:
    """A Parquet file holding ``table_rows`` (checkout of a Parquet table)."""
    pa = _pyarrow()
    columns: list[str] = []
    for row in table_rows:
        columns.extend(k for k in row if k not in columns)
    if not columns:
        columns = [cfg.id, cfg.label]
    table = pa.table({c: [row.get(c) for row in table_rows] for c in columns})
    sink = pa.BufferOutputStream()
    pa.parquet.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())
