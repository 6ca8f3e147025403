"""datagit.toml: datasets parse, round-trip, keep foreign sections, and bad ones say where."""

from __future__ import annotations

from pathlib import Path

import pytest

from datagit.core.config import Config, DatasetConfig
from datagit.errors import InvalidInputError

TOML = """
[harness]
model = "mlp"
epochs = 3

[datasets.train]
layout = "imagefolder"
path = "data/train"

[datasets.reviews]
layout = "table"
path = "reviews.jsonl"
id = "rid"
label = "sentiment"
content = "text"
annotator = "rater"
"""


def test_parse_and_round_trip_keeps_other_sections() -> None:
    cfg = Config.parse(TOML)
    assert cfg.datasets["train"] == DatasetConfig("train", "imagefolder", "data/train")
    r = cfg.datasets["reviews"]
    assert (r.id, r.label, r.content, r.annotator, r.file) == (
        "rid",
        "sentiment",
        "text",
        "rater",
        None,
    )
    assert r.table_format == "jsonl"
    assert cfg.extra == {"harness": {"model": "mlp", "epochs": 3}}
    again = Config.parse(cfg.dumps())
    assert again == cfg


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [
        ("a.csv", None, "csv"),
        ("a.JSONL", None, "jsonl"),
        ("a.ndjson", None, "jsonl"),
        ("a.txt", "jsonl", "jsonl"),
        ("a.tsv", None, "csv"),
    ],
)
def test_table_format(path: str, fmt: str | None, expected: str) -> None:
    assert DatasetConfig("t", "table", path, format=fmt).table_format == expected


def test_load_missing_file_is_empty(tmp_path: Path) -> None:
    assert Config.load(tmp_path / "datagit.toml") == Config()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('[datasets."bad name"]\nlayout="table"\npath="a.csv"', "name 'bad name'"),
        ('[datasets.t]\nlayout="parquet-ish"\npath="a"', "layout 'parquet-ish' is unknown"),
        ('[datasets.t]\nlayout="table"', "needs a path"),
        ('[datasets.t]\nlayout="table"\npath="/etc/a.csv"', "relative path"),
        ('[datasets.t]\nlayout="table"\npath="../a.csv"', "relative path"),
        ('[datasets.t]\nlayout="table"\npath="a.csv"\ncolour="red"', "unknown key 'colour'"),
        ('[datasets.t]\nlayout="table"\npath="a.csv"\ncontent="x"\nfile="y"', "both content"),
        ('[datasets.t]\nlayout="table"\npath="a.csv"\nformat="xlsx"', "'xlsx' is not supported"),
        ("datasets = 3 = 4", "datagit.toml"),
        ("[datasets]\nt = 1", "must be a table"),
    ],
)
def test_bad_config_names_the_file_and_dataset(body: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as exc:
        Config.parse(body)
    assert str(exc.value).startswith("datagit.toml")
    assert "\n" not in str(exc.value)
