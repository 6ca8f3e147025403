"""Label cells rewritten in place: only the named rows' label (and annotator) change."""

from __future__ import annotations

import orjson
import pytest

from datagit.core.config import DatasetConfig
from datagit.core.relabel import table_with_labels
from datagit.errors import InvalidInputError

CSV = DatasetConfig(name="t", layout="table", path="t.csv", id="id", label="label")


def test_csv_keeps_everything_else() -> None:
    data = b'id,text,label\r\na,"x, y",cat\r\nb,z,\r\n'
    out = table_with_labels(CSV, data, {"b": "dog"}, None)
    assert out == b'id,text,label\r\na,"x, y",cat\r\nb,z,dog\r\n'


def test_csv_annotator_column_is_added_when_missing() -> None:
    cfg = DatasetConfig(
        name="t", layout="table", path="t.csv", id="id", label="label", annotator="who"
    )
    out = table_with_labels(cfg, b"id,label\na,cat\nb,\n", {"b": "dog"}, "model:1")
    assert out == b"id,label,who\na,cat,\nb,dog,model:1\n"


def test_jsonl_rows() -> None:
    cfg = DatasetConfig(name="t", layout="table", path="t.jsonl", id="id", label="label")
    data = b'{"id":"a","label":1}\n{"id":"b","label":null,"f":2}\n'
    out = table_with_labels(cfg, data, {"b": 3}, None)
    assert [orjson.loads(x) for x in out.splitlines()][1] == {"id": "b", "label": 3, "f": 2}
    assert out.splitlines()[0] == b'{"id":"a","label":1}'


def test_missing_row() -> None:
    with pytest.raises(InvalidInputError, match=r"t\.csv: no row with id = 'zz'"):
        table_with_labels(CSV, b"id,label\na,cat\n", {"zz": "dog"}, None)
