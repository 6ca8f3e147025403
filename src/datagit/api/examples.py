"""`rm` and `mv` for examples: change the workspace and stage the change in one step,
as `git rm` and `git mv` do for files.

An image-folder example is named by its file (``train/cat/1.png``) or as
``DATASET/ID``; a table row only as ``DATASET/ID``. Everything is checked
before the first file is touched, so a refusal changes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from datagit.api import staging
from datagit.core import manifest, snapshot
from datagit.core.changes import classify
from datagit.core.checkout import target_path
from datagit.core.config import DatasetConfig
from datagit.core.manifest import DatasetTree
from datagit.core.records import Record, validate_id
from datagit.core.table_style import render_like
from datagit.core.trust import record_path
from datagit.errors import ConflictError, InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo


@dataclass(frozen=True)
class Named:
    """The examples one command-line argument names, in one dataset."""

    cfg: DatasetConfig
    ids: list[str]
    folder: bool  # the argument named a folder or a dataset (needs -r for rm)


def _staged(repo: Repo, name: str) -> dict[str, Record]:
    tree = repo.stage_tree()
    ds = manifest.read_root(repo.git, tree)[1] if tree else {}
    return DatasetTree(repo.git, ds[name]).by_id() if name in ds else {}


def resolve(repo: Repo, spec: str) -> Named:
    """The tracked examples ``spec`` names: a dataset, ``DATASET/ID``, or a workspace
    file or folder inside an image-folder dataset."""
    datasets = repo.config.datasets
    if spec in datasets:
        return Named(datasets[spec], sorted(_staged(repo, spec)), True)
    rel = staging._workspace_relative(repo.workdir, spec)
    name, _, example_id = rel.partition("/")
    if name in datasets and example_id and example_id in _staged(repo, name):
        return Named(datasets[name], [example_id], False)
    cfg = staging._owner(datasets.values(), rel)
    if cfg is None:
        raise InvalidInputError(
            f"{spec} is not a dataset, DATASET/ID, nor a path inside a dataset's folder",
            hint=f"datasets: {', '.join(sorted(datasets)) or 'none'}",
        )
    if cfg.layout == "table":
        raise InvalidInputError(
            f"{spec} is the table of dataset {cfg.name}: name its rows as {cfg.name}/ID",
            hint=f"e.g. `datagit rm {cfg.name}/some-id`",
        )
    staged = _staged(repo, cfg.name)
    ids = sorted(
        i
        for i, r in staged.items()
        if (p := target_path(cfg, r) or "") == rel or p.startswith(rel + "/")
    )
    if not ids and (repo.workdir / rel).is_file():
        found = rel.split("/", 2)
        if len(found) == 3 and found[2] in staged:  # tracked, but moved in the workspace
            ids = [found[2]]
    if not ids:
        raise InvalidInputError(
            f"{spec} matches no example of dataset {cfg.name} that is staged or committed",
            hint="check the path; a new file is not tracked until `datagit add`",
        )
    exact = any(target_path(cfg, staged[i]) == rel for i in ids if i in staged)
    return Named(cfg, ids, len(ids) > 1 or not (exact or (repo.workdir / rel).is_file()))


def rm(
    repo: Repo,
    specs: list[str],
    *,
    cached: bool = False,
    recursive: bool = False,
    force: bool = False,
) -> list[tuple[str, str]]:
    """Remove examples from the stage, and (unless ``cached``) their files or rows from
    the workspace; returns (dataset, id) pairs. Refuses an example whose workspace
    file differs from the stage (you would lose it) unless ``force``."""
    if not specs:
        raise InvalidInputError("rm needs examples to remove", hint="e.g. `datagit rm train/1.png`")
    with repo.lock:
        named = [resolve(repo, s) for s in specs]
        for spec, n in zip(specs, named, strict=True):
            if n.folder and not recursive:
                raise InvalidInputError(
                    f"not removing {spec} recursively without -r",
                    hint=f"`datagit rm -r {spec}` removes its {len(n.ids)} examples",
                )
        by_dataset: dict[str, tuple[DatasetConfig, set[str]]] = {}
        for n in named:
            by_dataset.setdefault(n.cfg.name, (n.cfg, set()))[1].update(n.ids)
        plans = []
        for name, (cfg, ids) in by_dataset.items():
            staged = _staged(repo, name)
            now = {r.id: r for r in repo.scan(name)}
            if not (cached or force):
                for i in sorted(ids):
                    if i in now and classify(staged[i], now[i]) is not None:
                        raise ConflictError(
                            f"{name}/{i} has changes not staged; rm would lose them",
                            hint="stage or restore them first, or pass -f",
                        )
            plans.append((cfg, ids, now))
        out: list[tuple[str, str]] = []
        for cfg, ids, now in plans:
            if not cached:
                _delete(repo, cfg, ids, now)
            _unstage_ids(repo, cfg.name, ids)
            out.extend((cfg.name, i) for i in sorted(ids))
        return out


def _delete(repo: Repo, cfg: DatasetConfig, ids: set[str], now: dict[str, Record]) -> None:
    if cfg.layout == "table":
        path = repo.workdir / cfg.path
        keep = {i: r for i, r in now.items() if i not in ids}
        _atomic(path, render_like(cfg, keep, now, path.read_bytes() if path.exists() else None))
        return
    for i in ids:
        if i in now:
            file = repo.workdir / (target_path(cfg, now[i]) or "")
            file.unlink(missing_ok=True)
            _prune(repo.workdir / cfg.path, file.parent)
    snapshot.retire(repo.git, cfg, repo.snapshots, repo.statcache)


def _unstage_ids(repo: Repo, name: str, ids: set[str]) -> None:
    """The stage without ``ids`` (its other staged changes kept)."""
    stage = repo.stage_tree()
    assert stage is not None  # examples were staged, so there is a stage or a HEAD
    cfg_bytes, ds = manifest.read_root(repo.git, stage)
    with repo.git.batch():
        ds[name] = manifest.patch_dataset(repo.git, ds[name], {}, ids)
        root = manifest.write_root(repo.git, cfg_bytes, ds)
    repo._set_stage(root)


def mv(repo: Repo, src: str, dst: str) -> tuple[str, Record, Record]:
    """Move one example: to another class folder (a re-label), to another file name (a
    new id), or as ``DATASET/OLD DATASET/NEW`` for a table row; staged at once."""
    with repo.lock:
        named = resolve(repo, src)
        cfg = named.cfg
        if len(named.ids) != 1 or named.folder:
            raise InvalidInputError(
                f"mv moves one example; {src} names {len(named.ids)}",
                hint="move class folders with your file manager, then `datagit add`",
            )
        old_id = named.ids[0]
        staged = _staged(repo, cfg.name)
        now = {r.id: r for r in repo.scan(cfg.name)}
        if old_id not in now:
            raise InvalidInputError(
                f"{cfg.name}/{old_id} is not in the workspace (deleted?)",
                hint="`datagit restore` it first",
            )
        old = now[old_id]
        if cfg.layout == "table":
            new = _table_target(repo, cfg, dst, old)
        else:
            new = _folder_target(repo, cfg, dst, old)
        if new.id != old_id and (new.id in staged or new.id in now):
            raise ConflictError(
                f"{cfg.name}/{new.id} already exists",
                hint="pick another name, or `datagit rm` that example first",
            )
        if cfg.layout == "table":
            path = repo.workdir / cfg.path
            target = {i: r for i, r in now.items() if i != old_id} | {new.id: new}
            _atomic(path, render_like(cfg, target, now, path.read_bytes()))
        else:
            a = repo.workdir / (target_path(cfg, old) or "")
            b = repo.workdir / (target_path(cfg, new) or "")
            b.parent.mkdir(parents=True, exist_ok=True)
            os.rename(a, b)
            _prune(repo.workdir / cfg.path, a.parent)
            snapshot.retire(repo.git, cfg, repo.snapshots, repo.statcache)
        stage = repo.stage_tree()
        assert stage is not None
        cfg_bytes, ds = manifest.read_root(repo.git, stage)
        with repo.git.batch():
            base = staged.get(old_id, old)
            moved = replace(base, id=new.id, label=new.label, source=new.source)
            ds[cfg.name] = manifest.patch_dataset(
                repo.git, ds[cfg.name], {new.id: moved}, {old_id} - {new.id}
            )
            root = manifest.write_root(repo.git, cfg_bytes, ds)
        repo._set_stage(root)
        return cfg.name, old, new


def _table_target(repo: Repo, cfg: DatasetConfig, dst: str, old: Record) -> Record:
    name, _, new_id = staging._workspace_relative(repo.workdir, dst).partition("/")
    if name != cfg.name or not new_id:
        raise InvalidInputError(
            f"{dst} is not {cfg.name}/NEW-ID",
            hint=f"a table row moves to a new id in the same dataset: {cfg.name}/NEW-ID",
        )
    return replace(old, id=validate_id(new_id, dst))


def _folder_target(repo: Repo, cfg: DatasetConfig, dst: str, old: Record) -> Record:
    rel = staging._workspace_relative(repo.workdir, dst)
    into = dst.endswith(("/", os.sep)) or (repo.workdir / rel).is_dir()
    name, _, rest = rel.partition("/")
    free = not into and not (repo.workdir / rel).exists()
    if free and name == cfg.name and rest and "/" not in rest:
        return replace(old, id=validate_id(rest, dst))  # DATASET/NEW-ID: same label
    if into:
        rel = f"{rel}/{PurePosixPath(old.id).name}"  # into a (class) folder, as `git mv`
    inside = PurePosixPath(rel)
    if not inside.is_relative_to(cfg.path) or len(inside.relative_to(cfg.path).parts) < 2:
        raise InvalidInputError(
            f"{dst} is not a file path inside {cfg.path}/<label>/ of dataset {cfg.name}",
            hint=f"e.g. `datagit mv {cfg.path}/cat/1.png {cfg.path}/dog/1.png` re-labels it",
        )
    if (repo.workdir / rel).exists():
        raise ConflictError(f"{rel} already exists", hint="pick another name")
    parts = inside.relative_to(cfg.path).parts
    moved = replace(old, id=validate_id("/".join(parts[1:]), dst), label=parts[0])
    record_path(cfg, moved, dst)  # the one path rule: e.g. no label `.git`, no hidden id
    return moved


def _prune(root: Path, folder: Path) -> None:
    """Remove folders emptied by a move or delete, up to (not including) the dataset's."""
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
