"""rm and mv for examples: the workspace changes and the change is staged (#14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_undo_cli import PNGS, relabel, state, status, where
from testkit import Cli, write_tree


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def dg(ws: Path) -> Cli:
    """30 digits in train/ and a three-row CSV table, committed."""
    Cli(ws.parent)("init", "ws")
    run = Cli(ws)
    run("dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(PNGS)})
    (ws / "reviews.csv").write_bytes(b"text,rid,y\r\ngreat,r1,pos\r\nmeh,r2,neg\r\nok,r3,pos\r\n")
    run(
        "dataset",
        "add",
        "reviews",
        "--layout",
        "table",
        "--path",
        "reviews.csv",
        "--id",
        "rid",
        "--label",
        "y",
        "--content",
        "text",
    )
    run("commit", "-a", "-m", "digits and reviews")
    return run


def test_rm_files_rows_and_cached(dg: Cli, ws: Path) -> None:
    t1 = where(ws, 1)
    assert dg("rm", f"train/{t1}/img_001.png").stdout == "rm 'train/img_001.png'\n"
    assert not list(ws.glob("train/*/img_001.png"))
    dg("rm", "train/img_002.png")  # DATASET/ID works as well
    dg("rm", "reviews/r2")
    assert (ws / "reviews.csv").read_bytes() == b"text,rid,y\r\ngreat,r1,pos\r\nok,r3,pos\r\n"
    dg("rm", "--cached", "train/img_003.png")
    assert len(list(ws.glob("train/*/img_003.png"))) == 1
    assert status(dg) == [
        "D  reviews/r2",
        "D  train/img_001.png",
        "D  train/img_002.png",
        "DA train/img_003.png",  # removed from the stage, still in the workspace
    ]
    dg("commit", "-m", "removed")
    assert status(dg) == [" A train/img_003.png"]
    t4 = where(ws, 4)
    n = len(list(ws.glob(f"train/{t4}/*.png")))
    assert len(dg("rm", "-r", f"train/{t4}").stdout.splitlines()) == n
    assert not (ws / "train" / t4).exists()


def test_rm_refusals_change_nothing(dg: Cli, ws: Path) -> None:
    relabel(ws, 5, "9")
    (ws / "train/0/new.png").write_bytes(PNGS[7][0])
    before = state(ws)
    for args, message in (
        (("rm",), "Missing argument"),
        (("rm", "train/0/new.png"), "matches no example"),
        (("rm", "train/9/img_005.png"), "changes not staged"),
        (("rm", "train/0"), "without -r"),
        (("rm", "train"), "without -r"),
        (("rm", "reviews.csv"), "name its rows as reviews/ID"),
        (("rm", "reviews/nosuch"), "not a dataset, DATASET/ID"),
        (("rm", "nosuch/x"), "not a dataset, DATASET/ID"),
    ):
        r = dg(*args, ok=False)
        assert r.exit_code != 0 and message in r.output, (args, r.output)
        assert state(ws) == before


def test_mv_relabels_renames_and_moves_rows(dg: Cli, ws: Path) -> None:
    t1 = where(ws, 1)
    out = dg("mv", f"train/{t1}/img_001.png", "train/9/").stdout
    assert out == f"relabeled train/img_001.png → train/img_001.png  {t1} → 9\n"
    assert where(ws, 1) == "9"
    dg("mv", "train/9/img_001.png", "train/new/")  # a new class folder, named with its slash
    assert where(ws, 1) == "new"
    dg("mv", "train/new/img_001.png", "train/9")
    out = dg("mv", "train/9/img_001.png", "train/9/one.png").stdout
    assert out.startswith("renamed train/img_001.png → train/one.png")
    dg("mv", "train/img_002.png", "train/two.png")
    dg("mv", "reviews/r2", "reviews/r2b")
    assert b"meh,r2b,neg\r\n" in (ws / "reviews.csv").read_bytes()
    assert status(dg) == [
        "R  reviews/r2 -> reviews/r2b",
        "R  train/img_001.png -> train/one.png",
        "R  train/img_002.png -> train/two.png",
    ]
    dg("commit", "-m", "moves")
    assert status(dg) == []
    blame = dg("blame", "train/one.png").stdout
    assert "renamed from img_001.png" in blame and "added" in blame


def test_mv_refusals_change_nothing(dg: Cli, ws: Path) -> None:
    (ws / "train/0/new.png").write_bytes(PNGS[7][0])
    t1, t2 = where(ws, 1), where(ws, 2)
    before = state(ws)
    for args, message in (
        (("mv", "train/0/new.png", "train/1/new.png"), "matches no example"),
        (("mv", f"train/{t1}/img_001.png", f"train/{t2}/img_002.png"), "already exists"),
        (("mv", f"train/{t1}/img_001.png", "train/img_002.png"), "already exists"),
        (("mv", f"train/{t1}/img_001.png", "elsewhere/x.png"), "not a file path inside train"),
        (("mv", "reviews/r1", "reviews/r2"), "already exists"),
        (("mv", "reviews/r1", "train/r1"), "is not reviews/NEW-ID"),
        (("mv", f"train/{t1}", "train/9"), "mv moves one example"),
        (("mv", "train/img_001.png"), "Missing argument"),
    ):
        r = dg(*args, ok=False)
        assert r.exit_code != 0 and message in r.output, (args, r.output)
        assert state(ws) == before
