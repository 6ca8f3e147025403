"""restore, reset, revert and stash on real repositories, bad inputs included (#14)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import Cli, digits_pngs, write_tree

from datagit import Repo

PNGS = digits_pngs(30)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def dg(ws: Path) -> Cli:
    """30 digits committed on main."""
    Cli(ws.parent)("init", "ws")
    run = Cli(ws)
    run("dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(PNGS)})
    run("commit", "-a", "-m", "thirty digits")
    return run


def where(ws: Path, i: int) -> str:
    (found,) = ws.glob(f"train/*/img_{i:03d}.png")
    return found.parent.name


def relabel(ws: Path, i: int, to: str) -> None:
    src = next(ws.glob(f"train/*/img_{i:03d}.png"))
    (ws / "train" / to).mkdir(exist_ok=True)
    shutil.move(src, ws / "train" / to / src.name)


def state(ws: Path) -> tuple:
    """Everything a refused command must leave as it was."""
    dot = ws / ".datagit"
    files = {
        p.relative_to(ws).as_posix(): p.read_bytes()
        for p in sorted(ws.rglob("*"))
        if p.is_file() and ".datagit" not in p.parts
    }
    refs = {
        p.relative_to(dot).as_posix(): p.read_bytes()
        for p in sorted((dot / "refs").rglob("*"))
        if p.is_file()
    }
    stage = (dot / "STAGE").read_bytes() if (dot / "STAGE").exists() else None
    return files, refs, (dot / "HEAD").read_bytes(), stage


def status(dg: Cli) -> list[str]:
    return dg("status", "--porcelain").stdout.splitlines()


def test_restore_discards_and_unstages(dg: Cli, ws: Path) -> None:
    label1, label2 = where(ws, 1), where(ws, 2)
    relabel(ws, 1, "9")
    relabel(ws, 2, "9")
    (ws / "train" / "0" / "new.png").write_bytes(PNGS[5][0])
    assert dg("restore", "train/9/img_001.png").stdout.endswith("1 example restored\n")
    assert where(ws, 1) == label1 and where(ws, 2) == "9"
    assert (ws / "train/0/new.png").exists()  # never staged: restore leaves it alone
    dg("add", "train")
    assert status(dg) == ["L  train/img_002.png", "A  train/new.png"]
    dg("restore", "--staged", "train/9")
    assert status(dg) == [" L train/img_002.png", "A  train/new.png"]
    dg("restore", "--staged", "train")
    assert status(dg) == [" L train/img_002.png", " A train/new.png"]
    dg("restore", "train")
    assert where(ws, 2) == label2 and status(dg) == [" A train/new.png"]
    relabel(ws, 3, "9")
    dg("commit", "-a", "-m", "three is a nine")
    dg("restore", "--source", "HEAD~1", "train/9/img_003.png")
    assert where(ws, 3) != "9" and status(dg) == [" L train/img_003.png"]


def test_restore_bad_inputs_change_nothing(dg: Cli, ws: Path) -> None:
    relabel(ws, 1, "9")
    before = state(ws)
    for args, message in (
        (("restore",), "Missing argument"),
        (("restore", "nosuch"), "not a dataset name nor inside any dataset"),
        (("restore", "train/7/nothing.png"), "matches no example of dataset train"),
        (("restore", "--source", "nosuchrev", "train"), "error:"),
        (("restore", "--staged", "--source", "HEAD", "train"), "drop --source"),
        (("restore", "../outside"), "outside the workspace"),
    ):
        r = dg(*args, ok=False)
        assert r.exit_code != 0 and message in r.output, (args, r.output)
        assert state(ws) == before


def test_reset_soft_mixed_hard_keep_the_branch(dg: Cli, ws: Path) -> None:
    relabel(ws, 1, "9")
    dg("commit", "-a", "-m", "second")
    dg("reset", "--soft", "HEAD~1")
    assert status(dg) == ["L  train/img_001.png"]
    assert dg("status").stdout.startswith("On branch main")
    dg("commit", "-m", "second again")
    dg("reset", "HEAD~1")
    assert status(dg) == [" L train/img_001.png"] and where(ws, 1) == "9"
    relabel(ws, 2, "9")
    dg("add", "train")
    assert dg("reset", "--hard").stdout.startswith("HEAD is now at")
    assert status(dg) == [] and where(ws, 1) != "9" and where(ws, 2) != "9"
    assert dg("status").stdout.startswith("On branch main")
    log = dg("log", "--oneline").stdout.splitlines()
    assert len(log) == 1 and log[0].endswith("thirty digits")


def test_reset_bad_inputs_change_nothing(dg: Cli, ws: Path) -> None:
    relabel(ws, 1, "9")
    before = state(ws)
    for args in (("reset", "nosuchrev"), ("reset", "--hard", "HEAD~5"), ("reset", "a", "b")):
        r = dg(*args, ok=False)
        assert r.exit_code != 0 and ("error:" in r.output or "Error:" in r.output), args
        assert state(ws) == before
    empty = ws.parent / "empty"
    Cli(ws.parent)("init", "empty")
    r = Cli(empty)("reset", ok=False)
    assert r.exit_code != 0 and "no commits yet" in r.stderr


def test_revert_undoes_a_bad_relabel(dg: Cli, ws: Path) -> None:
    label1 = where(ws, 1)
    relabel(ws, 1, "9")
    (ws / "train" / "0" / "new.png").write_bytes(PNGS[5][0])
    (ws / next(ws.glob("train/*/img_004.png")).relative_to(ws)).unlink()
    dg("commit", "-a", "-m", "bad relabel")
    relabel(ws, 2, "9")
    dg("commit", "-a", "-m", "good relabel")
    out = dg("revert", "HEAD~1").stdout
    assert 'Revert "bad relabel"' in out
    assert where(ws, 1) == label1 and where(ws, 2) == "9"
    assert not (ws / "train/0/new.png").exists() and len(list(ws.glob("train/*/img_004.png")))
    assert status(dg) == []
    show = dg("show", "--name-status").stdout
    assert f"L\ttrain/img_001.png  9 → {label1}" in show and "A\ttrain/img_004.png" in show
    assert "This reverts commit" in dg("log", "-n", "1").stdout


def test_revert_refusals_change_nothing(dg: Cli, ws: Path) -> None:
    relabel(ws, 1, "9")
    dg("commit", "-a", "-m", "to nine")
    relabel(ws, 1, "8")
    dg("commit", "-a", "-m", "to eight")
    before = state(ws)
    clash = dg("revert", "HEAD~1", ok=False)
    assert clash.exit_code != 0 and "train/img_001.png" in clash.stderr
    assert "changed since" in clash.stderr
    assert state(ws) == before
    relabel(ws, 2, "9")
    dirty = state(ws)
    r = dg("revert", "HEAD", ok=False)
    assert r.exit_code != 0 and "clean workspace" in r.stderr and state(ws) == dirty
    r = dg("revert", "nosuchrev", ok=False)
    assert r.exit_code != 0 and "error:" in r.stderr and state(ws) == dirty


def test_stash_push_list_pop_apply_drop(dg: Cli, ws: Path) -> None:
    label1 = where(ws, 1)
    relabel(ws, 1, "9")
    relabel(ws, 2, "9")
    dg("add", "train/9/img_002.png")
    before = status(dg)
    assert "Saved working directory" in dg("stash", "-m", "half done").stdout
    assert status(dg) == [] and where(ws, 1) == label1
    assert dg("stash", "list").stdout == "stash@{0}: On main: half done\n"
    dg("stash", "pop")
    assert status(dg) == before and dg("stash", "list").stdout == ""
    dg("stash")
    relabel(ws, 5, "9")
    dg("commit", "-a", "-m", "meanwhile")
    dg("stash", "apply")  # HEAD moved: the changes merge in, unstaged
    assert sorted(status(dg)) == [" L train/img_001.png", " L train/img_002.png"]
    assert "stash@{0}" in dg("stash", "list").stdout
    dg("reset", "--hard")
    dg("stash", "drop", "stash@{0}")
    assert dg("stash", "list").stdout == ""


# `datagit stash` killed after its first workspace edit: its checkout journal names
# HEAD's tree, and the next command must finish the stash, the stage forgotten too.
KILLED_STASH = """
import os, signal, sys
real_replace = os.replace

