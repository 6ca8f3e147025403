"""Table snapshots: what a table file looked like when it matched a dataset tree.

An image folder's snapshot (statcache.Snapshots) is a stat per file; a table is
one file, so its snapshot is that file's stat and address, plus a line map: per
line of the file, in file order, the xxh3-128 of its raw bytes and the id of
the row on it. The small state is read by every `status`; the line map only
when the file really changed, so an unchanged 1,000,000-row table costs one
stat and a few hundred bytes of reading.

The line map is numpy arrays in one flat file (``LINEMAP_MAGIC``), read with one
`read` and no per-line Python object: a changed million-row table compares its
new line digests against the old ones position by position (`core/linedelta.py`)
instead of looking a million keys up in a dict. numpy is imported only then.
"""

from __future__ import annotations

import marshal
import os
import sys
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import orjson
import xxhash

if TYPE_CHECKING:
    import numpy as np

# A copy of a bulk-read Parquet table's file as it was committed (its map is made from
# it only when the file changes): the magic, the file's address, then its bytes.
COPY_MAGIC = b"datagit-tablecopy 1\n"

# Version 2: numpy arrays. Version 1 (a marshalled dict, ``table-*.lines``) is never
# read again: a table without a readable map is read whole once, which writes one.
LINEMAP_MAGIC = b"datagit-linemap 2\n"


class TableState(NamedTuple):
    tree: str  # the dataset tree the table file matched
    config: str  # the dataset's settings then (other columns: other records)
    taken: int  # when (ns); a file written within RACY_NS of it is hashed, not trusted
    stats: dict[str, tuple[int, int, int]]  # table file (and files it names) → stat
    digest: str  # xxh3-128 of the table file then
    token: str | None  # the filesystem monitor's token from before the read
    has_lines: bool  # whether a line map covering every record was saved


class LineMap(NamedTuple):
    """Each line after the header (the piece after the last newline included), in order."""

    digest: str  # the table file the map describes
    header: bytes  # its first line (CSV), b"" for JSON Lines
    hashes: np.ndarray  # (lines, 2) uint64: xxh3-128 of each raw line
    ids: bytes  # the id on each line, joined by "\n"; "" for a line without a row
    keys: np.ndarray  # sorted xxh3-64 of every id: is an id already on some line?

    def id_list(self) -> list[bytes]:
        return self.ids.split(b"\n")


def line_digests(lines: list[bytes]) -> np.ndarray:
    """The (lines, 2) uint64 xxh3-128 digests of raw lines: one C call per line, no objects kept."""
    import numpy as np

    joined = b"".join(map(xxhash.xxh3_128_digest, lines))
    return np.frombuffer(joined, dtype="<u8").reshape(-1, 2)


def id_keys(ids: Iterable[bytes]) -> np.ndarray:
    """Sorted xxh3-64 keys of the non-empty ``ids`` (a collision only costs a full read)."""
    import numpy as np

    keys = np.fromiter(map(xxhash.xxh3_64_intdigest, filter(None, ids)), dtype="<u8")
    keys.sort()
    return keys


def make_line_map(digest: str, header: bytes, lines: list[bytes], ids: list[bytes]) -> LineMap:
    """The map of a file whose lines after the header are ``lines``, holding ``ids``."""
    return LineMap(digest, header, line_digests(lines), b"\n".join(ids), id_keys(ids))


class PackedLineMap(NamedTuple):
    """A `LineMap` as its arrays' bytes, made and saved without numpy (~0.1 s to import):
    what a checkout writes, which never compares digests and so never needs arrays."""

    digest: str
    header: bytes
    hashes: bytes  # the (lines, 2) "<u8" digests' bytes: each line's xxh3-128 digest
    ids: bytes
    keys: bytes  # the sorted "<u8" keys' bytes


def pack_line_map(
    digest: str, header: bytes, lines: list[bytes], ids: list[bytes], keys: bytes | None = None
) -> PackedLineMap:
    """`make_line_map`, as bytes: the same file once saved. ``keys``: the id keys' bytes
    of a map holding the same ids (a checkout that only rewrote rows), not sorted again."""
    if keys is None:
        nums = array("Q", sorted(map(xxhash.xxh3_64_intdigest, filter(None, ids))))
        if sys.byteorder != "little":
            nums.byteswap()
        keys = nums.tobytes()
    hashes = b"".join(map(xxhash.xxh3_128_digest, lines))
    return PackedLineMap(digest, header, hashes, b"\n".join(ids), keys)


