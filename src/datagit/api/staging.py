"""`add` and `commit`: from workspace files to a staged tree to a commit.

The stage is a git tree id in ``.datagit/STAGE`` — the whole next commit,
written as shard blobs as `add` runs, so `commit` only writes a commit object
and moves a ref. Order of writes: content packs, then git objects, then the
stage file or the ref, each atomically; a crash at any point leaves the last
commit whole.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import orjson

from datagit.core import manifest, patch, snapshot, tablesnap
from datagit.core.changes import Change, compare, compare_trees
from datagit.core.config import Config, DatasetConfig
from datagit.core.diff import changes_between
from datagit.core.folderread import read_folders
from datagit.core.layouts import Hasher, file_record, list_imagefolder
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record
from datagit.errors import ConflictError, CorruptObjectError, DatagitError, InvalidInputError
from datagit.progress import Reporter
from datagit.storage.git import CommitInfo, Signature

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.progress import Progress

MERGE_STATE = "MERGE_STATE"


@contextlib.contextmanager
def bulk() -> Iterator[None]:
    """No cyclic garbage collection while a bulk step runs (restored after).

    Patching a million-record manifest decodes its shards into a million short-lived
    dicts, and each allocation burst triggers a full collection that walks all of
    them: a quarter of a 1% re-label commit's time. Those steps make no cycles.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True)
class Staged:
    """What an `add` just wrote, held in memory: the stage's commit tree and its
    record changes against commit ``base``, as written to the stage's patch blobs.

    `commit -a` stages and then commits in one process; handing this through
    spares it reading back (and decoding, and re-encoding) the patches it has
    just written — a tenth of a 1% re-label commit of a million rows.
    """

    tree: str
    base: str
    pairs: dict[str, patch.Pairs | str]  # dataset → id → (old, new), or SKIP
    blobs: dict[str, str]  # dataset → the patch blob holding ``pairs[dataset]``, or SKIP


def add(
    repo: Repo,
    paths: list[str] | None,
    *,
    progress: Progress | None = None,
    report: bool = True,
) -> dict[str, list[Change]]:
    """Stage ``paths`` (None: every dataset); returns the changes per dataset.

    ``report=False`` (``commit -a``) may skip building the change list of a
    dataset staged for the first time: 100,000 "added" entries nobody reads.
    """
    return add_staged(repo, paths, progress=progress, report=report)[0]


def add_staged(
    repo: Repo,
    paths: list[str] | None,
    *,
    progress: Progress | None = None,
    report: bool = True,
) -> tuple[dict[str, list[Change]], Staged | None]:
    """`add`, also returning what it staged (None when the stage carries no patches:
    nothing is committed yet) for a `commit` in the same process."""
    with bulk():
        return _add(repo, paths, progress=progress, report=report)


