"""Moving the workspace between revisions: checkout, switch, branches and tags."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from datagit.api.branches import create_branch, list_branches
from datagit.api.staging import bulk
from datagit.api.tracking import Tracking, tracking  # noqa: F401 - where callers look
from datagit.core import checkout as co
from datagit.core import manifest, patch, snapshot, tablecheckout
from datagit.core.changes import Change, classify, compare_trees
from datagit.core.config import Config, DatasetConfig
from datagit.core.layouts import Hasher
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record
from datagit.errors import ConflictError, DatagitError, InvalidInputError, LockedError
from datagit.progress import Progress
from datagit.storage import links
from datagit.storage.git import CommitInfo
from datagit.storage.listingcache import ListingCache
from datagit.storage.tablecache import PackedLineMap

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.api.status import Status


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def checkout(
    repo: Repo, rev: str, *, force: bool = False, progress: Progress | None = None
) -> CommitInfo:
    """Point HEAD at ``rev`` and make the workspace match it.

    A branch name attaches HEAD to the branch; anything else detaches it.
    Refuses when uncommitted changes would be lost, unless ``force``.
    """
    with repo.lock:
        target = repo.resolve(rev)
        branch = rev if repo.git.ref(f"refs/heads/{rev}") else None
        if rev == "HEAD":  # `checkout -f HEAD` discards changes; it never detaches (as git)
            branch = repo.branch()
        target_tree = repo.git.commit(target).tree
        clean = _require_clean(repo, force, f"checkout {rev}", target_tree)
        head = repo.head()
        clean_at = repo.git.commit(head).tree if head and clean else None
        then: dict[str, object] = {"head_branch": branch} if branch else {"head_detached": target}
        with bulk():
            materialize(
                repo,
                target_tree,
                force=force,
                clean_at=clean_at,
                then=then,
                progress=progress,
                commits=(head, target) if clean_at and head else None,
            )
        return repo.git.commit(target)


# -- the checkout journal --------------------------------------------------------
JOURNAL = "CHECKOUT"  # {"tree", "after": {...}}: a materialize in progress, and what follows


def _finish(repo: Repo, after: dict[str, object]) -> None:
    """What a journalled materialize does once the workspace matches: move HEAD or a
    ref, forget the stage; then the journal goes."""
    if after.get("head_branch"):
        repo.git.set_head_branch(str(after["head_branch"]))
    elif after.get("head_detached"):
        repo.git.set_head_detached(str(after["head_detached"]))
    if after.get("ref") and after.get("oid"):
        message = after.get("message")
        repo.git.update_ref(str(after["ref"]), str(after["oid"]), str(message) if message else None)
    if isinstance(after.get("merge_state"), dict) or after.get("clear_merge_state"):
        from datagit.api import mergestate

        if after.get("clear_merge_state"):
            mergestate.clear_merge_state(repo)
        else:
            mergestate.write_merge_state(repo, after["merge_state"])  # type: ignore[arg-type]
    if isinstance(after.get("stage"), str):
        repo._set_stage(str(after["stage"]))
    if after.get("clear_stage", True):
        repo._set_stage(None)
    (repo.dotdir / JOURNAL).unlink(missing_ok=True)


def begin(repo: Repo, tree: str, then: dict[str, object]) -> None:
    """Write the journal before a caller's own first write (a merge's state and stage),
    so a kill at any later point is rolled forward as a whole by the next command."""
    _atomic_write(repo.dotdir / JOURNAL, orjson.dumps({"tree": tree, "after": then}))


def interrupted(repo: Repo) -> dict | None:
    """The journal of a checkout that was killed (or runs now), or None."""
    try:
        state = orjson.loads((repo.dotdir / JOURNAL).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError):
        (repo.dotdir / JOURNAL).unlink(missing_ok=True)  # torn before it was complete:
        return None  # the workspace was not touched yet (it is written before any edit)
    if not isinstance(state, dict) or not isinstance(state.get("tree"), str):
        (repo.dotdir / JOURNAL).unlink(missing_ok=True)
        return None
    return state


def finish_interrupted(repo: Repo) -> bool:
    """Roll a killed checkout forward: make the workspace match its target exactly, then
    do what it would have done after (move HEAD, forget the stage). True if it did.

    A checkout still running holds the lock: then this says so instead of blaming
    the user's files for the half-moved workspace.
    """
    if not (repo.dotdir / JOURNAL).exists():
        return False
    try:
        repo.lock.acquire()
    except LockedError as exc:
        raise LockedError(
            "a checkout is in progress in this workspace: " + exc.message,
            hint="wait for it to finish, then run the command again",
        ) from None
    try:
        state = interrupted(repo)
        if state is None:
            return False
        materialize(repo, state["tree"], force=True, then=state.get("after") or {})
        return True
    finally:
        repo.lock.release()


def switch(
    repo: Repo,
    branch: str,
    *,
    create: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> CommitInfo | None:
    """Switch to ``branch``; with ``create``, make it at HEAD first."""
    with repo.lock:
        if create:
            create_branch(repo, branch)
            head = repo.head()
            repo.git.set_head_branch(branch)
            return repo.git.commit(head) if head else None
        if not repo.git.ref(f"refs/heads/{branch}"):
            raise InvalidInputError(
                f"no branch named {branch!r}",
                hint=f"create it with `datagit switch -c {branch}` (branches: "
                f"{', '.join(list_branches(repo)) or 'none'})",
            )
        return checkout(repo, branch, force=force, progress=progress)


def left_behind(repo: Repo, old: str | None) -> list[CommitInfo]:
    """Commits reachable from ``old`` (a detached HEAD just left) and from no branch,
    tag or the new HEAD, newest first: what git warns is "left behind" on a switch."""
    if old is None or (repo.branch() is None and repo.head() == old):
        return []
    keep = [*repo.git.refs("refs/heads/").values(), *repo.git.refs("refs/tags/").values()]
    head = repo.head()
    if head:
        keep.append(head)
    return list(repo.git.walk([old], hide=keep))


def _require_clean(repo: Repo, force: bool, what: str, target_tree: str | None = None) -> bool:
    """True when the workspace matches HEAD; raises when uncommitted work would be lost.

    Changes that already equal ``target_tree`` lose nothing (a checkout killed half-way
    leaves exactly those), so re-running that checkout is allowed.
    """
    if force:
        return False
    status = repo.status()
    if status.clean:
        return True
    n, config = _would_lose(repo, status, target_tree)
    if n or config:
        raise ConflictError(
            f"{what} would overwrite uncommitted changes ({n} examples"
            + (", datagit.toml" if config else "")
            + ")",
            hint="commit them first, or pass --force to discard them",
        )
    return False


def _would_lose(repo: Repo, status: Status, target_tree: str | None) -> tuple[int, bool]:
    """(examples, whether datagit.toml) whose uncommitted state differs from the target."""
    config = status.config_staged or status.config_unstaged
    if target_tree is None:
        return sum(len(d.staged) + len(d.unstaged) for d in status.datasets), config
    cfg_bytes, target_ds = manifest.read_root(repo.git, target_tree)
    if config:
        work = (repo.workdir / "datagit.toml").read_bytes()
        config = Config.parse(work).dumps() != Config.parse(cfg_bytes).dumps()
    n = 0
    for d in status.datasets:
        tree = DatasetTree(repo.git, target_ds[d.name]) if d.name in target_ds else None
        for c in [*d.staged, *d.unstaged]:
            n += classify(c.new, tree.get(c.id) if tree else None) is not None
    return n, config


def materialize(
    repo: Repo,
    tree: str,
    *,
    force: bool = False,
    clean_at: str | None = None,
    progress: Progress | None = None,
    then: dict[str, object] | None = None,
    commits: tuple[str, str] | None = None,
) -> co.Plan:
    """Rewrite the workspace to match commit tree ``tree``, touching only what differs.

    ``clean_at`` is a commit tree the caller knows the workspace equals (a clean
    checkout); then only records that differ between the two trees are planned,
    found by shard-level comparison, and nothing is re-read from disk.

    ``commits`` (the commits of ``clean_at`` and ``tree``) lets a table's changed rows
    come from the commits' stored patches (`patch.changes_between_commits`) rather
    than from comparing every shard the trees do not share.

    The edits are journalled (`JOURNAL`: the target tree and ``after``, what the
    caller does once they are done: ``then``, see `_finish`), so a killed checkout is rolled
    forward by the next command (`finish_interrupted`) instead of leaving an example
    in two class folders.
    """
    cfg_bytes, target_ds = manifest.read_root(repo.git, tree)
    target_cfg = Config.parse(cfg_bytes)
    now_cfg = _current_config(repo, force)
    clean_ds = manifest.read_root(repo.git, clean_at)[1] if clean_at else None
    plan = co.Plan()
    fallback: set[str] = set()  # datasets whose workspace could not be read
    followed: dict[str, str] = {}  # dataset → tree its snapshot described before
    patched: dict[str, tuple[str, PackedLineMap]] = {}  # table → (tree, its new line map)
    read_back: set[str] = set()  # Parquet tables patched, each row checked as read back
    token = repo.snapshots.token_now() if clean_ds else None
    listings = ListingCache(repo.dotdir / "cache")
    started = time.time_ns()

    def changes_of(name: str) -> Callable[[], list[Change]]:
        def changes() -> list[Change]:
            if commits is not None:
                found = patch.changes_between_commits(repo.git, *commits, name)
                if found is not None:
                    return found
            assert clean_ds is not None
            return compare_trees(repo.git, clean_ds[name], target_ds[name])

        return changes

    for name in sorted(set(now_cfg.datasets) | set(target_cfg.datasets)):
        cfg_now = now_cfg.datasets.get(name)
        cfg_target = target_cfg.datasets.get(name)
        if (
            clean_ds is not None
            and cfg_now == cfg_target
            and cfg_now is not None
            and cfg_now.layout == "table"
            and name in clean_ds
            and name in target_ds
        ):
            if clean_ds[name] == target_ds[name]:
                continue  # the same records: the file stays as the user wrote it
            got = tablecheckout.plan_checkout(
                repo.git,
                cfg_now,
                repo.workdir,
                repo.tables,
                repo.snapshots,
                clean_ds[name],
                target_ds[name],
                changes_of(name),
            )
            if got is not None:
                plan.tables[cfg_now.path] = got[0]
                patched[name] = (target_ds[name], got[1])
                continue
            if cfg_now.table_format == "parquet":
                from datagit.core import parquetcheckout

                body = parquetcheckout.plan(
                    repo.git,
                    cfg_now,
                    Hasher(repo.workdir, repo.statcache),
                    repo.tables,
                    repo.snapshots,
                    clean_ds[name],
                    changes_of(name),
                )
                if body is not None:  # recorded as the target's snapshot after the write
                    plan.tables[cfg_now.path] = body
                    read_back.add(name)
                    continue
        if (
            clean_ds is not None
            and cfg_now == cfg_target
            and cfg_now is not None
            and cfg_now.layout == "imagefolder"
            and name in clean_ds
            and name in target_ds
        ):
            co.plan_folder_trees(plan, repo.git, cfg_now, clean_ds[name], target_ds[name], listings)
            followed[name] = clean_ds[name]
            continue
        now = _workspace_records(repo, name, cfg_now is not None, force, fallback)
        target: dict[str, Record] = (
            DatasetTree(repo.git, target_ds[name]).by_id() if name in target_ds else {}
        )
        table_now = None
        if cfg_now is not None and cfg_now.layout == "table":
            path = repo.workdir / cfg_now.path
            table_now = path.read_bytes() if path.exists() else None
        have = None
        if name in fallback and cfg_now is not None and cfg_now.layout == "imagefolder":
            # The workspace breaks the layout's rules (a killed checkout left an example
            # in two class folders, say): plan from the files really there, so a forced
            # checkout restores the target exactly whatever state it finds.
            have = _files_on_disk(repo, cfg_now)
        co.plan_dataset(plan, cfg_now, now, cfg_target, target, table_now, have=have)
    link = link_mode(repo)
    verified = co.verify(plan, repo.store, link)
    then = then or {"clear_stage": False}
    journal = {"tree": tree, "after": then}
    _atomic_write(repo.dotdir / JOURNAL, orjson.dumps(journal))
    # Hard-linked files of a dataset whose snapshot follows the plan are vouched for
    # by the snapshot (as after a full add) and keep the stored object's old mtime,
    # so they skip the stat cache; their stats are their objects', which `verify`
    # took, so none is taken again. (A copy's fresh mtime would look racy to the
    # snapshot: copies keep the cache.)
    prefixes = tuple(target_cfg.datasets[n].path + "/" for n in followed if link == "hardlink")

    def on_written(path: str, st: tuple[int, int, int], key: str) -> None:
        if not path.startswith(prefixes):  # a move under a followed dataset: the snapshot's
            repo.statcache.record_stat(path, st, key)

    groups = co.write_groups(plan)
    copied = co.apply(
        plan,
        repo.workdir,
        repo.store,
        on_written,
        link=link,
        progress=progress,
        verified=verified,
        groups=groups,
    )
    copied_at = time.time_ns() if copied else None  # after every copy and its fstat
    if verified is not None:  # links: stats known, and our own edits moved their ctimes
        for folder, (names, keys) in groups.items():
            if not (folder + "/").startswith(prefixes):
                for name, key in zip(names, keys, strict=True):
                    repo.statcache.record_stat(f"{folder}/{name}", verified[key], key)
        verified.raise_bound(repo.store.trust.ctime_now())  # all it wrote, and plan.touched()
        repo.store.trust.save()
    hasher = Hasher(repo.workdir, repo.statcache)
    for name, (tree_now, lines) in patched.items():
        cfg = target_cfg.datasets[name]
        tablecheckout.save_checkout(cfg, repo.workdir, repo.tables, tree_now, lines, started, token)
    for name in read_back:
        cfg = target_cfg.datasets[name]
        body = plan.tables[cfg.path]
        tree_now = target_ds[name]
        tablecheckout.save_rendered(cfg, repo.workdir, repo.tables, tree_now, body, started, token)
    for name, cfg in target_cfg.datasets.items():
        if cfg.layout != "imagefolder":
            continue
        (repo.workdir / cfg.path).mkdir(parents=True, exist_ok=True)
        if name not in target_ds or name in fallback:
            snapshot.retire(repo.git, cfg, repo.snapshots, repo.statcache)
        elif name not in followed or not snapshot.follow_plan(
            cfg,
            repo.snapshots,
            followed[name],
            target_ds[name],
            plan.move,
            groups,
            plan.delete,
            str(repo.workdir),
            verified if link == "hardlink" else None,
            copied,
            copied_at,
        ):
            snapshot.save_listing(cfg, hasher, repo.snapshots, target_ds[name])
    if cfg_bytes:
        (repo.workdir / "datagit.toml").write_bytes(cfg_bytes)
    repo.statcache.save()
    _finish(repo, then)
    return plan


def link_mode(repo: Repo) -> str:
    """``core.link`` from the repository's own config: copy, hardlink, reflink or auto."""
    return links.check_mode(repo.git.config_get("core.link") or "copy")


