"""A sorted, memory-mapped index of the content packs, read without loading it whole.

Each pack keeps its append-only log of entries (``pack-N.idx``, written as
objects arrive; see content.py). Loading every log into a dict costs ~3 s and
~200 MiB at a million objects, in every process. So, like git's ``.idx``, the
logs are folded now and then into one file sorted by address, with a 256-entry
fan-out table in front, that every process maps instead of reading:

    magic "DGXIDX01" | entries u64 | packs u32 | 0 u32
    per pack: name length u16, name, bytes of its log folded in u64
    fan-out: 256 × u32 (entries whose first address byte is ≤ b) | xxh3-64 of all above
    entries: 32 bytes each, sorted: address 16 | pack u32 | length u32 | offset u64

A lookup is a fan-out read and a binary search of ~4,000 entries; the pages
touched are shared by every process (DataLoader workers included). Entries
appended after the fold are read from the logs' tails, past the byte count the
fold recorded. A fold naming a pack that is gone or a log shorter than it
recorded is stale and ignored: the logs alone are always enough, so a
repository written before this file existed reads as it always did.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Generic, TypeVar

import xxhash

NAME = "index.dgx"
MAGIC = b"DGXIDX01"
_HEAD = struct.Struct("<8sQII")
_PACK = struct.Struct("<H")
_COVER = struct.Struct("<Q")
_FAN = struct.Struct("<256I")
_SUM = struct.Struct("<Q")
_ENTRY = struct.Struct("<16sIIQ")  # address, pack number, length, offset
ENTRY_SIZE = _ENTRY.size
_TAIL = struct.Struct("<IIQ")

Entry = tuple[bytes, int, int]  # (address digest, offset, length) from a pack's log
# A pack log's bytes → its complete entries and how many bytes they take (packlog.py
# owns the log format; this module only asks it to parse).
LogParser = Callable[[Path, int], tuple[list[Entry], int]]  # (log, start) → entries, bytes
FOLD_AT = 16_384  # entries in the logs' tails past which a writer folds them in
L = TypeVar("L")


class SortedIndex:
    """One fold of the pack logs, memory-mapped; `find` looks an address up."""

    def __init__(
        self, mm: mmap.mmap, packs: list[tuple[str, int]], fan: tuple[int, ...], base: int
    ) -> None:
        self._mm = mm
        self.packs = packs  # (pack file name, log bytes folded in)
        self._fan = fan
        self._base = base  # where the entries start

    @classmethod
    def open(cls, path: Path) -> SortedIndex | None:
        """The fold at ``path``, or None when there is none or it is damaged."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            size = os.fstat(fd).st_size
            if size < _HEAD.size:
                return None
            mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        try:
            return cls._parse(mm, size)
        except (struct.error, UnicodeDecodeError, ValueError):
            mm.close()
            return None

    @classmethod
    def _parse(cls, mm: mmap.mmap, size: int) -> SortedIndex | None:
        magic, count, npacks, _ = _HEAD.unpack_from(mm, 0)
        if magic != MAGIC:
            mm.close()
            return None
        pos = _HEAD.size
        packs = []
        for _ in range(npacks):
            (n,) = _PACK.unpack_from(mm, pos)
            name = bytes(mm[pos + 2 : pos + 2 + n]).decode()
            (covered,) = _COVER.unpack_from(mm, pos + 2 + n)
            packs.append((name, covered))
            pos += 2 + n + _COVER.size
        fan = _FAN.unpack_from(mm, pos)
        pos += _FAN.size
        (checksum,) = _SUM.unpack_from(mm, pos)
        if checksum != xxhash.xxh3_64_intdigest(mm[:pos]) or fan[255] != count:
            mm.close()
            return None
        base = pos + _SUM.size
        if base + count * ENTRY_SIZE != size:
            mm.close()
            return None
        return cls(mm, packs, fan, base)

    def __len__(self) -> int:
        return self._fan[255]

    def find(self, digest: bytes) -> tuple[int, int, int] | None:
        """(pack number, offset, length) of ``digest``, by fan-out and binary search."""
        b = digest[0]
        lo = self._fan[b - 1] if b else 0
        hi = self._fan[b]
        mm, base = self._mm, self._base
        while lo < hi:
            mid = (lo + hi) >> 1
            p = base + mid * ENTRY_SIZE
            d = mm[p : p + 16]
            if d < digest:
                lo = mid + 1
            elif d > digest:
                hi = mid
            else:
                pack, length, offset = _TAIL.unpack_from(mm, p + 16)
                return pack, offset, length
        return None

    def entries(self) -> Iterator[tuple[bytes, int, int, int]]:
        """Every (digest, pack number, length, offset), in address order."""
        mm, base = self._mm, self._base
        yield from _ENTRY.iter_unpack(mm[base : base + len(self) * ENTRY_SIZE])

    def raw(self) -> bytes:
        return self._mm[self._base : self._base + len(self) * ENTRY_SIZE]

    def bucket_bounds(self) -> tuple[int, ...]:
        return self._fan

    def close(self) -> None:
        self._mm.close()