def _add(
    repo: Repo,
    paths: list[str] | None,
    *,
    progress: Progress | None,
    report: bool,
) -> tuple[dict[str, list[Change]], Staged | None]:
    cfg_bytes = (repo.workdir / "datagit.toml").read_bytes()
    cfg = Config.parse(cfg_bytes)
    stage = repo.stage_tree()
    stage_ds = manifest.read_root(repo.git, stage)[1] if stage else {}
    targets = _targets(repo, cfg, paths)
    new_ds = {n: t for n, t in stage_ds.items() if n in cfg.datasets or paths is not None}
    changes: dict[str, list[Change]] = {}
    ahead = _look_ahead(repo, cfg, targets, stage_ds)
    # Content first, then git objects (packed by the batch), then the STAGE file:
    # both context managers have flushed and fsynced before the stage names them.
    try:
        with repo.store.writer() as writer, repo.git.batch():
            hasher = Hasher(repo.workdir, repo.statcache, writer)
            for name, prefixes in _last(targets, ahead):
                dcfg = cfg.datasets[name]
                base = stage_ds.get(name)
                if prefixes is None and base is not None and dcfg.layout == "imagefolder":
                    fast = snapshot.stage_fast(
                        repo.git, dcfg, hasher, repo.snapshots, base, ahead.pop(name, None)
                    )
                    if fast is not None:
                        new_ds[name], changes[name] = fast
                        continue
                if prefixes is None and base is not None and dcfg.layout == "table":
                    found = tablesnap.stage_fast(
                        repo.git, dcfg, hasher, repo.tables, repo.snapshots, base
                    )
                    if found is not None:
                        new_ds[name], changes[name] = found
                        continue
                new_ds[name], changes[name] = _stage_full(
                    repo, dcfg, hasher, base, prefixes, report or repo.head() is not None, progress
                )
                repo.git.flush_batch(FLUSH_BYTES)  # a big dataset's shards: on disk, not held
            root = manifest.write_root(repo.git, cfg_bytes, new_ds)
    finally:
        for started in ahead.values():  # not reached: an error came first
            if started.listing is not None:
                started.listing.cancel()
    repo.statcache.save()
    for name in set(stage_ds) - set(new_ds):
        changes[name] = compare_trees(repo.git, stage_ds[name], None)
    # Keep the stage's change against HEAD up to date, so commit writes it as is.
    # A root commit gets no patch, and a bulk change is only marked, never held.
    head = repo.head()
    carried = _carried(repo) if head else None
    staged = None
    if carried is None or head is None:
        repo._set_stage(root)
    else:
        for name, ch in changes.items():
            if carried.get(name) is SKIP or not ch:
                continue
            composed = patch.compose(carried.get(name, {}), patch.from_changes(ch))  # type: ignore[arg-type]
            size = DatasetTree(repo.git, new_ds[name]).count if name in new_ds else 0
            carried[name] = composed if patch.worth_storing(composed, size) else SKIP
        kept = {n: p for n, p in carried.items() if p}
        blobs = {
            n: p if p is SKIP else repo.git.write_blob(patch.encode(p))  # type: ignore[arg-type]
            for n, p in kept.items()
        }
        repo._set_stage(root, base=head, patches=blobs)
        staged = Staged(root, head, kept, blobs)
    return dict(sorted(changes.items())), staged


def _look_ahead(
    repo: Repo, cfg: Config, targets: dict[str, list[str] | None], stage_ds: dict[str, str]
) -> dict[str, snapshot.Ahead]:
    """Begin the scan of the first image folder that can be staged by its snapshot, its
    listing in a forked child, when other datasets are staged too: their work then
    overlaps the listing on the second core (a commit of images and their table)."""
    if len(targets) < 2:
        return {}
    for name, prefixes in targets.items():
        dcfg = cfg.datasets[name]
        base = stage_ds.get(name)
        if prefixes is None and base is not None and dcfg.layout == "imagefolder":
            got = snapshot.look_ahead(dcfg, repo.workdir, repo.snapshots, base, fork=True)
            return {name: got} if got is not None else {}
    return {}


def _last(
    targets: dict[str, list[str] | None], ahead: dict[str, snapshot.Ahead]
) -> list[tuple[str, list[str] | None]]:
    """The targets, those whose scan began ahead last: the others' work is what
    overlaps it."""
    return sorted(targets.items(), key=lambda t: t[0] in ahead)


FLUSH_BYTES = 4 << 20  # a dataset staged in full wrote this much: pack it before the next
SKIP = "skip"  # in a carried patch: the change is too large to be worth a patch


def _carried(repo: Repo) -> dict[str, patch.Pairs | str] | None:
    blobs = repo._stage_patches()
    if blobs is None:
        return None
    return {
        n: SKIP if oid == SKIP else patch.decode(repo.git.read_blob(oid))
        for n, oid in blobs.items()
    }


