"""``datagit.toml``: which datasets a workspace holds and how to read them.

The file is committed with every commit, so checking out an old revision also
restores how its datasets were declared. Sections other than ``[datasets.*]``
(``[harness]``, …) belong to the layers that read them and pass through
untouched.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from datagit.core.paths import check_dataset_paths, path_problem
from datagit.errors import InvalidInputError

LAYOUTS = ("imagefolder", "table")
TABLE_FORMATS = ("csv", "jsonl", "parquet")
_SUFFIXES = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class DatasetConfig:
    """One ``[datasets.NAME]`` table."""

    name: str
    layout: str
    path: str
    id: str = "id"
    label: str = "label"
    annotator: str | None = None
    content: str | None = None  # inline content column (text datasets)
    file: str | None = None  # column of file paths, relative to the table's folder
    format: str | None = None

    @property
    def table_format(self) -> str:
        if self.format:
            return self.format
        suffix = PurePosixPath(self.path).suffix.lower()
        return _SUFFIXES.get(suffix, "csv")

    def to_toml(self) -> dict[str, Any]:
        d: dict[str, Any] = {"layout": self.layout, "path": self.path}
        if self.layout == "table":
            d.update(id=self.id, label=self.label)
            for key in ("annotator", "content", "file", "format"):
                if getattr(self, key):
                    d[key] = getattr(self, key)
        return d


@dataclass
class Config:
    """The parsed ``datagit.toml``; unknown sections are kept as they were."""

    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes | str, where: str = "datagit.toml") -> Config:
        try:
            text = data.decode() if isinstance(data, bytes) else data
            raw = tomllib.loads(text)
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"{where}: not UTF-8 ({exc.reason} at byte {exc.start})",
                hint="save datagit.toml as UTF-8",
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(
                f"{where}: {exc}", hint="fix the TOML syntax at that line"
            ) from None
        datasets = {}
        declared = raw.pop("datasets", None) or {}
        if not isinstance(declared, dict):
            raise InvalidInputError(f"{where}: [datasets] must be a table")
        for name, table in declared.items():
            datasets[name] = _dataset(name, table, where)
        check_dataset_paths(((n, d.path) for n, d in datasets.items()), where)
        return cls(datasets, raw)

    @classmethod
    def load(cls, path: Path) -> Config:
        if not path.exists():
            return cls()
        return cls.parse(path.read_bytes(), str(path.name))

    def dumps(self) -> bytes:
        raw = dict(self.extra)
        raw["datasets"] = {n: d.to_toml() for n, d in sorted(self.datasets.items())}
        import tomli_w  # only to write a config: `status` reads one

        return tomli_w.dumps(raw).encode()


def _dataset(name: str, table: Any, where: str) -> DatasetConfig:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"{where}: dataset name {name!r} is not allowed",
            hint="use letters, digits, '_', '-' and '.'",
        )
    if not isinstance(table, dict):
        raise InvalidInputError(f"{where}: [datasets.{name}] must be a table")
    layout = table.get("layout")
    if layout not in LAYOUTS:
        raise InvalidInputError(
            f"{where}: [datasets.{name}] layout {layout!r} is unknown",
            hint=f"use one of: {', '.join(LAYOUTS)}",
        )
    path = table.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidInputError(f"{where}: [datasets.{name}] needs a path")
    check_relative(path, f"{where}: [datasets.{name}] path")
    known = {"layout", "path", "id", "label", "annotator", "content", "file", "format"}
    unknown = set(table) - known
    if unknown:
        raise InvalidInputError(
            f"{where}: [datasets.{name}] has unknown key {sorted(unknown)[0]!r}",
            hint=f"known keys: {', '.join(sorted(known))}",
        )
    cfg = DatasetConfig(name=name, **{k: v for k, v in table.items()})
    if layout == "table":
        if cfg.content and cfg.file:
            raise InvalidInputError(
                f"{where}: [datasets.{name}] sets both content and file",
                hint="use content for an inline text column, file for a column of paths",
            )
        if cfg.table_format not in TABLE_FORMATS:
            raise InvalidInputError(
                f"{where}: [datasets.{name}] format {cfg.table_format!r} is not supported",
                hint="use csv, jsonl or parquet",
            )
    return cfg


def check_relative(path: str, where: str) -> None:
    """A dataset path: a safe relative path (see `datagit.core.paths`), not the root."""
    problem = path_problem(path)
    if problem:
        raise InvalidInputError(
            f"{where} {path!r} must be a relative path inside the workspace: it {problem}",
            hint="use a path relative to the folder holding datagit.toml, outside .datagit",
        )
