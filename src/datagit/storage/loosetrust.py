"""Loose objects read and hashed once, then trusted by their stat until it moves.

A hard-linked checkout of 100,000 examples cannot afford to read and hash
every object before it links it (I3's read-before-write cost 2 s of a 3.5 s
checkout). Git trusts its index the same way: an object verified once is
recorded with its (size, mtime_ns, inode) and the bound below which its ctime
must stay; a later stat that matches proves the bytes are the ones verified.

Why ctime, and why a bound: a hard-linked workspace file *is* the object, so a
write through it changes the object's mtime (and size, usually). A writer that
sets the mtime back (``cp -p``, ``touch -r``, ``rsync --inplace -t``) still moves
the ctime, which no user can set. Linking, renaming and unlinking a workspace
link move the ctime too, so checkout, after its own edits, raises the bound of
the objects it touched and verified in that run (`raise_bound`) instead of
stat'ing them again; anything else that moves the ctime (a user's ``rm`` or
``mv`` of a linked file) only costs one more read and hash. Ctimes come from a
coarse clock (a jiffy), so the bound is itself a ctime, read from a probe file
touched after the edits (`ctime_now`), and only ctimes strictly under it are
trusted: a write in the same tick as the probe is read again (git's "racily
clean", for ctimes). Each object keeps its own bound: one bound for the whole
cache would also vouch for objects this run never looked at, whose ctime a
write may have moved since they were verified.

The cache lives in ``content/loose-verified.marshal`` (the name kept from its
first format) with an xxh3-64 checksum: the addresses joined by NUL, and the
numbers as two flat little-endian arrays (three uint64 per object: size,
mtime_ns, inode; two int64: ctime_ns, bound), read and written without a copy
of the whole, so loading and saving 100,000 entries builds one dict, not
100,000 tuples (0.2 s → 0.03 s).
A damaged, unreadable or older-format one is ignored, which means "verify
everything again".
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from datagit.errors import CorruptObjectError
from datagit.storage import parallel

if TYPE_CHECKING:
    from datagit.storage.content import ContentStore

_MAGIC = b"DGLT5\0\0\n"
Entry = tuple[int, int, int, int]  # size, mtime_ns, inode, ctime_ns when verified
Stat = tuple[int, int, int]  # size, mtime_ns, inode


class LooseTrust:
    """address → the stat of its loose file when it was last verified (see module doc).

    Held as a dict from address to row and two flat arrays: per row, (size,
    mtime_ns, inode) as three uint64, laid out as a snapshot packs a folder's stats
    (`stattable`), so a checkout hands a folder's stats over as one byte string
    (`LinkedStats.packed`); and (ctime_ns, bound) as two int64, where ctime -1 marks an
    object known to be loose but never trusted again until verified anew and a
    bound of 0 means none raised. A negative mtime (a file dated before 1970) is
    kept as 0: it never matches, so such an object is read again each time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: dict[str, int] | None = None
        self._stats: array[int] = array("Q")
        self._times: array[int] = array("q")
        self._dirty = False

    @property
    def rows(self) -> dict[str, int]:
        """address → its row in the arrays (loaded on first use)."""
        if self._rows is None:
            self._rows, self._stats, self._times = _load(self.path)
        return self._rows

    def __contains__(self, key: object) -> bool:
        return key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def entry(self, key: str) -> Entry | None:
        """(size, mtime_ns, inode, ctime_ns) recorded for ``key``, or None."""
        i = self.rows.get(key)
        if i is None:
            return None
        s = self._stats
        return (s[3 * i], s[3 * i + 1], s[3 * i + 2], self._times[2 * i])

    def bound(self, key: str) -> int:
        """The ctime bound our own edits raised for ``key`` (0: none)."""
        i = self.rows.get(key)
        return 0 if i is None else self._times[2 * i + 1]

    def trusts(self, key: str, st: os.stat_result) -> bool:
        """Whether ``st`` (of ``key``'s loose file, just taken) shows it untouched since
        it was verified."""
        i = self.rows.get(key)
        if i is None:
            return False
        s = self._stats
        if s[3 * i] != st.st_size or s[3 * i + 1] != st.st_mtime_ns or s[3 * i + 2] != st.st_ino:
            return False
        c, seen = st.st_ctime_ns, self._times[2 * i]
        return seen != -1 and (c == seen or c < self._times[2 * i + 1])

    def _set(self, key: str, size: int, mtime: int, ino: int, ctime: int) -> None:
        rows = self.rows
        i = rows.get(key)
        if i is None:
            i = rows[key] = len(self._times) // 2
            self._stats.extend((0, 0, 0))
            self._times.extend((0, 0))
        self._stats[3 * i : 3 * i + 3] = array("Q", (size, max(mtime, 0), ino))
        self._times[2 * i : 2 * i + 2] = array("q", (ctime, 0))
        self._dirty = True

    def vouch(self, key: str, st: os.stat_result) -> None:
        """``key``'s loose file, with stat ``st`` (taken before it was read), hashed right."""
        self._set(key, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def distrust(self, key: str) -> None:
        """Its stat moved (or its bytes are wrong): kept as a marker that ``key`` is loose,
        never trusted again until verified anew."""
        i = self.rows.get(key)
        if i is not None and self._times[2 * i] != -1:
            self._times[2 * i : 2 * i + 2] = array("q", (-1, 0))
            self._dirty = True

    def ctime_now(self) -> int:
        """The filesystem's clock as it stamps ctimes: a probe file's, touched now."""
        probe = self.path.with_name(".ctime-probe")
        probe.touch()
        os.utime(probe)
        return os.stat(probe).st_ctime_ns

    def raise_bound(self, keys: Iterable[str], until_ns: int) -> None:
        """Our own links, renames and unlinks of ``keys`` (all verified, or distrusted, in
        this run) moved their ctimes below ``until_ns`` (a `ctime_now` taken after them):
        trust those, not later changes. Keys without an entry are skipped."""
        get, times = self.rows.get, self._times
        for k in keys:
            i = get(k)
            if i is not None:
                times[2 * i + 1] = until_ns
                self._dirty = True

    def keep_only(self, keys: set[str]) -> None:
        """Drop entries for objects that are no longer loose (gc pruned them)."""
        rows = self.rows
        if all(k in keys for k in rows):
            return
        stats, times = self._stats, self._times
        self._rows, self._stats, self._times = {}, array("Q"), array("q")
        for k, i in rows.items():
            if k in keys:
                self._rows[k] = len(self._times) // 2
                self._stats.extend(stats[3 * i : 3 * i + 3])
                self._times.extend(times[2 * i : 2 * i + 2])
        self._dirty = True

    def save(self) -> None:
        if not self._dirty or self._rows is None:
            return
        stats, times = self._stats, self._times
        if sys.byteorder != "little":  # the file is little-endian wherever it was written
            stats, times = array("Q", stats), array("q", times)
            stats.byteswap()
            times.byteswap()
        keys = "\0".join(self._rows).encode()
        head = struct.pack("<QQ", len(self._rows), len(keys))
        parts: list[bytes | memoryview] = [head, keys, memoryview(stats), memoryview(times)]
        check = xxhash.xxh3_64()
        for part in parts:
            check.update(part)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:  # written piece by piece: no copy of the whole
            f.write(_MAGIC + check.digest())
            for part in parts:
                f.write(part)
        os.replace(tmp, self.path)
        self._dirty = False


_Loaded = tuple[dict[str, int], "array[int]", "array[int]"]


def _load(path: Path) -> _Loaded:
    """The cache file: magic, xxh3-64 of the rest, (count, length of the addresses) as
    two little-endian uint64, the addresses joined by NUL, then the two arrays."""
    empty: _Loaded = ({}, array("Q"), array("q"))
    try:
        raw = path.read_bytes()
    except OSError:
        return empty
    view, head = memoryview(raw), len(_MAGIC) + 8
    if not raw.startswith(_MAGIC) or xxhash.xxh3_64_digest(view[head:]) != raw[head - 8 : head]:
        return empty  # damaged, or written by an older datagit: verify again
    if len(raw) < head + 16:
        return empty
    n, size = struct.unpack_from("<QQ", raw, head)
    start = head + 16
    if len(raw) != start + size + 40 * n:
        return empty
    try:
        joined = str(view[start : start + size], "utf-8")
    except UnicodeDecodeError:
        return empty
    keys = joined.split("\0") if n else []
    stats, times = array("Q"), array("q")
    stats.frombytes(view[start + size : start + size + 24 * n])
    times.frombytes(view[start + size + 24 * n :])
    if sys.byteorder != "little":
        stats.byteswap()
        times.byteswap()
    rows = dict(zip(keys, range(len(keys)), strict=False))
    if len(keys) != n or len(rows) != n:
        return empty
    return rows, stats, times


# -- verifying through the cache ---------------------------------------------------
def write_loose(path: Path, data: bytes, *, durable: bool = False) -> os.stat_result:
    """Write a read-only loose file atomically; returns its stat.

    Read-only matters for hard links: the workspace file *is* the object, so an
    editor writing in place must first be refused. Replacing a damaged file
    gives the object a new inode; the damaged one stays with whatever workspace
    file was written through it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # read-only, if a crash left one
    with open(tmp, "wb") as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.chmod(tmp, 0o444)
    os.replace(tmp, path)
    return os.stat(path)


def verified(store: ContentStore, key: str, *, promote: bool = True) -> os.stat_result | None:
    """The stat of ``key``'s loose file, its bytes proven right: by the cache when its stat
    has not moved, else by reading and hashing it. A missing one is made from the pack
    (``promote``; else None); a damaged one is rewritten from an intact packed copy,
    or raises `CorruptObjectError` naming it."""
    path = store._loose_path(key)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not promote:
            return None
        st = write_loose(path, store.read(key))  # read() verifies (and fetches, if partial)
        store.trust.vouch(key, st)
        return st
    if store.trust.trusts(key, st):
        return st
    if _hash_file(path) == key:
        store.trust.vouch(key, st)
        return st
    store.trust.distrust(key)
    if key not in store.index:
        raise CorruptObjectError(
            f"content {key} is corrupt ({path}): its bytes changed, most likely written "
            "through a hard-linked workspace file",
            hint="run `datagit fsck`; re-add the original file or pull its content from a remote",
        )
    st = write_loose(path, store.read(key))  # the packed copy, verified, replaces it
    store.trust.vouch(key, st)
    return st


def ensure(store: ContentStore, key: str, data: bytes) -> bool:
    """Store ``data`` (whose address is ``key``) as a loose file: an existing one is kept
    only when proven intact, so a commit never trusts an object changed in place.
    True when it wrote the file."""
    path = store._loose_path(key)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and store.trust.trusts(key, st):
        return False
    if st is not None and _hash_file(path) == key:
        store.trust.vouch(key, st)
        return False
    store.trust.vouch(key, write_loose(path, data, durable=True))
    return True


def check_file(store: ContentStore, key: str) -> None:
    """Read and hash ``key``'s loose file whatever the cache says (fsck's check)."""
    path = store._loose_path(key)
    if _hash_file(path) != key:
        store.trust.distrust(key)
        raise CorruptObjectError(
            f"content {key} is corrupt ({path})",
            hint="its bytes changed (a write through a hard-linked workspace file?): "
            "re-add the original file or pull its content from a remote",
        )


@contextlib.contextmanager
def loose_folders(store: ContentStore) -> Iterator[dict[str, int]]:
    """The store's loose folders held open (``"ab"`` → a file descriptor), for the
    per-object loops: ``stat``/``link`` by an object's short name in its open folder
    skip walking ``.datagit/content/loose/ab/`` from the root each time (a tenth of
    the kernel's time per call). A folder that does not exist yet is left out; the
    loops take their careful path, by full name, for its objects."""
    fds: dict[str, int] = {}
    try:
        for entry in os.scandir(store.loose):
            if len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    fds[entry.name] = os.open(entry.path, os.O_RDONLY | os.O_DIRECTORY)
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


def verify_many(
    store: ContentStore, keys: Sequence[str], touched: Iterable[str] = ()
) -> LinkedStats:
    """`verified` for every key, on both cores; returns each of ``keys``' loose file's
    (size, mtime_ns, inode): a hard link's stat is its object's.

    ``touched`` are objects a checkout will unlink or rename a link of: their stat is
    checked (never their bytes) so that `raise_bound` afterwards vouches only for
    objects that were untouched when the checkout began; a moved one is distrusted.
    """
    trust = store.trust
    rows = trust.rows
    written = list(keys)
    extra = [k for k in set(touched).difference(written) if k in rows]

    def run(part: Sequence[str], in_child: bool) -> list[tuple | bytes]:
        out: list[tuple | bytes] = []
        seen_rows = array("q")  # the rows trusted as they are, sent back as one bytes
        keep = seen_rows.append
        stat, get, stats, times = os.stat, rows.get, trust._stats, trust._times
        folder = folders.get
        for key in part:
            want = key[0] != "-"  # "-": only touched; else written: proven or made loose
            k = key if want else key[1:]
            try:  # by short name in its open folder (-1, no folder: fails, as absent)
                st = stat(k[2:], dir_fd=folder(k[:2], -1))
            except OSError:
                st = None  # absent, or anything odd: `verified` looks again by full name
            # `trusts`, inlined: this loop runs once per example of a checkout
            i = get(k)
            if st is not None and i is not None:
                j = 3 * i
                seen = times[2 * i]
                if (
                    stats[j] == st.st_size
                    and stats[j + 1] == st.st_mtime_ns
                    and stats[j + 2] == st.st_ino
                    and seen != -1
                    and (st.st_ctime_ns == seen or st.st_ctime_ns < times[2 * i + 1])
                ):
                    keep(i)
                    continue
            if not want:
                out.append((k,))  # moved since it was verified: distrust it
                continue
            try:
                got = verified(store, k)
            except CorruptObjectError:
                out.append((k, None))  # raised again, from the parent, below
                continue
            assert got is not None
            out.append((k, got.st_size, got.st_mtime_ns, got.st_ino, got.st_ctime_ns))
        out.append(seen_rows.tobytes())
        return out

    items = written + ["-" + k for k in extra]
    on_demand = store.fetch_missing is not None  # a child must not fetch from a remote
    with loose_folders(store) as folders:
        got, _ = parallel.split_run(items, run, minimum=len(items) + 1 if on_demand else None)
    bad, done = [], array("q")
    for row in got:
        if isinstance(row, bytes):
            done.frombytes(row)
        elif len(row) == 1:
            trust.distrust(row[0])
            done.append(rows[row[0]])
        elif row[1] is None:
            bad.append(row[0])
        else:
            trust._set(*row)
            done.append(rows[row[0]])
    for key in bad:
        verified(store, key)  # the parent's own error, naming the file
        done.append(rows[key])
    return LinkedStats(trust, done)


class LinkedStats(Mapping[str, Stat]):
    """address → (size, mtime_ns, inode) of its verified loose file (so of every hard
    link to it), read from the cache's arrays only when asked; `packed` hands a
    folder's over at once, laid out as a snapshot keeps them."""

    def __init__(self, trust: LooseTrust, done: array[int] | None = None) -> None:
        self.trust = trust
        self.done = array("q") if done is None else done  # rows of the objects verified
        self._blob: bytes | None = None
        self.folders: dict[str, bytes] = {}  # folder → `packed` of its links, once made

    def raise_bound(self, until_ns: int) -> None:
        """`LooseTrust.raise_bound` for every object `verify_many` checked (what a
        checkout writes, and the touched ones it knew), by row: no lookup per key."""
        times = self.trust._times
        for i in self.done:
            times[2 * i + 1] = until_ns
        if self.done:
            self.trust._dirty = True

    def __getitem__(self, key: str) -> Stat:
        e = self.trust.entry(key)
        if e is None:
            raise KeyError(key)
        return e[0], e[1], e[2]

    def __iter__(self) -> Iterator[str]:
        return iter(self.trust.rows)

    def __len__(self) -> int:
        return len(self.trust.rows)

    def packed(self, keys: Sequence[str]) -> bytes:
        """(size, mtime_ns, inode) of each of ``keys`` (all verified) as three uint64s
        each, in order: how a snapshot packs a folder's stats (`stattable`)."""
        if self._blob is None:  # taken once the links are made: no row changes after
            self._blob = self.trust._stats.tobytes()
        blob = memoryview(self._blob)
        got = itemgetter(*keys)(self.trust.rows) if keys else ()
        if not isinstance(got, tuple):  # itemgetter of one key gives the value, not a tuple
            got = (got,)
        return b"".join([blob[24 * i : 24 * i + 24] for i in got])


def _hash_file(path: Path) -> str | None:
    try:
        return xxhash.xxh3_128_hexdigest(path.read_bytes())
    except OSError:
        return None
