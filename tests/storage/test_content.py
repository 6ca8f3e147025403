"""ContentStore: packed small objects, loose large ones, verified reads, crash-safe indexes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import xxhash

from datagit.errors import CorruptObjectError
from datagit.storage import content, packlog
from datagit.storage.content import (
    LARGE,
    ContentStore,
    MissingContentError,
    address,
    prune_loose,
    rewrite_packs,
)


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore.init(tmp_path / "content")


def test_address_is_xxh3_128_hex() -> None:
    assert address(b"abc") == xxhash.xxh3_128_hexdigest(b"abc")
    assert len(address(b"")) == 32


def test_small_objects_share_one_pack_and_read_back(store: ContentStore) -> None:
    blobs = [f"example {i}".encode() * (i + 1) for i in range(200)]
    keys = store.put_many(blobs)
    assert keys == [address(b) for b in blobs]
    assert len(list(store.packs.glob("pack-*.pack"))) == 1
    assert list(store.loose.rglob("*")) == []
    fresh = ContentStore(store.root)  # a new process sees what was flushed
    assert [fresh.read(k) for k in keys] == blobs
    assert set(fresh.keys()) == set(keys)


def test_put_deduplicates(store: ContentStore) -> None:
    with store.writer() as w:
        w.put(b"same")
        w.put(b"same")
        assert w.written == 1
    with store.writer() as w:
        w.put(b"same")
        assert w.written == 0
    assert store.packs.joinpath("pack-000000.pack").read_bytes() == b"same"


def test_large_objects_are_loose_files(store: ContentStore) -> None:
    big = os.urandom(LARGE)
    (key,) = store.put_many([big])
    assert store._loose_path(key).read_bytes() == big
    assert ContentStore(store.root).read(key) == big
    assert store.has(key)


def test_missing_content(store: ContentStore) -> None:
    with pytest.raises(MissingContentError, match="0123"):
        store.read("0123" + "0" * 28)


def test_flipped_byte_in_a_pack_is_reported_with_hash_and_pack(store: ContentStore) -> None:
    keys = store.put_many([b"alpha" * 10, b"beta" * 10])
    pack = store.packs / "pack-000000.pack"
    raw = bytearray(pack.read_bytes())
    raw[60] ^= 0xFF  # inside the second object
    pack.write_bytes(bytes(raw))
    fresh = ContentStore(store.root)
    assert fresh.read(keys[0]) == b"alpha" * 10
    with pytest.raises(CorruptObjectError) as exc:
        fresh.read(keys[1])
    assert keys[1] in str(exc.value) and "pack-000000.pack" in str(exc.value)


def test_corrupt_loose_object(store: ContentStore) -> None:
    (key,) = store.put_many([b"z" * LARGE])
    path = store._loose_path(key)
    path.write_bytes(b"y" + path.read_bytes()[1:])
    with pytest.raises(CorruptObjectError, match=key):
        ContentStore(store.root).read(key)


def test_torn_index_tail_and_unflushed_bytes_are_ignored(store: ContentStore) -> None:
    keys = store.put_many([b"one", b"two"])
    idx = store.packs / "pack-000000.idx"
    with open(idx, "ab") as f:
        f.write(b"\x01" * 7)  # a crash in the middle of an index entry
    fresh = ContentStore(store.root)
    assert set(fresh.index) == set(keys)
    # An entry pointing past the end of the pack (bytes never reached the disk).
    whole = len(packlog.IDX_MAGIC) + 2 * packlog._ENTRY2_SIZE
    entry = packlog.encode_entries([(address(b"ghost"), 10_000, 5)])
    idx.write_bytes(idx.read_bytes()[:whole] + entry)
    assert set(ContentStore(store.root).index) == set(keys)


@pytest.mark.parametrize("legacy", [False, True])
def test_a_torn_index_never_misaligns_what_is_appended_after_it(
    store: ContentStore, legacy: bool
) -> None:
    """10 bytes cut from an index, then 10 more objects stored: all 10 read back.
    A v1 (headerless, unchecked) index from an older datagit keeps working the same way."""
    first = store.put_many([f"old-{i}".encode() for i in range(5)])
    idx = store.packs / "pack-000000.idx"
    if legacy:
        entries, _, _ = packlog.parse_index(idx.read_bytes())
        idx.write_bytes(b"".join(packlog._ENTRY.pack(*e) for e in entries))
    idx.write_bytes(idx.read_bytes()[:-10])
    store = ContentStore(store.root)
    new = store.put_many([f"new-{i}".encode() for i in range(10)])
    fresh = ContentStore(store.root)
    assert [fresh.read(k) for k in new] == [f"new-{i}".encode() for i in range(10)]
    assert all(fresh.has(k) for k in first[:4])  # the torn entry's object alone is gone
    assert fresh.index_problems == []
    assert idx.read_bytes().startswith(packlog.IDX_MAGIC) != legacy


def test_a_damaged_index_entry_is_skipped_alone_and_reported(store: ContentStore) -> None:
    keys = store.put_many([b"one", b"two", b"three"])
    idx = store.packs / "pack-000000.idx"
    raw = bytearray(idx.read_bytes())
    raw[len(packlog.IDX_MAGIC) + packlog._ENTRY2_SIZE + 3] ^= 0x40  # inside the 2nd entry
    idx.write_bytes(bytes(raw))
    fresh = ContentStore(store.root)
    assert fresh.has(keys[0]) and fresh.has(keys[2]) and not fresh.has(keys[1])
    assert [fresh.read(keys[0]), fresh.read(keys[2])] == [b"one", b"three"]
    assert "1 damaged entries" in fresh.index_problems[0]


def test_new_pack_past_the_size_limit(store: ContentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "PACK_LIMIT", 8)
    store.put_many([b"0123456789"])
    store.put_many([b"abcdefghij"])
    assert sorted(p.name for p in store.packs.glob("*.pack")) == [
        "pack-000000.pack",
        "pack-000001.pack",
    ]
    fresh = ContentStore(store.root)
    assert fresh.read(address(b"abcdefghij")) == b"abcdefghij"


def test_rewrite_packs_keeps_live_and_drops_dead(store: ContentStore) -> None:
    live = store.put_many([b"keep-1", b"keep-2"])
    dead = store.put_many([b"drop-1"])
    kept, removed = rewrite_packs(store, set(live))
    assert (kept, removed) == (2, 1)
    fresh = ContentStore(store.root)
    assert [fresh.read(k) for k in live] == [b"keep-1", b"keep-2"]
    assert not fresh.has(dead[0])
    assert rewrite_packs(fresh, set(live)) == (2, 0)  # nothing to do twice


def test_prune_loose(store: ContentStore) -> None:
    a, b = store.put_many([b"a" * LARGE, b"b" * LARGE])
    assert prune_loose(store, {a}) == 1
    assert store.has(a) and not store.has(b)


def test_large_adds_split_across_a_helper_process(digits_repo, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Past PARALLEL_MIN files, a forked helper stores half the bytes in a pack of its own;
    every record still reads back verified and fsck is clean."""
    from datagit.api import maintenance
    from datagit.storage import parallel

    monkeypatch.setattr(parallel, "PARALLEL_MIN", 10)
    info = digits_repo.commit("parallel ingest", all=True)
    packs = sorted(p.name for p in (digits_repo.dotdir / "content" / "packs").glob("*.pack"))
    assert len(packs) == 2 and any("-p" in p for p in packs)
    fresh = type(digits_repo).open(digits_repo.workdir)
    recs = list(fresh.records("train", info.id))
    assert len(recs) == 300
    for r in recs:
        assert (fresh.workdir / "train" / str(r.label) / r.id).read_bytes() == fresh.read(r)
    assert maintenance.fsck(fresh).ok


