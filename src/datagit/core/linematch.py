"""`linedelta.match_lines` without numpy, for the edits a commit usually sees.

numpy costs ~0.1 s to import, as much as the whole line delta of a 100,000-row
table, so a commit that changed a few rows matches its lines on the digests'
bytes instead: two big integers XORed find every line that differs in place
(a relabel, a fix) at C speed, and the lines that moved are joined by a dict.
When that leaves more than `JOIN_LIMIT` lines to join (a sorted or shuffled
file) the caller uses numpy's sort instead. Both give the same answer, line
for line (tests/core/test_linematch.py).
"""

from __future__ import annotations

import bisect
import sys
from array import array
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

import xxhash

LINED = ("csv", "jsonl")  # formats whose rows are lines
JOIN_LIMIT = 50_000  # lines left to join past which numpy's sort is cheaper than its import
_NONZERO = bytes([0] + [1] * 255)  # translate table: any byte but 0 becomes 1


def lined(data: bytes) -> bool:
    """Whether the file's rows are split by ``\\n`` alone, as the line map assumes: a lone
    ``\\r`` ends a line for the csv module and for ``splitlines``, not for ``split``."""
    return b"\r" not in data or data.count(b"\r") == data.count(b"\r\n")


class Matched(NamedTuple):
    """For each new line, the old line it is (or -1), kept sparse: lines before ``head``
    and from ``tail`` on keep their place (shifted by ``shift`` after ``tail``); ``src``
    says where every line in between went, -1 for a line to parse."""

    head: int
    tail: int
    shift: int  # old index - new index past ``tail``
    src: dict[int, int]  # new line in [head, tail) → old line or -1
    free: list[int]  # old lines in [head, tail + shift) with no place kept: gone unless joined

    def source(self, k: int) -> int:
        if k < self.head:
            return k
        if k >= self.tail:
            return k + self.shift
        return self.src.get(k, k)  # (only an in-place match is left out of ``src``)


def match_bytes(new: bytes, old: bytes) -> Matched | None:
    """`linedelta.match_lines` of two digest arrays' bytes (16 per line); None when more
    than `JOIN_LIMIT` lines are left to join by digest."""
    n, m = len(new) >> 4, len(old) >> 4
    k = min(n, m)
    if n == m:
        todo = _differing(new, old)
        if len(todo) > JOIN_LIMIT:
            return None
        head, tail, shift, free = 0, n, 0, list(todo)
    else:
        head = _common_prefix(new[: 16 * k], old[: 16 * k]) >> 4
        same_end = _common_suffix(new[16 * (n - k) :], old[16 * (m - k) :]) >> 4
        run = min(same_end, k - head)
        tail, shift = n - run, m - n
        if tail - head > JOIN_LIMIT or (m - run) - head > JOIN_LIMIT:
            return None
        todo = list(range(head, tail))
        free = list(range(head, m - run))
    first: dict[bytes, int] = {}
    for j in free:
        first.setdefault(old[16 * j : 16 * j + 16], j)  # the lowest old line of each digest
    src: dict[int, int] = {}
    taken: set[int] = set()
    for i in todo:
        c = first.get(new[16 * i : 16 * i + 16], -1)
        if c >= 0 and c not in taken:
            taken.add(c)
        else:
            c = -1
        src[i] = c
    return Matched(head, tail, shift, src, [j for j in free if j not in taken])


def _differing(new: bytes, old: bytes) -> list[int]:
    """The lines whose digests differ, for arrays of the same length."""
    if new == old:
        return []
    x = int.from_bytes(new, "little") ^ int.from_bytes(old, "little")
    marks = x.to_bytes(len(new), "little").translate(_NONZERO)
    out = []
    at = marks.find(1)
    while at >= 0:
        line = at >> 4
        out.append(line)
        at = marks.find(1, (line + 1) << 4)
    return out


def _common_prefix(a: bytes, b: bytes) -> int:
    """How many leading bytes ``a`` and ``b`` (of one length) share."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return len(a) - (x.bit_length() + 7) // 8


def _common_suffix(a: bytes, b: bytes) -> int:
    """How many trailing bytes ``a`` and ``b`` (of one length) share."""
    x = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return len(a) if x == 0 else ((x & -x).bit_length() - 1) // 8


class Ids:
    """The id on each line of a map's ``ids`` blob ("\\n"-joined), found without splitting
    it when every id has one length (as generated ids do)."""

    def __init__(self, blob: bytes, lines: int) -> None:
        self.blob = blob
        width = blob.find(b"\n")
        self.width = w = width + 1 if width >= 0 else len(blob) + 1
        # Every id w - 1 bytes (the last may be empty: the piece after the file's last
        # newline), so every separator sits at a multiple of w.
        seps = blob[w - 1 :: w]
        fixed = (
            len(blob) in (w * lines - 1, w * (lines - 1))
            and len(seps) == max(lines - 1, 0)
            and seps == b"\n" * len(seps)
        )
        self._list: list[bytes] | None = None if fixed else blob.split(b"\n")

    def __getitem__(self, i: int) -> bytes:
        if self._list is not None:
            return self._list[i]
        return self.blob[i * self.width : i * self.width + self.width - 1]

    def all(self) -> list[bytes]:
        if self._list is None:
            self._list = self.blob.split(b"\n")
        return self._list


def key_array(keys: bytes) -> array:  # type: ignore[type-arg]
    """The sorted id keys (little-endian uint64) as an array `bisect` can search."""
    out = array("Q")
    out.frombytes(keys)
    if sys.byteorder != "little":
        out.byteswap()
    return out


def has_key(keys: array, key: int) -> bool:  # type: ignore[type-arg]
    i = bisect.bisect_left(keys, key)
    return i < len(keys) and keys[i] == key


def patched_keys(keys: bytes, removed: Iterable[bytes], added: Iterable[bytes]) -> bytes:
    """The sorted id keys of a map whose lines lost the ids ``removed`` and gained
    ``added`` (a multiset, as the keys are: one per line): the old keys' runs are
    copied whole, only the changed keys are handled one by one."""
    change: Counter[int] = Counter(map(xxhash.xxh3_64_intdigest, added))
    change.subtract(map(xxhash.xxh3_64_intdigest, removed))
    edits = sorted((key, n) for key, n in change.items() if n)
    if not edits:
        return keys
    old = key_array(keys)
    out = array("Q")
    at = 0
    for key, n in edits:
        pos = bisect.bisect_left(old, key, at)
        out.extend(old[at:pos])
        at = pos
        if n > 0:
            out.extend([key] * n)
        else:
            gone = -n
            while gone and at < len(old) and old[at] == key:
                at += 1
                gone -= 1
    out.extend(old[at:])
    if sys.byteorder != "little":
        out.byteswap()
    return out.tobytes()
