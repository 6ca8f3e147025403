"""Three-way merge of records: base, ours and theirs, example by example.

Only examples that changed on some side since the merge base are looked at
(via shard-level diffs), so a merge costs in proportion to the two sides'
changes. Disjoint changes combine; the same example changed differently on both
sides, or changed on one and removed on the other, is a `Conflict` carrying
both values so a person can choose.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from datagit.core.changes import Change
from datagit.core.config import Config
from datagit.core.diff import changes_between
from datagit.core.manifest import patch_dataset, read_root, write_root
from datagit.core.records import Record
from datagit.storage.git import GitStore

OURS = "ours"
THEIRS = "theirs"


@dataclass(frozen=True, slots=True)
class Conflict:
    """One example both sides changed incompatibly (None: that side removed it)."""

    dataset: str
    id: str
    base: Record | None
    ours: Record | None
    theirs: Record | None
    ours_commit: str | None = None  # the commit on our side that last changed it
    ours_author: str | None = None
    theirs_commit: str | None = None
    theirs_author: str | None = None

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "id": self.id,
            "base": self.base.to_dict() if self.base else None,
            "ours": self.ours.to_dict() if self.ours else None,
            "theirs": self.theirs.to_dict() if self.theirs else None,
            "ours_commit": self.ours_commit,
            "ours_author": self.ours_author,
            "theirs_commit": self.theirs_commit,
            "theirs_author": self.theirs_author,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Conflict:
        def rec(v: Any) -> Record | None:
            return Record.from_dict(v) if v else None

        return cls(
            d["dataset"],
            d["id"],
            rec(d["base"]),
            rec(d["ours"]),
            rec(d["theirs"]),
            d.get("ours_commit"),
            d.get("ours_author"),
            d.get("theirs_commit"),
            d.get("theirs_author"),
        )

    def pick(self, side: str) -> Record | None:
        return self.ours if side == OURS else self.theirs


@dataclass
class MergeResult:
    """The merged commit tree (conflicted examples keep our value) and the conflicts."""

    tree: str
    conflicts: list[Conflict] = field(default_factory=list)
    taken: dict[str, int] = field(default_factory=dict)  # dataset → examples taken from theirs


def same(a: Record | None, b: Record | None) -> bool:
    """Equal as far as a merge cares: both absent, or same label, content and fields."""
    if a is None or b is None:
        return a is b
    return a.label == b.label and a.content == b.content and a.fields == b.fields


def merge_dataset(
    git: GitStore, name: str, base: str | None, ours: str | None, theirs: str | None
) -> tuple[str | None, list[Conflict], int]:
    """Merge one dataset's trees; returns (tree, conflicts, examples taken from theirs)."""
    if theirs == base or ours == theirs:
        return ours, [], 0
    if ours == base:
        return theirs, [], 0
    mine = {c.id: c for c in changes_between(git, base, ours)}
    other = changes_between(git, base, theirs)
    upserts: dict[str, Record] = {}
    deletes: list[str] = []
    conflicts: list[Conflict] = []
    for c in other:
        m: Change | None = mine.get(c.id)
        if m is None:
            if c.new is None:
                deletes.append(c.id)
            else:
                upserts[c.id] = c.new
        elif not same(m.new, c.new):
            conflicts.append(Conflict(name, c.id, c.old, m.new, c.new))
    if ours is None and not upserts:
        return None, conflicts, 0
    tree = patch_dataset(git, ours, upserts, deletes)
    return tree, conflicts, len(upserts) + len(deletes)


