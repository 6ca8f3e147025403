"""Write many git objects as one pack instead of one loose file each.

libgit2 writes every object as a zlib'd loose file (a file create, ~0.25–1 ms
here), which made writing a few thousand shard blobs the slowest part of a
commit. A pack of the same objects is one sequential write. The format is
git's pack v2 with an index v2, readable by libgit2 and by the git CLI; the
pack is renamed into place before its index, so a crash leaves at worst an
unindexed pack that git ignores.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

try:  # ISA-L (the optional ``fast`` extra): ~6x zlib's speed at level 1, and smaller output
    from isal.isal_zlib import compress as _deflate
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - exercised where isal is not installed
    from zlib import compress as _deflate
    from zlib import crc32 as _crc32

if TYPE_CHECKING:  # threads start only for a big batch: `status` never loads them
    from concurrent.futures import Future, ThreadPoolExecutor

Data = bytes | memoryview  # an object's body: a memoryview is a slice of a bigger buffer

TYPE_CODES = {"commit": 1, "tree": 2, "blob": 3, "tag": 4}


def object_id(kind: str, data: Data) -> str:
    """The git object id (SHA-1) of ``data`` as an object of ``kind``."""
    h = hashlib.sha1(f"{kind} {len(data)}\0".encode())
    h.update(data)
    return h.hexdigest()


def tree_bytes(entries: list[tuple[str, bool, str]]) -> bytes:
    """A git tree object's body for (name, is_tree, hex id) entries, in git's order."""
    ordered = sorted(entries, key=lambda e: e[0] + "/" if e[1] else e[0])
    return b"".join(
        (b"40000 " if is_tree else b"100644 ") + name.encode() + b"\0" + bytes.fromhex(oid)
        for name, is_tree, oid in ordered
    )


def parse_tree(data: bytes) -> list[tuple[str, bool, str]]:
    """(name, is_tree, hex id) entries of a tree object's body."""
    out = []
    i = 0
    while i < len(data):
        space = data.index(b" ", i)
        nul = data.index(b"\0", space)
        mode = data[i:space]
        out.append(
            (data[space + 1 : nul].decode(), mode == b"40000", data[nul + 1 : nul + 21].hex())
        )
        i = nul + 21
    return out


def _header(type_code: int, size: int) -> bytes:
    byte = (type_code << 4) | (size & 0x0F)
    size >>= 4
    out = bytearray()
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


PARALLEL_BYTES = 4 << 20  # compress on threads past this much (a 1% re-label: ~10 MB)
CHUNK_BYTES = 1 << 20  # one thread's task: big enough that the pool's overhead is noise


def _threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return min(cores, 4)