def test_verify_all_on_both_cores_names_a_corrupt_object_in_the_childs_half(
    store: ContentStore,
) -> None:
    from datagit.storage.parallel import PARALLEL_MIN

    keys = sorted(store.put_many(i.to_bytes(4, "little") * 8 for i in range(PARALLEL_MIN + 2)))
    store.verify_all(keys)  # all intact: no error
    victim = keys[-1]  # in the second half, which the forked child checks
    loc = store.index[victim]
    with open(loc.path, "r+b") as f:
        f.seek(loc.offset)
        first = f.read(1)[0]
        f.seek(loc.offset)
        f.write(bytes([first ^ 0xFF]))
    store.invalidate()
    with pytest.raises(CorruptObjectError, match=f"content {victim} is corrupt"):
        store.verify_all(keys)


def test_an_add_whose_helper_finds_everything_stored_adopts_nothing(
    digits_repo,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """A second dataset holding the same images: the forked helper stores nothing and
    writes no pack, and the add must not look for one (it crashed past 20,000 files)."""
    import shutil
    import subprocess
    import sys

    from datagit.api import maintenance
    from datagit.core.config import DatasetConfig

    monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "10")
    digits_repo.commit("digits", all=True)
    packs = digits_repo.dotdir / "content" / "packs"
    before = sorted(packs.iterdir())
    shutil.copytree(digits_repo.workdir / "train", digits_repo.workdir / "copy")
    digits_repo.add_dataset(DatasetConfig(name="copy", layout="imagefolder", path="copy"))
    # In a new process, as from the command line: the helper's pack name holds the pid.
    done = subprocess.run(
        [sys.executable, "-m", "datagit", "commit", "-a", "-m", "same images again"],
        cwd=digits_repo.workdir,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert len(list(digits_repo.records("copy", "HEAD"))) == 300
    assert sorted(packs.iterdir()) == before  # nothing new was stored, by either process
    assert maintenance.fsck(type(digits_repo).open(digits_repo.workdir)).ok
