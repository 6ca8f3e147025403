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
from datagit.core.changes import ADDED, MODIFIED, REMOVED, Change, classify
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


RENAMED = "renamed"  # an event kind only: history records a rename as remove + add


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
            if stay_a and len(c.parents) == 1:
                _follow_renames(
                    changes, current, (stay_l, pl, label_from), (stay_a, pa, added_from),
                    (stay_s, ps, set_from),
                )  # fmt: skip
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


def renamed_from(changes: list[Change]) -> dict[str, Record]:
    """New id → the removed record it continues: same content, id changed in one commit
    (what diff reports as ``R``), paired the way `diff` pairs them."""
    gone: dict[str, list[Record]] = {}
    for x in changes:
        if x.kind == REMOVED and x.old is not None:
            gone.setdefault(x.old.content, []).append(x.old)
    out: dict[str, Record] = {}
    if not gone:
        return out
    for x in sorted(changes, key=lambda x: x.id):
        if x.kind == ADDED and x.new is not None and gone.get(x.new.content):
            out[x.id] = gone[x.new.content].pop(0)
    return out


Tracked = tuple[set[str], set[str], "_Pending"]  # (answered here, pending in parent, pending)


def _follow_renames(
    changes: list[Change],
    current: dict[str, Record],
    label: Tracked,
    added: Tracked,
    set_: Tracked,
) -> None:
    """An example renamed here keeps its history: it is pending under its old id in the
    parent (its label and bytes too, when the rename kept the label) instead of being
    "added" here."""
    stay_a, pa, added_from = added
    new_records = {x.id: x.new for x in changes if x.kind == ADDED}
    for new_id, old in renamed_from(changes).items():
        if new_id not in stay_a or not added_from.follow(new_id, old.id, current):
            continue
        stay_a.discard(new_id)
        pa.add(old.id)
        new = new_records[new_id]
        if new is None or new.label != old.label:
            continue  # the rename set the label: this commit answers label and set
        for stay, pending, source in (label, set_):
            if new_id in stay and source.follow(new_id, old.id, current):
                stay.discard(new_id)
                pending.add(old.id)


def _changes(git: GitStore, lines: ShardLines, old: str | None, new: str | None) -> list[Change]:
    if old == new:
        return []
    return changes_between(git, old, new, lines)


class _Pending:
    """Examples whose answer lies in some commit not yet visited, grouped by that commit."""

    def __init__(self, start: str, ids: set[str]) -> None:
        self.waiting: dict[str, set[str]] = {start: ids} if ids else {}
        self.blamed: dict[str, str] = {}
        self.alias: dict[str, str] = {}  # an id in older history → the id at the start

    def follow(self, new: str, old: str, current: dict[str, Record]) -> bool:
        """Answer for ``new`` under ``old`` from here on, unless ``old`` is still
        another example's own question (an id re-used after its rename)."""
        if old in current and old not in self.blamed:
            return False
        if old in self.alias and self.alias[old] not in self.blamed:
            return False
        self.alias[old] = self.alias.get(new, new)
        return True

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
            self.blamed[self.alias.get(example_id, example_id)] = commit


def example_history(
    git: GitStore, head: str, dataset: str, example_id: str
) -> Iterator[ExampleEvent]:
    """Commits reachable from ``head`` that changed ``example_id``, newest first.

    A merge is listed only when the example differs from every parent (a
    conflict resolved by hand); otherwise the commit on the branch is listed.
    A rename (same content, new id, as `diff` reports ``R``) is listed as
    ``renamed`` and the walk goes on under the old id, so nothing before it is lost.
    """
    trees = DatasetTrees(git, dataset)
    records: dict[tuple[str | None, str], Record | None] = {}

    def record(tree: str | None, i: str) -> Record | None:
        if tree is None:
            return None
        if (tree, i) not in records:
            records[tree, i] = DatasetTree(git, tree).get(i)
        return records[tree, i]

    for c in git.walk([head]):
        tree = trees(c.id)
        parent_trees = [trees(p) for p in c.parents] or [None]
        if tree in parent_trees:
            continue
        new = record(tree, example_id)
        olds = [record(t, example_id) for t in parent_trees]
        kinds = [classify(old, new) for old in olds]
        if not all(kinds):
            continue
        if kinds[0] == ADDED and len(parent_trees) == 1 and parent_trees[0] is not None:
            old = renamed_from(changes_between(git, parent_trees[0], tree)).get(example_id)
            if old is not None:
                yield ExampleEvent(c, RENAMED, old, new)
                example_id = old.id
                continue
        yield ExampleEvent(c, kinds[0], olds[0], new)  # type: ignore[arg-type]