def _stage_full(
    repo: Repo,
    cfg: DatasetConfig,
    hasher: Hasher,
    base: str | None,
    prefixes: list[str] | None,
    report: bool = True,
    progress: Progress | None = None,
) -> tuple[str, list[Change]]:
    """Re-read a whole dataset (or the paths under ``prefixes``) and stage it.

    ``progress`` hears of every file of an image folder (phase ``adding
    <dataset>``); a table counts as one file.
    """
    include = _include(prefixes)
    full = cfg.layout == "imagefolder" and include is None
    token = repo.snapshots.token_now() if full else None
    started = time.time_ns()
    listing = None
    stats = None
    read = None
    if cfg.layout == "imagefolder" and include is None:
        # The new snapshot will vouch for every file, so the stat cache is not
        # written; an older snapshot vouches for the files it saw (see snapshot_rows).
        known = snapshot.snapshot_rows(repo.git, cfg, repo.snapshots)
        work, stats = read_folders(cfg, hasher, known, record_stats=False, progress=progress)
    elif cfg.layout == "imagefolder":
        hasher.known = snapshot.snapshot_rows(repo.git, cfg, repo.snapshots)
        listing = list_imagefolder(cfg, repo.workdir)
        chosen = [(p, e) for p, e in listing.items() if include(p)]
        hasher.report = Reporter(progress, f"adding {cfg.name}", len(chosen), "files")
        work = [file_record(p, e, hasher) for p, e in chosen]
    else:
        table = Reporter(progress, f"adding {cfg.name}", 1, "files")
        read = tablesnap.read_full(cfg, hasher, repo.snapshots)
        if read.encoded is not None and base is None and include is None and not report:
            tree = manifest.write_encoded(repo.git, read.encoded)
            tablesnap.save_read(repo.tables, cfg, read, tree)
            return tree, []
        work = read.records
        table.advance()
        table.finish()
    if hasher.report is not None:
        hasher.report.finish()
        hasher.report = None
    staged = DatasetTree(repo.git, base).by_id() if base else {}
    if prefixes is not None:
        from datagit.core.checkout import target_path  # a path add only: not `commit -a`
    for p in prefixes or ():  # like git, a path that names nothing is a typo, not a no-op
        under = _include([p])
        if not any(under(x) for x in listing or ()) and not any(
            under(target_path(cfg, r) or "") for r in staged.values()
        ):
            raise InvalidInputError(
                f"{p} matches no file of dataset {cfg.name}",
                hint="check the path; `datagit status` lists what changed",
            )
    merged: dict[str, Record] = {}
    if include is not None:
        merged = {i: r for i, r in staged.items() if not include(target_path(cfg, r) or "")}
    for r in work:
        old = staged.get(r.id)
        keep = old is not None and old.annotator is not None and old.label == r.label
        if r.annotator is None and keep:
            r = r.with_annotator(old.annotator)  # type: ignore[union-attr]
        merged[r.id] = r
    changes = compare(staged, merged) if report or staged else []
    tree = base if base and not changes else manifest.write_dataset(repo.git, merged.values(), base)
    if stats is not None:
        repo.snapshots.save(cfg.name, tree, started, stats, token)
    elif listing is not None:
        snapshot.retire(repo.git, cfg, repo.snapshots, repo.statcache)
    elif read is not None:
        tablesnap.save_read(repo.tables, cfg, read, tree)
    return tree, changes


def _targets(repo: Repo, cfg: Config, paths: list[str] | None) -> dict[str, list[str] | None]:
    """Dataset → workspace path prefixes to re-scan (None: the whole dataset)."""
    if not paths:
        return dict.fromkeys(cfg.datasets)
    out: dict[str, list[str] | None] = {}
    for p in paths:
        if p in cfg.datasets:
            out[p] = None
            continue
        rel = _workspace_relative(repo.workdir, p)
        owner = _owner(cfg.datasets.values(), rel)
        if owner is None:
            raise InvalidInputError(
                f"{p} is not a dataset name nor inside any dataset's folder",
                hint="declare the dataset with `datagit dataset add` first "
                f"(datasets: {', '.join(sorted(cfg.datasets)) or 'none'})",
            )
        if rel == owner.path or owner.layout == "table":
            out[owner.name] = None
        elif out.get(owner.name, []) is not None:
            out.setdefault(owner.name, []).append(rel)  # type: ignore[union-attr]
    return out


def _workspace_relative(workdir: Path, p: str) -> str:
    path = Path(os.path.abspath(p))
    if not path.is_relative_to(workdir):
        raise InvalidInputError(
            f"{p} is outside the workspace {workdir}",
            hint="add paths inside the folder that holds datagit.toml",
        )
    return path.relative_to(workdir).as_posix()


