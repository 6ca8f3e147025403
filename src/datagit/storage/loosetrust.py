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
clean", for ctimes).

The cache lives in ``content/loose-verified.marshal`` with an xxh3-64 checksum;
a damaged or unreadable one is ignored, which means "verify everything again".
"""

from __future__ import annotations

import marshal
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from datagit.errors import CorruptObjectError
from datagit.storage import parallel

if TYPE_CHECKING:
    from datagit.storage.content import ContentStore

_MAGIC = b"DGLT3\0\0\n"
# size, mtime_ns, inode and the ctime_ns seen when verified (-1: never trusted again
# until verified anew); beside it, per address, the bound our own edits raised the
# ctime to (ctimes strictly below it are ours). Two dicts, so that raising the bounds
# of 100,000 objects is one C-level update, not a loop.
Entry = tuple[int, int, int, int]


class LooseTrust:
    """address → the stat of its loose file when it was last verified (see module doc)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, Entry] | None = None
        self._bounds: dict[str, int] = {}
        self._dirty = False

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries, self._bounds = _load(self.path)
        return self._entries

    @property
    def bounds(self) -> dict[str, int]:
        self.entries  # noqa: B018 - loads both
        return self._bounds

    def trusts(self, key: str, st: os.stat_result) -> bool:
        """Whether ``st`` (of ``key``'s loose file, just taken) shows it untouched since
        it was verified."""
        e = self.entries.get(key)
        if e is None or e[0] != st.st_size or e[1] != st.st_mtime_ns or e[2] != st.st_ino:
            return False
        c = st.st_ctime_ns
        return e[3] != -1 and (c == e[3] or c < self._bounds.get(key, 0))

    def vouch(self, key: str, st: os.stat_result) -> None:
        """``key``'s loose file, with stat ``st`` (taken before it was read), hashed right."""
        self.entries[key] = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        self._bounds.pop(key, None)
        self._dirty = True

    def distrust(self, key: str) -> None:
        """Its stat moved (or its bytes are wrong): kept as a marker that ``key`` is loose,
        never trusted again until verified anew."""
        e = self.entries.get(key)
        if e is not None and e[3] != -1:
            self.entries[key] = (e[0], e[1], e[2], -1)
            self._bounds.pop(key, None)
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
        trust those, not later changes."""
        # Keys without an entry gain a bound that nothing reads (`trusts` needs an
        # entry) until `keep_only` drops it: cheaper than intersecting 100,000 keys.
        raised = dict.fromkeys(keys, until_ns)
        self._bounds.update(raised)
        self._dirty = self._dirty or bool(raised)

    def keep_only(self, keys: set[str]) -> None:
        """Drop entries for objects that are no longer loose (gc pruned them)."""
        gone = [k for k in self.entries if k not in keys]
        for k in gone:
            del self.entries[k]
        stray = [k for k in self.bounds if k not in self.entries]
        for k in stray:
            del self._bounds[k]
        self._dirty = self._dirty or bool(gone) or bool(stray)

    def save(self) -> None:
        if not self._dirty or self._entries is None:
            return
        body = marshal.dumps((self._entries, self._bounds))
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_bytes(_MAGIC + xxhash.xxh3_64_digest(body) + body)
        os.replace(tmp, self.path)
        self._dirty = False


def _load(path: Path) -> tuple[dict[str, Entry], dict[str, int]]:
    try:
        raw = path.read_bytes()
    except OSError:
        return {}, {}
    head = len(_MAGIC)
    if not raw.startswith(_MAGIC) or xxhash.xxh3_64_digest(raw[head + 8 :]) != raw[head : head + 8]:
        return {}, {}
    try:
        entries, bounds = marshal.loads(raw[head + 8 :])
    except (EOFError, ValueError, TypeError):
        return {}, {}
    if not isinstance(entries, dict) or not isinstance(bounds, dict):
        return {}, {}
    return entries, bounds


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


def verify_many(
    store: ContentStore, keys: Sequence[str], touched: Iterable[str] = ()
) -> Mapping[str, tuple[int, ...]]:
    """`verified` for every key, on both cores; returns a map whose value for each of
    ``keys`` starts with its loose file's (size, mtime_ns, inode).

    ``touched`` are objects a checkout will unlink or rename a link of: their stat is
    checked (never their bytes) so that `raise_bound` afterwards vouches only for
    objects that were untouched when the checkout began; a moved one is distrusted.
    """
    loose = f"{store.loose}/"
    trust = store.trust
    entries, bounds = trust.entries, trust.bounds
    written = list(keys)
    extra = [k for k in set(touched).difference(written) if k in entries]

    def run(part: Sequence[str], in_child: bool) -> list[tuple]:
        out: list[tuple] = []
        stat, get, bound = os.stat, entries.get, bounds.get
        for key in part:
            want = key[0] != "-"  # "-": only touched; else written: proven or made loose
            k = key if want else key[1:]
            try:
                st = stat(f"{loose}{k[:2]}/{k[2:]}")
            except (FileNotFoundError, NotADirectoryError):
                st = None
            # `trusts`, inlined: this loop runs once per example of a checkout
            e = get(k)
            if (
                st is not None
                and e is not None
                and e[0] == st.st_size
                and e[1] == st.st_mtime_ns
                and e[2] == st.st_ino
                and e[3] != -1
                and (st.st_ctime_ns == e[3] or st.st_ctime_ns < bound(k, 0))
            ):
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
        return out

    items = written + ["-" + k for k in extra]
    on_demand = store.fetch_missing is not None  # a child must not fetch from a remote
    got, _ = parallel.split_run(items, run, minimum=len(items) + 1 if on_demand else None)
    bad = []
    for row in got:
        if len(row) == 1:
            trust.distrust(row[0])
        elif row[1] is None:
            bad.append(row[0])
        else:
            entries[row[0]] = row[1:]
            bounds.pop(row[0], None)
            trust._dirty = True
    for key in bad:
        verified(store, key)  # the parent's own error, naming the file
    return entries  # type: ignore[return-value]


def _hash_file(path: Path) -> str | None:
    try:
        return xxhash.xxh3_128_hexdigest(path.read_bytes())
    except OSError:
        return None
