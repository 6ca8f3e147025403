"""History verbs over a `Repo`: diff, per-example log, blame, credit, merge and resolve.

Each function resolves revisions and pseudo-revisions (the workspace, the
stage), calls the pure logic in ``datagit.core`` and returns values; the CLI
renders them. Merge writes its state through `api.mergestate` so
that `status` and `commit` see an unfinished merge.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from datagit.api.repo import STAGED, WORKSPACE
from datagit.core import blame as blame_core
from datagit.core import credit as credit_core
from datagit.core import diff as diff_core
from datagit.core import manifest, patch, trust
from datagit.core import merge as merge_core
from datagit.core.config import Config
from datagit.core.diff import DatasetDiff, Filter
from datagit.core.manifest import DatasetTree
from datagit.core.merge import OURS, THEIRS, Conflict
from datagit.core.records import Record
from datagit.errors import ConflictError, DatagitError, InvalidInputError
from datagit.storage.git import CommitInfo

if TYPE_CHECKING:
    from datagit.api.repo import Repo


# -- diff ------------------------------------------------------------------------
@dataclass
class Diff:
    """Per-dataset diffs between two states; ``old``/``new`` are commit ids or pseudo-revs."""

    old: str | None
    new: str | None
    datasets: list[DatasetDiff] = field(default_factory=list)


def diff_revisions(a: str | None, b: str | None, cached: bool) -> tuple[str, str]:
    """git's reading of ``diff [A [B]] [--cached]`` (plus ``A..B``)."""
    if a and b is None and ".." in a:
        a, b = a.split("..", 1)
        a, b = a or "HEAD", b or "HEAD"
    if cached:
        if b is not None:
            raise InvalidInputError("diff --cached takes at most one revision")
        return a or "HEAD", STAGED
    return a or "HEAD", b or WORKSPACE


def diff(
    repo: Repo,
    a: str | None = None,
    b: str | None = None,
    *,
    cached: bool = False,
    datasets: Iterable[str] | None = None,
    keep: Filter | None = None,
    renames: bool = True,
) -> Diff:
    """What changed from A to B (default: HEAD to the workspace), dataset by dataset."""
    old_rev, new_rev = diff_revisions(a, b, cached)
    old_id, old_trees = _side(repo, old_rev)
    new_id, new_trees = _side(repo, new_rev)
    names = sorted(set(old_trees) | set(new_trees))
    if datasets is not None:
        wanted = list(datasets)
        for name in wanted:
            if name not in names:
                raise InvalidInputError(
                    f"no dataset named {name!r} at {old_rev} or {new_rev}",
                    hint=f"datasets: {', '.join(names) or '(none)'}",
                )
        names = wanted
    out = Diff(old_id, new_id)
    for name in names:
        if old_rev == WORKSPACE or new_rev == WORKSPACE:
            d = diff_core.diff_maps(
                name,
                _records(repo, name, old_rev, old_trees),
                _records(repo, name, new_rev, new_trees),
            )
        else:
            changes = None
            if old_id not in (None, STAGED) and new_id not in (None, STAGED):
                changes = patch.changes_between_commits(repo.git, old_id, new_id, name)
            if changes is None:
                changes = diff_core.changes_between(
                    repo.git, old_trees.get(name), new_trees.get(name)
                )
            d = diff_core.build(name, changes, renames=renames)
        out.datasets.append(d.filtered(keep) if keep else d)
    return out


def _side(repo: Repo, rev: str) -> tuple[str | None, dict[str, str | None]]:
    if rev == WORKSPACE:
        return WORKSPACE, dict.fromkeys(repo.config.datasets)
    if rev == STAGED:
        return STAGED, dict(repo.datasets_at(STAGED))
    if rev == "HEAD" and repo.head() is None:
        return None, {}
    oid = repo.resolve(rev)
    return oid, dict(repo.datasets_at(oid))


def _records(repo: Repo, name: str, rev: str, trees: dict[str, str | None]) -> dict[str, Record]:
    if name not in trees:
        return {}
    if rev == WORKSPACE:
        return {r.id: r for r in repo.scan(name)}
    tree = trees[name]
    return DatasetTree(repo.git, tree).by_id() if tree else {}


# -- log and blame -------------------------------------------------------------------
def split_example(repo: Repo, spec: str, rev: str = "HEAD") -> tuple[str, str | None]:
    """``dataset/id`` → (dataset, id); a bare dataset name → (dataset, None)."""
    known = set(repo.config.datasets)
    if repo.head() is not None:
        known |= set(repo.datasets_at(rev))
    if spec in known:
        return spec, None
    name, sep, example_id = spec.partition("/")
    if not sep or name not in known or not example_id:
        raise InvalidInputError(
            f"{spec!r} is not DATASET or DATASET/ID",
            hint=f"datasets: {', '.join(sorted(known)) or '(none)'}",
        )
    return name, example_id


