"""core/linematch.py: the numpy-free line matcher answers as numpy's does, line for line."""

from __future__ import annotations

import random

import numpy as np
import pytest
import xxhash

from datagit.core import linematch
from datagit.core.linedelta import match_lines
from datagit.core.linematch import Ids, match_bytes, patched_keys
from datagit.storage.tablecache import id_keys, line_digests


def _dense(new: list[bytes], old: list[bytes]) -> list[int] | None:
    got = match_bytes(b"".join(map(xxhash.xxh3_128_digest, new)), line_digests(old).tobytes())
    return None if got is None else [got.source(k) for k in range(len(new))]


def _edits(rng: random.Random, old: list[bytes]) -> list[bytes]:
    """A few of the edits a user makes: relabel in place, insert, drop, move, copy, blank."""
    new = list(old)
    for _ in range(rng.randrange(0, 6)):
        kind = rng.choice(["relabel", "insert", "drop", "move", "copy", "blank", "reverse"])
        at = rng.randrange(len(new) + 1)
        if kind == "relabel" and at < len(new):
            new[at] = new[at] + b"!"
        elif kind == "insert":
            new.insert(at, b"row %d" % rng.randrange(10**6))
        elif kind == "drop" and at < len(new):
            del new[at]
        elif kind == "move" and at < len(new):
            new.insert(rng.randrange(len(new)), new.pop(at))
        elif kind == "copy" and at < len(new):
            new.append(new[at])
        elif kind == "blank":
            new.insert(at, b"")
        elif kind == "reverse":
            new.reverse()
    return new


def test_matches_as_numpy_does() -> None:
    for seed in range(400):
        rng = random.Random(seed)
        old = [b"row %d" % rng.randrange(60) for _ in range(rng.randrange(0, 40))]  # repeats
        new = _edits(rng, old)
        want = match_lines(line_digests(new), line_digests(old)).tolist()
        assert _dense(new, old) == want, seed


def test_hand_picked_cases_as_numpy() -> None:
    old = [b"a", b"b", b"c", b"d"]
    for new in (
        [b"a", b"x", b"c", b"d"],
        [b"new", b"a", b"b", b"c", b"d"],
        [b"a", b"c", b"d"],
        [b"d", b"b", b"c", b"a"],
        [b"a", b"b", b"c", b"d", b"a"],
        [b"z", b"a", b"a"],
        [],
    ):
        assert _dense(new, old) == match_lines(line_digests(new), line_digests(old)).tolist()
    assert _dense([b"a"], []) == [-1]


def test_too_much_to_join_is_left_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    old = [b"row %d" % i for i in range(100)]
    assert _dense(list(reversed(old)), old) is not None
    monkeypatch.setattr(linematch, "JOIN_LIMIT", 10)
    assert _dense(list(reversed(old)), old) is None
    assert _dense([b"row 0!", *old[1:]], old) == [-1, *range(1, 100)]  # few differ: no join


def test_keys_patched_as_a_fresh_sort_would_make_them() -> None:
    rng = random.Random(7)
    ids = [b"id%d" % rng.randrange(500) for _ in range(300)]  # a multiset: ids repeat
    keys = id_keys(ids).tobytes()
    removed = rng.sample(ids, 40)
    added = [b"new%d" % i for i in range(25)] + ids[:5]
    after = list(ids)
    for r in removed:
        after.remove(r)
    after += added
    assert patched_keys(keys, removed, added) == id_keys(after).tobytes()
    assert patched_keys(keys, [b"id1"], [b"id1"]) is keys  # a relabel keeps its id


@pytest.mark.parametrize(
    "ids",
    [
        [b"r001", b"r002", b"r003"],
        [b"r001", b"r002", b""],  # the piece after the last newline
        [b"r1", b"r002", b"r3"],
        [b"a", b"", b"b"],
        [b"abc"],
        [b""],
    ],
)
def test_ids_by_line_with_or_without_fixed_width(ids: list[bytes]) -> None:
    got = Ids(b"\n".join(ids), len(ids))
    assert [got[i] for i in range(len(ids))] == ids
    assert got.all() == ids


def test_digest_arrays_of_numpy_and_bytes_agree() -> None:
    lines = [b"x", b"", b"row,1"]
    assert np.array_equal(
        np.frombuffer(b"".join(map(xxhash.xxh3_128_digest, lines)), "<u8").reshape(-1, 2),
        line_digests(lines),
    )
