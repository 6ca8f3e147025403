"""Whole objects read from git packs in Python: ISA-L's inflate and hashlib's SHA-1.

A 1% re-label of a million rows reads ~100 MB of shards back from the packs
that datagit wrote. libgit2 inflates them with zlib and checks each one with
its collision-detecting SHA-1, ~0.4 s; ISA-L inflates ~2x faster and hashlib's
SHA-1 runs on the CPU's SHA instructions, so the same reads, still checked
against their ids, cost about half. Only what this module is sure of is
answered: an object stored as a delta (git's own ``gc`` makes them), one whose
entry does not inflate cleanly to its recorded size, or whose SHA-1 is not its
id, is left to libgit2 (the caller falls back), which reads deltas and names
damage as it always did.

The index (v2) and pack files are memory-mapped once per process; their file
descriptors are closed at once, so any number of packs costs no descriptor.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import struct
from pathlib import Path

try:  # the ``fast`` extra; zlib's inflate is as correct, only slower
    from isal.isal_zlib import decompressobj
except ImportError:  # pragma: no cover - exercised where isal is not installed
    from zlib import decompressobj  # type: ignore[assignment]

_KINDS = {1: "commit", 2: "tree", 3: "blob", 4: "tag"}  # whole objects; 6, 7 are deltas
_IDX_MAGIC = b"\xfftOc\x00\x00\x00\x02"
_FAN = struct.Struct(">256I")
_OFFSET = struct.Struct(">I")
_LARGE = struct.Struct(">Q")
_NAMES = 8 + _FAN.size  # where an index's sorted object ids start


def _map(path: Path) -> mmap.mmap | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size == 0:
            return None
        return mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)


class _Pack:
    """One ``pack-*.pack`` with its index: where an id's entry starts, if listed."""

    def __init__(self, idx: mmap.mmap, pack: mmap.mmap, fan: tuple[int, ...]) -> None:
        self.idx = idx
        self.pack = pack
        self.fan = fan
        self.count = fan[255]

    @classmethod
    def open(cls, idx_path: Path) -> _Pack | None:
        idx = _map(idx_path)
        if idx is None:
            return None
        pack = _map(idx_path.with_suffix(".pack"))
        if (
            pack is None
            or idx[:8] != _IDX_MAGIC
            or len(idx) < _NAMES + 40
            or pack[:4] != b"PACK"
            or pack[4:8] not in (b"\0\0\0\x02", b"\0\0\0\x03")
        ):
            idx.close()
            if pack is not None:
                pack.close()
            return None
        fan = _FAN.unpack_from(idx, 8)
        # As libgit2 does on opening a pack: the index is whole (names, CRCs, offsets, two
        # checksums) and names the pack's own trailing checksum, so a pack cut short or
        # swapped is never read here.
        if len(idx) < _NAMES + 28 * fan[255] + 40 or idx[-40:-20] != pack[-20:]:
            idx.close()
            pack.close()
            return None
        return cls(idx, pack, fan)

    def offset(self, want: bytes) -> int | None:
        """Where the entry of the 20-byte id ``want`` starts in the pack; None if unlisted."""
        b = want[0]
        lo = self.fan[b - 1] if b else 0
        hi = self.fan[b]
        idx = self.idx
        while lo < hi:
            mid = (lo + hi) >> 1
            at = _NAMES + 20 * mid
            got = idx[at : at + 20]
            if got < want:
                lo = mid + 1
            elif got > want:
                hi = mid
            else:
                (off,) = _OFFSET.unpack_from(idx, _NAMES + 24 * self.count + 4 * mid)
                if off & 0x80000000:
                    at = _NAMES + 28 * self.count + 8 * (off & 0x7FFFFFFF)
                    if at + 8 > len(idx):
                        return None
                    (off,) = _LARGE.unpack_from(idx, at)
                return off
        return None

    def close(self) -> None:
        for m in (self.idx, self.pack):
            with contextlib.suppress(BufferError):  # a view still held: it goes with that
                m.close()


class PackReader:
    """Reads whole objects from the packs under ``objects/pack``; None for anything else.

    The packs are listed when first needed and again after `refresh` (call it once
    a pack is written); a pack another process writes later is not seen, and its
    objects come back None: the caller's libgit2 read finds them.
    """

    def __init__(self, objects: Path) -> None:
        self._dir = objects / "pack"
        self._packs: dict[str, _Pack] | None = None
        self._last: _Pack | None = None  # where the previous hit was: a tree's shards share one

    def refresh(self) -> None:
        """Look for packs written since the folder was last listed."""
        if self._packs is not None:
            self._packs = self._scan(self._packs)

    def _scan(self, known: dict[str, _Pack]) -> dict[str, _Pack]:
        """``known`` plus the packs listed now, as a new dict: a reader on another thread
        iterating the old one never sees it change."""
        packs = dict(known)
        try:
            names = sorted(n for n in os.listdir(self._dir) if n.endswith(".idx"))
        except OSError:
            return packs
        for name in names:
            if name.startswith("pack-") and name not in packs:
                got = _Pack.open(self._dir / name)
                if got is not None:
                    packs[name] = got
        return packs

    def read(self, oid: str) -> tuple[str, bytes] | None:
        """The kind and body of ``oid``, inflated and SHA-1-checked; None when it is not
        in a known pack as a whole object, or does not check out (libgit2 then says why)."""
        packs = self._packs
        if packs is None:
            packs = self._packs = self._scan({})
        try:
            want = bytes.fromhex(oid)
        except ValueError:
            return None
        if len(want) != 20:
            return None
        last = self._last
        if last is not None:
            off = last.offset(want)
            if off is not None:
                return _inflate(last.pack, off, want)
        for pack in packs.values():
            if pack is last:
                continue
            off = pack.offset(want)
            if off is not None:
                self._last = pack
                return _inflate(pack.pack, off, want)
        return None

    def close(self) -> None:
        for pack in (self._packs or {}).values():
            pack.close()
        self._packs, self._last = None, None


def _inflate(pack: mmap.mmap, at: int, want: bytes) -> tuple[str, bytes] | None:
    """The whole object whose entry starts at ``at``, if it checks out as ``want``."""
    end = len(pack) - 20  # the pack's trailing checksum
    if not 12 <= at < end:
        return None
    byte = pack[at]
    kind = _KINDS.get((byte >> 4) & 7)
    if kind is None:
        return None  # a delta (or garbage): libgit2's
    size = byte & 0x0F
    shift = 4
    at += 1
    while byte & 0x80:
        if at >= end or shift > 60:
            return None
        byte = pack[at]
        size |= (byte & 0x7F) << shift
        shift += 7
        at += 1
    # Deflate never grows data by more than a few bytes per 16 KiB stored block, so
    # the stream ends within this bound; a stream that does not is damage.
    view = memoryview(pack)[at : min(end, at + size + (size >> 7) + 64)]
    try:
        inflater = decompressobj()
        body = inflater.decompress(view, size + 1)
        done = inflater.eof
    except Exception:  # zlib.error / isal's IsalError: damaged, libgit2 names it
        return None
    if not done or len(body) != size:
        return None
    check = hashlib.sha1(b"%s %d\0" % (kind.encode(), size))
    check.update(body)
    if check.digest() != want:
        return None
    return kind, body
