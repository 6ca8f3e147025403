"""How checkout gives a workspace file its bytes: a copy, or a hard or reflink of the store's copy.

Small objects live back to back in pack files (see `content`), and no
filesystem can link a file to a range of another, so a linked example needs a
loose object of its own: `ContentStore.loose_file` promotes it (verified, made
read-only) the first time it is linked, and `gc` then drops the packed copy, so
each example's bytes are on disk once. Read-only matters for hardlinks: the
workspace file *is* the stored object, and an editor writing in place would
otherwise change history; tools that replace files (most editors, `cp`, `mv`)
just break the link. A reflink is a copy-on-write clone (Btrfs, XFS, APFS is
not reachable from Python's stdlib), so the workspace file stays writable.

Modes, as ``core.link`` (like DVC's ``cache.type``): ``copy`` (default),
``hardlink``, ``reflink``, and ``auto`` = reflink where the filesystem clones,
copy otherwise (never a hardlink unasked, since it shares the inode).
"""

from __future__ import annotations

import contextlib
import errno
import os
from array import array
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import xxhash

from datagit.errors import DatagitError, InvalidInputError
from datagit.progress import Reporter
from datagit.storage import loosetrust, parallel
from datagit.storage.content import ContentStore

MODES = ("copy", "hardlink", "reflink", "auto")
_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS)

Placer = Callable[[str, str], None]  # (content address, workspace path) → file in place


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InvalidInputError(
            f"core.link = {mode!r} is not one of {', '.join(MODES)}",
            hint="fix it with `datagit config core.link hardlink` (or copy, reflink, auto)",
        )
    return mode


def placer(store: ContentStore, mode: str, workdir: Path) -> Placer | None:
    """A function that puts one example in place by ``mode``; None means write a copy.

    Checked before the first file is touched: a reflink on a filesystem that
    cannot clone is refused here, with the workspace still as it was.
    """
    check_mode(mode)
    if mode == "copy":
        return None
    cloning = can_reflink(store.root)
    if mode == "auto":
        if not cloning:
            return None
        mode = "reflink"
    if mode == "reflink" and not cloning:
        raise DatagitError(
            f"core.link = reflink, but the filesystem of {store.root} cannot clone files",
            hint="reflinks need Btrfs or XFS; use `datagit config core.link hardlink`, "
            "or auto (reflink where possible, else copy)",
        )
    link = os.link if mode == "hardlink" else _reflink

    def place(key: str, dest: str) -> None:
        src = store.loose_name(key)
        try:
            link(src, dest)  # the common case: one system call
            return
        except FileExistsError:
            pass
        except FileNotFoundError:
            if not os.path.exists(src):
                store.loose_file(key)  # first link of a packed object: make it loose
            os.makedirs(os.path.dirname(dest), exist_ok=True)
        except OSError as exc:
            if exc.errno not in (*_UNSUPPORTED, errno.EMLINK, errno.EPERM):
                raise
            _copy(src, dest)  # another filesystem, or too many links: a copy is still right
            return
        tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.datagit-tmp")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        link(src, tmp)
        os.replace(tmp, dest)

    return place


_UNIT = 4096  # files per piece of work: progress steps, and where two cores may split


