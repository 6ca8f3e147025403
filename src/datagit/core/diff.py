"""Label-aware diff: what changed between two states of a dataset, as a reviewer reads it.

`changes_between` is the cost-bounded primitive the history verbs share: it
skips shards whose blob ids agree, and inside a differing shard it compares the
raw JSON lines and parses only the lines that differ, so a relabel of one
example costs one shard read, not a parse of the whole shard or dataset.
`DatasetDiff` then groups the changes into added / removed / re-labelled /
content-changed / renamed and summarises label transitions.
"""

from __future__ import annotations

import fnmatch
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from datagit.core.changes import (
    ADDED,
    MODIFIED,
    RELABELED,
    REMOVED,
    Change,
    compare,
    compare_trees,
)
from datagit.core.manifest import changed_shards
from datagit.core.records import Label, Record, is_machine
from datagit.storage.git import GitStore


def label_key(label: Label) -> str:
    """A label as a hashable, printable key (JSON for anything but a string)."""
    return label if isinstance(label, str) else orjson.dumps(label).decode()


# -- reading only the lines that differ ----------------------------------------
class ShardLines:
    """Blob id → the set of its JSON lines, kept for the blobs read most recently.

    A history walk reads each shard blob twice (as the new side of one commit
    and the old side of the next); keeping its split lines halves the work.
    """

    def __init__(self, git: GitStore, capacity: int = 4096) -> None:
        self.git = git
        self.capacity = capacity
        self._cache: OrderedDict[str, set[bytes]] = OrderedDict()

    def __call__(self, oid: str | None) -> set[bytes]:
        if oid is None:
            return set()
        lines = self._cache.get(oid)
        if lines is not None:
            self._cache.move_to_end(oid)
            return lines
        data = self.git.read_blob(oid)
        lines = set(data.split(b"\n"))
        lines.discard(b"")
        if self.capacity:
            self._cache[oid] = lines
            if len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return lines


def parse_lines(lines: Iterable[bytes]) -> dict[str, Record]:
    """Records from a few JSON lines, in one orjson call."""
    joined = b",".join(lines)
    if not joined:
        return {}
    return {d["id"]: Record.from_dict(d) for d in orjson.loads(b"[" + joined + b"]")}


def changes_between(
    git: GitStore, old: str | None, new: str | None, lines: ShardLines | None = None
) -> list[Change]:
    """Changes between two dataset trees, parsing only the record lines that differ."""
    shards = changed_shards(git, old, new)
    if shards is None:  # the fan-out changed: every shard differs anyway
        return compare_trees(git, old, new)
    read = lines or ShardLines(git, capacity=0)
    only_old: list[bytes] = []
    only_new: list[bytes] = []
    for s in shards:
        a, b = read(s.old), read(s.new)
        only_old.extend(a - b)
        only_new.extend(b - a)
    return compare(parse_lines(only_old), parse_lines(only_new))


# -- the diff a person reads ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rename:
    """The same content under a new id (its label may have changed too)."""

    old: Record
    new: Record


@dataclass(frozen=True, slots=True)
class Filter:
    """Keep only changes touching a label (either side), an id glob, or an annotator."""

    label: str | None = None
    id_glob: str | None = None
    annotator: str | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.label, self.id_glob, self.annotator))

    def matches(self, old: Record | None, new: Record | None) -> bool:
        sides = [r for r in (old, new) if r is not None]
        if self.label is not None and not any(label_key(r.label) == self.label for r in sides):
            return False
        if self.id_glob is not None and not any(
            fnmatch.fnmatchcase(r.id, self.id_glob) for r in sides
        ):
            return False
        return self.annotator is None or any(r.annotator == self.annotator for r in sides)