def write(
    path: Path,
    packs: Sequence[tuple[str, int]],
    entries: Iterable[bytes],
    base: SortedIndex | None = None,
) -> None:
    """Write a fold of ``packs`` (name, log bytes covered): ``base``'s entries (its pack
    numbers kept: ``packs`` must start with its packs) merged with new ``entries``
    (`pack_entry` records, in any order). Atomic: a reader sees the old fold or the new."""
    if base is not None and [p for p, _ in packs[: len(base.packs)]] != [p for p, _ in base.packs]:
        raise ValueError("a merged fold keeps the packs of its base first")
    new = sorted(entries)
    body = _merge(base, new) if base is not None else _dedupe(new)
    count = len(body) // ENTRY_SIZE
    fan = [0] * 256
    for i in range(count):
        fan[body[i * ENTRY_SIZE]] += 1
    total = 0
    for b in range(256):
        total += fan[b]
        fan[b] = total
    head = bytearray(_HEAD.pack(MAGIC, count, len(packs), 0))
    for name, covered in packs:
        raw = name.encode()
        head += _PACK.pack(len(raw)) + raw + _COVER.pack(covered)
    head += _FAN.pack(*fan)
    head += _SUM.pack(xxhash.xxh3_64_intdigest(bytes(head)))
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(head)
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def pack_entry(digest: bytes, pack: int, offset: int, length: int) -> bytes:
    return _ENTRY.pack(digest, pack, length, offset)


def _dedupe(sorted_entries: list[bytes]) -> bytes:
    """Entries sorted by address, keeping the first of any address seen twice
    (a crash between a pack's append and its log's can store one twice)."""
    out = []
    last = b""
    for e in sorted_entries:
        if e[:16] != last:
            out.append(e)
            last = e[:16]
    return b"".join(out)


def _merge(base: SortedIndex, new: list[bytes]) -> bytes:
    """``base``'s entries with ``new`` (sorted) spliced in, bucket by bucket: only the
    new entries are handled one by one, the old ones are copied as whole slices."""
    raw = base.raw()
    fan = base.bucket_bounds()
    out = bytearray()
    pos = 0  # entries of raw copied so far
    for e in _split(_dedupe(new)):
        digest = e[:16]
        b = digest[0]
        lo = max(pos, fan[b - 1] if b else 0)
        hi = fan[b]
        while lo < hi:
            mid = (lo + hi) >> 1
            if raw[mid * ENTRY_SIZE : mid * ENTRY_SIZE + 16] < digest:
                lo = mid + 1
            else:
                hi = mid
        out += raw[pos * ENTRY_SIZE : lo * ENTRY_SIZE]
        pos = lo
        if raw[lo * ENTRY_SIZE : lo * ENTRY_SIZE + 16] != digest:
            out += e
    out += raw[pos * ENTRY_SIZE :]
    return bytes(out)


def _split(body: bytes) -> list[bytes]:
    return [body[i : i + ENTRY_SIZE] for i in range(0, len(body), ENTRY_SIZE)]