def example_log(
    repo: Repo, dataset: str, example_id: str, rev: str = "HEAD"
) -> list[blame_core.ExampleEvent]:
    """Every commit reachable from ``rev`` that changed one example, newest first."""
    head = _head(repo, rev)
    return list(blame_core.example_history(repo.git, head, dataset, example_id))


def blame(
    repo: Repo, dataset: str, rev: str = "HEAD", *, label: str | None = None
) -> list[blame_core.ExampleBlame]:
    """One line per example of ``dataset`` at ``rev``: who set its label, and when it came."""
    head = _head(repo, rev)
    if dataset not in repo.datasets_at(head):
        raise InvalidInputError(
            f"no dataset named {dataset!r} at {rev}",
            hint=f"datasets there: {', '.join(sorted(repo.datasets_at(head))) or '(none)'}",
        )
    rows = blame_core.blame_dataset(repo.git, head, dataset)
    out = sorted(rows.values(), key=lambda b: b.id)
    if label is not None:
        out = [b for b in out if diff_core.label_key(b.label) == label]
    return out


def _head(repo: Repo, rev: str) -> str:
    head = repo.head() if rev == "HEAD" else repo.resolve(rev)
    if head is None:
        raise DatagitError("there are no commits yet", hint="commit with `datagit commit -a -m …`")
    return head


