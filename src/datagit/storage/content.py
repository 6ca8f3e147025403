"""Content store: example bytes keyed by their xxh3-128 address.

Creating a file costs ~250 µs here and reading one ~15 µs, so one file per
example would dominate `add`. Small objects are appended to pack files instead;
each pack has an append-only index of fixed-size entries written *after* the
bytes they point at, so a crash can only leave a torn tail that loading skips.
Large objects live as single files. Every read that materialises bytes
verifies them against their address.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import xxhash

from datagit.errors import CorruptObjectError, InvalidInputError
from datagit.storage import loosetrust, packindex, parallel
from datagit.storage.loosetrust import LooseTrust
from datagit.storage.packindex import PackIndex
from datagit.storage.packlog import (
    IDX_MAGIC,
    append_index,
    encode_entries,
    log_entries,
    parse_index,
)

LARGE = 1 << 20  # objects this big or bigger get a file of their own
PACK_LIMIT = 1 << 30  # start a new pack past this size
_HEX = frozenset("0123456789abcdef")


def address(data: bytes) -> str:
    """The content address of ``data``: xxh3-128, 32 hex digits."""
    return xxhash.xxh3_128_hexdigest(data)


class Location(NamedTuple):
    """Where an object's bytes are: a pack file, offset and length.

    A NamedTuple rather than a dataclass: the index builds one per object on
    open, and tuple construction is several times cheaper.
    """

    path: Path
    offset: int
    length: int


class ContentStore:
    """Packs of small objects plus loose large objects under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.packs = root / "packs"
        self.loose = root / "loose"
        self._index: PackIndex[Location] | None = None
        self._readers: dict[Path, int] = {}
        self.trust = LooseTrust(root / "loose-verified.marshal")  # see loosetrust
        # A partial clone sets this: it fetches the given addresses from a remote.
        self.fetch_missing: Callable[[list[str]], None] | None = None

    @classmethod
    def init(cls, root: Path) -> ContentStore:
        (root / "packs").mkdir(parents=True, exist_ok=True)
        (root / "loose").mkdir(parents=True, exist_ok=True)
        return cls(root)

    # -- index -----------------------------------------------------------
    @property
    def index(self) -> PackIndex[Location]:
        """address → location: the sorted fold (memory-mapped, packindex.py) and the
        entries appended to the pack logs since, which alone are read into memory."""
        if self._index is None:
            self._index = packindex.load(self.packs, log_entries, Location)
        return self._index

    def fold(self) -> int:
        """Fold the pack logs into the sorted index (a writer holding the lock does,
        past FOLD_AT new entries, and gc); returns the entries folded in."""
        folded = packindex.fold_logs(self.packs, log_entries)
        self.invalidate()
        return folded

    @property
    def index_problems(self) -> list[str]:
        """Damaged or unreadable index entries, found by reading every pack log whole
        (fsck asks; lookups skip a damaged entry, whose object then counts as missing)."""
        problems = []
        for idx in sorted(self.packs.glob("pack-*.idx")):
            pack = idx.with_suffix(".pack")
            try:
                st = pack.stat()
                raw = idx.read_bytes()
            except FileNotFoundError:
                continue
            except OSError as exc:  # e.g. a folder where the pack or index should be
                problems.append(f"content index {idx} is unreadable: {exc.strerror}")
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"content pack {pack} is not a file")
                continue
            entries, bad, _whole = parse_index(raw)
            bad += sum(offset + length > st.st_size for _, offset, length in entries)
            if bad:
                problems.append(
                    f"content index {idx}: {bad} damaged entries skipped "
                    "(their objects count as missing until added or pulled again)"
                )
        return problems

    def _loose_path(self, key: str) -> Path:
        # A key comes from a record, which may come from a crafted commit: one that is
        # not 32 hex digits must never become a file name (`../../etc/passwd`).
        if len(key) != 32 or not _HEX.issuperset(key):
            raise InvalidInputError(
                f"{key!r} is not a content address",
                hint="the record naming it was not written by datagit; do not trust its commit",
            )
        return self.loose / key[:2] / key[2:]

    def loose_name(self, key: str) -> str:
        """Where ``key``'s loose file is or would be, as a string (no pathlib per object)."""
        return f"{self.loose}/{key[:2]}/{key[2:]}"

    def has(self, key: str) -> bool:
        return key in self.index or self._loose_path(key).exists()

    def keys(self) -> Iterator[str]:
        yield from self.index
        yield from self.loose_keys()

    def loose_keys(self) -> Iterator[str]:
        """Addresses held as loose files (large objects, and objects linked into a workspace)."""
        if self.loose.exists():
            for sub in self.loose.iterdir():
                for f in sub.iterdir():
                    if not f.name.endswith(".tmp"):
                        yield sub.name + f.name

    # -- reading ---------------------------------------------------------
    def read(self, key: str) -> bytes:
        """The bytes stored under ``key``, verified against the address."""
        loc = self.index.get(key)
        if loc is not None:
            data = self._pread(loc)
            where = f"{loc.path} at offset {loc.offset}"
        else:
            path = self._loose_path(key)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                if self.fetch_missing is not None and self.prefetch([key]) and self.has(key):
                    return self.read(key)
                raise MissingContentError(
                    f"content {key} is not in the store",
                    hint="fetch it with `datagit pull`, or restore it from a backup",
                ) from None
            where = str(path)
        if address(data) != key:
            raise CorruptObjectError(
                f"content {key} is corrupt ({where})",
                hint="run `datagit fsck`; re-add the file or pull it from a remote",
            )
        return data

    def loose_file(self, key: str) -> Path:
        """A read-only loose file holding ``key``'s bytes, proven intact, made from its pack
        entry if need be (`loosetrust.verified`).

        What checkout links a workspace file to (see `links`): a pack entry cannot
        be linked. `gc` later drops the packed copy, so the object is stored once.
        """
        loosetrust.verified(self, key)
        return self._loose_path(key)

    def check_loose(self, key: str) -> None:
        """Read and hash ``key``'s loose file, whatever any cache says (fsck)."""
        loosetrust.check_file(self, key)

    def verify_all(self, keys: Sequence[str]) -> None:
        """Read and check every key, on both cores for a long list; raises for the first bad one.

        The child only reports which keys failed; the parent reads the first of
        them again, so the error (and any fetch a partial clone makes) is its own.
        """

        def run(part: Sequence[str], in_child: bool) -> list[str]:
            bad = []
            for key in part:
                try:
                    self.read(key)
                except CorruptObjectError:
                    bad.append(key)
            return bad

        on_demand = self.fetch_missing is not None  # a child must not fetch from a remote
        bad, _ = parallel.split_run(keys, run, minimum=len(keys) + 1 if on_demand else None)
        if bad:
            self.read(bad[0])

    def prefetch(self, keys: Iterable[str]) -> int:
        """Fetch the absent ``keys`` in one go through `fetch_missing`; returns how many."""
        if self.fetch_missing is None:
            return 0
        absent = sorted({k for k in keys if not self.has(k)})
        if absent:
            self.fetch_missing(absent)
        return len(absent)

    def _pread(self, loc: Location) -> bytes:
        try:
            fd = self._readers.get(loc.path)
            if fd is None:
                fd = os.open(loc.path, os.O_RDONLY)
                self._readers[loc.path] = fd
            return os.pread(fd, loc.length, loc.offset)
        except OSError as exc:  # gone, replaced by a folder, an I/O error: never a traceback
            raise CorruptObjectError(
                f"content pack {loc.path} cannot be read: {exc.strerror or exc}",
                hint="run `datagit fsck`; restore the pack from a backup or pull its content",
            ) from None

    def close(self) -> None:
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()
        if self._index is not None:
            self._index.close()
            self._index = None  # reopened on next use: a closed fold answers nothing

    # -- writing ---------------------------------------------------------
    def writer(self) -> PackWriter:
        """A writer that appends new objects; use it as a context manager."""
        return PackWriter(self)

    def put_many(self, blobs: Iterable[bytes]) -> list[str]:
        with self.writer() as w:
            return [w.put(b) for b in blobs]

    def invalidate(self) -> None:
        self.close()
        self._index = None


