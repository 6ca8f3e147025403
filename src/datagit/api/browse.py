"""Read-only questions the web viewer asks about history, beyond the CLI's verbs.

The history page (every ref's commits with graph lanes, refs, annotator and
per-dataset change counts), one page of a diff's examples (a transition-table
cell, or one kind of change), and one example with its record, blame and the
model's outputs on it. Each answer is built from the same API calls the CLI
makes, so the viewer never has its own reading of the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datagit.api import harness, history
from datagit.core.changes import Change, counts
from datagit.core.diff import DatasetDiff, build, label_key
from datagit.core.graph import GraphRow, layout
from datagit.core.records import Record
from datagit.errors import InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.core.blame import ExampleEvent
    from datagit.storage.git import CommitInfo

KINDS = ("relabeled", "added", "removed", "modified", "renamed")


# -- history -------------------------------------------------------------------
@dataclass
class HistoryRow:
    """One commit of the history page."""

    commit: CommitInfo
    graph: GraphRow
    refs: list[str]
    annotator: str | None
    changes: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class History:
    rows: list[HistoryRow]
    total: int  # rows matching the filters, across all pages
    authors: list[str]
    annotators: list[str]
    datasets: list[str]


def ref_names(repo: Repo) -> dict[str, list[str]]:
    """Commit id → the short names of branches and tags pointing at it (HEAD first)."""
    out: dict[str, list[str]] = {}
    head, branch = repo.head(), repo.branch()
    if head is not None:
        out.setdefault(head, []).append(f"HEAD -> {branch}" if branch else "HEAD")
    for name, oid in sorted(repo.git.refs().items()):
        for prefix, shown in (("refs/heads/", ""), ("refs/tags/", "tag: ")):
            if name.startswith(prefix):
                out.setdefault(oid, []).append(shown + name[len(prefix) :])
    return out


def history_rows(
    repo: Repo,
    *,
    dataset: str | None = None,
    author: str | None = None,
    annotator: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> History:
    """Commits of every branch and tag, newest first, one page after the filters."""
    refs = ref_names(repo)
    heads = list(refs)
    commits = list(repo.git.walk(heads)) if heads else []
    rows = [
        HistoryRow(c, g, refs.get(c.id, []), c.trailer("Annotator"))
        for c, g in zip(commits, layout((c.id, c.parents) for c in commits), strict=True)
    ]
    authors = sorted({c.author.name for c in commits})
    annotators = sorted({r.annotator for r in rows if r.annotator})
    datasets = sorted(repo.datasets_at(repo.head() or "")) if repo.head() else []
    if author:
        rows = [r for r in rows if r.commit.author.name == author]
    if annotator:
        rows = [r for r in rows if r.annotator == annotator]
    if dataset:
        rows = [r for r in rows if _touches(repo, r.commit, dataset)]
    page = rows[offset : offset + limit]
    for r in page:
        if not r.changes:
            r.changes = change_counts(repo, r.commit)
    return History(page, len(rows), authors, annotators, datasets)


def _touches(repo: Repo, c: CommitInfo, dataset: str) -> bool:
    """Whether the commit changed ``dataset`` against its first parent: its tree id moved
    (one root-tree read per commit, no records decoded, so filtering stays cheap)."""
    mine = repo.datasets_at(c.id).get(dataset)
    theirs = repo.datasets_at(c.parents[0]).get(dataset) if c.parents else None
    return mine != theirs


def change_counts(repo: Repo, c: CommitInfo) -> dict[str, dict[str, int]]:
    """Per dataset, how many examples the commit added, removed, re-labelled, modified
    against its first parent (a root commit: its datasets' sizes, as added)."""
    if not c.parents:
        return {
            name: {"added": repo.dataset_tree(name, c.id).count}
            for name in sorted(repo.datasets_at(c.id))
        }
    changes = repo.changes(c.parents[0], c.id)
    return {name: _nonzero(counts(ch)) for name, ch in changes.items() if ch}


def _nonzero(d: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in d.items() if v}


# -- a diff, one page at a time ------------------------------------------------------
@dataclass(frozen=True)
class DiffItem:
    """One changed example: its kind and the record on each side (None where absent)."""

    kind: str
    id: str
    old: Record | None
    new: Record | None


@dataclass
class Transitions:
    """The label transition table as a matrix: rows are old labels, columns new."""

    old_labels: list[str]
    new_labels: list[str]
    cells: dict[tuple[str, str], int]


def transitions(d: DatasetDiff) -> Transitions:
    table = d.transitions()
    return Transitions(
        sorted({a for a, _, _ in table}, key=_label_order),
        sorted({b for _, b, _ in table}, key=_label_order),
        {(a, b): n for a, b, n in table},
    )


def _label_order(label: str) -> tuple[int, float, str]:
    """Numeric labels in numeric order (2 before 10), then the rest alphabetically."""
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def diff_items(
    d: DatasetDiff,
    *,
    kind: str | None = None,
    old_label: str | None = None,
    new_label: str | None = None,
) -> list[DiffItem]:
    """The changed examples of one dataset in id order, narrowed to a kind of change
    and/or a transition (``old_label`` → ``new_label``, as `label_key` writes labels)."""
    if kind is not None and kind not in KINDS:
        raise InvalidInputError(f"unknown kind of change {kind!r}", hint=f"one of {KINDS}")
    items: list[DiffItem] = []
    if kind in (None, "added"):
        items += [DiffItem("added", r.id, None, r) for r in d.added]
    if kind in (None, "removed"):
        items += [DiffItem("removed", r.id, r, None) for r in d.removed]
    if kind in (None, "relabeled"):
        items += [_item(c) for c in d.relabeled]
    if kind in (None, "modified"):
        items += [_item(c) for c in d.modified]
    if kind in (None, "renamed"):
        items += [DiffItem("renamed", x.new.id, x.old, x.new) for x in d.renamed]
    if old_label is not None or new_label is not None:
        items = [i for i in items if _moves(i, old_label, new_label)]
    items.sort(key=lambda i: i.id)
    return items


def _item(c: Change) -> DiffItem:
    return DiffItem(c.kind, c.id, c.old, c.new)


def _moves(i: DiffItem, old_label: str | None, new_label: str | None) -> bool:
    if i.old is None or i.new is None or i.old.label == i.new.label:
        return False
    return (old_label is None or label_key(i.old.label) == old_label) and (
        new_label is None or label_key(i.new.label) == new_label
    )


def diffs(repo: Repo, a: str | None, b: str) -> list[DatasetDiff]:
    """Every dataset's diff from commit ``a`` to ``b`` (the call `datagit diff A B` makes);
    ``a`` None: a root commit against nothing, every example added."""
    if a is None:
        return [build(name, ch) for name, ch in repo.changes(None, b).items()]
    return history.diff(repo, a, b).datasets


# -- one example ---------------------------------------------------------------------
@dataclass
class Prediction:
    """A cached run's output on one eval example."""

    run: str
    train_commit: str
    label: Any
    pred: Any
    confidence: float | None
    loss: float | None

    @property
    def correct(self) -> bool:
        return bool(self.label == self.pred)


@dataclass
class ExampleView:
    dataset: str
    rev: str
    record: Record | None  # None: not in the dataset at rev (history may still exist)
    events: list[ExampleEvent]
    predictions: list[Prediction]
    kind: str  # 'image', 'text' or 'bytes'


def example(repo: Repo, dataset: str, example_id: str, rev: str = "HEAD") -> ExampleView:
    """An example at ``rev``: its record, every commit that touched it, and run outputs."""
    commit = repo.resolve(rev)
    if dataset not in repo.datasets_at(commit):
        raise InvalidInputError(
            f"no dataset named {dataset!r} at {rev}",
            hint=f"datasets there: {', '.join(sorted(repo.datasets_at(commit))) or '(none)'}",
        )
    record = repo.dataset_tree(dataset, commit).get(example_id)
    events = history.example_log(repo, dataset, example_id, commit)
    if record is None and not events:
        raise InvalidInputError(
            f"no example {example_id!r} in dataset {dataset!r} at {rev}",
            hint=f"list ids with `datagit ls {rev} {dataset}`",
        )
    shown = record or next((e.old for e in events if e.old is not None), None)
    return ExampleView(
        dataset, commit, record, events, predictions(repo, dataset, example_id), kind_of(shown)
    )


def kind_of(record: Record | None) -> str:
    """How the viewer shows an example's bytes: inline text rows as text, else by a sniff."""
    if record is None:
        return "bytes"
    if record.text is not None:
        return "text"
    return "image" if record.size > 0 else "bytes"


def predictions(repo: Repo, dataset: str, example_id: str) -> list[Prediction]:
    """Every cached run that evaluated this example, newest first."""
    out = []
    for run in harness.runs(repo):
        if run.meta.get("eval", {}).get("dataset") != dataset:
            continue
        for o in run.outputs():
            if o.get("id") == example_id:
                out.append(
                    Prediction(
                        run.id,
                        run.meta["train"]["commit"],
                        o.get("label"),
                        o.get("pred"),
                        o.get("confidence"),
                        o.get("loss"),
                    )
                )
                break
    return out


def records_by_content(records: Iterable[Record | None]) -> list[str]:
    """The distinct content addresses on a page (what its thumbnails are made from)."""
    return sorted({r.content for r in records if r is not None and r.text is None})


_ADDRESS = re.compile(r"^[0-9a-f]{32}$")


def content(repo: Repo, address: str) -> bytes:
    """Bytes by content address, verified; anything but 32 hex digits is refused unread."""
    if not _ADDRESS.match(address):
        raise InvalidInputError(
            f"{address[:80]!r} is not a content address", hint="32 hex digits (xxh3-128)"
        )
    if not repo.store.has(address):
        raise InvalidInputError(f"no content {address} in this repository")
    return repo.store.read(address)
