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


def test_diff_exit_code_and_quiet(dg: Cli, ws: Path) -> None:
    assert dg("diff", "--quiet").exit_code == 0
    assert dg("diff", "--exit-code").exit_code == 0
    relabel(ws, 3, "9")
    quiet = dg("diff", "--quiet", ok=False)
    assert quiet.exit_code == 1 and quiet.output == ""
    loud = dg("diff", "--exit-code", ok=False)
    assert loud.exit_code == 1 and "1 relabeled" in loud.output
    assert dg("diff", "--quiet", "HEAD", "HEAD").exit_code == 0
    bad = dg("diff", "--quiet", "nosuchrev", ok=False)
    assert bad.exit_code not in (0, 1) or "error:" in bad.stderr


def test_show_stat_and_name_status(dg: Cli, ws: Path) -> None:
    relabel(ws, 3, "9")
    (ws / "train" / "0" / "img_000.png").rename(ws / "train" / "0" / "zero.png")
    dg("commit", "-a", "-m", "relabel and rename")
    stat = dg("show", "--stat").stdout
    assert "train: 1 relabeled, 1 renamed" in stat and "→ 9" in stat
    assert "L  train/img_003.png" not in stat
    names = dg("show", "--name-status").stdout.splitlines()
    assert "L\ttrain/img_003.png  3 → 9" in names
    assert "R\ttrain/img_000.png → train/zero.png" in names


def _branchy(dg: Cli, ws: Path) -> None:
    """main: thirty, m1; side (Bob): s1; then main merges side."""
    dg("branch", "side")
    relabel(ws, 1, "9")
    dg("commit", "-a", "-m", "m1")
    dg("switch", "side")
    relabel(ws, 2, "9")
    dg("commit", "-a", "-m", "s1", "--annotator", "bob")


def test_log_ranges_all_author_and_graph(dg: Cli, ws: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _branchy(dg, ws)
    dg("switch", "main")
    assert [line.split(" ", 1)[1] for line in dg("log", "--oneline").stdout.splitlines()] == [
        "m1",
        "thirty digits",
    ]
    everything = dg("log", "--oneline", "--all").stdout
    assert "s1" in everything and "m1" in everything
    assert [
        x.split(" ", 1)[1] for x in dg("log", "--oneline", "main..side").stdout.splitlines()
    ] == ["s1"]
    assert dg("log", "--oneline", "side", "^main").stdout.count("\n") == 1
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Bob Builder")
    dg("merge", "side")
    bob = dg("log", "--oneline", "--author", "^Bob").stdout.splitlines()
    assert len(bob) == 1 and "Merge" in bob[0]
    assert dg("log", "--oneline", "--author", "nobody").stdout == ""
    graph = dg("log", "--graph", "--oneline").stdout.splitlines()
    assert graph[0].startswith("* ") and "Merge" in graph[0]
    assert graph[1] == "|\\"
    assert graph[2].startswith("* | ") or graph[2].startswith("| * ")
    assert graph[-1].startswith("* ") and graph[-1].endswith("thirty digits")
    bad = dg("log", "nosuch..main", ok=False)
    assert bad.exit_code != 0 and "error:" in bad.stderr
    bad = dg("log", "--author", "(", ok=False)
    assert bad.exit_code != 0 and "not a valid regular expression" in bad.stderr


def test_status_short_porcelain_and_ahead_behind(dg: Cli, ws: Path) -> None:
    from datagit import Repo

    assert dg("status", "--porcelain").stdout == ""
    repo = Repo.open(ws)
    base = repo.head()
    relabel(ws, 1, "9")
    dg("commit", "-a", "-m", "m1")
    repo.git.config_set("branch.main.remote", "origin")
    assert dg("status", "-sb").stdout == "## main...origin/main [gone]\n"
    repo.git.update_ref("refs/remotes/origin/main", base)
    assert "Your branch is ahead of 'origin/main' by 1 commit." in dg("status").stdout
    relabel(ws, 2, "9")
    dg("add", "train")
    relabel(ws, 4, "8")
    (ws / "train" / "0" / "img_000.png").unlink()
    out = dg("status", "-sb").stdout.splitlines()
    assert out == [
        "## main...origin/main [ahead 1]",
        " D train/img_000.png",
        "L  train/img_002.png",
        " L train/img_004.png",
    ]
    assert json.loads(dg("status", "--json").stdout)["upstream"] == {
        "name": "origin/main",
        "ahead": 1,
        "behind": 0,
    }
    repo.close()


def test_dataset_remove(dg: Cli, ws: Path) -> None:
    dg("dataset", "add", "scratch", "--layout", "imagefolder", "--path", "scratch")
    write_tree(ws, {"scratch/a/1.png": digits_pngs(1)[0][0]})
    dg("commit", "-a", "-m", "scratch")
    out = dg("dataset", "remove", "scratch").stdout
    assert "removed from datagit.toml" in out and (ws / "scratch/a/1.png").exists()
    assert "scratch" not in dg("dataset", "list").stdout
    assert " D scratch/1.png" in dg("status", "--porcelain").stdout
    dg("commit", "-a", "-m", "drop scratch")
    assert dg("status", "--porcelain").stdout == ""
    assert "scratch" not in dg("ls").stdout
    config = (ws / "datagit.toml").read_bytes()
    bad = dg("dataset", "remove", "nosuch", ok=False)
    assert bad.exit_code != 0 and "no dataset named 'nosuch'" in bad.stderr
    with (ws / "datagit.toml").open("a") as f:
        f.write('\n[harness]\ntrain = "train"\neval = "train"\n')
    config = (ws / "datagit.toml").read_bytes()
    bad = dg("dataset", "remove", "train", ok=False)
    assert bad.exit_code != 0 and "harness's train data" in bad.stderr
    assert (ws / "datagit.toml").read_bytes() == config


def test_datagitignore_keeps_readmes_out_of_a_dataset(dg: Cli, ws: Path) -> None:
    (ws / "train" / "README.md").write_text("how these were collected")
    # without an ignore rule a file directly in the dataset's folder is an unlabelled example
    assert dg("status", "--porcelain").stdout == " A train/README.md\n"
    (ws / ".datagitignore").write_text("# notes are not examples\nREADME*\n*.txt\ntrain/0/skip/\n")
    (ws / "train" / "3" / "notes.txt").write_text("these 3s are blurry")
    write_tree(ws, {"train/0/skip/x.png": digits_pngs(2)[1][0], "train/0/keep.png": b"k"})
    assert dg("status", "--porcelain").stdout == " A train/keep.png\n"
    dg("commit", "-a", "-m", "one more")
    assert "README.md" not in dg("ls").stdout and "notes.txt" not in dg("ls").stdout
    dg("checkout", "HEAD~1")
    assert (ws / "train/README.md").exists() and (ws / "train/3/notes.txt").exists()
    assert (ws / "train/0/skip/x.png").exists()
    dg("switch", "main")
    assert dg("status", "--porcelain").stdout == ""