class MissingContentError(CorruptObjectError):
    """Content a record names is not in the local store (e.g. a partial clone)."""


class PackWriter:
    """Appends objects to the newest pack; index entries follow the bytes.

    On exit the pack is flushed and fsynced before the index entries are
    written, so an index entry never points at bytes that are not on disk.
    """

    def __init__(self, store: ContentStore, pack: Path | None = None) -> None:
        self.store = store
        # Entries not yet in the pack log: addresses, and (offset, length) pairs in one
        # int64 array (a tuple per object cost ~10 MiB over a 100,000-file add).
        self._pending: list[str] = []
        self._spans: array = array("q")  # type: ignore[type-arg]
        self._pack: Path | None = None
        self._fixed = pack  # a pack of its own (a helper process writing beside us)
        self._fh: object = None
        self._offset = 0
        self.written = 0

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def _open(self) -> None:
        if self._fixed is not None:
            self._pack = self._fixed
            self._fh = open(self._fixed, "ab", buffering=1 << 20)  # noqa: SIM115
            self._offset = self._fh.tell()  # type: ignore[attr-defined]
            return
        names = sorted(self.store.packs.glob("pack-*.pack"))
        pack = names[-1] if names else None
        if pack is None or not pack.is_file() or pack.stat().st_size > PACK_LIMIT:
            # a new pack, numbered past every name taken (even by something not a file)
            n = int(pack.stem.split("-")[1]) + 1 if pack else 0
            pack = self.store.packs / f"pack-{n:06d}.pack"
        self._pack = pack
        self._fh = open(pack, "ab", buffering=1 << 20)  # noqa: SIM115 - closed in flush()
        self._offset = self._fh.tell()  # type: ignore[attr-defined]

    def side_pack(self) -> Path:
        """A pack name for a helper process, distinct from the one this writer appends to."""
        if self._fh is None:
            self._open()  # take ours first, so the helper's can never be picked as "newest"
        assert self._pack is not None
        return self._pack.with_name(f"{self._pack.stem}-p{os.getpid()}x.pack")

    def adopt(self, pack: Path) -> None:
        """Index a helper's `side_pack` (complete and fsynced) into the store in memory.

        A helper that found everything already stored wrote no pack at all.
        """
        try:
            size = pack.stat().st_size
            entries, _used = log_entries(pack.with_suffix(".idx"), 0)
        except FileNotFoundError:
            return
        self.store.index.update(
            (digest.hex(), Location(pack, offset, length))
            for digest, offset, length in entries
            if offset + length <= size
        )

    def put(self, data: bytes, key: str | None = None) -> str:
        """Store ``data`` unless already present; return its address."""
        key = key or address(data)
        index = self.store.index
        if key in index:
            return key
        if len(data) >= LARGE or key in self.store.trust:
            # Large, or held loose (linked into a workspace): that file is the copy, kept
            # only if intact, so a commit never trusts an object changed through a link.
            self._put_loose(key, data)
            return key
        if self._fh is None:
            self._open()
        self._fh.write(data)  # type: ignore[attr-defined]
        self._pending.append(key)
        self._spans.extend((self._offset, len(data)))
        index[key] = Location(self._pack, self._offset, len(data))  # type: ignore[arg-type]
        self._offset += len(data)
        self.written += 1
        return key

    def _put_loose(self, key: str, data: bytes) -> None:
        if loosetrust.ensure(self.store, key, data):  # an existing file is kept if intact
            self.written += 1

    def flush(self) -> None:
        if self._fixed is None:  # a forked helper's vouches are not saved (the parent's are)
            self.store.trust.save()  # large objects written loose, vouched for as they went
        if self._fh is None:
            return
        fh = self._fh
        fh.flush()  # type: ignore[attr-defined]
        os.fsync(fh.fileno())  # type: ignore[attr-defined]
        fh.close()  # type: ignore[attr-defined]
        assert self._pack is not None
        spans = iter(self._spans)
        entries = zip(self._pending, spans, spans, strict=True)
        append_index(self._pack.with_suffix(".idx"), entries)
        self._pending.clear()
        del self._spans[:]
        self._fh = None
        if self._fixed is None and len(self.store.index.tail) >= packindex.FOLD_AT:
            self.store.fold()  # a helper's side pack is folded by the writer that adopts it


