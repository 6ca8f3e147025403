"""Record-level changes between two states of a dataset.

`compare_trees` is the cheap path every history command builds on: it compares
shard blob ids first and parses only the shards that differ, so its cost grows
with the change, not with the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from datagit.core.manifest import DatasetTree, changed_shards
from datagit.core.records import Record, decode_lines
from datagit.storage.git import GitStore

ADDED = "added"
REMOVED = "removed"
RELABELED = "relabeled"
MODIFIED = "modified"
KINDS = (ADDED, REMOVED, RELABELED, MODIFIED)


@dataclass(slots=True)  # not frozen: frozen init costs 5× and records are made by the million
class Change:
    """How one example differs: ``relabeled`` keeps its content, ``modified`` does not."""

    id: str
    kind: str
    old: Record | None
    new: Record | None

    @property
    def label_changed(self) -> bool:
        return self.old is not None and self.new is not None and self.old.label != self.new.label


def classify(old: Record | None, new: Record | None) -> str | None:
    """The kind of change from ``old`` to ``new``, or None when they agree."""
    if old is None and new is None:
        return None
    if old is None:
        return ADDED
    if new is None:
        return REMOVED
    if old.content != new.content or old.fields != new.fields:
        return MODIFIED
    if old.label != new.label:
        return RELABELED
    return None


def compare(old: Mapping[str, Record], new: Mapping[str, Record]) -> list[Change]:
    """Every example that differs between two id → record maps, sorted by id."""
    if not old:  # a first add: everything is new, nothing to classify
        return [Change(i, ADDED, None, new[i]) for i in sorted(new)]
    if not new:
        return [Change(i, REMOVED, old[i], None) for i in sorted(old)]
    out = []
    for example_id in sorted(old.keys() | new.keys()):
        a, b = old.get(example_id), new.get(example_id)
        kind = classify(a, b)
        if kind:
            out.append(Change(example_id, kind, a, b))
    return out


def compare_trees(git: GitStore, old: str | None, new: str | None) -> list[Change]:
    """Changes between two dataset trees, parsing only shards whose ids differ."""
    shards = changed_shards(git, old, new)
    if shards is None:  # different fan-outs: fall back to whole record sets
        a = DatasetTree(git, old).by_id() if old else {}
        b = DatasetTree(git, new).by_id() if new else {}
        return compare(a, b)
    a_recs: dict[str, Record] = {}
    b_recs: dict[str, Record] = {}
    for s in shards:
        a_lines = _lines(git, s.old)
        b_lines = _lines(git, s.new)
        # Encodings are canonical, so equal lines are equal records: decode only the rest.
        a_recs.update((r.id, r) for r in _decode(a_lines - b_lines))
        b_recs.update((r.id, r) for r in _decode(b_lines - a_lines))
    return compare(a_recs, b_recs)


def changed_rows(git: GitStore, old: str | None, new: str | None) -> tuple[list[dict], list[dict]]:
    """(rows only in ``old``, rows only in ``new``) of two dataset trees, as decoded JSON
    objects: `compare_trees` without building records, for callers that want a few
    fields of every changed row (checkout's plan) and can check them themselves."""
    shards = changed_shards(git, old, new)
    if shards is None:  # different fan-outs: every line of both trees
        a = DatasetTree(git, old).shards().values() if old else ()
        b = DatasetTree(git, new).shards().values() if new else ()
        pairs = [(set().union(*map(lambda x: _lines(git, x), a)),
                  set().union(*map(lambda x: _lines(git, x), b)))]  # fmt: skip
    else:
        pairs = [(_lines(git, s.old), _lines(git, s.new)) for s in shards]
    gone: list[bytes] = []
    came: list[bytes] = []
    for a_lines, b_lines in pairs:
        gone.extend(a_lines - b_lines)
        came.extend(b_lines - a_lines)
    return _rows(gone), _rows(came)


def _rows(lines: list[bytes]) -> list[dict]:
    return orjson.loads(b"[" + b",".join(lines) + b"]") if lines else []  # type: ignore[no-any-return]


def _lines(git: GitStore, blob: str | None) -> set[bytes]:
    if blob is None:
        return set()
    data = git.read_blob(blob)
    return set(data.rstrip(b"\n").split(b"\n")) if data else set()


def _decode(lines: set[bytes]) -> list[Record]:
    return decode_lines(b"\n".join(lines)) if lines else []


def counts(changes: list[Change]) -> dict[str, int]:
    out = dict.fromkeys(KINDS, 0)
    for c in changes:
        out[c.kind] += 1
    return out
