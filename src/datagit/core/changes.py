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
    fields of every changed row and can check them themselves."""
    gone, came = changed_lines(git, old, new)
    return _rows([gone]), _rows([came])


def changed_lines(git: GitStore, old: str | None, new: str | None) -> tuple[bytes, bytes]:
    """(lines only in ``old``, lines only in ``new``) of two dataset trees, each side as
    one JSON Lines chunk (every line ending in a newline)."""
    gone, came = changed_chunks(git, old, new)
    return b"".join(gone), b"".join(came)


def changed_chunks(
    git: GitStore, old: str | None, new: str | None
) -> tuple[list[bytes], list[bytes]]:
    """`changed_lines` as a list of chunks per side (each a shard's worth of lines, each
    line ending in a newline): what checkout's plan reads chunk by chunk
    (`trust.folder_paths_of_lines`), so no copy of a whole dataset's lines is made.

    A shard on one side only (a dataset checked out from or to nothing) is taken
    whole, without splitting it into a set of lines.
    """
    old = old if old and DatasetTree(git, old).count else None
    new = new if new and DatasetTree(git, new).count else None
    shards = changed_shards(git, old, new)
    pairs: list[tuple[str | None, str | None]]
    if shards is None:  # different fan-outs: every line of both trees
        a = list(DatasetTree(git, old).shards().values()) if old else []
        b = list(DatasetTree(git, new).shards().values()) if new else []
        pairs = [(x, None) for x in a] + [(None, x) for x in b]
    else:
        pairs = [(s.old, s.new) for s in shards]
    whole_gone: list[bytes] = []
    whole_came: list[bytes] = []
    lines_gone: set[bytes] = set()
    lines_came: set[bytes] = set()
    for a_blob, b_blob in pairs:
        if a_blob is None or b_blob is None:
            blob = _ended(git.read_blob(b_blob or a_blob))  # type: ignore[arg-type]
            (whole_came if a_blob is None else whole_gone).append(blob)
            continue
        a_lines, b_lines = _lines(git, a_blob), _lines(git, b_blob)
        lines_gone |= a_lines - b_lines
        lines_came |= b_lines - a_lines
    if shards is None and old and new:  # a record may move between shards of the two
        gone = _split(whole_gone)
        came = _split(whole_came)
        return [_chunk(gone - came)], [_chunk(came - gone)]
    return [*whole_gone, _chunk(lines_gone)], [*whole_came, _chunk(lines_came)]


def _ended(blob: bytes) -> bytes:
    """A shard's lines with exactly one newline after the last (none if it is empty)."""
    if blob.endswith(b"\n") and not blob.endswith(b"\n\n"):
        return blob  # as datagit writes them: no copy
    blob = blob.rstrip(b"\n")
    return blob + b"\n" if blob else b""


def _chunk(lines: set[bytes]) -> bytes:
    return b"\n".join(lines) + b"\n" if lines else b""


def _split(blobs: list[bytes]) -> set[bytes]:
    out: set[bytes] = set()
    for blob in blobs:
        if blob:
            out.update(blob.rstrip(b"\n").split(b"\n"))
    return out


def _rows(parts: list[bytes]) -> list[dict]:
    """JSON Lines chunks decoded in one orjson call."""
    body = b",".join(p.rstrip(b"\n").replace(b"\n", b",") for p in parts if p.strip(b"\n"))
    return orjson.loads(b"[" + body + b"]") if body else []  # type: ignore[no-any-return]


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