def _owner(datasets: object, rel: str) -> DatasetConfig | None:
    for d in datasets:  # type: ignore[attr-defined]
        if rel == d.path or PurePosixPath(rel).is_relative_to(d.path):
            return d  # type: ignore[no-any-return]
    return None


def _include(prefixes: list[str] | None):  # type: ignore[no-untyped-def]
    if prefixes is None:
        return None
    return lambda path: any(path == p or path.startswith(p + "/") for p in prefixes)


def commit(
    repo: Repo,
    message: str,
    *,
    annotator: str | None = None,
    author: Signature | None = None,
    allow_empty: bool = False,
    parents: list[str] | None = None,
    added_all: bool = False,
) -> CommitInfo:
    """Commit the stage; ``added_all`` says the caller just staged everything (`-a`),
    which changes what an empty commit's hint can suggest."""
    return commit_staged(
        repo,
        message,
        annotator=annotator,
        author=author,
        allow_empty=allow_empty,
        parents=parents,
        added_all=added_all,
    )[0]


def commit_staged(
    repo: Repo,
    message: str,
    *,
    annotator: str | None = None,
    author: Signature | None = None,
    allow_empty: bool = False,
    parents: list[str] | None = None,
    added_all: bool = False,
    staged: Staged | None = None,
) -> tuple[CommitInfo, dict[str, patch.Pairs | str] | None]:
    """`commit`, also returning the commit's changes against its first parent as its
    patches store them (dataset → pairs, or SKIP), None when it stores none (a root
    commit, or a first parent other than HEAD).

    ``staged`` is what an `add` in this process returned (`commit -a`): its patches
    are taken from memory rather than read back, when the stage still holds it.
    """
    if not message.strip():
        raise InvalidInputError("empty commit message", hint='pass one with -m "what changed"')
    head = repo.head()
    merge = read_merge_state(repo)
    if merge and merge.get("conflicts"):
        first = merge["conflicts"][0]
        raise ConflictError(
            f"{len(merge['conflicts'])} unresolved merge conflicts (first: {first})",
            hint="resolve with `datagit merge --ours/--theirs` or `datagit resolve ID --label L`",
        )
    stage = repo.stage_tree()
    stage_ds: dict[str, str]
    if stage is None:
        cfg_bytes, stage_ds = (repo.workdir / "datagit.toml").read_bytes(), {}
    else:
        cfg_bytes, stage_ds = manifest.read_root(repo.git, stage)
    head_tree = repo.git.commit(head).tree if head else None
    head_cfg, head_ds = manifest.read_root(repo.git, head_tree) if head_tree else (b"", {})
    _refuse_leaks(repo, cfg_bytes, stage_ds)
    if parents is None:
        parents = [head] if head else []
        if merge:
            parents.append(merge["theirs"])
    # A patch is the change against the first parent; a root commit gets none.
    first_is_head = bool(parents) and parents[0] == head
    if staged is not None and (staged.tree, staged.base) != (stage, head):
        staged = None  # not what the stage holds now: read it back
    with repo.git.batch():
        pairs = _commit_pairs(repo, head_ds, stage_ds, staged) if first_is_head else {}
        stamped = set()
        if annotator:
            stamped = _stamp_annotator(repo, head_ds, stage_ds, pairs, annotator)
        unchanged = head_tree is not None and (cfg_bytes, stage_ds) == (head_cfg, head_ds)
        if unchanged and not allow_empty and not merge:
            raise DatagitError(
                "nothing to commit: the workspace matches HEAD"
                if added_all
                else "nothing to commit: the stage matches HEAD",
                hint="change, add or re-label examples first (`datagit status` shows none)"
                if added_all
                else "stage changes with `datagit add`, or use `commit -a`",
            )
        written = {} if staged is None else staged.blobs
        kept = {n: b for n, b in written.items() if n not in stamped}
        patches = _patch_blobs(repo, stage_ds, pairs, kept) if first_is_head else None
        stage = manifest.write_root(repo.git, cfg_bytes, stage_ds, patches)
    text = message.rstrip() + "\n"
    if annotator:
        text += f"\nAnnotator: {annotator}\n"
    me = repo.identity()
    oid = repo.git.create_commit(stage, parents, text, author or me, me)
    branch = repo.branch()
    if branch:
        kind = "commit (merge)" if len(parents) > 1 else "commit" if parents else "commit (initial)"
        repo.git.update_ref(f"refs/heads/{branch}", oid, f"{kind}: {message.splitlines()[0]}")
    else:
        repo.git.set_head_detached(oid)
    repo._set_stage(None)
    clear_merge_state(repo)
    from datagit.storage import gitgc  # (not loaded by `status`, which imports this module)

    gitgc.roll_up(repo.git)  # past 50 packs, merge the small ones (as git's auto gc)
    return repo.git.commit(oid), pairs if first_is_head else None


