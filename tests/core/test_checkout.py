"""Checkout plans: only what differs is written; a re-label is a move; corruption refuses early."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest
from testkit import write_tree

from datagit.core.checkout import Plan, apply, plan_dataset, target_path, verify
from datagit.core.config import DatasetConfig
from datagit.core.layouts import render_table
from datagit.core.records import Record
from datagit.errors import CorruptObjectError, InvalidInputError
from datagit.storage.content import ContentStore, address

IMAGES = DatasetConfig("train", "imagefolder", "train")


def img(i: str, label: str, data: bytes) -> Record:
    return Record(i, label, address(data), len(data), source=f"train/{label}/{i}")


def test_target_path() -> None:
    assert target_path(IMAGES, img("sub/a.png", "cat", b"a")) == "train/cat/sub/a.png"
    table = DatasetConfig("t", "table", "d/t.csv", file="p")
    assert target_path(table, Record("a", "x", "0" * 32, 1, source="d/img/a.png")) == "d/img/a.png"


def test_plan_relabel_is_a_move_and_unchanged_is_untouched() -> None:
    now = {"a": img("a", "cat", b"a"), "b": img("b", "cat", b"b"), "c": img("c", "cat", b"c")}
    target = {
        "a": img("a", "cat", b"a"),  # unchanged
        "b": img("b", "dog", b"b"),  # relabel
        "d": img("d", "dog", b"d"),  # added
    }  # c removed
    plan = Plan()
    plan_dataset(plan, IMAGES, now, IMAGES, target, None)
    assert plan.move == {"train/cat/b": ("train/dog/b", address(b"b"))}
    assert plan.write == {"train/dog/d": address(b"d")}
    assert plan.delete == {"train/cat/c"}
    assert plan.tables == {}
    assert plan.size == 3


def test_plan_content_change_is_a_write() -> None:
    plan = Plan()
    plan_dataset(
        plan, IMAGES, {"a": img("a", "cat", b"old")}, IMAGES, {"a": img("a", "cat", b"new")}, None
    )
    assert plan.write == {"train/cat/a": address(b"new")} and not plan.move and not plan.delete


def test_plan_table_rewrites_only_when_bytes_differ() -> None:
    cfg = DatasetConfig("t", "table", "t.csv", content="text")
    recs = {"a": Record("a", "pos", address(b"hi"), 2, text="hi")}
    rendered = render_table(cfg, list(recs.values()))
    same = Plan()
    plan_dataset(same, cfg, recs, cfg, recs, rendered)
    assert same.size == 0
    other = Plan()
    plan_dataset(other, cfg, recs, cfg, {}, rendered)
    assert other.tables == {"t.csv": b"id,label,text\n"}  # the file's header stays (#14)
    gone = Plan()
    plan_dataset(gone, cfg, recs, None, {}, rendered)
    assert gone.delete == {"t.csv"}


def test_a_table_with_the_target_records_keeps_its_own_formatting() -> None:
    """CRLF, another column order, quoting: kept for the same records and for changed ones."""
    cfg = DatasetConfig("t", "table", "t.csv", content="text")
    recs = {"a": Record("a", "pos", address(b"hi"), 2, text="hi")}
    as_written = b'label,"text",id\r\npos,hi,a\r\n'
    same = Plan()
    plan_dataset(same, cfg, recs, cfg, recs, as_written)
    assert same.size == 0
    changed = Plan()
    target = {"a": Record("a", "neg", address(b"hi"), 2, text="hi")}
    plan_dataset(changed, cfg, recs, cfg, target, as_written)
    # changed records keep the file's format too (#14): its header bytes, order, CRLF
    assert changed.tables == {"t.csv": b'label,"text",id\r\nneg,hi,a\r\n'}


def test_verify_refuses_a_corrupt_object_before_any_write(tmp_path: Path) -> None:
    store = ContentStore.init(tmp_path / "content")
    good, bad = store.put_many([b"good bytes", b"bad bytes!"])
    pack = store.packs / "pack-000000.pack"
    raw = bytearray(pack.read_bytes())
    raw[-1] ^= 1
    pack.write_bytes(bytes(raw))
    store.invalidate()
    plan = Plan(write={"train/cat/a": good, "train/cat/b": bad})
    with pytest.raises(CorruptObjectError, match=bad):
        verify(plan, store)


def test_apply_writes_moves_deletes_and_prunes_empty_folders(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    write_tree(ws, {"train/cat/b": b"b", "train/cat/c": b"c", "train/old/x/e": b"e"})
    store = ContentStore.init(tmp_path / "content")
    (d,) = store.put_many([b"d"])
    plan = Plan(
        write={"train/dog/d": d},
        move={"train/cat/b": ("train/dog/b", address(b"b"))},
        delete={"train/cat/c", "train/old/x/e"},
    )
    ino = (ws / "train/cat/b").stat().st_ino
    seen: list[str] = []
    copied = apply(plan, ws, store, lambda path, st, key: seen.append(path))
    assert sorted(p.relative_to(ws).as_posix() for p in ws.rglob("*") if p.is_file()) == [
        "train/dog/b",
        "train/dog/d",
    ]
    assert (ws / "train/dog/b").stat().st_ino == ino  # renamed, not rewritten
    assert not (ws / "train/cat").exists() and not (ws / "train/old").exists()
    assert seen == ["train/dog/b"]  # a move is told; a copy's stat comes back instead
    st = (ws / "train/dog/d").stat()
    assert copied == {"train/dog": array("Q", [st.st_size, st.st_mtime_ns, st.st_ino]).tobytes()}
    assert not list(ws.rglob("*.datagit-tmp"))


def test_apply_refuses_folders_linked_out_of_the_workspace(tmp_path: Path) -> None:
    import os

    ws = tmp_path / "ws"
    write_tree(ws, {"train/dog/keep": b"k", "outside/victim": b"v"})
    os.rename(ws / "outside", tmp_path / "outside")
    os.symlink(tmp_path / "outside", ws / "train/cat")
    store = ContentStore.init(tmp_path / "content")
    (d,) = store.put_many([b"d"])
    plan = Plan(write={"train/dog/new": d, "train/cat/x": d}, delete={"train/cat/victim"})
    with pytest.raises(InvalidInputError, match="train/cat is a symlink"):
        apply(plan, ws, store)
    assert (tmp_path / "outside/victim").exists() and not (ws / "train/dog/new").exists()