def rewrite_packs(store: ContentStore, keep: set[str]) -> tuple[int, int]:
    """Copy live objects into a fresh pack, then drop the old packs.

    Returns (objects kept, objects removed). The new pack and its index are
    complete on disk before any old pack is unlinked, so a crash leaves at
    worst duplicates, never a loss.
    """
    old_packs = sorted(store.packs.glob("pack-*.pack"))
    index = dict(store.index)
    # An object also held loose (linked into a workspace) needs no packed copy, once its
    # loose file is proven intact (a write through a hard link would otherwise lose it).
    live = [k for k in index if k in keep and not _loose_intact(store, k)]
    dead = len(index) - len(live)
    if dead == 0:
        return len(live), 0
    n = int(old_packs[-1].stem.split("-")[1]) + 1 if old_packs else 0
    new = store.packs / f"pack-{n:06d}.pack"
    entries: list[tuple[str, int, int]] = []
    offset = 0
    with open(new, "wb") as out:
        for k in live:
            data = store.read(k)
            out.write(data)
            entries.append((k, offset, len(data)))
            offset += len(data)
        out.flush()
        os.fsync(out.fileno())
    with open(new.with_suffix(".idx"), "wb") as idx:
        idx.write(IDX_MAGIC + encode_entries(entries))
        idx.flush()
        os.fsync(idx.fileno())
    store.close()
    for p in old_packs:
        p.with_suffix(".idx").unlink(missing_ok=True)
        p.unlink(missing_ok=True)
    store.fold()  # the old fold names packs that are gone: rebuilt from the new one
    return len(live), dead