class Squeezer:
    """Compresses objects into pack entries on threads while they are still being staged.

    A batch of shards is built by this thread and compressed as ~1 MB tasks on
    others as it grows, so by the time the batch is written most of its entries
    are done: building and compressing overlap instead of running one after the
    other. zlib releases the GIL while it works. ``entries`` hands back what was
    added, in order, and starts afresh.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._done: list[tuple[list[tuple[str, str]], Future[list[bytes]]]] = []
        self._chunk: list[tuple[str, str, Data]] = []
        self._size = 0

    def add(self, oid: str, kind: str, data: Data) -> None:
        self._chunk.append((oid, kind, data))
        self._size += len(data)
        if self._size >= CHUNK_BYTES:
            self._submit()

    def _submit(self) -> None:
        chunk, self._chunk, self._size = self._chunk, [], 0
        if not chunk:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(_threads(), thread_name_prefix="datagit-pack")
        work = self._pool.submit(_squeeze, chunk)
        self._done.append(([(oid, kind) for oid, kind, _ in chunk], work))

    def entries(self) -> Iterator[tuple[str, str, bytes]]:
        """(oid, kind, pack entry) of everything added since the last call, in order."""
        self._submit()
        done, self._done = self._done, []
        for part, work in done:
            for (oid, kind), entry in zip(part, work.result(), strict=True):
                yield oid, kind, entry

    def close(self) -> None:
        """Drop what was not written and stop the threads."""
        self._done, self._chunk, self._size = [], [], 0
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _squeeze(part: list[tuple[str, str, Data]]) -> list[bytes]:
    return [_entry(kind, data) for _, kind, data in part]


def write_pack(
    pack_dir: Path, objects: dict[str, tuple[str, Data]], squeezer: Squeezer | None = None
) -> Path:
    """Write ``{oid: (kind, data)}`` as ``pack-<sha>.pack`` + ``.idx``; returns the pack path.

    Compression is most of the cost (hash sharding makes a 1% change rewrite most
    shards), so a large batch is compressed on threads, ~1 MB per task, while this
    thread checksums and writes the entries already done: zlib, crc32 and SHA-1
    release the GIL on big buffers. Threads rather than a forked helper: a fork of
    a process holding a million rows copies its page tables, and the helper's half
    came back through a pipe and `marshal`. A ``squeezer`` that was given exactly
    ``objects``, in order, as they were staged has most of them compressed already.
    """
    if squeezer is not None:
        return write_pack_stream(pack_dir, len(objects), squeezer.entries(), packed=True)
    items = list(objects.items())
    if _threads() < 2 or sum(len(data) for _, (_, data) in items) < PARALLEL_BYTES:
        return write_pack_stream(pack_dir, len(items), ((o, k, d) for o, (k, d) in items))
    own = Squeezer()
    try:
        for oid, (kind, data) in items:
            own.add(oid, kind, data)
        return write_pack_stream(pack_dir, len(items), own.entries(), packed=True)
    finally:
        own.close()


def _entry(kind: str, data: Data) -> bytes:
    """One pack entry: the object's header, then its body deflated at level 1.

    Any zlib stream is a valid entry, so the deflater is whichever is fastest: shard
    lines carry a 32-hex-digit address each, which zlib compresses at ~85 MB/s (a
    million-row table's ~130 MB of shards was 1.6 s of CPU); ISA-L does it ~6x faster.
    """
    return _header(TYPE_CODES[kind], len(data)) + _deflate(data, 1)


def write_pack_stream(
    pack_dir: Path, count: int, objects: Iterable[tuple[str, str, Data]], packed: bool = False
) -> Path:
    """Write ``count`` (oid, kind, data) objects as a pack + index, reading them as it goes.

    With ``packed``, each ``data`` already is its pack entry (`_entry`).

    `gc` consolidates a whole repository this way without holding it in memory.
    Both files are fsynced and renamed into place, pack first; if ``objects``
    raises or yields a different number of objects, nothing is renamed.
    """
    pack_dir.mkdir(parents=True, exist_ok=True)
    body = hashlib.sha1()
    offsets: dict[str, int] = {}
    crcs: dict[str, int] = {}
    tmp_pack = pack_dir / f"tmp_pack_{os.getpid()}"
    try:
        with open(tmp_pack, "wb", buffering=1 << 20) as f:  # entries are ~10 KB: few writes
            head = b"PACK" + struct.pack(">II", 2, count)
            f.write(head)
            body.update(head)
            pos = len(head)
            for oid, kind, data in objects:
                entry = data if packed else _entry(kind, data)
                offsets[oid] = pos
                crcs[oid] = _crc32(entry)
                f.write(entry)
                body.update(entry)
                pos += len(entry)
            if len(offsets) != count:
                raise ValueError(f"pack header says {count} objects, {len(offsets)} written")
            checksum = body.digest()
            f.write(checksum)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp_pack.unlink(missing_ok=True)
        raise
    name = f"pack-{checksum.hex()}"
    pack = pack_dir / f"{name}.pack"
    os.replace(tmp_pack, pack)
    _write_index(pack_dir / f"{name}.idx", offsets, crcs, checksum)
    return pack


def index_ids(idx: Path) -> list[bytes]:
    """The 20-byte object ids an index v2 lists, in order (what `gc` counts and compares)."""
    data = idx.read_bytes()
    if data[:4] != b"\xfftOc" or struct.unpack(">I", data[4:8])[0] != 2:
        raise ValueError(f"{idx} is not a git pack index v2")
    count = struct.unpack(">I", data[8 + 255 * 4 : 8 + 256 * 4])[0]
    start = 8 + 256 * 4
    return [data[start + 20 * i : start + 20 * (i + 1)] for i in range(count)]


def _write_index(
    path: Path, offsets: dict[str, int], crcs: dict[str, int], checksum: bytes
) -> None:
    oids = sorted(offsets)
    raw = [bytes.fromhex(o) for o in oids]
    fanout = [0] * 256
    for r in raw:
        fanout[r[0]] += 1
    total = 0
    for i in range(256):
        total += fanout[i]
        fanout[i] = total
    # Offsets past 2 GiB go to a table of 64-bit offsets, the small one naming their
    # slot with the top bit set: a consolidated pack can outgrow 31 bits.
    small: list[int] = []
    large: list[int] = []
    for o in oids:
        off = offsets[o]
        if off < 0x80000000:
            small.append(off)
        else:
            small.append(0x80000000 | len(large))
            large.append(off)
    parts = [
        b"\xfftOc",
        struct.pack(">I", 2),
        struct.pack(">256I", *fanout),
        b"".join(raw),
        struct.pack(f">{len(oids)}I", *(crcs[o] for o in oids)),
        struct.pack(f">{len(oids)}I", *small),
        struct.pack(f">{len(large)}Q", *large),
        checksum,
    ]
    data = b"".join(parts)
    tmp = path.with_name(f"tmp_idx_{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data + hashlib.sha1(data).digest())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