def _refuse_leaks(repo: Repo, cfg_bytes: bytes, stage_ds: dict[str, str]) -> None:
    """Under ``[check] leakage = "error"``, refuse a commit whose datasets share an example."""
    from datagit.api import check

    cfg = Config.parse(cfg_bytes)
    if check.leakage_policy(cfg)[0] != "error":
        return
    leaks = check.leaks_for_commit(repo, cfg, stage_ds)
    if leaks:
        first = leaks[0].members
        raise ConflictError(
            f"{len(leaks)} examples leak across datasets (first: {first[0].dataset}/{first[0].id}"
            f' = {first[1].dataset}/{first[1].id}); datagit.toml [check] leakage = "error"',
            hint="remove one copy of each (`datagit check` lists them), or set "
            'leakage = "warn" in datagit.toml',
        )


def _commit_pairs(
    repo: Repo, head_ds: dict[str, str], stage_ds: dict[str, str], staged: Staged | None
) -> dict[str, patch.Pairs | str]:
    """The stage's record changes against HEAD (or SKIP): handed over or carried
    from `add`, or diffed now."""
    if staged is not None:
        return dict(staged.pairs)
    carried = _carried(repo)
    if carried is not None:
        return {n: p for n, p in carried.items() if p}
    out: dict[str, patch.Pairs | str] = {}
    for name in sorted(set(head_ds) | set(stage_ds)):
        if head_ds.get(name) != stage_ds.get(name):
            found = changes_between(repo.git, head_ds.get(name), stage_ds.get(name))
            if found:
                out[name] = patch.from_changes(found)
    return out


def _stamp_annotator(
    repo: Repo,
    head_ds: dict[str, str],
    stage_ds: dict[str, str],
    pairs: dict[str, patch.Pairs | str],
    annotator: str,
) -> set[str]:
    """Credit ``annotator`` with every label this commit sets that has no annotator yet;
    returns the datasets whose records (and so whose patches) it changed.

    Uses the carried patch where there is one (updating it in place), and diffs
    the dataset otherwise (a root commit, a bulk change marked SKIP).
    """
    stamped = set()
    for name in sorted(stage_ds):
        if head_ds.get(name) == stage_ds[name]:
            continue
        known = pairs.get(name)
        if isinstance(known, dict):
            changed = known
        else:
            found = changes_between(repo.git, head_ds.get(name), stage_ds[name])
            changed = patch.from_changes(found)
        upserts = {}
        # A rename that keeps its label sets no label: it keeps the annotator it had.
        gone = {o.content: o for o, n in changed.values() if n is None and o is not None}
        for i, (old, new) in changed.items():
            if new is None or new.annotator is not None:
                continue
            was = gone.get(new.content) if old is None else None
            if was is not None and was.label == new.label:
                if was.annotator:
                    upserts[i] = new.with_annotator(was.annotator)
            elif old is None or old.label != new.label:
                upserts[i] = new.with_annotator(annotator)
        if upserts:
            before = stage_ds[name]
            stage_ds[name] = manifest.patch_dataset(repo.git, stage_ds[name], upserts)
            # A table's rows give no annotator to these records, and `add` keeps the
            # one an unchanged label has: its snapshot holds for the stamped tree too.
            tablesnap.follow_stamp(repo.tables, name, before, stage_ds[name])
            changed.update((i, (changed[i][0], r)) for i, r in upserts.items())
            stamped.add(name)
    return stamped


