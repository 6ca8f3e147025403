"""Layouts: how a folder or a table in the workspace becomes records.

``imagefolder``: ``root/<label>/<relative path>``; the id is the relative path
under the class folder, so moving a file to another class folder re-labels the
same example. A file directly in ``root`` (no class folder) is an unlabelled
example: its id is its name and its label None. ``table``: CSV or JSON Lines
with configured id, label, annotator and content (inline text) or file (a
column of paths) columns; an empty label cell is an unlabelled example.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Container, Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

from datagit.core import ignore
from datagit.core.config import DatasetConfig
from datagit.core.records import Record, validate_id
from datagit.errors import InvalidInputError
from datagit.progress import Reporter
from datagit.storage.content import PackWriter, address, read_file
from datagit.storage.statcache import StatCache, cached_key
from datagit.storage.stattable import StatTable

PathFilter = Callable[[str], bool]


class Hasher:
    """Content addresses for workspace files, through the stat cache.

    With a ``writer`` (``add``) new bytes also go into the content store; without
    one (``status``) files are only hashed.
    """

    def __init__(self, workdir: Path, cache: StatCache, writer: PackWriter | None = None) -> None:
        self.workdir = workdir
        self._root = str(workdir) + os.sep
        self.cache = cache
        self.writer = writer
        self.hashed = 0
        self.started = time.time_ns()  # before any read: see StatCache.record
        # Stat-cache rows vouched for elsewhere (a snapshot's: `snapshot_rows`).
        self.known: Mapping[str, tuple[int, int, int, str, int]] = {}
        self.report: Reporter | None = None  # told of every file looked at, when set

    def file(self, rel: str, st: os.stat_result, abspath: str | None = None) -> str:
        """The address of workspace file ``rel`` (``abspath`` saves re-joining the path)."""
        if self.report is not None:
            self.report.advance()
        key = self.cache.lookup(rel, st)
        if key is None and self.known:
            key = cached_key(self.known.get(rel), (st.st_size, st.st_mtime_ns, st.st_ino))
        if key is not None and (self.writer is None or self.writer.store.has(key)):
            return key
        key = read_new(rel, abspath or self._root + rel, st.st_size, self.writer)
        self.cache.record(rel, st, key, self.started)
        self.hashed += 1
        return key


def read_new(rel: str, abspath: str, size: int, writer: PackWriter | None) -> str:
    """Read and address a file the caches do not vouch for, storing it when adding;
    a failed read names the workspace file."""
    try:
        data = read_file(abspath, size)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {rel}: {exc.strerror or exc}",
            hint="fix the file's permissions or remove it from the dataset",
        ) from None
    key = address(data)
    if writer is not None:
        writer.put(data, key)
    return key


def scan(cfg: DatasetConfig, hasher: Hasher, include: PathFilter | None = None) -> list[Record]:
    """All records of a dataset as the workspace has them now."""
    if cfg.layout == "imagefolder":
        return scan_imagefolder(cfg, hasher, include)
    return scan_table(cfg, hasher)  # defined in core/tables.py, imported below


# -- imagefolder -------------------------------------------------------------
class FileEntry(NamedTuple):
    """One file of an image folder as a directory listing sees it."""

    id: str
    label: str | None  # None: a file directly in the dataset folder, not yet labelled
    stat: tuple[int, int, int]  # size, mtime_ns, inode: what the snapshot compares
    abspath: str
    st: os.stat_result


def list_imagefolder(
    cfg: DatasetConfig, workdir: Path, known: Mapping[str, object] | None = None
) -> dict[str, FileEntry]:
    """Every file of an image folder by workspace path, with every layout rule checked.

    Ids of paths in ``known`` (a previous listing) were validated then and are
    not re-checked: a listing of 100,000 unchanged files should cost stats only.
    """
    root, labels, real_workdir = _class_folders(cfg, workdir)
    known = known or {}
    seen: dict[str, str] = {}
    out: dict[str, FileEntry] = {}
    for label, rel_id, rel_path, entry in _walk(cfg, root, labels, real_workdir):
        if rel_path not in known:
            validate_id(rel_id, rel_path)
        if rel_id in seen:
            raise InvalidInputError(
                f"dataset {cfg.name}: id {rel_id!r} is given by both {seen[rel_id]} and {rel_path}",
                hint="an example can have one label: delete or rename one of the files",
            )
        seen[rel_id] = rel_path
        st = _stat(entry, rel_path)
        out[rel_path] = FileEntry(
            rel_id, label, (st.st_size, st.st_mtime_ns, st.st_ino), entry.path, st
        )
    return out


def _walk(
    cfg: DatasetConfig, root: Path, labels: list[str], real_workdir: str
) -> Iterator[tuple[str | None, str, str, os.DirEntry[str]]]:
    """(label, id, workspace path, entry) of every file under the class folders, and
    (None, name, path, entry) of the unlabelled files directly in the dataset folder.

    Links leaving the workspace and class folders nested in class folders are
    refused here, so both listings enforce the same rules.
    """
    label_set = set(labels)
    if labels or os.path.isdir(root):
        ignored = ignore.load(real_workdir)
        with os.scandir(root) as it:
            loose = sorted(
                (e for e in it if e.name[0] != "." and not _is_dir(e, f"{cfg.path}/{e.name}")),
                key=lambda e: e.name,
            )
        for entry in loose:
            rel_path = f"{cfg.path}/{entry.name}"
            if ignored is not None and ignored(rel_path, False):
                continue
            if entry.is_symlink():
                _check_link(entry.path, rel_path, real_workdir)
            if not entry.is_file():
                _refuse_special(entry.path, rel_path)
            yield None, entry.name, rel_path, entry
    for label in sorted(labels):
        yield from _walk_folder(cfg, label, str(root / label), "", label_set, real_workdir)


def _walk_folder(
    cfg: DatasetConfig,
    label: str,
    folder: str,
    rel_dir: str,
    label_set: Container[str],
    real_workdir: str,
) -> Iterator[tuple[str, str, str, os.DirEntry[str]]]:
    """`_walk` of one folder inside class folder ``label`` (``rel_dir``: its id prefix)."""
    base = f"{cfg.path}/{label}/"
    ignored = ignore.load(real_workdir)
    stack = [(folder, rel_dir)]
    while stack:
        folder, rel_dir = stack.pop()
        with os.scandir(folder) as it:
            for entry in it:
                name = entry.name
                if name[0] == ".":
                    continue
                rel_id = rel_dir + name
                rel_path = base + rel_id
                if ignored is not None and ignored(rel_path, entry.is_dir()):
                    continue
                if entry.is_symlink():
                    _check_link(entry.path, rel_path, real_workdir)
                if _is_dir(entry, rel_path):
                    if name in label_set:
                        raise InvalidInputError(
                            f"{rel_path}/ is a class folder nested inside class folder {label}/",
                            hint=f"move its files to {cfg.path}/{name}/ or rename the folder",
                        )
                    stack.append((entry.path, rel_id + "/"))
                    continue
                if not entry.is_file():  # from the listing's d_type: no open, no read
                    _refuse_special(entry.path, rel_path)
                yield label, rel_id, rel_path, entry


def _is_dir(entry: os.DirEntry[str], rel_path: str) -> bool:
    try:
        return entry.is_dir()
    except OSError as exc:  # ELOOP: a link that leads back to itself
        raise InvalidInputError(
            f"{rel_path} is a symlink that cannot be resolved ({exc.strerror})",
            hint="fix or remove the link",
        ) from None


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _refuse_special(abspath: str, rel_path: str) -> None:
    """Refuse a FIFO, socket or device by its name: reading one could block forever.

    A dangling link is left to the stat that follows (its error names the file).
    """
    try:
        mode = os.stat(abspath).st_mode
    except OSError:
        return
    for test, kind in _KINDS:
        if test(mode):
            raise InvalidInputError(
                f"{rel_path} is {kind}, not a file",
                hint="an example is a regular file: move it out of the dataset's folder",
            )


def _stat(entry: os.DirEntry[str], rel_path: str) -> os.stat_result:
    try:
        return entry.stat()
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {rel_path}: {exc.strerror or exc}",
            hint="fix the link or remove the file",
        ) from None


def workspace_missing(cfg: DatasetConfig, workdir: Path) -> bool:
    """Whether a dataset's folder or table file is absent from the workspace.

    An absent one is an empty dataset, as git treats a deleted directory: a
    dataset declared before its data exists has no examples yet, and deleting
    the folder (or table) of a committed one removes every example.
    """
    try:
        os.lstat(workdir / cfg.path)
    except FileNotFoundError:
        return True
    except OSError:  # a file where a parent folder should be: let the reader say so
        return False
    return False


def _class_folders(cfg: DatasetConfig, workdir: Path) -> tuple[Path, list[str], str]:
    """(dataset root, its class folders, the workspace's real path), with the rules checked.

    A root that does not exist has no class folders (see `workspace_missing`).
    """
    root = workdir / cfg.path
    real_workdir = os.path.realpath(workdir)
    if workspace_missing(cfg, workdir):
        return root, [], real_workdir
    _check_link(str(root), cfg.path, real_workdir)  # the dataset folder itself may be a link
    if not root.is_dir():
        raise InvalidInputError(
            f"dataset {cfg.name}: {cfg.path} is not a folder",
            hint="an imagefolder dataset is a folder of class folders: "
            "move the file away, or fix the path in datagit.toml",
        )
    labels = []
    ignored = ignore.load(real_workdir)
    for entry in os.scandir(root):
        if entry.name.startswith("."):
            continue
        if ignored is not None and ignored(f"{cfg.path}/{entry.name}", entry.is_dir()):
            continue
        if entry.is_symlink():  # a class folder linked elsewhere
            _check_link(entry.path, f"{cfg.path}/{entry.name}", real_workdir)
        if _is_dir(entry, f"{cfg.path}/{entry.name}"):
            labels.append(entry.name)
        # a file here is an unlabelled example (see `_walk`)
    return root, labels, real_workdir


def split_path(cfg: DatasetConfig, path: str) -> tuple[str | None, str]:
    """(label, id) of an image folder's workspace path: ``train/cat/a/1.png`` →
    ``("cat", "a/1.png")``; ``train/1.png`` (no class folder) → ``(None, "1.png")``."""
    rest = path[len(cfg.path) + 1 :]
    label, sep, example_id = rest.partition("/")
    return (label, example_id) if sep else (None, rest)


NARROW_MAX_FOLDERS = 32  # more changed folders than this: a full scan is cheaper
NARROW_MAX_PATHS = 5_000  # …and more paths than this and a quarter of the dataset


def narrow_changes(
    cfg: DatasetConfig,
    workdir: Path,
    stats: StatTable,
    limit: int,
    paths: list[str],
) -> tuple[dict[str, tuple[int, int, int]], list[str]] | None:
    """`folderscan.scan_changes`, looking only at ``paths`` (a filesystem monitor's answer).

    Every layout rule is checked on what changed: the rest was checked when it
    was scanned. Racy snapshot entries are always looked at. None when the
    answer is too broad to help (the dataset folder itself moved, or many
    folders did), so the caller scans in full.
    """
    if len(paths) > max(NARROW_MAX_PATHS, len(stats) // 4):
        return None  # e.g. after a big checkout: the full scan on two cores is faster
    _root, labels, real_workdir = _class_folders(cfg, workdir)
    prefix = cfg.path + "/"
    label_set = set(labels)
    files: dict[str, str] = {}  # candidate workspace path → absolute path
    gone: list[str] = []
    folders = 0
    ignored = ignore.load(real_workdir)
    for path in paths:
        if path == cfg.path or cfg.path.startswith(path + "/"):
            return None
        if not path.startswith(prefix):
            continue
        if ignored is not None and ignored(path, os.path.isdir(workdir / path)):
            continue
        abspath = str(workdir / path)
        label, _, rel = path[len(prefix) :].partition("/")
        if os.path.isdir(abspath):
            if os.path.islink(abspath):
                return None  # a linked folder: the careful walk knows how to follow it
            name = rel.rsplit("/", 1)[-1]
            if rel and name in label_set:
                raise InvalidInputError(
                    f"{path}/ is a class folder nested inside class folder {label}/",
                    hint=f"move its files to {cfg.path}/{name}/ or rename the folder",
                )
            if path in stats:  # a file replaced by a folder of the same name
                gone.append(path)
        elif path in stats or os.path.lexists(abspath):
            files[path] = abspath  # a file, there or gone
            continue
        # A folder that appeared, or something that is gone and was no file we knew
        # (a folder moved away): look at everything we had under it, and it has now.
        folders += 1
        if folders > NARROW_MAX_FOLDERS:
            return None
        inner = path + "/"
        files.update((p, str(workdir / p)) for p in stats.under(inner))
        if label in label_set and os.path.isdir(abspath):
            rel_dir = rel + "/" if rel else ""
            for _l, _i, p, entry in _walk_folder(
                cfg, label, abspath, rel_dir, label_set, real_workdir
            ):
                files[p] = entry.path
    files.update((p, str(workdir / p)) for p, _st in stats.racy(limit))
    changed: dict[str, tuple[int, int, int]] = {}
    for path, abspath in files.items():
        try:
            st = os.stat(abspath)
        except FileNotFoundError:
            if not os.path.lexists(abspath):
                if path in stats:
                    gone.append(path)
                continue
            st = _stat_path(abspath, path)  # a dangling link: the usual error
        except OSError:
            st = _stat_path(abspath, path)
        if not stat.S_ISREG(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            _refuse_special(abspath, path)
        t = (st.st_size, st.st_mtime_ns, st.st_ino)
        if t[1] >= limit or stats.get(path) != t:
            changed[path] = t
    gone_set = set(gone)
    for path in changed:
        if path in stats:
            continue
        new_label, example_id = split_path(cfg, path)
        validate_id(example_id, path)
        if os.path.islink(files[path]):
            _check_link(files[path], path, real_workdir)
        for other in [*labels, None]:
            twin = f"{prefix}{other}/{example_id}" if other is not None else prefix + example_id
            if other != new_label and (twin in changed or (twin in stats and twin not in gone_set)):
                list_imagefolder(cfg, workdir)  # raises the duplicate-id error naming both
    return changed, gone


def _stat_path(abspath: str, rel_path: str) -> os.stat_result:
    try:
        return os.stat(abspath)
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read {rel_path}: {exc.strerror or exc}",
            hint="fix the link or remove the file",
        ) from None


def entry_for(cfg: DatasetConfig, workdir: Path, path: str) -> FileEntry:
    """The `FileEntry` of one workspace path of an image folder (for the few that changed)."""
    label, rel_id = split_path(cfg, path)
    abspath = str(workdir / path)
    st = os.stat(abspath)
    return FileEntry(rel_id, label, (st.st_size, st.st_mtime_ns, st.st_ino), abspath, st)


def _check_link(path: str, rel_path: str, real_workdir: str) -> None:
    """Refuse a link out of the workspace, or into its `.datagit` (whose config may hold
    remote secrets: a link there would commit and push them as an example)."""
    try:
        target = os.path.realpath(path)
    except OSError as exc:  # ELOOP: a link that leads back to itself
        raise InvalidInputError(
            f"{rel_path} is a symlink that cannot be resolved ({exc.strerror})",
            hint="fix or remove the link",
        ) from None
    if os.path.commonpath([target, real_workdir]) != real_workdir:
        raise InvalidInputError(
            f"{rel_path} is a symlink to {target}, outside the workspace",
            hint="copy the file into the workspace instead of linking to it",
        )
    if in_metadata(target, real_workdir):
        raise InvalidInputError(
            f"{rel_path} is a symlink into {META_DIR}/ ({target})",
            hint="remove the link: repository metadata is never a dataset's content",
        )


META_DIR = ".datagit"


def in_metadata(real_path: str, real_workdir: str) -> bool:
    """Whether a resolved path is the workspace's `.datagit` or inside it."""
    meta = os.path.join(real_workdir, META_DIR)
    return real_path == meta or real_path.startswith(meta + os.sep)


def file_record(rel_path: str, entry: FileEntry, hasher: Hasher) -> Record:
    key = hasher.file(rel_path, entry.st, entry.abspath)
    return Record(entry.id, entry.label, key, entry.stat[0])


def scan_imagefolder(
    cfg: DatasetConfig, hasher: Hasher, include: PathFilter | None
) -> list[Record]:
    listing = list_imagefolder(cfg, hasher.workdir)
    return [
        file_record(path, e, hasher)
        for path, e in listing.items()
        if include is None or include(path)
    ]


# The table layout lives in core/tables.py; these names stay importable from here.
from datagit.core.tables import (  # noqa: E402, F401
    check_columns,
    render_table,
    scan_table,
    table_row,
)
