"""Blame: which commit (and who) set each example's label, and which commit added it.

`blame_dataset` walks history once, newest first, the way git blame passes
lines to parents: every example starts pending at the revision asked about and
moves to a parent whenever that parent already had the same label (or the
example at all, for ``added_in``). Only the shards that differ between a commit
and its parent are read, so the cost follows the changes in history, not
commits × dataset size. `example_history` lists every commit that touched one
example, looking up only the shard that holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from datagit.core import patch
from datagit.core.changes import ADDED, MODIFIED, Change, classify
from datagit.core.diff import ShardLines, changes_between
from datagit.core.manifest import DatasetTree, read_root
from datagit.core.records import Label, Record
from datagit.storage.git import CommitInfo, GitStore


@dataclass(frozen=True, slots=True)
class ExampleBlame:
    """Who is answerable for one example's current label."""

    id: str
    label: Label
    commit: str  # the commit that last set the label
    added_in: str  # the commit that added the example
    annotator: str | None
    set_in: str = ""  # the commit that last set the label or the bytes (weight-region blame)


@dataclass(frozen=True, slots=True)
class ExampleEvent:
    """One commit that touched one example: its kind and the record before and after."""

    commit: CommitInfo
    kind: str
    old: Record | None
    new: Record | None

    @property
    def annotator(self) -> str | None:
        """The record's annotator, else the commit's ``Annotator:`` trailer."""
        if self.new is not None and self.new.annotator:
            return self.new.annotator
        return self.commit.trailer("Annotator")


class DatasetTrees:
    """Commit id → the dataset's tree id in that commit (None where it is absent), cached."""

    def __init__(self, git: GitStore, dataset: str) -> None:
        self.git = git
        self.dataset = dataset
        self._trees: dict[str, str | None] = {}

    def __call__(self, commit: str) -> str | None:
        if commit not in self._trees:
            info = self.git.commit(commit)
            self._trees[commit] = read_root(self.git, info.tree)[1].get(self.dataset)
        return self._trees[commit]


Progress = Callable[[int], None]


def blame_dataset(
    git: GitStore, head: str, dataset: str, *, progress: Progress | None = None
) -> dict[str, ExampleBlame]:
    """Per example of ``dataset`` at commit ``head``: the label's commit and the adding commit."""
    trees = DatasetTrees(git, dataset)
    head_tree = trees(head)
    if head_tree is None:
        return {}
    current = DatasetTree(git, head_tree).by_id()
    label_from = _Pending(head, set(current))
    added_from = _Pending(head, set(current))
    set_from = _Pending(head, set(current))
    lines = ShardLines(git)
    infos: dict[str, CommitInfo] = {}
    walked = 0
    for c in git.walk([head]):
        if not label_from and not added_from and not set_from:
            break
        infos[c.id] = c
        pl, pa, ps = label_from.take(c.id), added_from.take(c.id), set_from.take(c.id)
        walked += 1
        if progress:
            progress(walked)
        if not pl and not pa and not ps:
            continue
        for parent in c.parents:
            if not pl and not pa and not ps:
                break
            changes = patch.commit_changes(git, c, dataset) if parent == c.parents[0] else None
            if changes is None:
                changes = _changes(git, lines, trees(parent), trees(c.id))
            # Touch only the changed ids: the big pending sets move to the parent uncopied.
            stay_l = {x.id for x in changes if (x.kind == ADDED or x.label_changed) and x.id in pl}
            stay_a = {x.id for x in changes if x.kind == ADDED and x.id in pa}
            stay_s = {
                x.id
                for x in changes
                if (x.kind in (ADDED, MODIFIED) or x.label_changed) and x.id in ps
            }
            pl -= stay_l
            pa -= stay_a
            ps -= stay_s
            label_from.give(parent, pl)
            added_from.give(parent, pa)
            set_from.give(parent, ps)
            pl, pa, ps = stay_l, stay_a, stay_s
        label_from.settle(c.id, pl)
        added_from.settle(c.id, pa)
        set_from.settle(c.id, ps)
    out = {}
    for example_id, rec in current.items():
        commit = label_from.blamed[example_id]
        info = infos.get(commit) or git.commit(commit)
        out[example_id] = ExampleBlame(
            example_id,
            rec.label,
            commit,
            added_from.blamed[example_id],
            rec.annotator or info.trailer("Annotator"),
            set_from.blamed[example_id],
        )
    return out


def _changes(git: GitStore, lines: ShardLines, old: str | None, new: str | None) -> list[Change]:
    if old == new:
        return []
    return changes_between(git, old, new, lines)


class _Pending:
    """Examples whose answer lies in some commit not yet visited, grouped by that commit."""

    def __init__(self, start: str, ids: set[str]) -> None:
        self.waiting: dict[str, set[str]] = {start: ids} if ids else {}
        self.blamed: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.waiting)

    def take(self, commit: str) -> set[str]:
        return self.waiting.pop(commit, set())

    def give(self, commit: str, ids: set[str]) -> None:
        if not ids:
            return
        have = self.waiting.get(commit)
        if have is None:
            self.waiting[commit] = ids
        elif len(have) >= len(ids):
            have |= ids
        else:  # at a merge: fold the smaller set into the larger
            ids |= have
            self.waiting[commit] = ids

    def settle(self, commit: str, ids: set[str]) -> None:
        for example_id in ids:
            self.blamed[example_id] = commit


def example_history(
    git: GitStore, head: str, dataset: str, example_id: str
) -> Iterator[ExampleEvent]:
    """Commits reachable from ``head`` that changed ``example_id``, newest first.

    A merge is listed only when the example differs from every parent (a
    conflict resolved by hand); otherwise the commit on the branch is listed.
    """
    trees = DatasetTrees(git, dataset)
    records: dict[str | None, Record | None] = {None: None}

    def record(tree: str | None) -> Record | None:
        if tree not in records:
            records[tree] = DatasetTree(git, tree).get(example_id) if tree else None
        return records[tree]

    for c in git.walk([head]):
        tree = trees(c.id)
        parent_trees = [trees(p) for p in c.parents] or [None]
        if tree in parent_trees:
            continue
        new = record(tree)
        olds = [record(t) for t in parent_trees]
        kinds = [classify(old, new) for old in olds]
        if all(kinds):
            yield ExampleEvent(c, kinds[0], olds[0], new)  # type: ignore[arg-type]
