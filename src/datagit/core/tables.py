"""The table layout: CSV, JSON Lines or Parquet files whose rows are examples.

The config names the id, label, annotator and content (inline text) or file (a
column of paths) columns; every other column is kept in the record's fields.
Each row's line span is reported with its record, so that `core/tablesnap.py`
can later re-parse only the lines a change touched.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from datagit.core.config import DatasetConfig
from datagit.core.layouts import Hasher, _check_link, workspace_missing
from datagit.core.records import Record, validate_id
from datagit.errors import InvalidInputError
from datagit.storage.content import address


def scan_table(cfg: DatasetConfig, hasher: Hasher) -> list[Record]:
    data = read_table_bytes(cfg, hasher.workdir)
    if data is None:
        return []  # an empty dataset, like a missing image folder
    return [r for r, _first, _last in table_records(cfg, data, hasher)]


def read_table_bytes(cfg: DatasetConfig, workdir: Path) -> bytes | None:
    """A table file's bytes, or None when it is absent (an empty dataset)."""
    path = workdir / cfg.path
    _check_link(str(path), cfg.path, os.path.realpath(workdir))
    if workspace_missing(cfg, workdir):
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {cfg.path}: {exc.strerror or exc}") from None


def table_records(
    cfg: DatasetConfig, data: bytes, hasher: Hasher, maker: RowMaker | None = None
) -> Iterator[tuple[Record, int, int]]:
    """(record, first line, last line) of every row of a table file's bytes.

    The line span lets a caller map a single-line row's raw bytes to its id
    (`core/tables.py`), so that a later change re-parses only the rows it touched.
    """
    if cfg.table_format == "csv":
        rows = _csv_spans(cfg, data)
    elif cfg.table_format == "parquet":
        from datagit.core import parquet

        rows = parquet.rows(cfg, data)
    else:
        rows = ((n, n, row) for n, row in _jsonl_rows(cfg, data))
    maker = maker or RowMaker(cfg, hasher)
    seen: dict[str, int] = {}
    for first, last, row in rows:
        rec = maker(row, last)
        if rec.id in seen:
            raise InvalidInputError(
                f"{cfg.path} {maker.unit} {last}: duplicate id {rec.id!r} "
                f"(first on {maker.unit} {seen[rec.id]})",
                hint="ids must be unique within a dataset",
            )
        seen[rec.id] = last
        yield rec, first, last
    if seen and not maker.labelled:
        _no_label_column(cfg, cfg.path)


def _no_label_column(cfg: DatasetConfig, where: str) -> None:
    raise InvalidInputError(
        f"{where}: no {cfg.label!r} column",
        hint='set `label = "COLUMN"` for this dataset in datagit.toml '
        "(an empty value, or null in JSON Lines, means no label)",
    )


class RowMaker:
    """One table row (a dict of columns) → its record, with every rule checked."""

    def __init__(self, cfg: DatasetConfig, hasher: Hasher) -> None:
        self.cfg = cfg
        self.hasher = hasher
        self.real_workdir = os.path.realpath(hasher.workdir)
        self.table_dir = Path(cfg.path).parent
        self.special = {cfg.id, cfg.label, cfg.annotator, cfg.content, cfg.file}
        self.unit = "row" if cfg.table_format == "parquet" else "line"
        self.stats: dict[str, tuple[int, int, int]] = {}  # files the rows name → stat
        self.labelled = False  # a JSON Lines row may omit its label (null), but not every row
        self._last = (b"", address(b""))  # the last row's other columns, and their address

    def __call__(self, row: dict[str, Any], line: int) -> Record:
        cfg = self.cfg
        where = f"{cfg.path} {self.unit} {line}"
        if cfg.id not in row:
            raise InvalidInputError(
                f"{where}: no {cfg.id!r} column",
                hint='set `id = "COLUMN"` for this dataset in datagit.toml',
            )
        example_id = validate_id(str(row[cfg.id]), where)
        if cfg.label not in row:
            if cfg.table_format != "jsonl":
                _no_label_column(cfg, where)  # a typo'd name must not read as "no labels"
        else:
            self.labelled = True
        label = row.get(cfg.label)
        annotator = row.get(cfg.annotator) if cfg.annotator else None
        # A few classes and annotators repeat over every row: one string each, not
        # 100,000 (~11 MiB of a 100,000-row table's records).
        if type(label) is str:
            label = sys.intern(label)
        if type(annotator) is str:
            annotator = sys.intern(annotator)
        special = self.special
        fields = {k: v for k, v in row.items() if k not in special}
        text = None
        source = None
        if cfg.content:
            text = "" if row.get(cfg.content) is None else str(row[cfg.content])
            raw = text.encode()
            key, size = address(raw), len(raw)
        elif cfg.file:
            source, key, size = self._file(row, where)
        else:
            raw = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
            if raw != self._last[0]:  # rows without other columns share one address
                self._last = (raw, address(raw))
            key, size = self._last[1], len(raw)
        return Record(
            example_id,
            None if label == "" else label,
            key,
            size,
            annotator=str(annotator) if annotator not in (None, "") else None,
            source=source,
            text=text,
            fields=fields or None,
        )

    def _file(self, row: dict[str, Any], where: str) -> tuple[str, str, int]:
        cfg = self.cfg
        rel = row.get(cfg.file)  # type: ignore[arg-type]
        if not rel:
            raise InvalidInputError(f"{where}: empty {cfg.file!r} path")
        validate_id(str(rel), where)
        source = (self.table_dir / str(rel)).as_posix()
        workdir = self.hasher.workdir
        _check_link(str(workdir / source), f"{where}: {source}", self.real_workdir)
        try:
            st = os.stat(workdir / source)
        except OSError as exc:
            raise InvalidInputError(
                f"{where}: cannot read {source}: {exc.strerror or exc}",
                hint="fix the path in the table or add the file",
            ) from None
        self.stats[source] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return source, self.hasher.file(source, st), st.st_size


