"""`import-dvc`: replay a DVC-tracked dataset directory's git history as datagit commits.

One datagit commit per git commit that changed the directory's ``.dvc`` file
(or ``dvc.lock``), keeping author, date and message. Bytes are read with the
`dvc` package's own filesystem (``dvc.api.DVCFileSystem``), so whatever cache
or remote the DVC repository uses serves them; dvc is an optional extra.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from datagit.core.config import DatasetConfig
from datagit.core.paths import check_folder_id, check_label_folder
from datagit.errors import DatagitError, InvalidInputError
from datagit.storage.git import TREE, CommitInfo, GitStore
from datagit.storage.gitremote import clone_bare, is_local, local_path

if TYPE_CHECKING:
    from datagit.api.repo import Repo


@dataclass(frozen=True)
class ImportedCommit:
    source: str  # the DVC repository's git commit
    commit: str  # the datagit commit made from it
    files: int  # files in the directory at that commit


def import_dvc(
    repo: Repo,
    source: str,
    *,
    rev: str | None = None,
    path: str | None = None,
    dataset: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[ImportedCommit]:
    """Import DVC directory ``path`` of ``source`` across ``rev`` (``A..B`` or one revision).

    The directory must hold class folders (``<label>/<file>``); it becomes an
    imagefolder dataset (``dataset``, default the directory's name) at the
    same relative path in this workspace.
    """
    DVCFileSystem = _dvc_filesystem()
    with tempfile.TemporaryDirectory() as tmp, repo.lock:
        if is_local(source):
            root = os.path.abspath(local_path(source))
            git = _open_git(root)
        else:
            root, git = source, clone_bare(source, os.path.join(tmp, "src.git"))
        head = git.resolve("HEAD")
        path = path or _only_tracked_dir(git, head, source)
        commits = _commits(git, rev or "HEAD", path)
        if not commits:
            raise InvalidInputError(
                f"no commit in {rev or 'HEAD'} of {source} changes {path}.dvc or dvc.lock",
                hint="check --path (the DVC-tracked directory) and --rev",
            )
        _require_clean(repo)
        cfg = _target_dataset(repo, dataset or PurePosixPath(path).name, path)
        out: list[ImportedCommit] = []
        previous: dict[str, str] = {}
        # Every commit's file names are checked before the first is written: a DVC
        # repository is untrusted input, as a datagit remote is.
        listings = [_listing(DVCFileSystem(root, rev=c.id), path, c) for c in commits]
        for i, (c, current) in enumerate(zip(commits, listings, strict=True)):
            fs = DVCFileSystem(root, rev=c.id)
            _sync(repo.workdir / cfg.path, fs, path, previous, current, c)
            previous = current
            made = repo.commit(
                c.message.rstrip() + f"\n\nImported-From: dvc {c.id}\n",
                all=True,
                author=c.author,
                allow_empty=True,
            )
            out.append(ImportedCommit(c.id, made.id, len(current)))
            if progress:
                progress(i + 1, len(commits))
        return out


def _dvc_filesystem() -> Any:
    try:
        from dvc.api import DVCFileSystem
    except ImportError as exc:
        raise DatagitError(
            "import-dvc needs the dvc package",
            hint="pip install 'datagit[dvc]'",
        ) from exc
    return DVCFileSystem


def _open_git(root: str) -> GitStore:
    if not os.path.isdir(os.path.join(root, ".dvc")):
        raise InvalidInputError(
            f"{root} is not a DVC repository (no .dvc folder)",
            hint="point import-dvc at the root of a git repository where `dvc init` was run",
        )
    return GitStore.open(Path(root) / ".git")


def _blob_at(git: GitStore, tree: str, path: str) -> str | None:
    """The git blob id at ``path`` in ``tree``, or None."""
    parts = PurePosixPath(path).parts
    for i, part in enumerate(parts):
        entry = git.tree_entries(tree).get(part)
        if entry is None:
            return None
        if i == len(parts) - 1:
            return entry.oid
        if entry.kind != TREE:
            return None
        tree = entry.oid
    return None


def _only_tracked_dir(git: GitStore, head: str, source: str) -> str:
    tree = git.commit(head).tree
    entries = git.tree_entries(tree)
    found = sorted(n[:-4] for n, e in entries.items() if n.endswith(".dvc") and e.kind != TREE)
    if len(found) != 1:
        raise InvalidInputError(
            f"{source} tracks {len(found)} top-level DVC outputs ({', '.join(found) or 'none'})",
            hint="name the directory to import with --path DIR",
        )
    return found[0]


def _commits(git: GitStore, rev: str, path: str) -> list[CommitInfo]:
    """Commits in ``rev`` (oldest first) where ``path.dvc`` or ``dvc.lock`` changed."""
    if ".." in rev:
        base, tip = rev.split("..", 1)
        exclude = {c.id for c in git.walk([git.resolve(base)])}
        tip_id = git.resolve(tip or "HEAD")
    else:
        exclude, tip_id = set(), git.resolve(rev)
    history = [c for c in git.walk([tip_id]) if c.id not in exclude]
    history.reverse()
    out: list[CommitInfo] = []
    last: tuple[str | None, str | None] = (None, None)
    if exclude and history and history[0].parents:
        last = _stamp(git, git.commit(history[0].parents[0]).tree, path)
    for c in history:
        stamp = _stamp(git, c.tree, path)
        if stamp != last and stamp != (None, None):
            out.append(c)
        last = stamp
    return out


def _stamp(git: GitStore, tree: str, path: str) -> tuple[str | None, str | None]:
    return _blob_at(git, tree, f"{path}.dvc"), _blob_at(git, tree, "dvc.lock")


def _listing(fs: Any, path: str, c: CommitInfo) -> dict[str, str]:
    """Relative file path under ``path`` → DVC's md5 of it, at one commit."""
    try:
        found = fs.find(path, detail=True)
    except FileNotFoundError:
        return {}
    out = {}
    for name, info in found.items():
        rel = PurePosixPath(name).relative_to(path).as_posix()
        where = f"DVC commit {c.id[:10]}: {path}"
        check_folder_id(rel, where)  # <label>/<id>: both parts safe and visible
        if "/" in rel:
            check_label_folder(rel.split("/", 1)[0], where)
        md5 = (
            (info.get("dvc_info") or {}).get("md5") or info.get("md5") or f"size:{info.get('size')}"
        )
        out[rel] = md5
    return out


def _sync(
    dest: Path,
    fs: Any,
    path: str,
    previous: dict[str, str],
    current: dict[str, str],
    c: CommitInfo,
) -> None:
    """Make ``dest`` hold ``current``: write what changed, delete what went."""
    for rel in previous.keys() - current.keys():
        (dest / rel).unlink(missing_ok=True)
    for rel, md5 in current.items():
        if previous.get(rel) == md5:
            continue
        try:
            data = fs.read_bytes(f"{path}/{rel}")
        except Exception as exc:
            raise DatagitError(
                f"cannot read {path}/{rel} at DVC commit {c.id[:10]}: {exc}",
                hint="run `dvc fetch --all-commits` in the DVC repository so its cache "
                "holds every version, then import again",
            ) from exc
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for folder in sorted(dest.rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _target_dataset(repo: Repo, name: str, path: str) -> DatasetConfig:
    existing = repo.config.datasets.get(name)
    if existing is not None:
        if existing.layout != "imagefolder":
            raise InvalidInputError(
                f"dataset {name!r} has layout {existing.layout}; import-dvc writes class folders",
                hint="import into a new dataset with --dataset NAME",
            )
        return existing
    cfg = DatasetConfig(name=name, layout="imagefolder", path=path)
    (repo.workdir / path).mkdir(parents=True, exist_ok=True)
    repo.add_dataset(cfg)
    return cfg


def _require_clean(repo: Repo) -> None:
    status = repo.status()
    if any(d.staged or d.unstaged for d in status.datasets) or status.conflicts:
        raise DatagitError(
            "import-dvc needs a clean workspace: there are uncommitted changes",
            hint="commit or discard them first",
        )
