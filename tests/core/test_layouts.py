"""Layouts: image folders and tables (CSV, JSONL; inline text or file paths) become records."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

from datagit.core.config import DatasetConfig
from datagit.core.folderread import read_folders
from datagit.core.folderscan import scan_changes
from datagit.core.layouts import (
    Hasher,
    list_imagefolder,
    render_table,
    scan,
    workspace_missing,
)
from datagit.errors import InvalidInputError
from datagit.storage.content import ContentStore, address
from datagit.storage.statcache import StatCache
from datagit.storage.stattable import StatTable

IMAGES = DatasetConfig("train", "imagefolder", "train")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    return tmp_path / "ws"


def hasher(ws: Path, store: ContentStore | None = None) -> Hasher:
    cache = StatCache(ws.parent / "index.sqlite")
    return Hasher(ws, cache, store.writer() if store else None)


def test_imagefolder_ids_labels_and_addresses(ws: Path) -> None:
    pngs = digits_pngs(6)
    write_tree(ws, {f"train/{t}/sub/img_{i}.png": png for i, (png, t) in enumerate(pngs)})
    (ws / "train" / ".DS_Store").write_bytes(b"ignored")
    recs = {r.id: r for r in scan(IMAGES, hasher(ws))}
    assert set(recs) == {f"sub/img_{i}.png" for i in range(6)}
    for i, (png, t) in enumerate(pngs):
        r = recs[f"sub/img_{i}.png"]
        assert (r.label, r.content, r.size) == (str(t), address(png), len(png))


def test_imagefolder_include_filter_and_writer(ws: Path, tmp_path: Path) -> None:
    write_tree(ws, {"train/cat/a.png": b"a", "train/dog/b.png": b"b"})
    store = ContentStore.init(tmp_path / "content")
    h = hasher(ws, store)
    recs = scan(IMAGES, h, lambda p: p.startswith("train/cat/"))
    h.writer.flush()  # type: ignore[union-attr]
    assert [r.id for r in recs] == ["a.png"]
    assert ContentStore(store.root).read(address(b"a")) == b"a"
    assert not ContentStore(store.root).has(address(b"b"))


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"train/cat/x.png": b"1", "train/dog/x.png": b"2"}, "'x.png' is given by both"),
        ({"train/cat/dog/x.png": b"1", "train/dog/y.png": b"2"}, "nested inside class folder"),
        ({"train/x.png": b"1", "train/dog/x.png": b"2"}, "'x.png' is given by both"),
    ],
)
def test_imagefolder_bad_trees(ws: Path, files: dict[str, bytes], match: str) -> None:
    write_tree(ws, files)
    with pytest.raises(InvalidInputError, match=match):
        scan(IMAGES, hasher(ws))


def test_a_file_outside_class_folders_is_an_unlabelled_example(ws: Path) -> None:
    write_tree(ws, {"train/loose.png": b"1", "train/cat/a.png": b"a"})
    recs = {r.id: r for r in scan(IMAGES, hasher(ws))}
    assert recs["loose.png"].label is None and recs["a.png"].label == "cat"
    records, stats = read_folders(IMAGES, hasher(ws))
    assert sorted((r.id, r.label) for r in records) == [("a.png", "cat"), ("loose.png", None)]
    assert set(stats) == {"train/loose.png", "train/cat/a.png"}


def test_a_missing_image_folder_is_an_empty_dataset(ws: Path) -> None:
    """Declared before its data exists, or deleted to remove every example: like git's
    deleted directory, not an error."""
    assert workspace_missing(IMAGES, ws)
    assert scan(IMAGES, hasher(ws)) == []
    assert list_imagefolder(IMAGES, ws) == {}
    assert scan_changes(IMAGES, ws, StatTable(), limit=0)[:2] == ({}, [])
    records, table = read_folders(IMAGES, hasher(ws))
    assert records == [] and dict(table) == {}
    (ws / "train").mkdir()
    assert not workspace_missing(IMAGES, ws) and scan(IMAGES, hasher(ws)) == []


def test_an_image_folder_path_that_is_a_file_is_refused(ws: Path) -> None:
    (ws / "train").write_bytes(b"not a folder")
    for listing in (
        lambda: scan(IMAGES, hasher(ws)),
        lambda: scan_changes(IMAGES, ws, StatTable(), 0),
    ):
        with pytest.raises(InvalidInputError, match="dataset train: train is not a folder"):
            listing()


def test_a_dataset_folder_linked_outside_is_refused_even_when_its_target_is_gone(
    ws: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", ws / "train")
    with pytest.raises(InvalidInputError, match=r"train is a symlink to .*outside"):
        scan(IMAGES, hasher(ws))
    (tmp_path / "elsewhere").rmdir()  # dangling: the link is still there, still refused
    assert not workspace_missing(IMAGES, ws)
    with pytest.raises(InvalidInputError, match=r"train is a symlink to .*outside"):
        scan(IMAGES, hasher(ws))


def test_symlinks_inside_are_fine_outside_are_refused(ws: Path, tmp_path: Path) -> None:
    write_tree(ws, {"train/cat/a.png": b"a", "other/b.png": b"b"})
    os.symlink(ws / "other" / "b.png", ws / "train" / "cat" / "b.png")
    assert {r.id for r in scan(IMAGES, hasher(ws))} == {"a.png", "b.png"}
    (tmp_path / "secret.png").write_bytes(b"s")
    os.symlink(tmp_path / "secret.png", ws / "train" / "cat" / "s.png")
    with pytest.raises(InvalidInputError, match=r"train/cat/s\.png is a symlink to .*outside"):
        scan(IMAGES, hasher(ws))


def test_hasher_uses_the_stat_cache(ws: Path) -> None:
    write_tree(ws, {"train/cat/a.png": b"a"})
    path = ws / "train/cat/a.png"
    past = path.stat().st_mtime_ns - 10**9
    os.utime(path, ns=(past, past))
    first = hasher(ws)
    scan(IMAGES, first)
    first.cache.save()
    assert first.hashed == 1
    second = hasher(ws)
    scan(IMAGES, second)
    assert second.hashed == 0


# -- tables ------------------------------------------------------------------
def test_csv_inline_text_with_annotator_and_extra_fields(ws: Path) -> None:
    cfg = DatasetConfig(
        "reviews", "table", "reviews.csv", id="rid", label="y", content="text", annotator="who"
    )
    write_tree(
        ws,
        {"reviews.csv": 'rid,y,text,who,lang\nr1,pos,"good, really",ann,en\nr2,,meh,,fr\n'},
    )
    r1, r2 = sorted(scan(cfg, hasher(ws)), key=lambda r: r.id)
    assert (r1.label, r1.text, r1.annotator, r1.fields) == (
        "pos",
        "good, really",
        "ann",
        {"lang": "en"},
    )
    assert r1.content == address(b"good, really") and r1.size == len("good, really")
    assert (r2.label, r2.annotator) == (None, None)


def test_jsonl_with_json_labels(ws: Path) -> None:
    cfg = DatasetConfig("t", "table", "data/t.jsonl", content="text")
    rows = [{"id": 1, "label": [1, 2], "text": "a"}, {"id": "b", "label": 3, "text": "b"}]
    write_tree(ws, {"data/t.jsonl": "\n".join(json.dumps(r) for r in rows) + "\n\n"})
    recs = {r.id: r for r in scan(cfg, hasher(ws))}
    assert recs["1"].label == [1, 2] and recs["b"].label == 3


def test_table_file_column_reads_files_relative_to_the_table(ws: Path) -> None:
    pngs = digits_pngs(3)
    files: dict[str, bytes | str] = {f"d/img/{i}.png": png for i, (png, _) in enumerate(pngs)}
    files["d/labels.csv"] = "id,label,path\n" + "".join(
        f"e{i},{t},img/{i}.png\n" for i, (_, t) in enumerate(pngs)
    )
    write_tree(ws, files)
    cfg = DatasetConfig("d", "table", "d/labels.csv", file="path")
    recs = {r.id: r for r in scan(cfg, hasher(ws))}
    for i, (png, t) in enumerate(pngs):
        assert recs[f"e{i}"].content == address(png)
        assert recs[f"e{i}"].source == f"d/img/{i}.png"
        assert recs[f"e{i}"].label == str(t)
        assert recs[f"e{i}"].text is None


@pytest.mark.parametrize(
    ("path", "body", "cfg_kw", "match"),
    [
        ("t.csv", "id,label\na,1\nb,2,3\n", {}, "t.csv line 3: expected 2 fields, got 3"),
        ("t.csv", 'id,label\na,1\nb,"unclosed\n', {}, r"t.csv line \d+: malformed CSV"),
        (
            "t.csv",
            "id,label\na,1\nb,2\na,3\n",
            {},
            "t.csv line 4: duplicate id 'a' .first on line 2",
        ),
        ("t.csv", "key,label\na,1\n", {}, "t.csv line 2: no 'id' column"),
        ("t.csv", "id,label\n../x,1\n", {}, "t.csv line 2: id '../x' contains '..'"),
        ("t.csv", "id,label\n/x,1\n", {}, "t.csv line 2: id '/x' is an absolute path"),
        ("t.jsonl", '{"id": "a"}\n{"id": \n', {}, "t.jsonl line 2: malformed JSON"),
        ("t.jsonl", '{"id": "a"}\n[1]\n', {}, "t.jsonl line 2: expected a JSON object"),
        ("t.jsonl", '{"id": "a\\nb"}\n', {}, "t.jsonl line 1: id 'a\\\\nb' contains a newline"),
        ("t.jsonl", '{"id": "a\\u0000b"}\n', {}, "t.jsonl line 1: id .* contains a NUL"),
        (
            "t.csv",
            "id,label,f\na,1,missing.png\n",
            {"file": "f"},
            "t.csv line 2: cannot read missing.png",
        ),
        ("t.csv", "id,label,f\na,1,../x.png\n", {"file": "f"}, "t.csv line 2: id '../x.png'"),
        ("t.csv", "id,label,f\na,1,\n", {"file": "f"}, "t.csv line 2: empty 'f' path"),
        ("t.csv", b"id,label\na,\xff\n", {}, "t.csv: not UTF-8"),
    ],
)
def test_bad_tables_name_file_and_line(
    ws: Path, path: str, body: str | bytes, cfg_kw: dict[str, str], match: str
) -> None:
    write_tree(ws, {path: body})
    with pytest.raises(InvalidInputError, match=match) as exc:
        scan(DatasetConfig("t", "table", path, **cfg_kw), hasher(ws))
    assert "\n" not in str(exc.value)


def test_a_missing_table_is_an_empty_dataset(ws: Path) -> None:
    cfg = DatasetConfig("t", "table", "data/t.csv")
    assert workspace_missing(cfg, ws) and scan(cfg, hasher(ws)) == []
    write_tree(ws, {"data": b"a file where the table's folder should be"})
    with pytest.raises(InvalidInputError, match=r"cannot read data/t\.csv: Not a directory"):
        scan(cfg, hasher(ws))


@pytest.mark.parametrize(
    "cfg",
    [
        DatasetConfig("t", "table", "t.csv", id="k", label="y", content="text", annotator="who"),
        DatasetConfig("t", "table", "t.jsonl", content="text", annotator="who"),
        DatasetConfig("t", "table", "t.csv"),
    ],
    ids=["csv-inline", "jsonl-inline", "csv-fields-only"],
)
def test_render_then_scan_round_trips(ws: Path, cfg: DatasetConfig) -> None:
    header = f"{cfg.id},{cfg.label}" + (",text,who" if cfg.content else "") + ",lang\n"
    rows = "".join(
        f"r{i},{'pos' if i % 2 else 'neg'}"
        + (f",txt {i},ann{i % 3}" if cfg.content else "")
        + f",l{i}\n"
        for i in range(20)
    )
    if cfg.table_format == "jsonl":
        keys = header.strip().split(",")
        body = "".join(
            json.dumps(dict(zip(keys, r.split(","), strict=True))) + "\n"
            for r in rows.strip().split("\n")
        )
    else:
        body = header + rows
    write_tree(ws, {cfg.path: body})
    recs = scan(cfg, hasher(ws))
    (ws / cfg.path).write_bytes(render_table(cfg, recs))
    again = scan(cfg, hasher(ws))
    assert sorted(again, key=lambda r: r.id) == sorted(recs, key=lambda r: r.id)


def test_render_file_column_relative_to_table(ws: Path) -> None:
    write_tree(ws, {"d/img/a.png": b"a", "d/t.csv": "id,label,p\na,cat,img/a.png\n"})
    cfg = DatasetConfig("d", "table", "d/t.csv", file="p")
    recs = scan(cfg, hasher(ws))
    assert render_table(cfg, recs) == b"id,label,p\na,cat,img/a.png\n"
    assert render_table(cfg, []) == b"id,label\n"
