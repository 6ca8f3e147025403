"""xxh3-64 over many short strings at once, in numpy (the values of an Arrow array).

A million-row table's shards are chosen by the xxh3-64 of every id. One `xxhash`
call per id needs a Python bytes object per id: ~0.15 s and ~50 MB of fresh memory
at a million rows. XXH3's short-input paths (4 to 128 bytes) are a few 64-bit
multiplies and xors of 8-byte words read at fixed offsets from each end, so they
vectorise: each path runs over the rows of its length range at once, 8K rows at a
time so every temporary stays in the cache (a fresh 8 MB array costs more in page
faults than the arithmetic on it). Other lengths are hashed one by one by `xxhash`,
and tests compare every length 0–300 against it. (The 128-bit content hash of each
row's fields vectorises the same way but was no faster than `xxhash` per row.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xxhash

_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
)
_P64_1 = np.uint64(0x9E3779B185EBCA87)
_MX1 = np.uint64(0x165667919E3779F9)
_MX2 = np.uint64(0x9FB21C651E98DF25)
_LOW32 = np.uint64(0xFFFFFFFF)


def _s64(at: int) -> np.uint64:
    return np.uint64(int.from_bytes(_SECRET[at : at + 8], "little"))


def _u(k: int) -> np.uint64:
    return np.uint64(k)


def _mul128(a: Any, b: Any) -> tuple[Any, Any]:
    """(low, high) 64-bit halves of each 128-bit product ``a * b``, from 32-bit halves."""
    a_lo, a_hi = a & _LOW32, a >> _u(32)
    b_lo, b_hi = b & _LOW32, b >> _u(32)
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    cross = (lo_lo >> _u(32)) + (hi_lo & _LOW32) + lo_hi
    high = (hi_lo >> _u(32)) + (cross >> _u(32)) + a_hi * b_hi
    low = (cross << _u(32)) | (lo_lo & _LOW32)
    return low, high


def _fold(a: Any, b: Any) -> Any:
    low, high = _mul128(a, b)
    return low ^ high


def _avalanche(h: Any) -> Any:
    h = h ^ (h >> _u(37))
    h = h * _MX1
    return h ^ (h >> _u(32))


def _rotl(h: Any, r: int) -> Any:
    return (h << _u(r)) | (h >> _u(64 - r))


def _swap64(h: Any) -> Any:
    return h.byteswap()


class _Words:
    """Little-endian words read from each string of an Arrow string/binary array (each
    read once: XXH3 reads some words twice)."""

    def __init__(self, words: Any, starts: Any, lengths: Any) -> None:
        self.words = words  # the bytes as aligned uint64 words, padded so no read runs off
        self.starts = starts  # int64
        self.lengths = lengths  # int64
        self._ends = starts + lengths
        self._seen: dict[tuple[bool, int], Any] = {}

    def _at(self, pos: Any) -> Any:
        """The 8-byte word at byte ``pos`` of each string: two aligned words shifted
        together (a gather of 8 bytes a row made an 8x index array). Shifting the second
        by 63 - s and then 1 makes s = 0 shift it out entirely (a shift by 64 does not)."""
        q = pos >> 3
        shift = ((pos & 7) << 3).astype(np.uint64)
        return (self.words[q] >> shift) | ((self.words[q + 1] << (_u(63) - shift)) << _u(1))

    def head(self, k: int, width: int = 8) -> Any:
        word = self._word(False, k)
        return word & _LOW32 if width == 4 else word

    def tail(self, k: int, width: int = 8) -> Any:
        """The word starting ``k`` bytes before each string's end."""
        word = self._word(True, k)
        return word & _LOW32 if width == 4 else word

    def _word(self, from_end: bool, k: int) -> Any:
        got = self._seen.get((from_end, k))
        if got is None:
            got = self._at(self._ends - k if from_end else self.starts + k)
            self._seen[(from_end, k)] = got
        return got


def _mix16(w: _Words, head: int | None, tail: int | None, secret: int) -> Any:
    lo = w.head(head) if head is not None else w.tail(tail)  # type: ignore[arg-type]
    hi = w.head(head + 8) if head is not None else w.tail(tail - 8)  # type: ignore[operator]
    return _fold(lo ^ _s64(secret), hi ^ _s64(secret + 8))