class PackIndex(MutableMapping[str, L], Generic[L]):
    """address → location, from a fold (memory-mapped) plus the logs' tails (a dict).

    New entries (a writer's) go to the tail. ``make`` builds a location from
    (pack path, offset, length), so this module need not know content.py's type.
    """

    def __init__(
        self,
        fold: SortedIndex | None,
        tail: dict[str, L],
        make: Callable[[Path, int, int], L],
        pack_paths: list[Path],
        pack_sizes: list[int],
    ) -> None:
        self.fold = fold
        self.tail = tail
        self._make = make
        self._paths = pack_paths
        self._sizes = pack_sizes

    def _folded(self, key: str) -> L | None:
        if self.fold is None:
            return None
        try:
            digest = bytes.fromhex(key)
        except ValueError:
            return None
        if len(digest) != 16:
            return None
        got = self.fold.find(digest)
        if got is None:
            return None
        pack, offset, length = got
        if pack >= len(self._paths) or offset + length > self._sizes[pack]:
            return None  # a pack cut short: as a log entry past its end, not there
        return self._make(self._paths[pack], offset, length)

    def get(self, key: str, default: L | None = None) -> L | None:  # type: ignore[override]
        loc = self.tail.get(key)
        if loc is not None:
            return loc
        loc = self._folded(key)
        return default if loc is None else loc

    def __getitem__(self, key: str) -> L:
        loc = self.get(key)
        if loc is None:
            raise KeyError(key)
        return loc

    def __contains__(self, key: object) -> bool:
        return key in self.tail or (isinstance(key, str) and self._folded(key) is not None)

    def __setitem__(self, key: str, value: L) -> None:
        self.tail[key] = value

    def __delitem__(self, key: str) -> None:
        del self.tail[key]  # folded entries go only when a gc rewrites the packs

    def __iter__(self) -> Iterator[str]:
        yield from self.tail
        if self.fold is not None:
            tail = self.tail
            for digest, *_ in self.fold.entries():
                key = digest.hex()
                if key not in tail:
                    yield key

    def __len__(self) -> int:
        if self.fold is None:
            return len(self.tail)
        both = sum(1 for k in self.tail if self._folded(k) is not None)
        return len(self.fold) + len(self.tail) - both

    def close(self) -> None:
        if self.fold is not None:
            self.fold.close()
            self.fold = None


def _usable(fold: SortedIndex | None, packs_dir: Path) -> SortedIndex | None:
    """``fold`` if every pack it names is there with at least the log it folded in."""
    if fold is None:
        return None
    for name, covered in fold.packs:
        try:
            if (packs_dir / name).with_suffix(".idx").stat().st_size < covered:
                raise FileNotFoundError(name)
            (packs_dir / name).stat()
        except OSError:
            fold.close()
            return None
    return fold


def load(packs_dir: Path, parse: LogParser, make: Callable[[Path, int, int], L]) -> PackIndex[L]:
    """The index of every pack under ``packs_dir``: the fold, and each log past it."""
    fold = _usable(SortedIndex.open(packs_dir.parent / NAME), packs_dir)
    covered = dict(fold.packs) if fold else {}
    tail: dict[str, L] = {}
    for idx in sorted(packs_dir.glob("pack-*.idx")):
        pack = idx.with_suffix(".pack")
        try:
            size = pack.stat().st_size
            entries, _ = parse(idx, covered.get(pack.name, 0))
        except FileNotFoundError:
            continue
        tail.update((d.hex(), make(pack, off, n)) for d, off, n in entries if off + n <= size)
    paths = [packs_dir / name for name, _ in fold.packs] if fold else []
    sizes = []
    for p in paths:
        try:
            sizes.append(p.stat().st_size)
        except OSError:
            sizes.append(0)
    return PackIndex(fold, tail, make, paths, sizes)


def fold_logs(packs_dir: Path, parse: LogParser) -> int:
    """Fold every pack log into the sorted index (merging into the current fold when it
    is usable, rebuilding it otherwise); returns the entries folded in now."""
    fold = _usable(SortedIndex.open(packs_dir.parent / NAME), packs_dir)
    on_disk = sorted(packs_dir.glob("pack-*.pack"))
    packs = [p.name for p in on_disk if p.with_suffix(".idx").exists()]
    names = [n for n, _ in fold.packs] if fold else []
    names += [n for n in packs if n not in names]
    covered = dict(fold.packs) if fold else {}
    entries: list[bytes] = []
    cover = []
    for i, name in enumerate(names):
        pack = packs_dir / name
        start = covered.get(name, 0)
        try:
            size = pack.stat().st_size
            got, used = parse(pack.with_suffix(".idx"), start)
        except FileNotFoundError:
            size, got, used = 0, [], 0
        entries.extend(pack_entry(d, i, off, n) for d, off, n in got if off + n <= size)
        cover.append((name, start + used))
    if not names:
        (packs_dir.parent / NAME).unlink(missing_ok=True)
        return 0
    try:
        write(packs_dir.parent / NAME, cover, entries, fold)
    finally:
        if fold is not None:
            fold.close()
    return len(entries)