def merge_trees(git: GitStore, base: str | None, ours: str, theirs: str) -> MergeResult:
    """Merge two commit trees against their merge base's tree (None: no common history)."""
    base_cfg, base_ds = read_root(git, base) if base else (b"", {})
    ours_cfg, ours_ds = read_root(git, ours)
    theirs_cfg, theirs_ds = read_root(git, theirs)
    cfg = _merge_config(base_cfg, ours_cfg, theirs_cfg)
    result = MergeResult(tree="")
    merged: dict[str, str] = {}
    for name in sorted(set(ours_ds) | set(theirs_ds)):
        tree, conflicts, taken = merge_dataset(
            git, name, base_ds.get(name), ours_ds.get(name), theirs_ds.get(name)
        )
        if tree is not None:
            merged[name] = tree
        result.conflicts.extend(conflicts)
        if taken:
            result.taken[name] = taken
    result.tree = write_root(git, cfg, merged)
    return result


def _merge_config(base: bytes, ours: bytes, theirs: bytes) -> bytes:
    """datagit.toml: one side's edit wins when the other kept the base; else dataset union."""
    if theirs == base or ours == theirs:
        return ours
    if ours == base:
        return theirs
    b, o, t = (Config.parse(x) if x else Config() for x in (base, ours, theirs))
    for name, d in t.datasets.items():
        if o.datasets.get(name) == b.datasets.get(name):  # ours kept the base's definition
            o.datasets[name] = d
    for name in list(o.datasets):
        if name in b.datasets and name not in t.datasets and o.datasets[name] == b.datasets[name]:
            del o.datasets[name]
    for key, value in t.extra.items():
        if o.extra.get(key) == b.extra.get(key):
            o.extra[key] = value
    return o.dumps()


def resolve(git: GitStore, tree: str, choices: Mapping[str, Mapping[str, Record | None]]) -> str:
    """The commit tree with each dataset's chosen records (None: removed) written in."""
    cfg, datasets = read_root(git, tree)
    for name, picks in choices.items():
        upserts = {i: r for i, r in picks.items() if r is not None}
        deletes = [i for i, r in picks.items() if r is None]
        datasets[name] = patch_dataset(git, datasets.get(name), upserts, deletes)
    return write_root(git, cfg, datasets)


def with_authors(
    git: GitStore, conflicts: list[Conflict], ours: str, theirs: str
) -> list[Conflict]:
    """Conflicts annotated with the commit (and author) that made each side's value.

    Walks only the commits of each side since the merge base, reading each
    one's changes once, so the cost follows the two sides' changes.
    """
    out = list(conflicts)
    for side, tip, other in ((OURS, ours, theirs), (THEIRS, theirs, ours)):
        found = _last_changed(git, tip, other, {(c.dataset, c.id) for c in conflicts})
        for n, c in enumerate(out):
            hit = found.get((c.dataset, c.id))
            if hit is not None:
                commit, author = hit
                fields = {f"{side}_commit": commit, f"{side}_author": author}
                out[n] = replace(c, **fields)  # type: ignore[arg-type]
    return out


def _last_changed(
    git: GitStore, tip: str, other: str, wanted: set[tuple[str, str]]
) -> dict[tuple[str, str], tuple[str, str]]:
    seen_other = {c.id for c in git.walk([other])}
    names = {d for d, _ in wanted}
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for c in git.walk([tip]):
        if len(found) == len(wanted):
            break
        if c.id in seen_other:
            continue
        parent = c.parents[0] if c.parents else None
        now = read_root(git, c.tree)[1]
        before = read_root(git, git.commit(parent).tree)[1] if parent else {}
        for name in names:
            if now.get(name) == before.get(name):
                continue
            hits = [x.id for x in changes_between(git, before.get(name), now.get(name))]
            hits = [i for i in hits if (name, i) in wanted and (name, i) not in found]
            for other_parent in c.parents[1:]:
                # A merge made a value only where it differs from every parent; a value
                # it brought in belongs to the commit on that branch, found further on.
                theirs = read_root(git, git.commit(other_parent).tree)[1].get(name)
                if hits and theirs != now.get(name):
                    differs = {x.id for x in changes_between(git, theirs, now.get(name))}
                    hits = [i for i in hits if i in differs]
                elif theirs == now.get(name):
                    hits = []
            for i in hits:
                found[name, i] = (c.id, c.author.name)
    return found
