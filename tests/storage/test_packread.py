"""storage/packread.py: whole packed objects read in Python, anything doubtful left to libgit2."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pygit2
import pytest

from datagit.errors import CorruptObjectError
from datagit.storage.git import GitStore, hash_blob
from datagit.storage.gitpack import Data, object_id, tree_bytes, write_pack
from datagit.storage.packread import PackReader


def _shards(n: int) -> list[bytes]:
    rng = random.Random(n)
    return [
        b"".join(
            b'{"id":"r%08d","label":"c%d","content":"%032x","size":2}\n'
            % (k, rng.randrange(10), rng.getrandbits(128))
            for k in range(rng.randrange(1, 300))
        )
        for _ in range(n)
    ]


def _packed(tmp_path: Path, blobs: list[bytes]) -> tuple[GitStore, dict[str, bytes]]:
    git = GitStore.init(tmp_path / "g.git")
    objects: dict[str, tuple[str, Data]] = {hash_blob(b): ("blob", b) for b in blobs}
    tree = tree_bytes([(f"s{i}", False, oid) for i, oid in enumerate(objects)])
    objects[object_id("tree", tree)] = ("tree", tree)
    write_pack(git.path / "objects" / "pack", objects)
    return git, {oid: bytes(body) for oid, (_, body) in objects.items()}


def test_reads_every_object_as_libgit2_does(tmp_path: Path) -> None:
    git, objects = _packed(tmp_path, [*_shards(40), b"", b"x" * 100_000])
    reader = PackReader(git.path / "objects")
    odb = pygit2.Repository(str(git.path)).odb
    for oid, body in objects.items():
        got = reader.read(oid)
        assert got is not None
        kind, data = got
        assert data == body == bytes(odb.read(oid)[1])
        assert kind == ("tree" if oid not in map(hash_blob, objects.values()) else "blob")


def test_an_unknown_or_malformed_id_is_none(tmp_path: Path) -> None:
    git, _ = _packed(tmp_path, _shards(3))
    reader = PackReader(git.path / "objects")
    assert reader.read(hash_blob(b"never stored")) is None
    assert reader.read("not hex") is None
    assert reader.read("ab" * 19) is None


def test_packs_written_later_are_seen_after_refresh(tmp_path: Path) -> None:
    git, _ = _packed(tmp_path, _shards(2))
    reader = PackReader(git.path / "objects")
    late = b"written after the first look"
    assert reader.read(hash_blob(late)) is None
    write_pack(git.path / "objects" / "pack", {hash_blob(late): ("blob", late)})
    assert reader.read(hash_blob(late)) is None  # not listed yet: libgit2 finds it
    reader.refresh()
    assert reader.read(hash_blob(late)) == ("blob", late)


def test_deltas_are_left_to_libgit2_and_still_read(tmp_path: Path) -> None:
    """git's own repack stores similar blobs as deltas: those are libgit2's to read."""
    base = b"".join(b"line %d of a long shard\n" % i for i in range(2000))
    blobs = [base + b"edit %d\n" % k for k in range(6)]
    git, _ = _packed(tmp_path, blobs)
    subprocess.run(["git", "--git-dir", str(git.path), "repack", "-adfkq"], check=True)
    reader = PackReader(git.path / "objects")
    answers = [reader.read(hash_blob(b)) for b in blobs]
    assert None in answers  # some are deltas now
    assert all(a is None or a == ("blob", b) for a, b in zip(answers, blobs, strict=True))
    fresh = GitStore.open(git.path)
    assert [fresh.read_blob(hash_blob(b)) for b in blobs] == blobs


def test_an_entry_that_is_not_its_id_is_none_and_the_store_refuses_it(tmp_path: Path) -> None:
    git = GitStore.init(tmp_path / "g.git")
    wanted = hash_blob(b"the real bytes")
    write_pack(git.path / "objects" / "pack", {wanted: ("blob", b"forged bytes!!")})
    assert PackReader(git.path / "objects").read(wanted) is None
    with pytest.raises(CorruptObjectError, match=wanted):
        GitStore.open(git.path).read_blob(wanted)


@pytest.mark.parametrize("where", ["header", "stream", "truncated"])
def test_a_damaged_pack_is_none_and_the_store_names_the_pack(tmp_path: Path, where: str) -> None:
    body = b"".join(_shards(1)) * 4
    oid = hash_blob(body)
    git = GitStore.init(tmp_path / "g.git")
    pack = write_pack(git.path / "objects" / "pack", {oid: ("blob", body)})
    raw = bytearray(pack.read_bytes())
    if where == "header":
        raw[12] = (raw[12] & 0x8F) | (6 << 4)  # now claims to be a delta
    elif where == "stream":
        raw[40] ^= 0xFF
    else:
        raw = raw[:60] + raw[-20:]
    pack.chmod(0o644)
    pack.write_bytes(bytes(raw))
    assert PackReader(git.path / "objects").read(oid) is None
    with pytest.raises(CorruptObjectError, match=oid):
        GitStore.open(git.path).read_blob(oid)


def test_a_batch_pack_reads_back_in_the_store_that_wrote_it(tmp_path: Path) -> None:
    """What a commit does: a batch is flushed as a pack, then read back by the same store
    (whose reader listed the packs before this one existed, and is told of it)."""
    git = GitStore.init(tmp_path / "g.git")
    first = _shards(20)
    with git.batch():
        old = [git.write_blob(b) for b in first]
    assert git.read_blob(old[0]) == first[0]  # the packs are listed now
    blobs = _shards(30)
    with git.batch():
        ids = [git.write_blob(b) for b in blobs]
    assert [git.read_blob(i) for i in ids] == blobs
    reader = PackReader(git.path / "objects")
    assert [reader.read(i) for i in ids] == [("blob", b) for b in blobs]
    subprocess.run(["git", "--git-dir", str(git.path), "fsck", "--full"], check=True)
