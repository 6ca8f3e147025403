"""Per-commit patches: the records a commit changed, stored beside its tree.

Hash sharding spreads even a small random change over most shards, so a tree
comparison of two commits 1% apart still reads most of both manifests. Each
commit therefore also records its change against its first parent as
``changes/<dataset>.jsonl`` in the commit tree — one line per changed example,
``{"id", "old", "new"}`` with the full records — and diff, show and blame read
those lines instead of the shards whenever the commits lie on one first-parent
path. Cost then follows the number of changed records, whatever their spread.

The patch lives outside ``datasets/<name>``, so a dataset's tree id still
depends only on its records (the run cache and snapshots key on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson

from datagit.core.changes import Change, classify
from datagit.core.records import Record
from datagit.storage.git import TREE, CommitInfo, GitStore

FOLDER = "changes"
MIN_PATCH = 10_000  # changes up to this many records always get a patch
Pairs = dict[str, tuple[Record | None, Record | None]]  # id → (old, new)


def encode(pairs: Mapping[str, tuple[Record | None, Record | None]]) -> bytes:
    lines = []
    for example_id in sorted(pairs):
        old, new = pairs[example_id]
        lines.append(
            orjson.dumps(
                {
                    "id": example_id,
                    "old": old.to_dict() if old else None,
                    "new": new.to_dict() if new else None,
                }
            )
        )
    return b"\n".join(lines) + b"\n" if lines else b""


def decode(data: bytes) -> Pairs:
    if not data:
        return {}
    rows = orjson.loads(b"[" + data.rstrip(b"\n").replace(b"\n", b",") + b"]")
    return {
        d["id"]: (
            Record.from_dict(d["old"]) if d["old"] else None,
            Record.from_dict(d["new"]) if d["new"] else None,
        )
        for d in rows
    }


def from_changes(changes: Iterable[Change]) -> Pairs:
    return {c.id: (c.old, c.new) for c in changes}


def compose(first: Pairs, then: Pairs) -> Pairs:
    """The change ``first`` followed by ``then`` (ids whose end state equals the start drop)."""
    out = dict(first)
    for example_id, (old, new) in then.items():
        if example_id in out:
            start = out[example_id][0]
            if _same(start, new):
                del out[example_id]
            else:
                out[example_id] = (start, new)
        else:
            out[example_id] = (old, new)
    return out


def _same(a: Record | None, b: Record | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.to_dict() == b.to_dict()


def to_changes(pairs: Pairs) -> list[Change]:
    out = []
    for example_id in sorted(pairs):
        old, new = pairs[example_id]
        kind = classify(old, new)
        if kind:
            out.append(Change(example_id, kind, old, new))
    return out


def worth_storing(pairs: Pairs, dataset_size: int) -> bool:
    """Small changes get a patch; a bulk import would only double its own size."""
    return len(pairs) <= max(MIN_PATCH, dataset_size // 5)


def read(git: GitStore, commit_tree: str, dataset: str) -> Pairs | None:
    """The patch of ``dataset`` stored in a commit tree, or None when it was not recorded.

    ``changes/`` names every dataset the commit changed: ``NAME.jsonl`` holds
    the patch, ``NAME.skip`` marks a change too large to be worth one. A
    dataset not named there is unchanged.
    """
    entries = git.tree_entries(commit_tree)
    folder = entries.get(FOLDER)
    if folder is None or folder.kind != TREE:
        return None
    files = git.tree_entries(folder.oid)
    blob = files.get(f"{dataset}.jsonl")
    if blob is not None:
        return decode(git.read_blob(blob.oid))
    return None if f"{dataset}.skip" in files else {}


def along_first_parents(
    git: GitStore, old: str, new: str, dataset: str, limit: int = 64
) -> Pairs | None:
    """The composed patch from commit ``old`` to commit ``new``.

    Only when ``old`` is reached from ``new`` by at most ``limit`` first-parent
    steps and every commit on the way carries patches; otherwise None, and the
    caller compares trees.
    """
    path: list[str] = []
    commit = new
    while commit != old:
        if len(path) >= limit:
            return None
        info = git.commit(commit)
        if not info.parents:
            return None
        path.append(info.tree)
        commit = info.parents[0]
    total: Pairs = {}
    for tree in reversed(path):
        step = read(git, tree, dataset)
        if step is None:
            return None
        total = compose(total, step)
    return total


def commit_changes(git: GitStore, commit: CommitInfo, dataset: str) -> list[Change] | None:
    """What ``commit`` changed in ``dataset`` against its first parent, from its patch."""
    if not commit.parents:
        return None
    pairs = read(git, commit.tree, dataset)
    return None if pairs is None else to_changes(pairs)


def changes_between_commits(git: GitStore, old: str, new: str, dataset: str) -> list[Change] | None:
    """Changes from commit ``old`` to ``new`` by composing patches, in either direction.

    None when neither commit is a near first-parent ancestor of the other (or a
    patch on the way is missing): the caller then compares trees.
    """
    pairs = along_first_parents(git, old, new, dataset)
    if pairs is None:
        back = along_first_parents(git, new, old, dataset)
        if back is None:
            return None
        pairs = {i: (n, o) for i, (o, n) in back.items()}
    return to_changes(pairs)
