"""xxh3-64 in numpy is xxhash's, for every length and however the array is sliced."""

from __future__ import annotations

import random

import pytest
import xxhash

from datagit.core import xxh3vec

pa = pytest.importorskip("pyarrow")


def test_every_length_up_to_300_bytes_hashes_as_xxhash_does() -> None:
    rng = random.Random(15)
    values = [rng.randbytes(n) for n in range(301) for _ in range(4)]
    got = xxh3vec.xxh3_64(pa.array(values, pa.binary()))
    assert got.tolist() == [xxhash.xxh3_64_intdigest(v) for v in values]


def test_ids_across_blocks_and_a_sliced_array() -> None:
    """Text ids (some not ASCII) over more than one block, with every path mixed in a
    block; then the same array sliced (Arrow offsets not starting at 0)."""
    ids = [f"r{i:08d}" if i % 5 else f"cat/é{i}" * (i % 40) for i in range(xxh3vec.BLOCK + 77)]
    arr = pa.array(ids, pa.string())
    assert xxh3vec.xxh3_64(arr).tolist() == [xxhash.xxh3_64_intdigest(i.encode()) for i in ids]
    part = arr.slice(1000, xxh3vec.BLOCK)
    want = [xxhash.xxh3_64_intdigest(i.encode()) for i in ids[1000 : 1000 + xxh3vec.BLOCK]]
    assert xxh3vec.xxh3_64(part).tolist() == want


def test_an_empty_array_has_no_hashes() -> None:
    assert xxh3vec.xxh3_64(pa.array([], pa.string())).tolist() == []