def _h64_4to8(w: _Words) -> Any:
    length = w.lengths.astype(np.uint64)
    in1 = w.head(0, 4)
    in2 = w.tail(4, 4)
    keyed = (in2 + (in1 << _u(32))) ^ (_s64(8) ^ _s64(16))
    h = keyed ^ _rotl(keyed, 49) ^ _rotl(keyed, 24)
    h = h * _MX2
    h = h ^ ((h >> _u(35)) + length)
    h = h * _MX2
    return h ^ (h >> _u(28))


def _h64_9to16(w: _Words) -> Any:
    length = w.lengths.astype(np.uint64)
    lo = w.head(0) ^ (_s64(24) ^ _s64(32))
    hi = w.tail(8) ^ (_s64(40) ^ _s64(48))
    acc = length + _swap64(lo) + hi + _fold(lo, hi)
    return _avalanche(acc)


def _rounds(n: int) -> int:
    """How many 32-byte rounds a 17–128-byte input of length ``n`` takes (1–4)."""
    return 1 + (n > 32) + (n > 64) + (n > 96)


def _h64_17to128(w: _Words, rounds: int) -> Any:
    """Rows whose length takes ``rounds`` rounds (all the same)."""
    acc = w.lengths.astype(np.uint64) * _P64_1
    for r in range(rounds - 1, -1, -1):
        acc = acc + _mix16(w, 16 * r, None, 32 * r)
        acc = acc + _mix16(w, None, 16 * (r + 1), 32 * r + 16)
    return _avalanche(acc)


def _layout(array: Any) -> tuple[Any, Any, Any, Any]:
    """(bytes, the bytes as aligned little-endian uint64 words padded by two zero words,
    starts, lengths) of an Arrow string or binary array."""
    _, offsets, data = array.buffers()
    offs = np.frombuffer(offsets, dtype=np.int32)[array.offset : array.offset + len(array) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    first = int(offs[0]) if len(offs) else 0
    raw = raw[first : int(offs[-1]) if len(offs) else 0]  # this slice's bytes only
    padded = np.zeros((len(raw) // 8 + 2) * 8, dtype=np.uint8)
    padded[: len(raw)] = raw
    starts = offs[:-1].astype(np.int64) - first
    return raw, padded.view("<u8"), starts, np.diff(offs).astype(np.int64)


_RANGES = [
    ("4to8", 4, 8),
    ("9to16", 9, 16),
    ("r1", 17, 32),
    ("r2", 33, 64),
    ("r3", 65, 96),
    ("r4", 97, 128),
]


def _groups(lengths: Any) -> list[tuple[str, Any]]:
    """Row positions by path: ('4to8' | '9to16' | 'r1'..'r4' | 'other', positions); a
    path every row takes gets ``slice(None)`` (no gather)."""
    if not len(lengths):
        return []
    lo, hi = int(lengths.min()), int(lengths.max())
    for name, a, b in _RANGES:
        if a <= lo and hi <= b:
            return [(name, slice(None))]
    out = []
    for name, a, b in _RANGES:
        at = np.flatnonzero((lengths >= a) & (lengths <= b))
        if len(at):
            out.append((name, at))
    at = np.flatnonzero((lengths < 4) | (lengths > 128))
    if len(at):
        out.append(("other", at))
    return out


BLOCK = 1 << 13  # rows at once: 64 KB temporaries, cached and under malloc's mmap threshold


def xxh3_64(array: Any) -> Any:
    """xxh3-64 (seed 0) of each value of a null-free Arrow string or binary array
    (int32 offsets), as numpy uint64: ``xxhash.xxh3_64_intdigest`` of its bytes."""
    out = np.empty(len(array), dtype=np.uint64)
    for b in range(0, len(array), BLOCK):
        out[b : b + BLOCK] = _xxh3_64(array.slice(b, BLOCK))
    return out


def _xxh3_64(array: Any) -> Any:
    data, words, starts, lengths = _layout(array)
    out = np.empty(len(lengths), dtype=np.uint64)
    for name, at in _groups(lengths):
        w = _Words(words, starts[at], lengths[at])
        if name == "4to8":
            out[at] = _h64_4to8(w)
        elif name == "9to16":
            out[at] = _h64_9to16(w)
        elif name.startswith("r"):
            out[at] = _h64_17to128(w, int(name[1]))
        else:
            out[at] = [
                xxhash.xxh3_64_intdigest(data[s : s + n].tobytes())
                for s, n in zip(starts[at].tolist(), lengths[at].tolist(), strict=True)
            ]
    return out