def _loose_intact(store: ContentStore, key: str) -> bool:
    try:
        return loosetrust.verified(store, key, promote=False) is not None
    except CorruptObjectError:
        return False


STALE_TMP_S = 3600  # a loose `.tmp` this old is a killed write's leftover, not a live one


def prune_loose(store: ContentStore, keep: set[str]) -> int:
    _drop_stale_tmp(store.loose)
    removed = 0
    held = set()
    for key in list(store.loose_keys()):
        if key not in store.index and key not in keep:
            store._loose_path(key).unlink(missing_ok=True)
            removed += 1
        else:
            held.add(key)
    store.trust.keep_only(held)
    store.trust.save()
    return removed


def _drop_stale_tmp(loose: Path) -> None:
    """Delete loose-object temporaries a killed write left (`<key>.tmp`, renamed into
    place when whole): wasted space only, never listed as objects. Ones written in
    the last hour are left, in case a process outside the write lock (a lazy fetch)
    is still writing them."""
    if not loose.is_dir():
        return
    cutoff = time.time() - STALE_TMP_S
    for sub in loose.iterdir():
        if not sub.is_dir():
            continue
        for f in sub.iterdir():
            if f.name.endswith(".tmp"):
                with contextlib.suppress(OSError):
                    if f.stat().st_mtime < cutoff:
                        f.unlink()


def read_file(path: str, size: int) -> bytes:
    """A whole file through raw fds: the stat already gave its size, so one read
    usually suffices, without a buffered file object per example."""
    # O_NONBLOCK: a FIFO swapped in since the listing must not block the open
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data
        chunks = [data]  # the file grew since the stat: read to the end
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _store_one(writer: PackWriter, path: str, size: int) -> str:
    data = read_file(path, size)
    key = address(data)
    writer.put(data, key)
    return key


def store_files(writer: PackWriter, files: list[tuple[str, int]]) -> list[str]:
    """Read, hash and store ``(path, size)`` files; returns their addresses in order.

    Ingest is bound by per-file work on one core, so a large batch is split with
    a forked helper that writes its half to a pack of its own (complete, fsynced
    and indexed before it reports back); see `split_run`.
    """
    side: list[Path] = []

    def run(part: Sequence[tuple[str, int]], in_child: bool) -> list[str]:
        if not in_child:
            return [_store_one(writer, p, n) for p, n in part]
        helper = PackWriter(writer.store, pack=side[0])
        keys = [_store_one(helper, p, n) for p, n in part]
        helper.flush()
        return keys

    if len(files) >= parallel.parallel_min():
        side.append(writer.side_pack())
    keys, helped = parallel.split_run(files, run)
    if helped:
        writer.adopt(side[0])
    return keys
