"""The everyday verbs a git user reaches for, through the CLI on real repositories (#14)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from testkit import Cli, digits_pngs, write_tree


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def dg(ws: Path) -> Cli:
    """A repository with 30 digits in train/ committed on main."""
    Cli(ws.parent)("init", "ws")
    run = Cli(ws)
    run("dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(digits_pngs(30))})
    run("commit", "-a", "-m", "thirty digits")
    return run


def files(ws: Path) -> dict[str, bytes]:
    """Every workspace file outside .datagit, with its bytes."""
    return {
        p.relative_to(ws).as_posix(): p.read_bytes()
        for p in sorted(ws.rglob("*"))
        if p.is_file() and ".datagit" not in p.parts
    }


def relabel(ws: Path, i: int, to: str) -> None:
    src = next(ws.glob(f"train/*/img_{i:03d}.png"))
    (ws / "train" / to).mkdir(exist_ok=True)
    shutil.move(src, ws / "train" / to / src.name)


def test_checkout_f_head_keeps_the_branch(dg: Cli, ws: Path) -> None:
    """Regression (#14): `checkout -f HEAD` detached HEAD."""
    relabel(ws, 0, "9")
    out = dg("checkout", "-f", "HEAD").stdout
    assert "detached" not in out
    assert dg("status").stdout.startswith("On branch main")
    assert (ws / "train" / str(digits_pngs(1)[0][1]) / "img_000.png").exists()
    assert json.loads(dg("status", "--json").stdout)["clean"]


def test_leaving_a_detached_commit_behind_warns(dg: Cli, ws: Path) -> None:
    """Regression (#14): a commit made on a detached HEAD vanished from view without a word."""
    relabel(ws, 1, "9")
    dg("commit", "-a", "-m", "second")
    dg("checkout", "HEAD~1")
    relabel(ws, 2, "9")
    dg("commit", "-a", "-m", "made while detached")
    out = dg("switch", "main").output
    assert "Warning: you are leaving 1 commit behind" in out
    assert "made while detached" in out
    again = dg("checkout", "HEAD~1").output  # from a branch: nothing is left behind
    assert "leaving" not in again


def test_dataset_add_checks_the_table_columns(dg: Cli, ws: Path) -> None:
    """Regression (#14): `--id nosuchcol` was accepted and failed later at `status`."""
    (ws / "wine.csv").write_text("rid,y,alcohol\n1,a,13.2\n2,b,12.1\n")
    config = (ws / "datagit.toml").read_bytes()
    bad = dg(
        "dataset",
        "add",
        "wine",
        "--layout",
        "table",
        "--path",
        "wine.csv",
        "--id",
        "nosuchcol",
        "--label",
        "y",
        ok=False,
    )
    assert bad.exit_code != 0
    assert "error: wine.csv has no column 'nosuchcol' (--id nosuchcol)" in bad.stderr
    assert "rid, y, alcohol" in bad.stderr
    assert (ws / "datagit.toml").read_bytes() == config
    bad = dg(
        "dataset",
        "add",
        "wine",
        "--layout",
        "table",
        "--path",
        "wine.csv",
        "--id",
        "rid",
        "--label",
        "nope",
        ok=False,
    )
    assert bad.exit_code != 0 and "no column 'nope'" in bad.stderr
    dg(
        "dataset",
        "add",
        "wine",
        "--layout",
        "table",
        "--path",
        "wine.csv",
        "--id",
        "rid",
        "--label",
        "y",
    )
    assert "wine" in dg("dataset", "list").stdout