# -- credit -----------------------------------------------------------------------------
def credit(
    repo: Repo,
    rev: str = "HEAD",
    *,
    datasets: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> credit_core.Ledger:
    """The labour ledger per author and per annotator (commits in [since, until] only)."""
    head = _head(repo, rev)
    names = list(datasets) if datasets is not None else sorted(repo.datasets_at(head))
    lo = since.timestamp() if since else None
    hi = until.timestamp() if until else None

    def window(c: CommitInfo) -> bool:
        return (lo is None or c.author.time >= lo) and (hi is None or c.author.time <= hi)

    return credit_core.credit(repo.git, head, names, window if lo or hi else None)


# -- merge ------------------------------------------------------------------------------
@dataclass
class MergeOutcome:
    """``kind`` is 'up-to-date', 'fast-forward', 'merged' or 'conflicts'."""

    kind: str
    theirs: str
    commit: CommitInfo | None = None
    conflicts: list[Conflict] = field(default_factory=list)
    taken: dict[str, int] = field(default_factory=dict)


def merge(
    repo: Repo, rev: str, *, strategy: str | None = None, message: str | None = None
) -> MergeOutcome:
    """Merge ``rev`` into HEAD: fast-forward, or a record-level three-way merge.

    Without conflicts (or with ``strategy`` ours/theirs deciding them) the merge
    commit is made at once; otherwise the merge is left in progress for
    `resolve`, ``merge --ours/--theirs`` or ``merge --abort``.
    """
    # Committing and the workspace writer are imported where a merge needs them, so the
    # read verbs that come here (blame, log, diff) do not load the write path.
    from datagit.api import committing, mergestate
    from datagit.api.workspace import begin, materialize

    with repo.lock:
        if mergestate.read_merge_state(repo):
            raise ConflictError(
                "a merge is already in progress",
                hint="finish it with `datagit commit`, or `datagit merge --abort`",
            )
        theirs = repo.resolve(rev)
        head = repo.head()
        if head is not None and repo.git.is_ancestor(theirs, head):
            return MergeOutcome("up-to-date", theirs)
        _require_clean(repo, f"merge {rev}")
        if head is None or repo.git.is_ancestor(head, theirs):
            branch = repo.branch()
            then: dict[str, object] = (
                {"ref": f"refs/heads/{branch}", "oid": theirs}
                if branch
                else {"head_detached": theirs}
            )
            materialize(repo, repo.git.commit(theirs).tree, then=then)  # moves the ref too
            return MergeOutcome("fast-forward", theirs, repo.git.commit(theirs))
        base = repo.git.merge_base(head, theirs)
        result = merge_core.merge_trees(
            repo.git,
            repo.git.commit(base).tree if base else None,
            repo.git.commit(head).tree,
            repo.git.commit(theirs).tree,
        )
        tree = result.tree
        conflicts = merge_core.with_authors(repo.git, result.conflicts, head, theirs)
        if conflicts and strategy in (OURS, THEIRS):
            tree = _choose(repo, tree, conflicts, strategy)
            conflicts = []
        # Their side may come from anyone: check what it brings before the stage names it.
        trust.check_new(repo.git, repo.git.commit(head).tree, tree, f"merge {rev}")
        text = message or f"Merge {rev!r} into {repo.branch() or 'HEAD'}"
        state = {
            "theirs": theirs,
            "orig_head": head,
            "message": text,
            "conflicts": [c.key for c in conflicts],
            "details": [c.to_dict() for c in conflicts],
        }
        # Journalled before the merge state and the stage: a kill anywhere from here on
        # is rolled forward whole (state, stage and workspace) by the next command.
        after: dict[str, object] = {"merge_state": state, "stage": tree, "clear_stage": False}
        begin(repo, tree, after)
        mergestate.write_merge_state(repo, state)
        repo._set_stage(tree)
        materialize(repo, tree, then=after)
        if conflicts:
            return MergeOutcome("conflicts", theirs, None, conflicts, result.taken)
        info = committing.commit(repo, text)
        return MergeOutcome("merged", theirs, info, [], result.taken)


def _require_clean(repo: Repo, what: str) -> None:
    st = repo.status()
    if not st.clean:
        n = sum(len(d.staged) + len(d.unstaged) for d in st.datasets)
        raise ConflictError(
            f"{what} would overwrite uncommitted changes ({n} examples)",
            hint="commit them first, or discard them with `datagit checkout -f HEAD`",
        )


def _choose(repo: Repo, tree: str, conflicts: list[Conflict], side: str) -> str:
    picks: dict[str, dict[str, Record | None]] = {}
    for c in conflicts:
        picks.setdefault(c.dataset, {})[c.id] = c.pick(side)
    return merge_core.resolve(repo.git, tree, picks)


def merge_state(repo: Repo) -> tuple[dict, list[Conflict]]:
    """The merge in progress and its unresolved conflicts (raises when none)."""
    from datagit.api import mergestate

    state = mergestate.read_merge_state(repo)
    if not state:
        raise DatagitError("no merge in progress", hint="start one with `datagit merge BRANCH`")
    return state, [Conflict.from_dict(d) for d in state.get("details", [])]


def merge_abort(repo: Repo) -> str:
    """Put HEAD's tree back in the workspace and the stage; forget the merge."""
    from datagit.api import mergestate
    from datagit.api.workspace import materialize

    with repo.lock:
        state, _ = merge_state(repo)
        head = repo.head()
        if head is not None:
            materialize(repo, repo.git.commit(head).tree, force=True)
        repo._set_stage(None)
        mergestate.clear_merge_state(repo)
        return str(state["theirs"])


def resolve(
    repo: Repo,
    spec: str | None = None,
    *,
    side: str | None = None,
    label: object = None,
    has_label: bool = False,
) -> list[Conflict]:
    """Resolve conflicts: all (``spec`` None) or one ``dataset/id``; returns those resolved.

    The value comes from ``side`` (ours/theirs), an explicit ``label``, or, with
    neither, the workspace as the user edited it.
    """
    from datagit.api import mergestate
    from datagit.api.workspace import materialize

    with repo.lock:
        state, conflicts = merge_state(repo)
        chosen = conflicts if spec is None else [c for c in conflicts if c.key == spec]
        if spec is not None and not chosen:
            raise InvalidInputError(
                f"{spec!r} is not an unresolved conflict",
                hint="list them with `datagit merge --list` or `datagit status`",
            )
        picks: dict[str, dict[str, Record | None]] = {}
        workspace: dict[str, dict[str, Record]] = {}
        for c in chosen:
            if side is not None:
                value = c.pick(side)
            elif has_label:
                rec = c.ours or c.theirs
                assert rec is not None
                value = replace(rec, label=label, annotator=None)
            else:
                if c.dataset not in workspace:
                    workspace[c.dataset] = {r.id: r for r in repo.scan(c.dataset)}
                value = workspace[c.dataset].get(c.id)
            picks.setdefault(c.dataset, {})[c.id] = value
        stage = repo.stage_tree()
        assert stage is not None
        config = Config.parse(manifest.read_root(repo.git, stage)[0])
        for name, values in picks.items():
            cfg = config.datasets.get(name)
            for value in values.values():
                if cfg is not None and value is not None:  # e.g. --label ../.datagit
                    trust.record_path(cfg, value, f"resolve {name}/{value.id}")
        tree = merge_core.resolve(repo.git, stage, picks)
        repo._set_stage(tree)
        materialize(repo, tree, force=True)
        done = {c.key for c in chosen}
        state["details"] = [d for d in state["details"] if f"{d['dataset']}/{d['id']}" not in done]
        state["conflicts"] = [k for k in state["conflicts"] if k not in done]
        mergestate.write_merge_state(repo, state)
        return chosen
