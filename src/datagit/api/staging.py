"""`add`: from workspace files to a staged tree (`committing` makes it a commit).

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

from datagit.core import manifest, patch, snapshot, tablesnap
from datagit.core.changes import Change, compare, compare_trees
from datagit.core.config import Config, DatasetConfig
from datagit.core.folderread import read_folders
from datagit.core.layouts import Hasher, file_record, list_imagefolder
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record
from datagit.errors import InvalidInputError
from datagit.progress import Reporter

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.progress import Progress


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
    carried = carried_patches(repo) if head else None
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


def carried_patches(repo: Repo) -> dict[str, patch.Pairs | str] | None:
    """The stage's changes against HEAD as its patch blobs hold them (dataset → pairs,
    or SKIP), None when the stage carries none; `add` extends them, `commit` stores them."""
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
        carried = carried_patches(repo) if repo.head() else None
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