def replace(src, dst, **kw):
    real_replace(src, dst, **kw)
    if "/train/" in str(dst):
        os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
from datagit.cli import cli
cli(["-C", sys.argv[1], *sys.argv[2:]])
"""


def test_a_stash_killed_half_way_is_finished_by_the_next_command(dg: Cli, ws: Path) -> None:
    relabel(ws, 1, "9")
    relabel(ws, 2, "9")
    dg("add", "train/9/img_002.png")
    before = status(dg)
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_STASH, str(ws), "stash"], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL
    assert (ws / ".datagit" / "CHECKOUT").exists()
    assert status(dg) == []  # finished: the workspace and the stage are HEAD's
    assert dg("stash", "list").stdout.startswith("stash@{0}: WIP on main")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_STASH, str(ws), "stash", "apply"], capture_output=True
    )
    assert killed.returncode == -signal.SIGKILL
    assert status(dg) == before  # the apply finished: staged as it was stashed
    dg("stash", "drop")


def test_stash_refusals_change_nothing(dg: Cli, ws: Path) -> None:
    before = state(ws)
    r = dg("stash", ok=False)
    assert r.exit_code != 0 and "no local changes" in r.stderr
    for args in (("stash", "pop"), ("stash", "drop"), ("stash", "apply", "stash@{3}")):
        r = dg(*args, ok=False)
        assert r.exit_code != 0 and "stash" in r.stderr, args
        assert state(ws) == before
    relabel(ws, 1, "9")
    dg("stash")
    relabel(ws, 1, "8")
    dg("commit", "-a", "-m", "one is an eight")
    saved = state(ws)
    clash = dg("stash", "pop", ok=False)
    assert clash.exit_code != 0 and "train/img_001.png" in clash.stderr
    assert state(ws) == saved
    relabel(ws, 2, "7")
    dirty = state(ws)
    r = dg("stash", "pop", ok=False)
    assert r.exit_code != 0 and "uncommitted changes" in r.stderr and state(ws) == dirty
    r = dg("stash", "pop", "stash@{x}", ok=False)
    assert r.exit_code != 0 and state(ws) == dirty
    assert json.loads(dg("status", "--json").stdout)["branch"] == "main"


def test_restore_and_reset_keep_a_tables_format(dg: Cli, ws: Path) -> None:
    table = b"text,rid,y\r\ngreat,r1,pos\r\nmeh,r2,neg\r\n"
    (ws / "reviews.csv").write_bytes(table)
    dg(
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
    dg("commit", "-a", "-m", "reviews")
    (ws / "reviews.csv").write_bytes(
        table.replace(b"meh,r2,neg", b"meh,r2,pos") + b"new,r3,neg\r\n"
    )
    assert status(dg) == [" L reviews/r2", " A reviews/r3"]
    dg("restore", "reviews")
    assert (ws / "reviews.csv").read_bytes() == table
    (ws / "reviews.csv").write_bytes(table.replace(b"great,r1,pos", b"great,r1,neg"))
    dg("commit", "-a", "-m", "r1 negative")
    dg("reset", "--hard", "HEAD~1")
    assert (ws / "reviews.csv").read_bytes() == table and status(dg) == []


def test_stash_refuses_in_the_middle_of_a_merge(dg: Cli, ws: Path) -> None:
    dg("branch", "side")
    relabel(ws, 1, "9")
    dg("commit", "-a", "-m", "one is a nine")
    dg("switch", "side")
    relabel(ws, 1, "8")
    dg("commit", "-a", "-m", "one is an eight")
    dg("switch", "main")
    assert dg("merge", "side", ok=False).exit_code != 0
    before = state(ws)
    r = dg("stash", ok=False)
    assert r.exit_code != 0 and "middle of a merge" in r.stderr
    assert state(ws) == before


@pytest.fixture
def merged(dg: Cli, ws: Path) -> dict[str, str]:
    """main merged with a branch: the branch re-labelled img_001 and added new.png, main
    re-labelled img_002; HEAD is the merge commit. Returns the labels before either."""
    before = {"1": where(ws, 1), "2": where(ws, 2)}
    dg("branch", "feature")
    dg("switch", "feature")
    relabel(ws, 1, "9")
    (ws / "train" / "0" / "new.png").write_bytes(PNGS[5][0])
    dg("commit", "-a", "-m", "feature: relabel and add")
    dg("switch", "main")
    relabel(ws, 2, "8")
    dg("commit", "-a", "-m", "main: relabel")
    dg("merge", "feature", "-m", "merge feature")
    assert where(ws, 1) == "9" and where(ws, 2) == "8"
    assert len(json.loads(dg("log", "-n", "1", "--json").stdout)[0]["parents"]) == 2
    assert status(dg) == []
    return before


def test_revert_m_1_undoes_what_a_merge_brought_in(dg: Cli, ws: Path, merged: dict) -> None:
    merge_id = json.loads(dg("log", "-n", "1", "--json").stdout)[0]["id"]
    out = dg("revert", "-m", "1", "HEAD").stdout
    assert 'Revert "merge feature"' in out
    assert where(ws, 1) == merged["1"] and where(ws, 2) == "8"  # main's own change stays
    assert not (ws / "train/0/new.png").exists() and status(dg) == []
    body = dg("log", "-n", "1").stdout
    assert f"This reverts commit {merge_id}" in body and "reversing" in body


def test_revert_m_2_undoes_the_mainline_side(dg: Cli, ws: Path, merged: dict) -> None:
    dg("revert", "--mainline", "2", "HEAD")
    assert where(ws, 2) == merged["2"] and where(ws, 1) == "9"
    assert (ws / "train/0/new.png").exists() and status(dg) == []


def test_revert_of_a_merge_without_or_with_a_bad_m_changes_nothing(
    dg: Cli, ws: Path, merged: dict
) -> None:
    before = state(ws)
    for args, says in (
        (("revert", "HEAD"), "is a merge but no -m option was given"),
        (("revert", "-m", "3", "HEAD"), "does not have parent 3"),
        (("revert", "-m", "1", "HEAD~1"), "is not a merge"),
        (("revert", "-m", "0", "HEAD"), "does not have parent 0"),
    ):
        r = dg(*args, ok=False)
        assert r.exit_code != 0 and says in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) == 2  # + hint
        assert state(ws) == before
    r = dg("revert", "-m", "x", "HEAD", ok=False)  # click's own usage error
    assert r.exit_code == 2 and "'-m' / '--mainline'" in r.stderr and state(ws) == before


# `datagit reset --hard` killed once the workspace is rewritten, before HEAD moves:
# the journal's last step moves the branch (with its reflog line), so the next command
# finishes the reset instead of leaving the files at the target and HEAD where it was.
KILLED_RESET = """
import os, signal, sys
from datagit.api import workspace

def killed(repo, after):
    os.kill(os.getpid(), signal.SIGKILL)

workspace._finish = killed
from datagit.cli import cli
cli(["-C", sys.argv[1], *sys.argv[2:]])
"""


def test_a_reset_hard_killed_before_head_moves_is_finished_by_the_next_command(
    dg: Cli, ws: Path
) -> None:
    first = Repo.open(ws).head()
    assert first is not None
    relabel(ws, 3, "9")
    dg("commit", "-a", "-m", "three is a nine")
    relabel(ws, 4, "8")  # an uncommitted change --hard throws away
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RESET, str(ws), "reset", "--hard", first],
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert (ws / ".datagit" / "CHECKOUT").exists()
    assert status(dg) == []  # finished: HEAD moved to the files the reset wrote
    assert Repo.open(ws).head() == first
    assert not (ws / ".datagit" / "CHECKOUT").exists()
    reflog = (ws / ".datagit" / "logs" / "refs" / "heads" / "main").read_text()
    assert reflog.splitlines()[-1].endswith(f"reset: moving to {first}")
