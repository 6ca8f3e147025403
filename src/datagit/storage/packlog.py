"""The pack index log format: append-only (address, offset, length) entries per pack.

Kept apart from the content store (content.py) because the format changes on
its own (v2 added a checksum per entry) and has two readers: the store and the
memory-mapped fold (packindex.py). An entry is written *after* the bytes it
points at, so a crash can only leave a torn tail, which every reader skips.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path

import xxhash

_ENTRY = struct.Struct("<16sQI")  # digest, offset, length: a legacy (v1) index entry
# A v2 index starts with IDX_MAGIC; each entry is a v1 entry plus the xxh32 of its 28
# bytes, so a damaged entry is dropped on its own and never misread as another.
IDX_MAGIC = b"DGIDX2\0\n"
_CHECK = struct.Struct("<I")
_ENTRY2_SIZE = _ENTRY.size + _CHECK.size


def parse_index(raw: bytes) -> tuple[list[tuple[bytes, int, int]], int, int]:
    """(entries, damaged entries, bytes of whole entries) of a pack index, v1 or v2.

    A torn last entry (a crash mid-append) is not counted as damage: appends
    truncate it away before they write (`append_index`).
    """
    if _is_v2(raw):
        body = len(raw) - len(IDX_MAGIC)
        whole = len(IDX_MAGIC) + body - body % _ENTRY2_SIZE
        out, bad = [], 0
        for pos in range(len(IDX_MAGIC), whole, _ENTRY2_SIZE):
            entry = raw[pos : pos + _ENTRY.size]
            (check,) = _CHECK.unpack_from(raw, pos + _ENTRY.size)
            if xxhash.xxh32_intdigest(entry) != check:
                bad += 1
                continue
            out.append(_ENTRY.unpack(entry))
        return out, bad, whole
    whole = len(raw) - len(raw) % _ENTRY.size
    return list(_ENTRY.iter_unpack(raw[:whole])), 0, whole


def _is_v2(raw: bytes) -> bool:
    """A v2 index, even with a damaged byte or two in its header: a v1 index starts with
    a random digest, which is this close to the magic about once in 2**48."""
    head = raw[: len(IDX_MAGIC)]
    if len(head) != len(IDX_MAGIC):
        return False
    return sum(a != b for a, b in zip(head, IDX_MAGIC, strict=True)) <= 2


def encode_entries(entries: Iterable[tuple[str, int, int]]) -> bytes:
    """v2 index entries for (address, offset, length)."""
    out = []
    for key, offset, length in entries:
        entry = _ENTRY.pack(bytes.fromhex(key), offset, length)
        out.append(entry + _CHECK.pack(xxhash.xxh32_intdigest(entry)))
    return b"".join(out)


def append_index(idx: Path, entries: Iterable[tuple[str, int, int]]) -> None:
    """Append entries to a pack index, durably, first cutting a torn tail back to the
    last whole entry so a crash mid-append can never misalign what follows.

    A legacy (v1) index keeps its format; a new one is written as v2.
    """
    fd = os.open(idx, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # Only the header and the size: the log of a 100,000-file add is 1.6 MB, and
        # parsing it whole to find the last entry's end cost 80 ms of every commit.
        size = os.fstat(fd).st_size
        head = os.pread(fd, len(IDX_MAGIC), 0)
        v2 = _is_v2(head)
        if not size:
            data = IDX_MAGIC + encode_entries(entries)
        elif v2:
            if head != IDX_MAGIC:
                os.pwrite(fd, IDX_MAGIC, 0)  # a damaged header byte: put it right
            data = encode_entries(entries)
        else:
            data = b"".join(_ENTRY.pack(bytes.fromhex(k), o, n) for k, o, n in entries)
        tail = (size - len(IDX_MAGIC)) % _ENTRY2_SIZE if v2 else size % _ENTRY.size
        whole = size - tail
        if whole != size:
            os.ftruncate(fd, whole)
        os.lseek(fd, whole, os.SEEK_SET)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def log_entries(idx: Path, start: int) -> tuple[list[tuple[bytes, int, int]], int]:
    """A pack log's whole, intact (digest, offset, length) entries from byte ``start`` (a
    boundary an earlier read returned), and how many bytes past ``start`` they take.

    The one reader of the log format for the memory-mapped fold (packindex.py): it reads
    the header (v1 or v2) and the tail only, so opening a store never reads a log whole.
    A damaged v2 entry is skipped; a torn last entry is not counted as read.
    """
    with open(idx, "rb") as f:
        head = f.read(len(IDX_MAGIC))
        v2 = _is_v2(head)
        base = max(start, len(IDX_MAGIC)) if v2 else start
        f.seek(base)
        raw = f.read()
    if not v2:
        whole = len(raw) - len(raw) % _ENTRY.size
        return list(_ENTRY.iter_unpack(raw[:whole])), base - start + whole
    whole = len(raw) - len(raw) % _ENTRY2_SIZE
    out = []
    for pos in range(0, whole, _ENTRY2_SIZE):
        entry = raw[pos : pos + _ENTRY.size]
        (check,) = _CHECK.unpack_from(raw, pos + _ENTRY.size)
        if xxhash.xxh32_intdigest(entry) == check:
            out.append(_ENTRY.unpack(entry))
    return out, base - start + whole
