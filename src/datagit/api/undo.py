"""Taking changes back without detaching HEAD: restore, reset and revert, as git has them.

`restore` puts examples back in the workspace (from the stage, or a revision)
or in the stage (from HEAD); `reset` moves the branch and, by mode, the stage
and the workspace; `revert` makes a commit that undoes one commit's record
changes. Each checks everything before writing, so a refusal changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from datagit.api import mergestate, staging
from datagit.api.workspace import materialize
from datagit.core import checkout as co
from datagit.core import manifest, snapshot
from datagit.core.changes import Change, classify, compare
from datagit.core.checkout import target_path
from datagit.core.config import Config, DatasetConfig
from datagit.core.layouts import Hasher, scan
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record
from datagit.errors import ConflictError, DatagitError, InvalidInputError
from datagit.storage.git import CommitInfo

if TYPE_CHECKING:
    from datagit.api.repo import Repo

MODES = ("soft", "mixed", "hard")


# -- restore -----------------------------------------------------------------------
def restore(
    repo: Repo, paths: list[str], *, staged: bool = False, source: str | None = None
) -> dict[str, list[Change]]:
    """Put the examples named by ``paths`` (datasets or workspace paths) back as they are
    in the stage (``source``: that revision) — or, with ``staged``, unstage them (the
    stage takes HEAD's records). Returns what changed, per dataset."""
    if not paths:
        raise InvalidInputError(
            "restore needs the datasets or paths to restore",
            hint="name them, e.g. `datagit restore train` or `datagit restore train/cat/1.png`",
        )
    with repo.lock:
        cfg = repo.config
        targets = staging._targets(repo, cfg, paths)
        if staged:
            return _unstage(repo, cfg, targets, paths)
        return _restore_workspace(repo, cfg, targets, source, paths)


def _selected(
    cfg: DatasetConfig, prefixes: list[str] | None, *sides: dict[str, Record]
) -> set[str]:
    """Ids whose file (on any side) lies under ``prefixes``; every id when None."""
    ids: set[str] = set()
    for side in sides:
        if prefixes is None or cfg.layout == "table":
            ids.update(side)
            continue
        for i, r in side.items():
            path = target_path(cfg, r) or ""
            if any(path == p or path.startswith(p + "/") for p in prefixes):
                ids.add(i)
    return ids


def _no_match(name: str, prefixes: list[str] | None, paths: list[str]) -> DatagitError:
    shown = ", ".join(prefixes) if prefixes else ", ".join(paths)
    return InvalidInputError(
        f"{shown} matches no example of dataset {name}",
        hint="check the path; `datagit status` lists what changed",
    )


def _records(repo: Repo, tree: str | None) -> dict[str, Record]:
    return DatasetTree(repo.git, tree).by_id() if tree else {}


def _restore_workspace(
    repo: Repo,
    cfg: Config,
    targets: dict[str, list[str] | None],
    source: str | None,
    paths: list[str],
) -> dict[str, list[Change]]:
    src_ds = repo.datasets_at(source) if source else _stage_datasets(repo)
    plan = co.Plan()
    out: dict[str, list[Change]] = {}
    for name, prefixes in targets.items():
        dcfg = cfg.datasets[name]
        now = {r.id: r for r in repo.scan(name)}
        src = _records(repo, src_ds.get(name))
        ids = _selected(dcfg, prefixes, now, src)
        if dcfg.layout == "imagefolder":
            ids &= set(src)  # as git's: a file the stage never had is not restore's to delete
        if not ids and prefixes is not None:
            raise _no_match(name, prefixes, paths)
        before = {i: now[i] for i in ids if i in now}
        after = {i: src[i] for i in ids if i in src}
        out[name] = compare(before, after)
        if dcfg.layout == "table":
            whole = {i: r for i, r in now.items() if i not in ids} | after
            table = repo.workdir / dcfg.path
            co.plan_dataset(
                plan, dcfg, now, dcfg, whole, table.read_bytes() if table.exists() else None
            )
        else:
            co.plan_dataset(plan, dcfg, before, dcfg, after, None)
    co.verify(plan, repo.store)
    co.apply(plan, repo.workdir, repo.store, repo.statcache.record_stat)
    for name in targets:
        if cfg.datasets[name].layout == "imagefolder":
            snapshot.retire(repo.git, cfg.datasets[name], repo.snapshots, repo.statcache)
    repo.statcache.save()
    return out


def _stage_datasets(repo: Repo) -> dict[str, str]:
    tree = repo.stage_tree()
    return manifest.read_root(repo.git, tree)[1] if tree else {}


def _unstage(
    repo: Repo, cfg: Config, targets: dict[str, list[str] | None], paths: list[str]
) -> dict[str, list[Change]]:
    head = repo.head()
    if head is None:
        raise DatagitError(
            "restore --staged: there are no commits yet to restore the stage from",
            hint="nothing is committed; `datagit status` shows what is staged",
        )
    head_tree = repo.git.commit(head).tree
    stage = repo.stage_tree() or head_tree
    stage_cfg, stage_ds = manifest.read_root(repo.git, stage)
    head_ds = manifest.read_root(repo.git, head_tree)[1]
    out: dict[str, list[Change]] = {}
    new_ds = dict(stage_ds)
    with repo.git.batch():
        for name, prefixes in targets.items():
            dcfg = cfg.datasets[name]
            staged_recs = _records(repo, stage_ds.get(name))
            head_recs = _records(repo, head_ds.get(name))
            ids = _selected(dcfg, prefixes, staged_recs, head_recs)
            if not ids and prefixes is not None:
                raise _no_match(name, prefixes, paths)
            before = {i: staged_recs[i] for i in ids if i in staged_recs}
            after = {i: head_recs[i] for i in ids if i in head_recs}
            out[name] = compare(before, after)
            if prefixes is None:
                if name in head_ds:
                    new_ds[name] = head_ds[name]
                else:
                    new_ds.pop(name, None)
            elif out[name]:
                new_ds[name] = manifest.patch_dataset(
                    repo.git, stage_ds.get(name), after, set(before) - set(after)
                )
        root = manifest.write_root(repo.git, stage_cfg, new_ds)
    repo._set_stage(None if root == head_tree else root)
    return out


# -- reset -------------------------------------------------------------------------
@dataclass(frozen=True)
class ResetResult:
    old: str
    new: CommitInfo
    mode: str


def reset(repo: Repo, rev: str = "HEAD", *, mode: str = "mixed") -> ResetResult:
    """Point the current branch (or a detached HEAD) at ``rev``; ``mixed`` also resets
    the stage, ``hard`` the stage and the workspace, ``soft`` neither — as git's."""
    if mode not in MODES:
        raise InvalidInputError(
            f"unknown reset mode {mode!r}", hint="use --soft, --mixed or --hard"
        )
    with repo.lock:
        old = repo.head()
        if old is None:
            raise DatagitError(
                "cannot reset: there are no commits yet",
                hint="make a first commit with `datagit commit -a -m ...`",
            )
        target = repo.resolve(rev)
        info = repo.git.commit(target)
        if mode == "soft" and repo.stage_tree() == repo.git.commit(old).tree:
            repo._set_stage(repo.git.commit(old).tree)  # the old commit stays staged
        branch = repo.branch()
        message = f"reset: moving to {rev}"
        if mode == "hard":
            # HEAD moves in the journalled checkout's last step: a reset killed after
            # the files are rewritten is finished by the next command, HEAD included,
            # not left with the workspace at the target and HEAD where it was.
            then: dict[str, object] = (
                {"ref": f"refs/heads/{branch}", "oid": target, "message": message}
                if branch
                else {"head_detached": target}
            )
            materialize(repo, info.tree, force=True, then={**then, "clear_merge_state": True})
            return ResetResult(old, info, mode)
        if branch:
            repo.git.update_ref(f"refs/heads/{branch}", target, message)
        else:
            repo.git.set_head_detached(target)
        if mode != "soft":
            repo._set_stage(None)
        mergestate.clear_merge_state(repo)
        return ResetResult(old, info, mode)


# -- revert ------------------------------------------------------------------------
def revert(repo: Repo, rev: str, mainline: int | None = None) -> CommitInfo:
    """A new commit that undoes commit ``rev``'s record changes (an added example goes,
    a removed one comes back, a re-label is re-labelled back), refused when a later
    commit changed one of those examples again.

    A merge has one change per parent; as in git, ``mainline`` (1-based) names the
    parent whose side is kept: the merge's changes relative to it are undone.
    """
    with repo.lock:
        c = repo.commit_info(rev)
        head = repo.head()
        assert head is not None  # commit_info resolved a revision, so there are commits
        base = _mainline_parent(c, mainline)
        if not repo.status().clean:
            raise ConflictError(
                "revert needs a clean workspace: there are uncommitted changes",
                hint="commit them, or put them aside with `datagit stash`",
            )
        repo.identity()  # refuse before writing anything when there is no author
        head_tree = repo.git.commit(head).tree
        head_cfg, head_ds = manifest.read_root(repo.git, head_tree)
        new_ds = dict(head_ds)
        clashes: list[str] = []
        with repo.git.batch():
            for name, changes in repo.changes(base, c.id).items():
                if changes:
                    new_ds[name] = _undo(repo, name, head_ds.get(name), changes, clashes)
            root = manifest.write_root(repo.git, head_cfg, new_ds)
        if clashes:
            raise ConflictError(
                f"cannot revert {c.id[:10]}: {len(clashes)} of its examples changed since "
                f"(first: {clashes[0]})",
                hint="undo those by hand: edit the workspace, then commit",
            )
        if root == head_tree:
            raise DatagitError(
                f"nothing to revert: HEAD already undoes {c.id[:10]}",
                hint="`datagit show` it to see what it changed",
            )
        materialize(repo, root, clean_at=head_tree)
        repo._set_stage(root)
        message = f'Revert "{c.summary}"\n\nThis reverts commit {c.id}'
        if len(c.parents) > 1:
            message += f", reversing\nchanges made to {base}"
        return repo.commit(message + ".")


def _mainline_parent(c: CommitInfo, mainline: int | None) -> str | None:
    """The parent whose side a revert keeps: the only one, or a merge's ``mainline``."""
    if len(c.parents) > 1:
        if mainline is None:
            raise InvalidInputError(
                f"commit {c.id[:10]} is a merge but no -m option was given",
                hint=f"name the parent to keep: `datagit revert -m 1 {c.id[:10]}` keeps "
                "the branch it was merged into (parents 1 to "
                f"{len(c.parents)}; see `datagit show {c.id[:10]}`)",
            )
        if not 1 <= mainline <= len(c.parents):
            raise InvalidInputError(
                f"commit {c.id[:10]} does not have parent {mainline} (it has {len(c.parents)})",
                hint=f"use -m 1 to -m {len(c.parents)}",
            )
        return c.parents[mainline - 1]
    if mainline is not None:
        raise InvalidInputError(
            f"-m {mainline} was given but commit {c.id[:10]} is not a merge",
            hint=f"revert it without -m: `datagit revert {c.id[:10]}`",
        )
    return c.parents[0] if c.parents else None


def _undo(
    repo: Repo, name: str, tree: str | None, changes: list[Change], clashes: list[str]
) -> str:
    now = DatasetTree(repo.git, tree) if tree else None
    upserts: dict[str, Record] = {}
    deletes: set[str] = set()
    for x in changes:
        current = now.get(x.id) if now else None
        if _same(current, x.old):
            continue  # already as it was before that commit
        if not _same(current, x.new):
            clashes.append(f"{name}/{x.id}")
        elif x.old is None:
            deletes.add(x.id)
        else:
            upserts[x.id] = x.old
    if not upserts and not deletes:
        return tree or manifest.write_dataset(repo.git, [])
    return manifest.patch_dataset(repo.git, tree, upserts, deletes)


def _same(a: Record | None, b: Record | None) -> bool:
    if a is None or b is None:
        return a is b
    return classify(a, b) is None


# -- the workspace as a tree (stash, eval --workspace) --------------------------------
def workspace_root(repo: Repo) -> str:
    """A commit tree of the workspace as it is: every dataset scanned, its content stored."""
    cfg_bytes = (repo.workdir / "datagit.toml").read_bytes()
    cfg = Config.parse(cfg_bytes)
    with repo.store.writer() as writer, repo.git.batch():
        hasher = Hasher(repo.workdir, repo.statcache, writer)
        trees = {
            name: manifest.write_dataset(repo.git, scan(d, hasher))
            for name, d in cfg.datasets.items()
        }
        root = manifest.write_root(repo.git, cfg_bytes, trees)
    repo._save_statcache()
    return root
