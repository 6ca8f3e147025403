"""StatTable and the v3 snapshot: folders packed as names + uint64 stats, read back,
edited as a mapping, and damaged or older snapshots discarded or converted."""

from __future__ import annotations

import marshal
from pathlib import Path
from typing import Any

import xxhash

from datagit.storage import stattable
from datagit.storage.statcache import Snapshots
from datagit.storage.stattable import StatTable

STATS = {
    "train/cat/1.png": (10, 1_000, 7),
    "train/cat/2.png": (11, 2_000, 8),
    "train/dog/a/3.png": (12, 3_000, 2**63 + 5),  # an overlayfs-sized inode fits a uint64
    "train/4.png": (13, 4_000, 9),
}


def test_a_table_round_trips_through_its_packed_folders() -> None:
    table = StatTable.from_items(STATS.items())
    encoded = table.encode()
    assert set(encoded) == {"train/cat", "train/dog/a", "train"}
    assert all(stattable.well_formed(f) for f in encoded.values())
    back = StatTable.decode(encoded)  # type: ignore[arg-type]
    assert back.packed and not back.open  # nothing decoded until a path is asked for
    assert dict(back.items()) == STATS and len(back) == 4
    assert list(StatTable.decode(encoded).keys())[:2] == ["train/cat/1.png", "train/cat/2.png"]


def test_a_table_is_a_mapping_decoding_only_the_folders_touched() -> None:
    table = StatTable.decode(StatTable.from_items(STATS.items()).encode())  # type: ignore[arg-type]
    assert table["train/cat/2.png"] == (11, 2_000, 8)
    assert set(table.open) == {"train/cat"}
    assert "train/dog/a/3.png" in table and "train/dog/a/9.png" not in table
    assert "train/none/1.png" not in table and table.get("train/none/1.png") is None
    table["train/dog/b/5.png"] = (1, 2, 3)
    del table["train/cat/1.png"]
    assert sorted(table.under("train/dog/")) == ["train/dog/a/3.png", "train/dog/b/5.png"]
    assert sorted(table.under("train/cat/")) == ["train/cat/2.png"]
    assert dict(StatTable.decode(table.encode())) == {  # type: ignore[arg-type]
        "train/cat/2.png": (11, 2_000, 8),
        "train/dog/a/3.png": (12, 3_000, 2**63 + 5),
        "train/dog/b/5.png": (1, 2, 3),
        "train/4.png": (13, 4_000, 9),
    }


def test_racy_entries_open_only_folders_whose_newest_mtime_says_so() -> None:
    table = StatTable.decode(StatTable.from_items(STATS.items()).encode())  # type: ignore[arg-type]
    assert sorted(table.racy(2_500)) == [
        ("train/4.png", (13, 4_000, 9)),
        ("train/dog/a/3.png", (12, 3_000, 2**63 + 5)),
    ]
    assert "train/cat" not in table.open  # its newest mtime (2,000) is settled


def test_a_file_dated_before_1970_keeps_its_folder_as_a_dict() -> None:
    table = StatTable.from_items([("train/cat/old.png", (1, -5, 2)), *STATS.items()])
    encoded = table.encode()
    assert isinstance(encoded["train/cat"], dict)
    assert dict(StatTable.decode(encoded).items())["train/cat/old.png"] == (1, -5, 2)


def test_ill_formed_folders_are_recognised() -> None:
    good = stattable.pack_dict({"a": (1, 2, 3), "b": (4, 5, 6)})
    assert good is not None and stattable.well_formed(good)
    assert not stattable.well_formed((good[0], good[1][:-1], good[2]))  # a stat short
    assert not stattable.well_formed(("a\0b\0c", good[1], good[2]))  # a name too many
    assert not stattable.well_formed((good[0], good[1]))
    assert not stattable.well_formed(("a", 5, 1))
    assert stattable.well_formed(stattable.pack_dict({})) and stattable.unpack(("", b"", 0)) == {}


def test_snapshots_save_and_load_v3(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path)
    snaps.save("train", "tree1", 123, STATS, "tok")
    raw = (tmp_path / "snapshot-train.marshal").read_bytes()
    assert raw.startswith(b"DGSNAP3\n")
    snap = snaps.load("train")
    assert snap is not None and (snap.tree, snap.taken, snap.token) == ("tree1", 123, "tok")
    assert isinstance(snap.stats, StatTable) and dict(snap.stats) == STATS
    snaps.save("train", "tree2", 124, snap.stats)  # a table saves as it is
    again = snaps.load("train")
    assert again is not None and again.tree == "tree2" and dict(again.stats) == STATS


def test_a_v2_snapshot_is_read_as_a_table(tmp_path: Path) -> None:
    body = marshal.dumps(("tree1", 123, STATS, None))
    path = tmp_path / "snapshot-train.marshal"
    path.write_bytes(b"DGSNAP2\n" + xxhash.xxh3_64_digest(body) + body)
    snap = Snapshots(tmp_path).load("train")
    assert snap is not None and isinstance(snap.stats, StatTable) and dict(snap.stats) == STATS
    path.write_bytes(body)  # older still: no header, checked entry by entry
    snap = Snapshots(tmp_path).load("train")
    assert snap is not None and dict(snap.stats) == STATS


def _write_v3(path: Path, folders: dict[Any, Any]) -> None:
    body = marshal.dumps(("tree1", 123, folders, None))
    path.write_bytes(b"DGSNAP3\n" + xxhash.xxh3_64_digest(body) + body)


def test_a_damaged_or_ill_formed_v3_snapshot_is_discarded(tmp_path: Path) -> None:
    snaps = Snapshots(tmp_path)
    path = tmp_path / "snapshot-train.marshal"
    snaps.save("train", "tree1", 123, STATS)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # the checksum no longer matches
    path.write_bytes(bytes(data))
    assert snaps.load("train") is None and not path.exists()
    good = stattable.pack_dict({"1.png": (1, 2, 3)})
    assert good is not None
    for folders in (
        {"train/cat": (good[0], good[1] + b"x", good[2])},  # a checksum over a bad shape
        {"train/cat": {"1.png": (1, "2", 3)}},
        {5: good},
        {"train/cat": "nonsense"},
    ):
        _write_v3(path, folders)
        assert snaps.load("train") is None and not path.exists()
    _write_v3(path, {"train/cat": good, "train/dog": {"2.png": (4, 5, 6)}})
    snap = snaps.load("train")
    assert snap is not None and dict(snap.stats) == {
        "train/cat/1.png": (1, 2, 3),
        "train/dog/2.png": (4, 5, 6),
    }


def test_a_read_only_reader_leaves_a_damaged_snapshot_in_place(tmp_path: Path) -> None:
    path = tmp_path / "snapshot-train.marshal"
    _write_v3(path, {"train/cat": "nonsense"})
    assert Snapshots(tmp_path, readonly=True).load("train") is None and path.exists()
