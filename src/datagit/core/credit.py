"""Credit: the labour ledger of a dataset, per commit author and per annotator.

One forward pass over history counts what each contributor did in each commit
(examples added, labels set, content bytes) and when a later commit by
somebody else overturned a label they set; the blame at the revision asked
about says which of their labels still stand. Merges count only what the merge
itself decided (resolutions), not what it brought in from the other branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from datagit.core import patch
from datagit.core.blame import DatasetTrees, blame_dataset, renamed_from
from datagit.core.changes import ADDED, MODIFIED, RELABELED, REMOVED, Change
from datagit.core.diff import ShardLines, changes_between
from datagit.core.records import is_machine
from datagit.storage.git import CommitInfo, GitStore


@dataclass
class Contribution:
    """One contributor's ledger line."""

    name: str
    commits: int = 0
    examples_added: int = 0
    labels_set: int = 0
    labels_standing: int = 0
    labels_overturned: int = 0
    content_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Ledger:
    """Contributions keyed by commit author and by annotator."""

    authors: dict[str, Contribution]
    annotators: dict[str, Contribution]

    def to_dict(self) -> dict[str, Any]:
        """Authors, human annotators, and models (annotator ``model:<run id>``) apart."""
        people = {k: v for k, v in self.annotators.items() if not is_machine(k)}
        machines = {k: v for k, v in self.annotators.items() if is_machine(k)}
        return {
            "authors": [c.to_dict() for c in _ranked(self.authors)],
            "annotators": [c.to_dict() for c in _ranked(people)],
            "machines": [c.to_dict() for c in _ranked(machines)],
        }


def _ranked(d: dict[str, Contribution]) -> list[Contribution]:
    return sorted(d.values(), key=lambda c: (-c.labels_set, -c.examples_added, c.name))


Window = Callable[[CommitInfo], bool]


def own_changes(
    git: GitStore, c: CommitInfo, trees: DatasetTrees, lines: ShardLines
) -> list[Change]:
    """What commit ``c`` itself changed: vs its first parent, minus what a merge brought in."""
    tree = trees(c.id)
    first = trees(c.parents[0]) if c.parents else None
    if first == tree:
        changes: list[Change] = []
    else:
        from_patch = patch.commit_changes(git, c, trees.dataset)
        changes = from_patch if from_patch is not None else changes_between(git, first, tree, lines)
    for other in c.parents[1:]:
        if not changes:
            break
        t = trees(other)
        differs = {x.id for x in changes_between(git, t, tree, lines)} if t != tree else set()
        changes = [x for x in changes if x.id in differs]
    return changes


def credit(
    git: GitStore, head: str, datasets: Iterable[str], window: Window | None = None
) -> Ledger:
    """The ledger of every commit reachable from ``head`` that ``window`` admits."""
    ledger = Ledger({}, {})
    history = list(git.walk([head]))
    history.reverse()  # oldest first: a label is set before it can be overturned
    counted = {c.id for c in history if window is None or window(c)}
    by_id = {c.id: c for c in history}
    touched: set[str] = set()  # commits already counted: one touching two datasets is one
    # An annotator's commits: those in which a label or an example of theirs landed
    # (an annotator is not a commit's author, so the walk's count cannot serve).
    worked: dict[str, set[str]] = {}
    for dataset in datasets:
        trees = DatasetTrees(git, dataset)
        lines = ShardLines(git)
        setter: dict[str, tuple[str, str | None, bool]] = {}
        for c in history:
            changes = own_changes(git, c, trees, lines)
            if not changes:
                continue
            counts_here = c.id in counted
            if counts_here and c.id not in touched:
                touched.add(c.id)
                _entry(ledger.authors, c.author.name).commits += 1
            for x in _renames_as_one(changes, setter):
                annotator = _count(ledger, c, x, counts_here, setter)
                if annotator:
                    worked.setdefault(annotator, set()).add(c.id)
        for b in blame_dataset(git, head, dataset).values():
            if b.commit not in counted:
                continue
            _entry(ledger.authors, by_id[b.commit].author.name).labels_standing += 1
            if b.annotator:
                _entry(ledger.annotators, b.annotator).labels_standing += 1
    for name, commits in worked.items():
        _entry(ledger.annotators, name).commits = len(commits)
    return ledger


def _renames_as_one(
    changes: list[Change], setter: dict[str, tuple[str, str | None, bool]]
) -> list[Change]:
    """A rename is neither an added nor a removed example: drop both halves, keep who
    set the label under the new id, and count a label changed on the way as a re-label."""
    moved = renamed_from(changes)
    if not moved:
        return changes
    gone = {old.id for old in moved.values()}
    out = []
    for x in changes:
        if x.kind == REMOVED and x.id in gone:
            continue
        old = moved.get(x.id) if x.kind == ADDED else None
        if old is None:
            out.append(x)
            continue
        previous = setter.pop(old.id, None)
        if previous is not None:
            setter[x.id] = previous
        if x.new is not None and old.label != x.new.label:
            out.append(Change(x.id, RELABELED, old, x.new))
    return out


def _count(
    ledger: Ledger,
    c: CommitInfo,
    x: Change,
    counted: bool,
    setter: dict[str, tuple[str, str | None, bool]],
) -> str | None:
    """Count change ``x`` of commit ``c``; returns the annotator it credits with work
    in ``c`` (an example added, bytes changed or a label set), if any."""
    author = c.author.name
    annotator = (x.new.annotator if x.new else None) or c.trailer("Annotator")
    if x.kind in (ADDED, MODIFIED) and x.new is not None and counted:
        _entry(ledger.authors, author).content_bytes += x.new.size
        if annotator:
            _entry(ledger.annotators, annotator).content_bytes += x.new.size
    if x.kind == ADDED and counted:
        _entry(ledger.authors, author).examples_added += 1
        if annotator:
            _entry(ledger.annotators, annotator).examples_added += 1
    worked = annotator if counted and x.kind in (ADDED, MODIFIED) else None
    if x.new is None:
        setter.pop(x.id, None)
        return worked
    if x.kind != ADDED and not x.label_changed:
        return worked
    previous = setter.get(x.id)
    if previous is not None:
        prev_author, prev_annotator, prev_counted = previous
        if prev_counted and prev_author != author:
            _entry(ledger.authors, prev_author).labels_overturned += 1
        if prev_counted and prev_annotator and prev_annotator != annotator:
            _entry(ledger.annotators, prev_annotator).labels_overturned += 1
    if counted:
        _entry(ledger.authors, author).labels_set += 1
        if annotator:
            _entry(ledger.annotators, annotator).labels_set += 1
    setter[x.id] = (author, annotator, counted)
    return annotator if counted else worked


def _entry(d: dict[str, Contribution], name: str) -> Contribution:
    if name not in d:
        d[name] = Contribution(name)
    return d[name]
