"""Records: one example each — id, label, content address, and who labelled it.

A record is the unit datagit versions. Its JSON form is one line of a shard in
the manifest, so the encoding here is the on-disk format: keep it stable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from datagit.core.paths import path_problem
from datagit.errors import InvalidInputError

Label = Any  # a string, number, bool, None or a JSON value
MACHINE_PREFIX = "model:"  # the annotator of labels a model wrote: ``model:<run id>``
SAME_CONTENT = "="  # in an upsert: keep the content of the record it replaces (a move)


@dataclass(slots=True)  # not frozen: frozen init costs 5× and records are made by the million
class Record:
    """One example of a dataset.

    ``content`` is the xxh3-128 address of the example's bytes; for an inline
    text row the bytes are ``text`` itself (UTF-8) and no store lookup is
    needed. ``source`` is the workspace path the bytes came from.
    """

    id: str
    label: Label
    content: str
    size: int
    annotator: str | None = None
    source: str | None = None
    text: str | None = None
    fields: dict[str, Any] | None = None

    def with_annotator(self, annotator: str | None) -> Record:
        return replace(self, annotator=annotator)

    def same_example(self, other: Record) -> bool:
        """Equal in everything the history cares about (source path aside)."""
        return (
            self.label == other.label
            and self.content == other.content
            and self.annotator == other.annotator
            and self.fields == other.fields
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "label": self.label,
            "content": self.content,
            "size": self.size,
        }
        if self.annotator is not None:
            d["annotator"] = self.annotator
        if self.source is not None:
            d["source"] = self.source
        if self.text is not None:
            d["text"] = self.text
        if self.fields:
            d["fields"] = self.fields
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Record:
        return cls(
            d["id"],
            d.get("label"),
            d["content"],
            d.get("size", 0),
            d.get("annotator"),
            d.get("source"),
            d.get("text"),
            d.get("fields"),
        )


def encode_lines(records: list[Record]) -> bytes:
    """Records (already sorted by id) as JSON Lines."""
    if not records:
        return b""
    return b"\n".join(orjson.dumps(r.to_dict()) for r in records) + b"\n"


def decode_lines(data: bytes) -> list[Record]:
    """Parse a shard in one orjson call rather than one per line."""
    if not data:
        return []
    rows = orjson.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")
    return [Record.from_dict(d) for d in rows]


def validate_id(example_id: str, where: str) -> str:
    """Refuse ids that could escape a directory or break a JSON Lines shard.

    The rule is `datagit.core.paths.path_problem`, shared by every path a
    repository names (labels, sources, dataset paths).
    """
    problem = path_problem(example_id)
    if problem:
        raise InvalidInputError(
            f"{where}: id {example_id!r} {problem}",
            hint="rename the file or fix the id so it is a plain relative path",
        )
    return example_id


def is_machine(annotator: str | None) -> bool:
    """Whether a label was written by a model (`label --from-run`), not a person."""
    return bool(annotator and annotator.startswith(MACHINE_PREFIX))


def validate_label(label: Label, layout: str, where: str) -> Label:
    """Refuse a label the dataset's layout cannot hold (the one place that knows).

    An image folder keeps a label as a class folder name: a plain, non-empty
    folder name (no ``/``, no leading dot, nothing `validate_id` refuses). A
    table keeps it in a cell: any value but one holding a newline or NUL.
    """
    text = label if isinstance(label, str) else orjson.dumps(label).decode()
    problem = None
    if label is None or text == "":
        problem = "is empty"
    elif "\0" in text or "\n" in text or "\r" in text:
        problem = "contains a NUL byte or a newline"
    elif layout == "imagefolder":
        if not isinstance(label, str):
            problem = "is not a string (an image folder's label is a folder name)"
        elif "/" in label or "\\" in label:
            problem = "contains a path separator (an image folder's label is one folder name)"
        elif label.startswith(".") or ":" in label:
            problem = "is not a plain folder name"
    if problem:
        raise InvalidInputError(
            f"{where}: label {label!r} {problem}",
            hint="give a plain class name such as 'cat' or '3'",
        )
    return label
