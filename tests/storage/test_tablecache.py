"""The line map file: numpy arrays behind a checksummed head; anything else reads as absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datagit.storage.tablecache import (
    LINEMAP_MAGIC,
    TableCache,
    TableState,
    decode_line_map,
    encode_line_map,
    make_line_map,
    pack_line_map,
)


def sample() -> tuple[TableState, object]:
    lines = [b"a,x", b"b,y", b"", b"c,z\r", b""]
    lm = make_line_map("d" * 32, b"id,label", lines, [b"a", b"b", b"", b"c", b""])
    state = TableState("t" * 40, "{}", 1, {"t.csv": (1, 2, 3)}, "d" * 32, None, True)
    return state, lm


def test_a_line_map_round_trips(tmp_path: Path) -> None:
    state, lm = sample()
    cache = TableCache(tmp_path / "cache")
    cache.save("t", state, lm)  # type: ignore[arg-type]
    got = cache.load_lines("t", "d" * 32)
    assert got is not None
    assert got.ids == b"a\nb\n\nc\n" and got.header == b"id,label"
    assert np.array_equal(got.hashes, lm.hashes) and got.hashes.shape == (5, 2)  # type: ignore[attr-defined]
    assert sorted(got.keys.tolist()) == got.keys.tolist() and len(got.keys) == 3
    assert got.id_list() == [b"a", b"b", b"", b"c", b""]
    assert cache.load_lines("t", "e" * 32) is None  # a map of another file
    assert cache.load("t") == state


def test_a_truncated_damaged_or_foreign_file_is_no_map() -> None:
    _, lm = sample()
    data = b"".join(encode_line_map(lm))  # type: ignore[arg-type]
    assert decode_line_map(data) is not None
    assert decode_line_map(data[:-1]) is None
    assert decode_line_map(data + b"x") is None
    flipped = bytearray(data)
    flipped[-3] ^= 0x20
    assert decode_line_map(bytes(flipped)) is None  # the checksum
    assert decode_line_map(LINEMAP_MAGIC + b"{not json\n") is None
    assert decode_line_map(LINEMAP_MAGIC + b'{"lines": -1}\n') is None
    assert decode_line_map(b"\xfb\x04") is None  # version 1 (marshal)


def test_an_empty_table_has_an_empty_map(tmp_path: Path) -> None:
    lm = make_line_map("d" * 32, b"", [b""], [b""])
    got = decode_line_map(b"".join(encode_line_map(lm)))
    assert got is not None and got.id_list() == [b""] and len(got.keys) == 0


def test_a_packed_line_map_is_the_same_file_made_without_numpy(tmp_path: Path) -> None:
    """What a checkout saves (`pack_line_map`) is byte for byte `make_line_map`'s file,
    and `load_ids` reads its ids back (None for a damaged file or another file's map)."""
    lines = [b"a,x", b"b,y", b"", b"c,z\r", b""]
    ids = [b"a", b"b", b"", b"c", b""]
    packed = pack_line_map("d" * 32, b"id,label", lines, ids)
    assert b"".join(encode_line_map(packed)) == b"".join(
        encode_line_map(make_line_map("d" * 32, b"id,label", lines, ids))
    )
    state, _ = sample()
    cache = TableCache(tmp_path / "cache")
    cache.save("t", state, packed)
    assert cache.load_ids("t", "d" * 32) == (b"id,label", ids, packed.keys)
    same = pack_line_map("d" * 32, b"id,label", lines, ids, packed.keys)
    assert encode_line_map(same) == encode_line_map(packed)
    assert cache.load_ids("t", "e" * 32) is None
    path = tmp_path / "cache" / "table-t.linemap"
    data = path.read_bytes()
    path.write_bytes(data[:-3] + b"zzz")
    assert cache.load_ids("t", "d" * 32) is None


def test_a_table_copy_is_checked_by_its_address_and_goes_with_its_map(tmp_path: Path) -> None:
    import xxhash

    state, lm = sample()
    cache = TableCache(tmp_path / "cache")
    data = b"PAR1 some table bytes PAR1"
    digest = xxhash.xxh3_128_hexdigest(data)
    cache.save_copy("t", data)
    assert cache.load_copy("t", digest) == data
    assert cache.load_copy("t", "e" * 32) is None  # a copy of another file
    path = tmp_path / "cache" / "table-t.copy"
    raw = path.read_bytes()
    path.write_bytes(raw[:-1] + b"X")  # damaged: its bytes no longer have its address
    assert cache.load_copy("t", digest) is None
    path.write_bytes(b"datagit-tablecopy 0\n" + raw[len(b"datagit-tablecopy 1\n") :])
    assert cache.load_copy("t", digest) is None  # another format
    cache.save_copy("t", data)
    cache.save("t", state, lm)  # type: ignore[arg-type]
    assert not path.exists()  # a saved map replaces the copy
    cache.save_copy("t", data)
    cache.drop("t")
    assert not path.exists()
    TableCache(tmp_path / "cache", readonly=True).save_copy("t", data)
    assert not path.exists()  # a reader keeps nothing