def packed_line_map(lm: LineMap | PackedLineMap) -> PackedLineMap:
    """``lm`` as bytes (a `PackedLineMap` is returned as it is)."""
    if isinstance(lm, PackedLineMap):
        return lm
    hashes = lm.hashes.astype("<u8", copy=False).tobytes()
    return PackedLineMap(
        lm.digest, lm.header, hashes, lm.ids, lm.keys.astype("<u8", copy=False).tobytes()
    )


def unpacked_line_map(lm: LineMap | PackedLineMap) -> LineMap:
    """``lm`` as numpy arrays (imports numpy; a `LineMap` is returned as it is)."""
    if isinstance(lm, LineMap):
        return lm
    import numpy as np

    hashes = np.frombuffer(lm.hashes, dtype="<u8").reshape(-1, 2)
    return LineMap(lm.digest, lm.header, hashes, lm.ids, np.frombuffer(lm.keys, dtype="<u8"))


def encode_line_map(lm: LineMap | PackedLineMap) -> list[bytes]:
    """The map as the pieces of its file: magic, a JSON head with a checksum, then arrays."""
    if isinstance(lm, PackedLineMap):
        hashes, keys = lm.hashes, lm.keys
    else:
        hashes = lm.hashes.astype("<u8", copy=False).tobytes()
        keys = lm.keys.astype("<u8", copy=False).tobytes()
    check = xxhash.xxh3_128()
    for part in (hashes, keys, lm.ids):
        check.update(part)
    head = {
        "digest": lm.digest,
        "header": lm.header.hex(),
        "lines": len(hashes) // 16,
        "keys": len(keys) // 8,
        "ids": len(lm.ids),
        "check": check.hexdigest(),
    }
    text = orjson.dumps(head)
    text += b" " * (-(len(LINEMAP_MAGIC) + len(text) + 1) % 16)  # arrays start aligned
    return [LINEMAP_MAGIC, text, b"\n", hashes, keys, lm.ids]


class _Checked(NamedTuple):
    digest: str
    header: bytes
    lines: int
    keys: int
    body: memoryview  # hashes, keys, ids