def _csv_rows(cfg: DatasetConfig, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs, streamed so a million-row table never exists as dicts."""
    for _first, last, row in _csv_spans(cfg, data):
        yield last, row


def _csv_spans(cfg: DatasetConfig, data: bytes) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(first line, last line, row) of each row: a quoted newline spans lines."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{cfg.path}: not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return
        before = reader.line_num
        for row in reader:
            first, before = before + 1, reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise InvalidInputError(
                    f"{cfg.path} line {reader.line_num}: expected {len(header)} fields, "
                    f"got {len(row)}",
                    hint="quote values that contain commas, or fix the row",
                )
            yield first, reader.line_num, dict(zip(header, row, strict=True))
    except csv.Error as exc:
        raise InvalidInputError(
            f"{cfg.path} line {reader.line_num}: malformed CSV ({exc})",
            hint="fix the quoting on that line",
        ) from None


def _jsonl_rows(cfg: DatasetConfig, data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(
                f"{cfg.path} line {n}: malformed JSON ({exc})", hint="fix that line"
            ) from None
        if not isinstance(row, dict):
            raise InvalidInputError(f"{cfg.path} line {n}: expected a JSON object")
        yield n, row


def check_columns(cfg: DatasetConfig, workdir: Path) -> None:
    """Refuse a table declaration naming a column its file lacks (checked when declared,
    not at the next `status`); a table file that does not exist yet is not checked."""
    if cfg.layout != "table" or workspace_missing(cfg, workdir):
        return
    try:
        data = (workdir / cfg.path).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {cfg.path}: {exc.strerror or exc}") from None
    columns: list[str] = []
    if cfg.table_format == "parquet":
        from datagit.core import parquet

        columns = parquet.columns(cfg, data)
    elif cfg.table_format == "csv":
        for _, row in _csv_rows(cfg, data):
            columns = list(row)
            break
        if not columns:  # a header and no rows: the header is all there is
            first = data.decode("utf-8-sig", "replace").splitlines()[:1]
            columns = next(csv.reader(first), []) if first else []
    else:
        for _, row in _jsonl_rows(cfg, data):
            columns.extend(k for k in row if k not in columns)
    if not columns:
        return  # an empty table names no columns yet
    named = [("id", cfg.id), ("label", cfg.label), ("annotator", cfg.annotator)]
    named += [("content", cfg.content), ("file", cfg.file)]
    for option, column in named:
        if column is not None and column not in columns:
            raise InvalidInputError(
                f"{cfg.path} has no column {column!r} (--{option} {column})",
                hint=f"its columns: {', '.join(columns)}",
            )


def table_row(cfg: DatasetConfig, r: Record) -> dict[str, Any]:
    """The columns of one record as its table file holds them."""
    row: dict[str, Any] = {cfg.id: r.id, cfg.label: "" if r.label is None else r.label}
    if cfg.annotator:
        row[cfg.annotator] = r.annotator or ""
    if cfg.content:
        row[cfg.content] = r.text or ""
    if cfg.file and r.source:
        row[cfg.file] = os.path.relpath(r.source, Path(cfg.path).parent.as_posix() or ".")
    row.update(r.fields or {})
    return row


def render_table(cfg: DatasetConfig, records: list[Record]) -> bytes:
    """The table file for ``records`` (used by checkout)."""
    records = sorted(records, key=lambda r: r.id)
    rows = [table_row(cfg, r) for r in records]
    if cfg.table_format == "parquet":
        from datagit.core import parquet

        return parquet.render(cfg, rows)
    if cfg.table_format == "jsonl":
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    header: list[str] = []
    for row in rows:
        for k in row:
            if k not in header:
                header.append(k)
    if not header:
        header = [cfg.id, cfg.label]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def render_line(cfg: DatasetConfig, header: list[str] | None, r: Record) -> bytes | None:
    """One record as one line of a CSV (under ``header``) or JSONL table, without its
    newline; None when it cannot be one (a column the header lacks, a quoted newline)."""
    row = table_row(cfg, r)
    if header is None:
        return orjson.dumps(row)
    if any(k not in header for k in row):
        return None
    buf = io.StringIO()
    csv.DictWriter(buf, header, lineterminator="\n").writerow(row)
    line = buf.getvalue().encode()[:-1]
    return None if b"\n" in line or b"\r" in line else line
