"""Label edits written into a table file, keeping everything else the user wrote.

`relabel` changes an image folder's labels by moving files between class
folders; a table's labels live in cells, so this rewrites only the label (and
annotator) cells of the rows named, leaving column order, other rows and
other columns as they were.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import orjson

from datagit.core.config import DatasetConfig
from datagit.core.records import Label
from datagit.errors import InvalidInputError


def table_with_labels(
    cfg: DatasetConfig, data: bytes, labels: Mapping[str, Label], annotator: str | None
) -> bytes:
    """``data`` (the table file) with the label cell of each id in ``labels`` replaced."""
    if cfg.table_format == "jsonl":
        return _jsonl(cfg, data, labels, annotator)
    return _csv(cfg, data, labels, annotator)


def _missing(cfg: DatasetConfig, ids: set[str]) -> InvalidInputError:
    first = sorted(ids)[0]
    return InvalidInputError(
        f"{cfg.path}: no row with {cfg.id} = {first!r}",
        hint="the table changed since it was staged: `datagit add` it and try again",
    )


def _csv(
    cfg: DatasetConfig, data: bytes, labels: Mapping[str, Label], annotator: str | None
) -> bytes:
    text = data.decode("utf-8-sig")
    newline = "\r\n" if "\r\n" in text else "\n"
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise _missing(cfg, set(labels))
    header = rows[0]
    id_col, label_col = header.index(cfg.id), _column(header, cfg.label)
    ann_col = _column(header, cfg.annotator) if cfg.annotator and annotator else None
    for row in rows[1:]:
        for col in (label_col, ann_col):
            while col is not None and len(row) <= col:
                row.append("")  # a column added just now
    left = set(labels)
    for row in rows[1:]:
        if row and row[id_col] in labels:
            row[label_col] = _cell(labels[row[id_col]])
            if ann_col is not None:
                row[ann_col] = annotator or ""
            left.discard(row[id_col])
    if left:
        raise _missing(cfg, left)
    buf = io.StringIO()
    csv.writer(buf, lineterminator=newline).writerows(rows)
    return buf.getvalue().encode()


def _column(header: list[str], name: str) -> int:
    if name not in header:
        header.append(name)
    return header.index(name)


def _cell(label: Label) -> str:
    return label if isinstance(label, str) else orjson.dumps(label).decode()


def _jsonl(
    cfg: DatasetConfig, data: bytes, labels: Mapping[str, Label], annotator: str | None
) -> bytes:
    out = []
    left = set(labels)
    for line in data.splitlines(keepends=True):
        row: Any = orjson.loads(line) if line.strip() else None
        key = str(row.get(cfg.id)) if isinstance(row, dict) else None
        if key is not None and key in labels:
            row[cfg.label] = labels[key]
            if cfg.annotator and annotator:
                row[cfg.annotator] = annotator
            end = b"\r\n" if line.endswith(b"\r\n") else b"\n" if line.endswith(b"\n") else b""
            line = orjson.dumps(row) + end
            left.discard(key)
        out.append(line)
    if left:
        raise _missing(cfg, left)
    return b"".join(out)
