"""folderscan: an image folder compared with its packed snapshot, folder by folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from testkit import write_tree

from datagit.core.config import DatasetConfig
from datagit.core.folderscan import scan_changes
from datagit.errors import InvalidInputError
from datagit.storage import parallel
from datagit.storage.statcache import RACY_NS
from datagit.storage.stattable import StatTable

IMAGES = DatasetConfig("train", "imagefolder", "train")
FILES = {
    "train/cat/1.png": b"one",
    "train/cat/2.png": b"two",
    "train/dog/3.png": b"three",
    "train/dog/sub/4.png": b"four",
    "train/5.png": b"loose",
}
NEVER = 1 << 62  # a limit far in the future: no mtime reaches it, no entry is racy
ALWAYS = -(1 << 62)  # a limit in the past: every entry is racy


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    write_tree(tmp_path / "ws", FILES)
    return tmp_path / "ws"


def snapshot_of(ws: Path) -> StatTable:
    """The workspace's table as a fresh snapshot would hold it (packed, nothing decoded)."""
    first = scan_changes(IMAGES, ws, StatTable(), NEVER)
    assert sorted(first.changed) == sorted(FILES) and not first.gone
    return StatTable.decode(first.now.encode())  # type: ignore[arg-type]


def test_an_unchanged_folder_is_compared_without_decoding_it(ws: Path) -> None:
    table = snapshot_of(ws)
    got = scan_changes(IMAGES, ws, table, NEVER)
    assert got.changed == {} and got.gone == [] and not got.reordered
    assert not table.open and not got.now.open  # bytes compared, no entry decoded
    assert dict(got.now) == dict(table)


def test_changes_moves_additions_and_deletions_are_found(ws: Path) -> None:
    table = snapshot_of(ws)
    os.replace(ws / "train/cat/1.png", ws / "train/dog/1.png")  # a re-label: same stat
    (ws / "train/cat/2.png").write_bytes(b"two, longer")
    (ws / "train/dog/sub/4.png").unlink()
    (ws / "train/dog/sub/new.png").write_bytes(b"new")
    got = scan_changes(IMAGES, ws, table, NEVER)
    assert set(got.changed) == {"train/dog/1.png", "train/cat/2.png", "train/dog/sub/new.png"}
    assert sorted(got.gone) == ["train/cat/1.png", "train/dog/sub/4.png"]
    assert table["train/cat/1.png"] == got.changed["train/dog/1.png"]  # the move kept its stat
    assert "train/5.png" not in got.changed and got.now["train/5.png"] == table["train/5.png"]


def test_a_removed_folder_takes_its_files_with_it(ws: Path) -> None:
    table = snapshot_of(ws)
    for name in ("4.png",):
        (ws / "train/dog/sub" / name).unlink()
    (ws / "train/dog/sub").rmdir()
    got = scan_changes(IMAGES, ws, table, NEVER)
    assert got.gone == ["train/dog/sub/4.png"] and got.changed == {}


def test_a_folder_listed_in_another_order_is_worth_resaving(ws: Path) -> None:
    listed = list(snapshot_of(ws).items())
    table = StatTable.decode(StatTable.from_items(reversed(listed)).encode())  # type: ignore[arg-type]
    got = scan_changes(IMAGES, ws, table, NEVER)
    assert got.changed == {} and got.gone == [] and got.reordered
    again = scan_changes(IMAGES, ws, StatTable.decode(got.now.encode()), NEVER)  # type: ignore[arg-type]
    assert not again.reordered and not again.changed


def test_racy_entries_count_as_changed(ws: Path) -> None:
    table = snapshot_of(ws)
    assert sorted(scan_changes(IMAGES, ws, table, ALWAYS).changed) == sorted(FILES)
    old = time.time_ns() - 10 * RACY_NS
    os.utime(ws / "train/cat/1.png", ns=(old, old))
    table = snapshot_of(ws)
    limit = time.time_ns() - 5 * RACY_NS  # only 1.png was written before this
    assert "train/cat/1.png" not in scan_changes(IMAGES, ws, table, limit).changed


def test_a_twin_id_in_another_class_folder_is_refused(ws: Path) -> None:
    table = snapshot_of(ws)
    (ws / "train/dog/2.png").write_bytes(b"twin")
    with pytest.raises(InvalidInputError, match=r"id '2\.png' is given by both"):
        scan_changes(IMAGES, ws, table, NEVER)
    (ws / "train/dog/2.png").unlink()
    (ws / "train/cat/5.png").write_bytes(b"twin of a loose file")
    with pytest.raises(InvalidInputError, match=r"id '5\.png' is given by both"):
        scan_changes(IMAGES, ws, table, NEVER)


def test_layout_rules_hold_in_the_bulk_scan(ws: Path, tmp_path: Path) -> None:
    table = snapshot_of(ws)
    (ws / "train/dog/cat").mkdir()
    with pytest.raises(InvalidInputError, match="train/dog/cat/ is a class folder nested"):
        scan_changes(IMAGES, ws, table, NEVER)
    (ws / "train/dog/cat").rmdir()
    (tmp_path / "outside.png").write_bytes(b"x")
    os.symlink(tmp_path / "outside.png", ws / "train/cat/link.png")
    with pytest.raises(InvalidInputError, match=r"train/cat/link\.png is a symlink to .*outside"):
        scan_changes(IMAGES, ws, table, NEVER)
    (ws / "train/cat/link.png").unlink()
    os.mkfifo(ws / "train/dog/pipe.png")
    with pytest.raises(InvalidInputError, match=r"train/dog/pipe\.png is a FIFO"):
        scan_changes(IMAGES, ws, table, NEVER)
    (ws / "train/dog/pipe.png").unlink()
    (ws / "train/cat/bad\\name.png").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="bad"):
        scan_changes(IMAGES, ws, table, NEVER)


def test_a_link_inside_the_workspace_is_an_example_and_ignored_files_are_not(ws: Path) -> None:
    table = snapshot_of(ws)
    os.symlink(ws / "train/cat/1.png", ws / "train/dog/linked.png")
    (ws / "train/cat/README.txt").write_text("notes")
    (ws / ".datagitignore").write_text("README*\n")
    got = scan_changes(IMAGES, ws, table, NEVER)
    assert list(got.changed) == ["train/dog/linked.png"]
    assert got.changed["train/dog/linked.png"] == table["train/cat/1.png"]  # the target's stat


def test_the_forked_helper_finds_the_same(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = snapshot_of(ws)
    (ws / "train/cat/2.png").write_bytes(b"changed bytes")
    os.replace(ws / "train/dog/3.png", ws / "train/cat/3.png")
    alone = scan_changes(IMAGES, ws, table, NEVER)
    monkeypatch.setattr(parallel, "PARALLEL_MIN", 2)
    helped = scan_changes(IMAGES, ws, StatTable.decode(table.encode()), NEVER)  # type: ignore[arg-type]
    assert helped.changed == alone.changed and helped.gone == alone.gone
    assert dict(helped.now) == dict(alone.now)


def test_a_file_dated_before_1970_keeps_its_folder_unpacked(ws: Path) -> None:
    os.utime(ws / "train/cat/1.png", ns=(-(10**9), -(10**9)))
    table = snapshot_of(ws)
    assert "train/cat" in table.open and table["train/cat/1.png"][1] == -(10**9)
    again = scan_changes(IMAGES, ws, table, NEVER)
    assert again.changed == {} and again.gone == [] and not again.reordered
    (ws / "train/cat/2.png").write_bytes(b"changed")
    assert list(scan_changes(IMAGES, ws, table, NEVER).changed) == ["train/cat/2.png"]
