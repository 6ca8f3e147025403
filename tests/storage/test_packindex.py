"""The sorted, memory-mapped fold of the pack logs: found without loading, never trusted stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from datagit.storage import packindex
from datagit.storage.content import ContentStore, address, rewrite_packs


def blobs(n: int, tag: bytes = b"") -> list[bytes]:
    return [b"example %d %s" % (i, tag) for i in range(n)]


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore.init(tmp_path / "content")


def reopened(store: ContentStore) -> ContentStore:
    store.close()
    return ContentStore(store.root)


def test_a_fold_answers_every_lookup_without_loading_entries(store: ContentStore) -> None:
    keys = store.put_many(blobs(500))
    assert store.fold() == 500
    fresh = reopened(store)
    index = fresh.index
    assert index.fold is not None and len(index.fold) == 500 and index.tail == {}
    assert all(fresh.read(k) == b for k, b in zip(keys, blobs(500), strict=True))
    assert not fresh.has(address(b"never stored"))
    assert sorted(index) == sorted(keys) and len(index) == 500


def test_entries_after_a_fold_are_read_from_the_log_tails_then_merged(
    store: ContentStore,
) -> None:
    first = store.put_many(blobs(300))
    store.fold()
    second = store.put_many(blobs(200, b"later"))
    fresh = reopened(store)
    assert set(fresh.index.tail) == set(second)  # only the tail is in memory
    assert all(fresh.has(k) for k in first + second)
    assert fresh.fold() == 200  # merged into the fold: the old entries copied as slices
    fresh = reopened(fresh)
    assert fresh.index.tail == {} and len(fresh.index) == 500
    digests = [bytes.fromhex(k) for k in fresh.index]
    assert digests == sorted(digests)
    assert all(fresh.read(k) == b for k, b in zip(second, blobs(200, b"later"), strict=True))


def test_a_writer_folds_once_the_tail_is_long(store: ContentStore) -> None:
    n = packindex.FOLD_AT + 10
    with store.writer() as w:
        for b in blobs(n):
            w.put(b)
    assert (store.root / packindex.NAME).exists()
    fresh = reopened(store)
    assert fresh.index.tail == {} and len(fresh.index) == n


def test_a_repository_without_a_fold_reads_its_logs(store: ContentStore) -> None:
    keys = store.put_many(blobs(50))
    assert not (store.root / packindex.NAME).exists()
    fresh = reopened(store)
    assert fresh.index.fold is None and set(fresh.index) == set(keys)


def test_a_fold_naming_a_lost_pack_or_a_shorter_log_is_ignored(store: ContentStore) -> None:
    keys = store.put_many(blobs(40))
    store.fold()
    idx = store.packs / "pack-000000.idx"
    log = idx.read_bytes()
    from datagit.storage.packlog import _ENTRY2_SIZE, IDX_MAGIC

    cut = len(IDX_MAGIC) + 20 * _ENTRY2_SIZE  # the header and 20 of the 40 entries
    idx.write_bytes(log[:cut])  # a log cut shorter than the fold recorded
    fresh = reopened(store)
    assert fresh.index.fold is None
    assert sum(fresh.has(k) for k in keys) == 20  # what the logs still say, no more
    idx.write_bytes(log)
    assert reopened(store).index.fold is not None


def test_a_damaged_fold_is_ignored(store: ContentStore) -> None:
    keys = store.put_many(blobs(40))
    store.fold()
    path = store.root / packindex.NAME
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the header: the checksum no longer matches
    path.write_bytes(bytes(data))
    fresh = reopened(store)
    assert fresh.index.fold is None and all(fresh.has(k) for k in keys)
    path.write_bytes(bytes(data[:30]))  # cut short
    assert reopened(store).index.fold is None


def test_gc_rebuilds_the_fold_from_the_packs_it_keeps(store: ContentStore) -> None:
    keys = store.put_many(blobs(100))
    store.fold()
    keep = set(keys[:60])
    assert rewrite_packs(store, keep) == (60, 40)
    fresh = reopened(store)
    assert fresh.index.fold is not None and len(fresh.index.fold) == 60
    assert all(fresh.read(k) for k in keep) and not fresh.has(keys[99])


def test_an_entry_past_the_end_of_its_pack_is_not_there(store: ContentStore) -> None:
    keys = store.put_many(blobs(10))
    store.fold()
    pack = store.packs / "pack-000000.pack"
    pack.write_bytes(pack.read_bytes()[:20])  # the pack cut short after the fold
    fresh = reopened(store)
    assert fresh.index.fold is not None
    assert fresh.has(keys[0]) and not fresh.has(keys[9])