def _current_config(repo: Repo, force: bool) -> Config:
    try:
        return repo.config
    except DatagitError:
        if not force:
            raise
        return repo.config_at("HEAD") if repo.head() else Config()


def _workspace_records(
    repo: Repo, name: str, declared: bool, force: bool, fallback: set[str]
) -> dict[str, Record]:
    if not declared:
        return {}
    try:
        return {r.id: r for r in repo.scan(name)}
    except DatagitError:
        if not force:
            raise
        # The workspace is unreadable as a dataset; fall back to what HEAD says it holds.
        fallback.add(name)
        trees = repo.datasets_at("HEAD") if repo.head() else {}
        return DatasetTree(repo.git, trees[name]).by_id() if name in trees else {}


def _files_on_disk(repo: Repo, cfg: DatasetConfig) -> dict[str, str]:
    """Workspace path → content address of every regular file under an image folder,
    whatever layout rule it breaks (links and special files are not followed or read)."""
    root = repo.workdir / cfg.path
    hasher = Hasher(repo.workdir, repo.statcache)
    out: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("."):
                continue
            abspath = os.path.join(folder, name)
            rel = os.path.relpath(abspath, repo.workdir).replace(os.sep, "/")
            st = os.lstat(abspath)
            if stat.S_ISREG(st.st_mode):
                out[rel] = hasher.file(rel, st, abspath)
            else:
                out[rel] = ""  # not ours to read: removed unless the target has it
    return out
