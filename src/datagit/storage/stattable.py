"""A snapshot's stats packed per folder: one string of names and one array of numbers.

100,000 ``path → (size, mtime_ns, inode)`` tuples cost ~60 ms to unmarshal and
~15 MiB of Python objects before a scan has looked at a single file. Packed per
folder (names joined by NUL in listing order, the stats as one uint64 array), a
snapshot loads in a millisecond, and a folder whose listing and stats come out
byte-for-byte equal is unchanged without one per-file object being built.

`StatTable` still behaves as a ``path → stat`` mapping for the few callers that
look paths up or edit them (a monitor's narrowed scan, a checkout's renames):
a folder is decoded into a dict only when one of its paths is touched.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, MutableMapping

Stat = tuple[int, int, int]  # size, mtime_ns, inode
# A folder as saved: (names joined by NUL in listing order, uint64 stats, newest mtime).
# Unsigned, because some filesystems (overlayfs with xino) hand out inodes past 2**63;
# a file dated before 1970 (a negative mtime) leaves its folder unpacked, as a dict.
Packed = tuple[str, bytes, int]

_EMPTY: Packed = ("", b"", -(1 << 63))


def pack(names: list[str], stats: array) -> Packed:  # type: ignore[type-arg]
    """A folder from its names and their stats (three uint64 per name, in order)."""
    top = max(stats[1::3]) if names else _EMPTY[2]
    return "\0".join(names), stats.tobytes(), top


def packed_from(joined: str, raw: bytes) -> Packed:
    """A folder from its NUL-joined names and its stats as bytes (a listing's result)."""
    nums: array = array("Q")  # type: ignore[type-arg]
    nums.frombytes(raw)
    return joined, raw, max(nums[1::3]) if nums else _EMPTY[2]


def pack_dict(entries: Mapping[str, Stat]) -> Packed | None:
    """A folder from ``name → stat``; None if a number does not fit a uint64 (a
    negative mtime): such a folder is kept as a dict."""
    stats: array = array("Q")  # type: ignore[type-arg]
    try:
        for st in entries.values():
            stats.extend(st)
    except OverflowError:
        return None
    return pack(list(entries), stats)


def unpack(folder: Packed) -> dict[str, Stat]:
    """``name → stat`` of a packed folder."""
    names, raw, _top = folder
    if not names and not raw:
        return {}
    nums: array = array("Q")  # type: ignore[type-arg]
    nums.frombytes(raw)
    it = iter(nums)
    return dict(zip(names.split("\0"), zip(it, it, it, strict=True), strict=True))


def well_formed(folder: object) -> bool:
    """Whether a loaded folder has the shape `unpack` relies on."""
    if not (isinstance(folder, tuple) and len(folder) == 3):
        return False
    names, raw, top = folder
    if not (isinstance(names, str) and isinstance(raw, bytes) and type(top) is int):
        return False
    count = names.count("\0") + 1 if names else 0
    return len(raw) == count * 24


class StatTable(MutableMapping[str, Stat]):
    """Workspace path → stat, held as packed folders and decoded folder by folder."""

    def __init__(self, packed: dict[str, Packed] | None = None) -> None:
        self.packed: dict[str, Packed] = packed or {}  # folder → packed (clean folders)
        self.open: dict[str, dict[str, Stat]] = {}  # folder → name → stat (decoded ones)

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, Stat]]) -> StatTable:
        """A table from ``(path, stat)`` pairs; folders keep the order paths come in."""
        table = cls()
        for path, st in items:
            folder, _, name = path.rpartition("/")
            table.open.setdefault(folder, {})[name] = st
        return table

    def folder(self, folder: str) -> dict[str, Stat] | None:
        """The decoded entries of ``folder`` (None when the table has none there)."""
        got = self.open.get(folder)
        if got is None:
            packed = self.packed.pop(folder, None)
            if packed is None:
                return None
            got = self.open[folder] = unpack(packed)
        return got

    def has_folder(self, folder: str) -> bool:
        """Whether the table holds ``folder`` (packed or decoded, empty or not)."""
        return folder in self.packed or folder in self.open

    def folders(self) -> list[str]:
        return [*self.packed, *self.open]

    def __getitem__(self, path: str) -> Stat:
        folder, _, name = path.rpartition("/")
        entries = self.folder(folder)
        if entries is None:
            raise KeyError(path)
        return entries[name]

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        folder, _, name = path.rpartition("/")
        entries = self.folder(folder)
        return entries is not None and name in entries

    def __setitem__(self, path: str, st: Stat) -> None:
        folder, _, name = path.rpartition("/")
        entries = self.folder(folder)
        if entries is None:
            entries = self.open[folder] = {}
        entries[name] = st

    def __delitem__(self, path: str) -> None:
        folder, _, name = path.rpartition("/")
        entries = self.folder(folder)
        if entries is None:
            raise KeyError(path)
        del entries[name]

    def __iter__(self) -> Iterator[str]:
        for folder in self.folders():
            prefix = folder + "/"
            for name in self.folder(folder) or ():
                yield prefix + name

    def __len__(self) -> int:
        n = sum(len(e) for e in self.open.values())
        return n + sum(len(p[1]) // 24 for p in self.packed.values())

    def under(self, prefix: str) -> Iterator[str]:
        """Paths inside folder ``prefix`` (which ends with ``/``), at any depth."""
        for folder in self.folders():
            if (folder + "/").startswith(prefix):
                inner = folder + "/"
                yield from (inner + name for name in self.folder(folder) or ())

    def racy(self, limit: int) -> Iterator[tuple[str, Stat]]:
        """Entries whose mtime is at or past ``limit``: a packed folder is opened only
        when its newest mtime says it holds one."""
        for folder in self.folders():
            packed = self.packed.get(folder)
            if packed is not None and packed[2] < limit:
                continue
            inner = folder + "/"
            for name, st in (self.folder(folder) or {}).items():
                if st[1] >= limit:
                    yield inner + name, st

    def encode(self) -> dict[str, Packed | dict[str, Stat]]:
        """Every folder packed, for a snapshot (decoded ones packed again, in their
        current order; one that cannot be packed stays a dict)."""
        out: dict[str, Packed | dict[str, Stat]] = dict(self.packed)
        for folder, entries in self.open.items():
            if entries:
                out[folder] = pack_dict(entries) or dict(entries)
        return out

    @classmethod
    def decode(cls, folders: dict[str, Packed | dict[str, Stat]]) -> StatTable:
        """The inverse of `encode` (shapes checked by the caller with `well_formed`)."""
        table = cls()
        for folder, got in folders.items():
            if isinstance(got, dict):
                table.open[folder] = got
            else:
                table.packed[folder] = got
        return table
