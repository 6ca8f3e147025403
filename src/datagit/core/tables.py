"""Writing a table dataset back in its user's own format when its records change.

Checkout, switch, merge and reset turn the table file into the target's records.
The file the user wrote is the style to keep, as git keeps a file's untouched
lines: rows whose record is unchanged keep their exact bytes and place, changed
rows are rewritten in the file's column order, line ending and (JSON Lines)
value types, removed rows go and new rows are appended in id order.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import orjson

from datagit.core.changes import classify
from datagit.core.config import DatasetConfig
from datagit.core.layouts import render_table, table_row
from datagit.core.records import Record


def render_like(
    cfg: DatasetConfig,
    target: Mapping[str, Record],
    now: Mapping[str, Record],
    template: bytes | None,
) -> bytes:
    """The table holding ``target``, styled as ``template`` (the file as it is, holding
    ``now``); datagit's own layout when there is no file to follow."""
    if not template or not now:
        return render_table(cfg, list(target.values()))
    try:
        if cfg.table_format == "jsonl":
            return _jsonl_like(cfg, target, now, template)
        return _csv_like(cfg, target, now, template)
    except (ValueError, csv.Error, orjson.JSONDecodeError):
        return render_table(cfg, list(target.values()))  # a file we cannot follow


def _unchanged(cfg: DatasetConfig, a: Record | None, b: Record | None) -> bool:
    """The row needs no rewrite: same label, content and fields (and annotator, when the
    table has an annotator column: otherwise a commit's annotator is not in the file)."""
    if a is None or b is None or classify(a, b) is not None:
        return False
    return cfg.annotator is None or a.annotator == b.annotator


def _newline(text: str) -> str:
    end = text.find("\n")
    return "\r\n" if end > 0 and text[end - 1] == "\r" else "\n"


def _csv_like(
    cfg: DatasetConfig, target: Mapping[str, Record], now: Mapping[str, Record], template: bytes
) -> bytes:
    bom = template.startswith(b"\xef\xbb\xbf")
    text = template.decode("utf-8-sig")
    newline = _newline(text)
    lines = io.StringIO(text, newline="").readlines()  # the lines csv.reader counts
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = next(reader)
    out = ["".join(lines[: reader.line_num])]
    done: set[str] = set()
    start = reader.line_num
    rows: list[dict[str, Any]] = []
    for row in reader:
        raw = "".join(lines[start : reader.line_num])
        start = reader.line_num
        if not row:
            continue
        example_id = dict(zip(header, row, strict=False)).get(cfg.id)
        if example_id is None or example_id in done or example_id not in target:
            continue  # removed (or a row we cannot place): not in the target
        done.add(example_id)
        if _unchanged(cfg, now.get(example_id), target[example_id]):
            out.append(raw if raw.endswith(("\n", "\r")) else raw + newline)
        else:
            rows.append(table_row(cfg, target[example_id]))
            out.append("\0")  # a slot, filled below once the header is final
    new = [table_row(cfg, target[i]) for i in sorted(target) if i not in done]
    columns = list(header)
    for r in (*rows, *new):
        columns.extend(k for k in r if k not in columns)
    if columns != header:
        buf = io.StringIO()
        csv.writer(buf, lineterminator=newline).writerow(columns)
        out[0] = buf.getvalue()
    filled = iter(rows)
    body = [_csv_line(next(filled), columns, newline) if x == "\0" else x for x in out]
    body.extend(_csv_line(row, columns, newline) for row in new)
    data = "".join(body).encode()
    return b"\xef\xbb\xbf" + data if bom else data


def _csv_line(row: dict[str, Any], columns: list[str], newline: str) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerow([_cell(row.get(c, "")) for c in columns])
    return buf.getvalue()


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _jsonl_like(
    cfg: DatasetConfig, target: Mapping[str, Record], now: Mapping[str, Record], template: bytes
) -> bytes:
    newline = "\r\n" if b"\r\n" in template.split(b"\n", 1)[0] + b"\n" else "\n"
    out: list[bytes] = []
    done: set[str] = set()
    numeric_ids = False
    first: dict[str, Any] | None = None  # a new row's keys follow the file's first row
    for line in template.splitlines(keepends=True):
        if not line.strip():
            out.append(line)
            continue
        old = orjson.loads(line)
        if not isinstance(old, dict) or cfg.id not in old:
            raise ValueError("not a row")
        numeric_ids = numeric_ids or _is_int(old[cfg.id])
        first = first or old
        example_id = str(old[cfg.id])
        if example_id in done or example_id not in target:
            continue
        done.add(example_id)
        if _unchanged(cfg, now.get(example_id), target[example_id]):
            out.append(line if line.endswith((b"\n", b"\r")) else line + newline.encode())
        else:
            row = _typed(table_row(cfg, target[example_id]), cfg, numeric_ids, old)
            out.append(orjson.dumps(row) + newline.encode())
    for example_id in sorted(i for i in target if i not in done):
        row = _typed(table_row(cfg, target[example_id]), cfg, numeric_ids, first)
        out.append(orjson.dumps(row) + newline.encode())
    return b"".join(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(
    row: dict[str, Any], cfg: DatasetConfig, numeric_ids: bool, old: dict[str, Any] | None
) -> dict[str, Any]:
    """``row`` with its id as a number where the file writes ids as numbers, and its
    keys in the order the row had before (new keys last)."""
    if numeric_ids and isinstance(row.get(cfg.id), str) and row[cfg.id].lstrip("-").isdigit():
        row[cfg.id] = int(row[cfg.id])
    if old is None:
        return row
    ordered = {k: row[k] for k in old if k in row}
    ordered.update((k, v) for k, v in row.items() if k not in ordered)
    return ordered
