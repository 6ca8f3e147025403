"""changed_rows and plan_folder_trees agree with compare_trees and plan_dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from datagit.core import checkout as co
from datagit.core.changes import changed_rows, compare_trees
from datagit.core.config import DatasetConfig
from datagit.core.manifest import write_dataset
from datagit.core.records import Record
from datagit.errors import InvalidInputError
from datagit.storage.content import address
from datagit.storage.git import GitStore
from datagit.storage.listingcache import ListingCache

CFG = DatasetConfig(name="train", layout="imagefolder", path="train")


def _recs(n: int, relabel: int = 0, start: int = 0) -> list[Record]:
    out = []
    for i in range(start, n):
        label = str((i + (1 if i < relabel else 0)) % 10)
        out.append(Record(f"img_{i:04d}.png", label, address(str(i).encode()), 10))
    return sorted(out, key=lambda r: r.id)


@pytest.fixture
def git(tmp_path: Path) -> GitStore:
    return GitStore.init(tmp_path / "g")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((0, 0, 0), (300, 0, 0)),  # from nothing: fan-outs differ, one side whole
        ((300, 0, 0), (0, 0, 0)),  # to nothing
        ((300, 0, 0), (300, 40, 0)),  # 40 re-labels, same fan-out
        ((300, 0, 0), (5000, 0, 100)),  # fan-outs differ, both sides hold records
        ((300, 0, 0), (300, 0, 0)),  # the same tree
    ],
)
def test_changed_rows_and_the_plan_agree_with_the_record_path(
    git: GitStore, a: tuple[int, int, int], b: tuple[int, int, int]
) -> None:
    ta = write_dataset(git, _recs(a[0], a[1], a[2]))
    tb = write_dataset(git, _recs(b[0], b[1], b[2]))
    gone, came = changed_rows(git, ta, tb)
    diff = compare_trees(git, ta, tb)
    assert {r["id"] for r in gone} >= {c.id for c in diff if c.new is None}
    assert {r["id"] for r in came} >= {c.id for c in diff if c.old is None}
    fast, slow = co.Plan(), co.Plan()
    co.plan_folder_trees(fast, git, CFG, ta, tb)
    before = {c.id: c.old for c in diff if c.old is not None}
    after = {c.id: c.new for c in diff if c.new is not None}
    co.plan_dataset(slow, CFG, before, CFG, after, None)
    assert (fast.write, fast.move, fast.delete) == (slow.write, slow.move, slow.delete)


def test_a_crafted_row_is_refused_by_the_fast_plan(git: GitStore) -> None:
    bad = Record("../../etc/passwd", "0", address(b"x"), 1)
    tb = write_dataset(git, [bad])
    with pytest.raises(InvalidInputError, match="etc/passwd"):
        co.plan_folder_trees(co.Plan(), git, CFG, write_dataset(git, []), tb)
    hidden = write_dataset(git, [Record("a.png", ".git", address(b"x"), 1)])
    with pytest.raises(InvalidInputError, match="label"):
        co.plan_folder_trees(co.Plan(), git, CFG, write_dataset(git, []), hidden)


def test_lines_read_by_pattern_agree_with_decoded_rows() -> None:
    """`folder_paths_of_lines` reads datagit's own lines by pattern; any other line
    (escapes, extra fields, a null label, a repeated key) is decoded and checked as
    `folder_paths` checks it, with the same answer."""
    import orjson

    from datagit.core.trust import folder_paths, folder_paths_of_lines

    key = address(b"x")
    rows = [
        {"id": "a.png", "label": "cat", "content": key, "size": 1},
        {"id": "b.png", "label": "cat", "content": key, "size": 2, "annotator": "ann"},
        {"id": "é.png", "label": "dög", "content": key, "size": 3},  # not plain ASCII
        {"id": "c.png", "label": "cat", "content": key, "size": 4, "fields": {"x": 1}},
        {"id": "d.png", "label": None, "content": key, "size": 5},  # unlabelled
        {"id": 'e".png', "label": "cat", "content": key, "size": 6},
    ]
    data = b"".join(orjson.dumps(r) + b"\n" for r in rows)
    assert folder_paths_of_lines(CFG, [data]) == folder_paths(CFG, rows)
    halves = [data[: data.index(b"\n") + 1], data[data.index(b"\n") + 1 :]]
    assert folder_paths_of_lines(CFG, halves) == folder_paths(CFG, rows)
    assert folder_paths_of_lines(CFG, [b"", b""]) == {}
    # A repeated key: JSON keeps the last, so the pattern must not take the first.
    twice = (
        b'{"id":"a.png","label":"cat","content":"' + key.encode() + b'","size":1,'
        b'"id":"../../etc/passwd"}\n'
    )
    with pytest.raises(InvalidInputError, match="etc/passwd"):
        folder_paths_of_lines(CFG, [twice])
    with pytest.raises(InvalidInputError, match="label"):
        folder_paths_of_lines(
            CFG, [b'{"id":"a.png","label":".git","content":"' + key.encode() + b'","size":1}\n']
        )
    with pytest.raises(ValueError):  # not UTF-8: refused as JSON refuses it
        folder_paths_of_lines(CFG, [b'{"id":"\xff.png","label":"cat"}\n'])


def _plan(git: GitStore, old: str, new: str, listings: ListingCache | None) -> co.Plan:
    plan = co.Plan()
    co.plan_folder_trees(plan, git, CFG, old, new, listings)
    return plan


def test_a_checkout_from_nothing_keeps_the_listing_and_plans_the_same_from_it(
    git: GitStore, tmp_path: Path
) -> None:
    """From an empty tree the writes are held by folder and the tree's listing is kept;
    the next plan of that tree reads the listing, not the shards, and says the same."""
    empty, tb = write_dataset(git, []), write_dataset(git, _recs(300, start=0))
    listings = ListingCache(tmp_path / "cache")
    slow = _plan(git, empty, tb, None).write
    first = _plan(git, empty, tb, listings)
    assert first.folders and first.size == 300 and first.addresses() == set(slow.values())
    assert first.write == slow and not first.folders  # folded into paths when asked
    assert listings.load("train", tb, "train") is not None
    again = _plan(git, empty, tb, listings)
    assert co.write_groups(again) == co.by_folder(slow)
    other = write_dataset(git, _recs(10))  # another tree: its own listing, parsed
    assert _plan(git, empty, other, listings).write == _plan(git, empty, other, None).write
    assert listings.load("train", tb, "train") is None  # one tree kept per dataset


def test_a_kept_listing_is_checked_as_it_is_read(git: GitStore, tmp_path: Path) -> None:
    """A listing whose bytes are damaged, or that names a path the shards would not
    allow (written by hand, checksum and all), is ignored: the plan comes from the shards."""
    empty, tb = write_dataset(git, []), write_dataset(git, _recs(50))
    listings = ListingCache(tmp_path / "cache")
    want = _plan(git, empty, tb, None).write
    for groups in (
        {"train/../../etc": (["passwd"], [address(b"x")])},
        {"train/0": (["../x"], [address(b"x")])},
        {"train/.git": (["config"], [address(b"x")])},
        {"elsewhere": (["a.png"], [address(b"x")])},
        {"train/0": (["a.png"], ["not an address, but 32 chars!!!!"])},
    ):
        listings.save("train", tb, "train", groups)
        assert _plan(git, empty, tb, listings).write == want
    listings.save("train", tb, "train", {"train/0": (["a.png"], [address(b"x")])})
    path = tmp_path / "cache" / "listing-train.marshal"
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 1
    path.write_bytes(bytes(raw))
    assert listings.load("train", tb, "train") is None
    assert _plan(git, empty, tb, listings).write == want
    path.write_bytes(b"DGLS0\0\0\n" + bytes(raw[8:]))  # another format: ignored
    assert listings.load("train", tb, "train") is None
    assert listings.load("train", tb, "elsewhere") is None  # the dataset moved