def _patch_blobs(
    repo: Repo,
    stage_ds: dict[str, str],
    pairs: dict[str, patch.Pairs | str],
    written: dict[str, str],
) -> dict[str, str]:
    """``changes/`` entries: a patch per changed dataset, or a skip marker for bulk changes.

    ``written``: dataset → a blob `add` already wrote for exactly these pairs (its
    encoding is canonical, so the same pairs make the same blob): used as it is.
    """
    out = {}
    for name, changed in pairs.items():
        size = DatasetTree(repo.git, stage_ds[name]).count if name in stage_ds else 0
        if changed is not SKIP and patch.worth_storing(changed, size):  # type: ignore[arg-type]
            blob = written.get(name)
            if blob is None or blob == SKIP:
                blob = repo.git.write_blob(patch.encode(changed))  # type: ignore[arg-type]
            out[f"{name}.jsonl"] = blob
        else:
            out[f"{name}.skip"] = repo.git.write_blob(b"")
    return out


# -- merge state (written by merge, read by status and commit) ---------------
def read_merge_state(repo: Repo) -> dict | None:
    path = repo.dotdir / MERGE_STATE
    if not path.exists():
        return None
    try:
        state = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("theirs"), str):
        raise CorruptObjectError(
            f"the merge in progress cannot be read: {path} is damaged",
            hint=f"delete {path} and run `datagit checkout -f HEAD` to drop the merge, "
            "then merge again",
        )
    if _merge_committed(repo, state):  # a kill between moving the ref and deleting this
        if not repo.readonly:
            clear_merge_state(repo)
        return None
    return state


def _merge_committed(repo: Repo, state: dict) -> bool:
    """Whether HEAD is this merge's own commit (parents: the HEAD it began at, then
    theirs): the merge is done, and a commit now would make it a second time."""
    head, began = repo.head(), state.get("orig_head")
    if head is None or head == began or not isinstance(began, str):
        return False
    return repo.git.commit(head).parents == (began, state["theirs"])


def write_merge_state(repo: Repo, state: dict) -> None:
    tmp = repo.dotdir / (MERGE_STATE + ".tmp")
    tmp.write_bytes(orjson.dumps(state))
    os.replace(tmp, repo.dotdir / MERGE_STATE)


def clear_merge_state(repo: Repo) -> None:
    (repo.dotdir / MERGE_STATE).unlink(missing_ok=True)


def conflicts(repo: Repo) -> list[str]:
    state = read_merge_state(repo)
    return list(state.get("conflicts", [])) if state else []


def stamp(repo: Repo, name: str, ids: list[str], annotator: str) -> None:
    """Set ``annotator`` on staged records ``ids`` of dataset ``name`` (`relabel`,
    `label --from-run`), keeping the stage's carried patch in step."""
    stage = repo.stage_tree()
    assert stage is not None
    cfg_bytes, stage_ds = manifest.read_root(repo.git, stage)
    with repo.git.batch():
        recs = DatasetTree(repo.git, stage_ds[name]).get_many(ids)
        upserts = {i: r.with_annotator(annotator) for i, r in recs.items()}
        stage_ds[name] = manifest.patch_dataset(repo.git, stage_ds[name], upserts)
        root = manifest.write_root(repo.git, cfg_bytes, stage_ds)
        carried = _carried(repo) if repo.head() else None
        if carried is None:
            repo._set_stage(root)
            return
        pairs = carried.get(name)
        if isinstance(pairs, dict):
            for i, r in upserts.items():
                pairs[i] = (pairs[i][0] if i in pairs else recs[i], r)
        blobs = {
            n: p if p is SKIP else repo.git.write_blob(patch.encode(p))  # type: ignore[arg-type]
            for n, p in carried.items()
            if p
        }
    repo._set_stage(root, base=repo.head(), patches=blobs)
