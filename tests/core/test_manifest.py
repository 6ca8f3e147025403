"""The sharded manifest: ids round-trip, write and patch agree, a 1% change touches 1% of shards."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagit.core import manifest, shardsplice
from datagit.core.manifest import (
    DatasetTree,
    changed_shards,
    choose_fanout,
    patch_dataset,
    shard_key,
    shard_path,
    write_dataset,
)
from datagit.core.records import Record
from datagit.storage.git import GitStore

ids = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\n\r"),
    min_size=1,
    max_size=16,
)


@pytest.fixture(scope="module")
def git(tmp_path_factory: pytest.TempPathFactory) -> GitStore:
    return GitStore.init(tmp_path_factory.mktemp("manifest") / "g.git")


def rec(i: str | int, label: object = "cat", content: str | None = None) -> Record:
    key = content or f"{hash(str(i)) & (2**128 - 1):032x}"
    return Record(str(i), label, key, 10, source=f"train/{label}/{i}")


def records(n: int, label: object = "cat") -> list[Record]:
    return [rec(f"img_{i:06d}.png", label) for i in range(n)]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(ids, st.sampled_from(["cat", "dog", 3, None]), max_size=40))
def test_ids_and_records_round_trip(git: GitStore, labelled: dict[str, object]) -> None:
    recs = [rec(i, lbl) for i, lbl in labelled.items()]
    tree = DatasetTree(git, write_dataset(git, recs))
    assert tree.count == len(recs)
    assert tree.by_id() == {r.id: r for r in recs}
    for r in recs:
        assert tree.get(r.id) == r
    assert tree.get("\x01not-there") is None
    half = [r.id for r in recs[::2]]
    want = {i: tree.get(i) for i in half}
    assert tree.get_many([*half, "\x01not-there"]) == want  # lines found by their bytes


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.sets(st.integers(0, 3000), max_size=300),
    upsert=st.sets(st.integers(0, 3000), max_size=40),
    delete=st.sets(st.integers(0, 3000), max_size=40),
)
def test_patch_agrees_with_write(
    git: GitStore, base: set[int], upsert: set[int], delete: set[int]
) -> None:
    start = {str(i): rec(i) for i in base}
    changes = {str(i): rec(i, "dog") for i in upsert}
    gone = {str(i) for i in delete} - set(changes)
    expected = {**start, **changes}
    for d in gone:
        expected.pop(d, None)
    base_tree = write_dataset(git, start.values())
    patched = patch_dataset(git, base_tree, changes, gone)
    assert DatasetTree(git, patched).by_id() == expected
    assert patched == write_dataset(git, expected.values(), base_tree)


def test_shard_layout_grows_with_the_dataset(git: GitStore) -> None:
    assert shard_path("") == ("all.jsonl",)
    assert shard_path("abc") == ("ab", "c.jsonl")
    assert shard_path("abcd") == ("ab", "cd.jsonl")
    assert choose_fanout(0) == 0 and choose_fanout(256) == 0
    assert choose_fanout(257) == 1 and choose_fanout(4096) == 1 and choose_fanout(4097) == 2
    assert choose_fanout(65_536) == 2 and choose_fanout(100_000) == 3
    # from 4,096 shards on, up to 512 per shard: 65,536 blobs only past 2M records
    assert choose_fanout(2_097_152) == 3 and choose_fanout(2_097_153) == 4
    # hysteresis: a dataset hovering at a boundary keeps its fan-out
    assert choose_fanout(500) == 1 and choose_fanout(500, previous=0) == 0
    assert choose_fanout(1025, previous=0) == 1
    assert choose_fanout(257, previous=1) == 1 and choose_fanout(255, previous=1) == 0
    assert choose_fanout(100_000, previous=2) == 2  # existing repositories keep theirs
    small = DatasetTree(git, write_dataset(git, records(10)))
    assert small.fanout == 0 and list(small.shards()) == [""]
    big = DatasetTree(git, write_dataset(git, records(3000)))
    assert big.fanout == 1 and len(big.shards()) == 16
    for prefix, blob in big.shards().items():
        for r in manifest.decode_lines(git.read_blob(blob)):
            assert shard_key(r.id).startswith(prefix)


def test_records_inside_a_shard_are_sorted_by_id(git: GitStore) -> None:
    tree = DatasetTree(git, write_dataset(git, reversed(records(200))))
    (blob,) = tree.shards().values()
    got = [r.id for r in manifest.decode_lines(git.read_blob(blob))]
    assert got == sorted(got)


def test_one_percent_change_rewrites_only_touched_shards(git: GitStore, tmp_path: Path) -> None:
    recs = records(20_000)
    base = write_dataset(git, recs)
    before = DatasetTree(git, base)
    assert before.fanout == 2
    relabel = {r.id: rec(r.id, "dog") for r in recs[::100]}  # 200 records, 1%
    patched = patch_dataset(git, base, relabel)
    touched_prefixes = {shard_key(i)[:2] for i in relabel}
    after = DatasetTree(git, patched)
    changed = changed_shards(git, base, patched)
    assert changed is not None
    assert {c.prefix for c in changed} == touched_prefixes
    assert len(touched_prefixes) < len(before.shards())
    old, new = before.shards(), after.shards()
    assert {p for p in new if new[p] != old[p]} == touched_prefixes
    # The same result written from scratch against the base reuses every untouched blob.
    full = write_dataset(git, {**before.by_id(), **relabel}.values(), base)
    assert full == patched
    # Only touched shards are new objects: count blobs not already in the store.
    fresh = GitStore.init(tmp_path / "fresh.git")
    write_dataset(fresh, recs)
    fresh_new = [b for p, b in new.items() if not fresh.has(b)]
    assert len(fresh_new) == len(touched_prefixes)


def test_deleting_everything_and_empty_datasets(git: GitStore) -> None:
    base = write_dataset(git, records(20))
    empty = patch_dataset(git, base, {}, [r.id for r in records(20)])
    assert DatasetTree(git, empty).count == 0
    assert list(DatasetTree(git, empty).records()) == []
    assert empty == manifest.empty_dataset(git)
    assert DatasetTree(git, patch_dataset(git, None, {"x": rec("x")})).by_id() == {"x": rec("x")}


def test_growth_across_fanouts_keeps_every_record(git: GitStore) -> None:
    base = write_dataset(git, records(200))
    grown = patch_dataset(git, base, {r.id: r for r in records(3000)})
    tree = DatasetTree(git, grown)
    assert tree.fanout == 1 and tree.count == 3000
    assert changed_shards(git, base, grown) is None  # fan-outs differ: callers compare sets
    assert set(tree.by_id()) == {r.id for r in records(3000)}


def test_root_tree_round_trip(git: GitStore) -> None:
    a = write_dataset(git, records(3))
    root = manifest.write_root(git, b"[datasets]\n", {"train": a})
    assert manifest.read_root(git, root) == (b"[datasets]\n", {"train": a})


@pytest.mark.parametrize(
    ("start", "upsert", "delete"),
    [(600, 0, 100), (500, 1700, 0), (2100, 0, 1700), (3000, 10, 2990)],
    ids=["shrink-1-to-0", "grow-0-to-1", "shrink-to-0", "almost-empty"],
)
def test_patch_agrees_with_write_across_fanout_changes(
    git: GitStore, start: int, upsert: int, delete: int
) -> None:
    base_recs = {r.id: r for r in records(start)}
    changes = {r.id: rec(r.id, "dog") for r in records(start + upsert)[start - upsert // 2 :]}
    gone = [r.id for r in records(delete)]
    expected = {**base_recs, **changes}
    for d in gone:
        if d not in changes:
            expected.pop(d)
    base = write_dataset(git, base_recs.values())
    patched = patch_dataset(git, base, changes, [d for d in gone if d not in changes])
    tree = DatasetTree(git, patched)
    assert tree.by_id() == expected and tree.count == len(expected)
    assert tree.fanout == choose_fanout(len(expected), DatasetTree(git, base).fanout)
    assert patched == write_dataset(git, expected.values(), base)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=st.sets(st.integers(0, 3000), max_size=300),
    relabel=st.sets(st.integers(0, 3000), max_size=40),
    delete=st.sets(st.integers(0, 3000), max_size=40),
)
def test_apply_changes_splices_lines_as_a_rewrite_would(
    git: GitStore, base: set[int], relabel: set[int], delete: set[int]
) -> None:
    """Replacing or dropping lines found by their bytes gives the tree a full write gives;
    an id only a shard's field value names (``"fields":{"id":…}``) is not taken for a line."""
    start = {
        str(i): Record(str(i), "cat", "c" * 32, 1, fields={"id": str(i + 1), "n": i}) for i in base
    }
    upserts = {str(i): Record(str(i), "dog", "c" * 32, 1) for i in relabel}
    gone = {str(i) for i in delete} - set(upserts)
    expected = {**start, **upserts}
    for d in gone:
        expected.pop(d, None)
    base_tree = write_dataset(git, start.values())
    tree, pairs = shardsplice.apply_changes(git, base_tree, upserts, gone)
    assert DatasetTree(git, tree).by_id() == expected
    assert tree == write_dataset(git, expected.values(), base_tree)
    assert len(pairs) == len(upserts) + len(gone & set(start))