@dataclass
class DatasetDiff:
    """One dataset's changes, grouped the way a reviewer reads them."""

    name: str
    added: list[Record] = field(default_factory=list)
    removed: list[Record] = field(default_factory=list)
    relabeled: list[Change] = field(default_factory=list)
    modified: list[Change] = field(default_factory=list)
    renamed: list[Rename] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.relabeled or self.modified or self.renamed)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "relabeled": len(self.relabeled),
            "modified": len(self.modified),
            "renamed": len(self.renamed),
        }

    def machine_labelled(self) -> list[Record]:
        """Examples whose new label a model wrote (annotator ``model:<run id>``): their
        own kind, apart from human labels, in diff's text and JSON."""
        out = [r for r in self.added if is_machine(r.annotator)]
        out += [b for a, b in self.label_pairs() if a.label != b.label and is_machine(b.annotator)]
        return sorted(out, key=lambda r: r.id)

    def label_pairs(self) -> Iterable[tuple[Record, Record]]:
        """(old, new) for every example that kept its identity or content across the diff."""
        for c in (*self.relabeled, *self.modified):
            assert c.old is not None and c.new is not None
            yield c.old, c.new
        for r in self.renamed:
            yield r.old, r.new

    def transitions(self) -> list[tuple[str, str, int]]:
        """``(from, to, count)`` for every label change, most frequent first."""
        counter: Counter[tuple[str, str]] = Counter(
            (label_key(a.label), label_key(b.label))
            for a, b in self.label_pairs()
            if a.label != b.label
        )
        return [(a, b, n) for (a, b), n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))]

    def label_deltas(self) -> dict[str, int]:
        """Per label: how many more (or fewer) examples carry it afterwards."""
        delta: Counter[str] = Counter()
        for r in self.added:
            delta[label_key(r.label)] += 1
        for r in self.removed:
            delta[label_key(r.label)] -= 1
        for a, b in self.label_pairs():
            if a.label != b.label:
                delta[label_key(a.label)] -= 1
                delta[label_key(b.label)] += 1
        return {k: v for k, v in sorted(delta.items()) if v}

    def filtered(self, keep: Filter) -> DatasetDiff:
        if not keep:
            return self
        return DatasetDiff(
            self.name,
            [r for r in self.added if keep.matches(None, r)],
            [r for r in self.removed if keep.matches(r, None)],
            [c for c in self.relabeled if keep.matches(c.old, c.new)],
            [c for c in self.modified if keep.matches(c.old, c.new)],
            [r for r in self.renamed if keep.matches(r.old, r.new)],
        )


def build(name: str, changes: Iterable[Change], *, renames: bool = True) -> DatasetDiff:
    """Group changes; a removed and an added example with the same content is a rename."""
    d = DatasetDiff(name)
    for c in changes:
        if c.kind == ADDED:
            assert c.new is not None
            d.added.append(c.new)
        elif c.kind == REMOVED:
            assert c.old is not None
            d.removed.append(c.old)
        elif c.kind == RELABELED:
            d.relabeled.append(c)
        elif c.kind == MODIFIED:
            d.modified.append(c)
    if renames and d.added and d.removed:
        _pair_renames(d)
    return d


def _pair_renames(d: DatasetDiff) -> None:
    gone: dict[str, list[Record]] = {}
    for r in d.removed:
        gone.setdefault(r.content, []).append(r)
    added = []
    for r in d.added:
        match = gone.get(r.content)
        if match:
            d.renamed.append(Rename(match.pop(0), r))
        else:
            added.append(r)
    paired = {x.old.id for x in d.renamed}
    d.added = added
    d.removed = [r for r in d.removed if r.id not in paired]


def apply(records: Mapping[str, Record], diff: DatasetDiff) -> dict[str, Record]:
    """``records`` with ``diff`` applied: apply(A, diff(A, B)) reproduces B."""
    out = dict(records)
    for r in diff.removed:
        out.pop(r.id, None)
    for rn in diff.renamed:
        out.pop(rn.old.id, None)
    for r in (*diff.added, *(x.new for x in diff.renamed)):
        out[r.id] = r
    for c in (*diff.relabeled, *diff.modified):
        assert c.new is not None
        out[c.id] = c.new
    return out


def diff_maps(name: str, old: Mapping[str, Record], new: Mapping[str, Record]) -> DatasetDiff:
    """The diff between two whole record maps (for the workspace, which has no tree)."""
    return build(name, compare(old, new))
