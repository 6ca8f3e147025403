"""`import-dvc`: replay a DVC-tracked dataset directory's git history as datagit commits.

One datagit commit per git commit that changed the directory's ``.dvc`` file
(or ``dvc.lock``), keeping author, date and message. Bytes are read with the
`dvc` package's own filesystem (``dvc.api.DVCFileSystem``), so whatever cache
or remote the DVC repository uses serves them; dvc is an optional extra.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from datagit.core.config import DatasetConfig
from datagit.core.paths import check_folder_id, check_label_folder
from datagit.errors import DatagitError, InvalidInputError
from datagit.progress import Progress, Reporter
from datagit.storage.git import TREE, CommitInfo, GitStore
from datagit.storage.gitremote import clone_bare, is_local, local_path

if TYPE_CHECKING:
    from datagit.api.repo import Repo

CONFIG = "datagit.toml"


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
    progress: Progress | None = None,
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
        done = _imported(repo)
        commits = [c for c in commits if c.id not in done]  # a re-import is incremental
        if not commits:
            return []
        # Every commit's file names are checked before the first is written: a DVC
        # repository is untrusted input, as a datagit remote is.
        listings = [_listing(DVCFileSystem(root, rev=c.id), path, c) for c in commits]
        undo = _Undo.record(repo)
        try:
            cfg = _target_dataset(repo, dataset or PurePosixPath(path).name, path, undo)
            dest = repo.workdir / cfg.path
            out: list[ImportedCommit] = []
            # What the folder holds now, not what the first imported commit's parent
            # held: a second import (or a second range) starts from the first's result.
            previous = _workspace_listing(dest)
            report = Reporter(progress, "importing", len(commits), "commits")
            for c, current in zip(commits, listings, strict=True):
                fs = DVCFileSystem(root, rev=c.id)
                _sync(dest, fs, path, previous, current, c, undo.written)
                previous = current
                made = repo.commit(
                    c.message.rstrip() + f"\n\n{TRAILER}: dvc {c.id}\n",
                    all=True,
                    author=c.author,
                    allow_empty=True,
                )
                out.append(ImportedCommit(c.id, made.id, len(current)))
                report.advance()
            report.finish()
        except BaseException:
            undo.apply(repo)
            raise
        return out


TRAILER = "Imported-From"


def _imported(repo: Repo) -> set[str]:
    """DVC commits already imported into HEAD's history (their trailer names them)."""
    out = set()
    for c in repo.log():
        found = c.trailer(TRAILER)
        if found and found.startswith("dvc "):
            out.add(found[4:].strip())
    return out


def _workspace_listing(dest: Path) -> dict[str, str]:
    """Relative file path → md5 of the bytes (DVC 3's own file hash) of ``dest`` now."""
    if not dest.is_dir():
        return {}
    return {
        p.relative_to(dest).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
        for p in dest.rglob("*")
        if p.is_file()
    }


@dataclass
class _Undo:
    """What an import changes, so that a failure half-way can put it all back."""

    head: str | None
    branch: str | None
    config: bytes
    created: Path | None = None  # the dataset folder, when the import made it
    written: set[Path] = field(default_factory=set)

    @classmethod
    def record(cls, repo: Repo) -> _Undo:
        return cls(repo.head(), repo.branch(), (repo.workdir / CONFIG).read_bytes())

    def apply(self, repo: Repo) -> None:
        """Move the branch back, restore the files and datagit.toml, drop the stage."""
        from datagit.api.workspace import materialize

        repo._set_stage(None)
        if self.head is not None:
            if self.branch:
                repo.git.update_ref(f"refs/heads/{self.branch}", self.head, "import-dvc: undo")
            else:
                repo.git.set_head_detached(self.head)
            materialize(repo, repo.git.commit(self.head).tree, force=True)
        else:
            if self.branch and repo.git.ref(f"refs/heads/{self.branch}"):
                repo.git.delete_ref(f"refs/heads/{self.branch}")
            for p in self.written:  # the folder was empty (a clean repository without commits)
                p.unlink(missing_ok=True)
        (repo.workdir / CONFIG).write_bytes(self.config)
        for cfg in repo.config.datasets.values():
            _prune_empty(repo.workdir / cfg.path)
        if self.created is not None and self.created.is_dir():
            _prune_empty(self.created)
            if not any(self.created.iterdir()):
                self.created.rmdir()


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
    written: set[Path],
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
        written.add(target)
    _prune_empty(dest)


def _prune_empty(dest: Path) -> None:
    """Remove class folders left empty (an imagefolder holds no empty class)."""
    for folder in sorted(dest.rglob("*"), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _target_dataset(repo: Repo, name: str, path: str, undo: _Undo) -> DatasetConfig:
    existing = repo.config.datasets.get(name)
    if existing is not None:
        if existing.layout != "imagefolder":
            raise InvalidInputError(
                f"dataset {name!r} has layout {existing.layout}; import-dvc writes class folders",
                hint="import into a new dataset with --dataset NAME",
            )
        return existing
    cfg = DatasetConfig(name=name, layout="imagefolder", path=path)
    if not (repo.workdir / path).exists():
        undo.created = repo.workdir / path
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
