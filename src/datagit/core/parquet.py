"""Parquet tables, through pyarrow (the optional ``parquet`` extra).

Rows become records exactly as CSV and JSON Lines rows do (`tables.RowMaker`),
so diff, blame, merge and the harness see no difference. The file is decoded
one row group at a time, so a million-row table never exists as Python dicts
all at once. pyarrow is imported only when a Parquet table is read or written.

`parquetlines.encode_rows` is the bulk path for the common table (plain typed
columns, no content or file column). Anything else, or any doubt (an id that
needs the careful check, a duplicate), takes `rows` and `RowMaker`, which name
the row at fault.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import os
import sys
from collections.abc import Iterator
from typing import Any

from datagit import process
from datagit.core.config import DatasetConfig
from datagit.errors import InvalidInputError

_PLAIN = (str, int, float, bool, type(None))


# Arrow's allocator (mimalloc) hands freed pages back to the kernel 10 ms after they
# fall idle, so each slice of lines re-faulted (and the kernel re-zeroed) the pages the
# last one freed: ~0.3 s of system time for a million rows. Read when pyarrow loads; a
# value the user set wins.
_MIMALLOC_ENV = ("MIMALLOC_PURGE_DELAY", "1000")
# numpy's OpenBLAS starts a spinning thread per core when numpy loads (pyarrow loads it),
# ~0.05-0.1 s of CPU taken from the bulk read's own threads; nothing here multiplies
# matrices. Set only when numpy is not loaded yet, and a value the user set wins.
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "1")
# glibc's malloc, likewise, unmaps or trims the buffers a slice of lines frees (numpy's
# arrays, Python's per-row objects), so the next slice faults fresh zeroed pages again:
# ~30,000 page faults and 0.2-0.4 s of system time in a million-row first commit.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)


def _keep_freed_memory() -> None:
    """Have glibc keep freed buffers (up to 32 MB each, 128 MB in all) for reuse."""
    if sys.platform != "linux":
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 << 20)
    except (OSError, AttributeError):  # another C library: its own ways, left alone
        pass


def _prepare() -> list[str]:
    """Settings read when pyarrow and numpy load: this module loads (lazily) for a
    Parquet table, before either. Only in a process datagit owns (the CLI): in a
    library user's process they would slow the user's own numpy. Returns the BLAS
    variable if it set it, which `_pyarrow` takes back once numpy has loaded (OpenBLAS
    reads it when its library loads), so that the processes a command starts (a
    bisect's script) do not inherit it; mimalloc's may be read later, and only changes
    how soon freed pages go back, so it stays."""
    if not process.owned():
        return []
    if "pyarrow" not in sys.modules:
        os.environ.setdefault(*_MIMALLOC_ENV)
    set_here = []
    if "numpy" not in sys.modules and _BLAS_ENV[0] not in os.environ:
        os.environ[_BLAS_ENV[0]] = _BLAS_ENV[1]
        set_here.append(_BLAS_ENV[0])
    _keep_freed_memory()
    return set_here


_set_here = _prepare()


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
    while _set_here:  # pyarrow has loaded numpy, and with it OpenBLAS: no longer needed
        os.environ.pop(_set_here.pop(), None)
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