def hardlink_many(
    store: ContentStore,
    groups: Mapping[str, tuple[list[str], list[str]]],
    root: str,
    report: Reporter,
    packed: Callable[[Sequence[str]], bytes] | None = None,
) -> dict[str, bytes]:
    """Hard-link each file of each folder (under ``root``, which ends with a separator;
    ``groups``: folder → (names, addresses)) to its address's loose object, on both
    cores past `parallel_min` files, each core taking whole folders where it can (two
    processes linking into one folder wait on its lock).

    The objects are loose and verified already (`loosetrust.verify_many`), so this is
    `cp -al`'s loop: folders made once each, then one ``link()`` per file, each path
    made as it is linked (not 100,000 of them first), by short names between folders
    held open (`loosetrust.loose_folders`); anything unusual (a file in the way,
    another filesystem, too many links, a loose folder made since) takes `placer`'s
    careful path, by full names. A failed helper's half is linked again here
    (linking is idempotent).

    With ``packed`` (`LinkedStats.packed`: addresses → their stats as a snapshot
    packs them), each core also packs the stats of the folders it linked, and
    they come back as folder → bytes: that work is then spread too.
    """
    units = _units(groups, root)
    careful = placer(store, "hardlink", store.root)
    assert careful is not None

    def run(
        part: Sequence[tuple[str, str, list[str], list[str]]], in_child: bool
    ) -> list[tuple[str, bytes]]:
        link, folder = os.link, sources.get
        stats: list[tuple[str, bytes]] = []
        for name_of_folder, inner, names, keys in part:
            # By short names, from the object's open loose folder into the workspace
            # folder held open: no path walked from the root per file.
            into = os.open(inner, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for name, key in zip(names, keys, strict=True):
                    try:
                        link(key[2:], name, src_dir_fd=folder(key[:2], -1), dst_dir_fd=into)
                    except OSError:
                        careful(key, inner + name)
            finally:
                os.close(into)
            if packed is not None:
                stats.append((name_of_folder, packed(keys)))
            if not in_child:
                report.advance(len(names))
        return stats

    with loosetrust.loose_folders(store) as sources:
        return _spread(units, run, report)


def copy_many(
    store: ContentStore,
    groups: Mapping[str, tuple[list[str], list[str]]],
    root: str,
    report: Reporter,
) -> dict[str, bytes]:
    """Write a copy of each file of each folder (under ``root``, which ends with a
    separator; ``groups``: folder → (names, addresses)), on both cores past
    `parallel_min` files, each core taking whole folders where it can; returns each
    folder's files' (size, mtime_ns, inode) as a snapshot packs them (`stattable`).

    The objects were read and hashed already (`ContentStore.verify_all`, before the
    first edit), so they are not read into Python again: each file is ``open`` (new,
    by its short name in its folder held open), an in-kernel ``copy_file_range``
    from the pack (or loose file) holding its object, ``fstat`` and ``close`` — what
    `cp -a` does per file. A file in the way, or anything unusual, takes the careful
    path: a temporary file renamed over it. A failed helper's half is written again
    here (a file it made is in the way then, so it is replaced whole).
    """
    units = _units(groups, root)

    def run(
        part: Sequence[tuple[str, str, list[str], list[str]]], in_child: bool
    ) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        with _Sources(store) as sources:
            for name_of_folder, inner, names, keys in part:
                out.append((name_of_folder, _copy_folder(sources, inner, names, keys)))
                if not in_child:
                    report.advance(len(names))
        return out

    return _spread(units, run, report)


_Unit = tuple[str, str, list[str], list[str]]  # folder, its path + "/", names, addresses


def _units(groups: Mapping[str, tuple[list[str], list[str]]], root: str) -> list[_Unit]:
    """Each folder (made here, once) in pieces of `_UNIT` files, in folder order."""
    units: list[_Unit] = []
    for folder in sorted(groups):
        os.makedirs(root + folder, exist_ok=True)
        names, keys = groups[folder]
        inner = f"{root}{folder}/" if folder else root
        for i in range(0, len(names), _UNIT):
            units.append((folder, inner, names[i : i + _UNIT], keys[i : i + _UNIT]))
    return units


def _spread(
    units: list[_Unit],
    run: Callable[[Sequence[_Unit], bool], list[tuple[str, bytes]]],
    report: Reporter,
) -> dict[str, bytes]:
    """``run`` over ``units``, the helper taking those past half the files (past
    `parallel_min` files); each folder's packed bytes, its pieces joined in order."""
    total = sum(len(u[2]) for u in units)
    at = _half(units, total)
    start = report.done
    alone = total < parallel.parallel_min() or at in (0, len(units))
    got, _ = parallel.split_run(units, run, minimum=len(units) + 1 if alone else 1, at=at)
    report.advance(max(0, total - (report.done - start)))  # the helper's half
    by_folder: dict[str, list[bytes]] = {}
    for name_of_folder, raw in got:  # in unit order: a folder's pieces in file order
        by_folder.setdefault(name_of_folder, []).append(raw)
    return {f: b"".join(parts) for f, parts in by_folder.items()}


def _half(units: Sequence[_Unit], total: int) -> int:
    """The first unit past half the files: the forked helper takes it and the rest."""
    done = 0
    for j, unit in enumerate(units):
        if done * 2 >= total:
            return j
        done += len(unit[2])
    return len(units)


class _Sources:
    """Where each object's bytes are, as (open file, offset, length): its pack entry, or
    its loose file. Pack files are opened once each, here (a forked helper's own)."""

    def __init__(self, store: ContentStore) -> None:
        self.store = store
        self._packs: dict[str, int] = {}
        self.ranges = True  # copy_file_range works between these files (else read + write)

    def __enter__(self) -> _Sources:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._packs.values():
            os.close(fd)
        self._packs.clear()

    def find(self, key: str) -> tuple[int, int, int, bool]:
        """(fd, offset, length, whether the caller closes the fd) of ``key``'s bytes."""
        loc = self.store.index.get(key)
        if loc is None:
            fd = os.open(self.store.loose_name(key), os.O_RDONLY | os.O_CLOEXEC)
            return fd, 0, os.fstat(fd).st_size, True
        name = str(loc.path)
        pack = self._packs.get(name)
        if pack is None:
            pack = self._packs[name] = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
        return pack, loc.offset, loc.length, False

    def copy(self, key: str, out: int) -> None:
        """``key``'s bytes into file ``out`` (new and empty), to the last byte."""
        src, offset, length, own = self.find(key)
        try:
            end = offset + length
            while offset < end:
                if self.ranges:
                    try:
                        n = os.copy_file_range(src, out, end - offset, offset) or 0
                    except OSError as exc:
                        if exc.errno not in (*_UNSUPPORTED, errno.EBADF, errno.EPERM):
                            raise
                        self.ranges = False  # another filesystem, or an old kernel
                        continue
                else:
                    n = os.write(out, os.pread(src, end - offset, offset))
                if n <= 0:
                    raise OSError(errno.EIO, f"content {key} ends before its length")
                offset += n
        finally:
            if own:
                os.close(src)


_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _copy_folder(sources: _Sources, inner: str, names: list[str], keys: list[str]) -> bytes:
    """Copy ``keys`` into folder ``inner`` as ``names``; their stats, packed."""
    stats = array("Q")
    keep, open_, fstat, close, copy = stats.extend, os.open, os.fstat, os.close, sources.copy
    into = open_(inner, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name, key in zip(names, keys, strict=True):
            try:
                fd = open_(name, _NEW, 0o666, dir_fd=into)
            except OSError:  # in the way (or odd): replaced whole, by full name
                st = _copy_over(sources, key, inner + name)
            else:
                try:
                    copy(key, fd)
                    st = fstat(fd)
                finally:
                    close(fd)
            keep((st.st_size, st.st_mtime_ns, st.st_ino))
    finally:
        close(into)
    return stats.tobytes()


def _copy_over(sources: _Sources, key: str, dest: str) -> os.stat_result:
    """A copy of ``key`` at ``dest`` whatever is there: a temporary file renamed over it."""
    # a short, stable temp name (`.<name>.tmp` passes 255 bytes for a 250-byte name)
    name = xxhash.xxh3_64_hexdigest(os.path.basename(dest).encode())
    tmp = os.path.join(os.path.dirname(dest), f".{name}.datagit-tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, _NEW, 0o666)
    try:
        sources.copy(key, fd)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    return st


def can_reflink(folder: Path) -> bool:
    """Whether files in ``folder`` can be cloned (tried once on two scratch files)."""
    src = folder / ".reflink-probe"
    dst = folder / ".reflink-probe-clone"
    try:
        src.write_bytes(b"probe")
        _reflink(src, dst)
        return True
    except OSError:
        return False
    finally:
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)


def _reflink(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    import fcntl

    with open(src, "rb") as s:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(fd, _FICLONE, s.fileno())
        except OSError:
            os.close(fd)
            os.unlink(dst)
            raise
        os.close(fd)


def _copy(src: str, dest: str) -> None:
    tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.datagit-tmp")
    Path(tmp).write_bytes(Path(src).read_bytes())
    os.replace(tmp, dest)