def _check(data: bytes) -> _Checked | None:
    """A line map file's head and body, checked whole (no numpy); None if damaged."""
    if not data.startswith(LINEMAP_MAGIC):
        return None
    start = len(LINEMAP_MAGIC)
    end = data.find(b"\n", start)
    try:
        head = orjson.loads(data[start:end])
        lines, nkeys, nids = int(head["lines"]), int(head["keys"]), int(head["ids"])
        header = bytes.fromhex(head["header"])
        digest, want = str(head["digest"]), str(head["check"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    body = memoryview(data)[end + 1 :]
    if end < 0 or min(lines, nkeys, nids) < 0 or len(body) != 16 * lines + 8 * nkeys + nids:
        return None
    if xxhash.xxh3_128_hexdigest(body) != want:
        return None
    if body[16 * lines + 8 * nkeys :].tobytes().count(b"\n") != max(lines - 1, 0):
        return None
    return _Checked(digest, header, lines, nkeys, body)


def decode_line_map(data: bytes) -> LineMap | None:
    """The map in ``data``; None for an old, truncated or damaged file (it is rebuilt)."""
    import numpy as np

    got = _check(data)
    if got is None:
        return None
    digest, header, lines, nkeys, body = got
    hashes = np.frombuffer(body, dtype="<u8", count=2 * lines).reshape(-1, 2)
    keys = np.frombuffer(body, dtype="<u8", count=nkeys, offset=16 * lines)
    if not (hashes.flags.aligned and keys.flags.aligned):  # numpy is slow on unaligned data
        hashes, keys = hashes.copy(), keys.copy()
    ids = bytes(body[16 * lines + 8 * nkeys :])
    return LineMap(digest, header, hashes, ids, keys)


class TableCache:
    """Per table dataset: a `TableState` and, beside it, its `LineMap`."""

    def __init__(self, folder: Path, *, readonly: bool = False) -> None:
        self.readonly = readonly  # a reader's table snapshots are never saved or dropped
        self.folder = folder

    def _paths(self, dataset: str) -> tuple[Path, Path]:
        return (
            self.folder / f"table-{dataset}.marshal",
            self.folder / f"table-{dataset}.linemap",
        )

    def load(self, dataset: str) -> TableState | None:
        try:
            return TableState(*marshal.loads(self._paths(dataset)[0].read_bytes()))
        except (OSError, EOFError, ValueError, TypeError):
            return None

    def load_lines(self, dataset: str, digest: str) -> LineMap | None:
        """The line map saved for the file with address ``digest``; None if it is not that one."""
        try:
            data = self._paths(dataset)[1].read_bytes()
        except OSError:
            return None
        got = decode_line_map(data)
        return got if got is not None and got.digest == digest else None

    def load_packed(self, dataset: str, digest: str) -> PackedLineMap | None:
        """`load_lines` without numpy: the map's arrays as their bytes."""
        try:
            got = _check(self._paths(dataset)[1].read_bytes())
        except OSError:
            return None
        if got is None or got.digest != digest:
            return None
        at, end = 16 * got.lines, 16 * got.lines + 8 * got.keys
        body = got.body
        return PackedLineMap(
            got.digest,
            got.header,
            body[:at].tobytes(),
            body[end:].tobytes(),
            body[at:end].tobytes(),
        )

    def load_ids(self, dataset: str, digest: str) -> tuple[bytes, list[bytes], bytes] | None:
        """(header, the id on each line, the id keys' bytes) of the line map saved for the
        file with address ``digest``, read without numpy; None if there is none for it."""
        try:
            got = _check(self._paths(dataset)[1].read_bytes())
        except OSError:
            return None
        if got is None or got.digest != digest:
            return None
        at = 16 * got.lines
        ids = got.body[at + 8 * got.keys :].tobytes().split(b"\n")
        return got.header, ids, got.body[at : at + 8 * got.keys].tobytes()

    def save_copy(self, dataset: str, data: bytes) -> None:
        """Keep ``data``, the table file as read: a first commit of a Parquet table keeps
        it (~13 MB at a million rows, written in milliseconds) instead of its line map
        (~0.4 s to make), which a later change of the file makes from this copy."""
        if self.readonly:
            return
        self.folder.mkdir(exist_ok=True)
        head = COPY_MAGIC + xxhash.xxh3_128_hexdigest(data).encode() + b"\n"
        _atomic(self._copy(dataset), [head, data])

    def load_copy(self, dataset: str, digest: str) -> bytes | None:
        """The copy kept of the file with address ``digest``; None if there is none, or
        it is of another file, or its bytes no longer have that address."""
        try:
            data = self._copy(dataset).read_bytes()
        except OSError:
            return None
        start = len(COPY_MAGIC) + 33
        if not data.startswith(COPY_MAGIC) or data[start - 33 : start] != digest.encode() + b"\n":
            return None
        body = data[start:]
        return body if xxhash.xxh3_128_hexdigest(body) == digest else None

    def _copy(self, dataset: str) -> Path:
        return self.folder / f"table-{dataset}.copy"

    def save(self, dataset: str, state: TableState, lines: LineMap | PackedLineMap | None) -> None:
        """Write the line map first (None: keep the one saved, which names its file's
        address), then the state naming it, each atomically."""
        if self.readonly:
            return
        self.folder.mkdir(exist_ok=True)
        state_path, lines_path = self._paths(dataset)
        if lines is not None:
            _atomic(lines_path, encode_line_map(lines))
            self._old_lines(dataset).unlink(missing_ok=True)
            self._copy(dataset).unlink(missing_ok=True)  # the map does what it was kept for
        _atomic(state_path, [marshal.dumps(tuple(state))])

    def drop(self, dataset: str) -> None:
        if self.readonly:
            return
        for p in (*self._paths(dataset), self._old_lines(dataset), self._copy(dataset)):
            p.unlink(missing_ok=True)

    def _old_lines(self, dataset: str) -> Path:
        return self.folder / f"table-{dataset}.lines"  # version 1's map: removed once replaced


def _atomic(path: Path, parts: list[bytes]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for part in parts:
            f.write(part)
    os.replace(tmp, path)
