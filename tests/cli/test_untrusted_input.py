"""Inputs that used to crash, hang or mislead: each is now a one-line error (or works),
and leaves the repository as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_bad_input import refused, repo_state  # the same one-line-error checks
from testkit import Cli, digits_pngs, write_tree

from datagit import Repo


@pytest.fixture
def dg(tmp_path: Path) -> Cli:
    """A repository with one commit of 20 digits in train/ (imagefolder)."""
    ws = tmp_path / "ws"
    Cli(tmp_path)("init", "ws")
    run = Cli(ws)
    run("dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    write_tree(ws, {f"train/{t}/img_{i:02d}.png": p for i, (p, t) in enumerate(digits_pngs(20))})
    run("commit", "-a", "-m", "digits")
    return run


def test_a_254_byte_file_name_commits_and_checks_out(dg: Cli) -> None:
    name = "n" * 250 + ".png"
    first = Repo.open(dg.cwd).head()
    (dg.cwd / "train" / "3" / name).write_bytes(b"long name")
    dg("commit", "-a", "-m", "long")
    dg("checkout", first or "")
    assert not (dg.cwd / "train" / "3" / name).exists()
    dg("checkout", "main")
    assert (dg.cwd / "train" / "3" / name).read_bytes() == b"long name"
    assert "nothing to commit" in dg("status").output


@pytest.mark.parametrize("command", [("status",), ("add",), ("commit", "-a", "-m", "x")])
def test_special_files_are_refused_by_name_never_opened(dg: Cli, command: tuple[str, ...]) -> None:
    os.mkfifo(dg.cwd / "train" / "3" / "pipe.png")  # opening it would block forever
    refused(dg, *command, match="train/3/pipe.png is a FIFO (named pipe), not a file")
    (dg.cwd / "train" / "3" / "pipe.png").rename(dg.cwd / "train" / "pipe.png")  # unlabelled
    refused(dg, *command, match="train/pipe.png is a FIFO (named pipe), not a file")
    import socket

    (dg.cwd / "train" / "pipe.png").unlink()
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dg.cwd / "train" / "4" / "s.png"))
        refused(dg, *command, match="train/4/s.png is a socket, not a file")


@pytest.mark.parametrize("where", ["train/3/loop.png", "train/loop", "train/loop.png"])
def test_a_symlink_loop_is_refused(dg: Cli, where: str) -> None:
    (dg.cwd / where).symlink_to(dg.cwd / where)
    refused(dg, "status", match=f"{where} is a symlink that cannot be resolved")


def test_a_damaged_snapshot_is_discarded_and_rebuilt(dg: Cli) -> None:
    snap = dg.cwd / ".datagit" / "cache" / "snapshot-train.marshal"
    dg("status")
    assert snap.exists()
    for offset in (-3, 20, len(snap.read_bytes()) // 2):
        data = bytearray(snap.read_bytes())
        data[offset] ^= 0x10
        snap.write_bytes(bytes(data))
        (dg.cwd / "train" / "5" / f"new{offset}.png").write_bytes(b"new")
        out = dg("status").output
        assert f"new{offset}.png" in out and "Traceback" not in out
        dg("commit", "-a", "-m", f"new {offset}")
    assert "nothing to commit" in dg("status").output


def test_a_snapshot_from_an_older_datagit_still_reads(dg: Cli) -> None:
    import marshal

    snap = dg.cwd / ".datagit" / "cache" / "snapshot-train.marshal"
    dg("status")
    raw = snap.read_bytes()
    body = raw[raw.index(b"\n") + 1 + 8 :]
    snap.write_bytes(body)  # no header, no checksum: the old format
    assert marshal.loads(body)[0]
    assert "nothing to commit" in dg("status").output
    snap.write_bytes(marshal.dumps(("tree", 1, {"train/0/x.png": (1, "bad", 3)}, None)))
    assert "nothing to commit" in dg("status").output  # an ill-formed one is discarded


@pytest.mark.parametrize(
    "command", [("status",), ("log",), ("commit", "-a", "-m", "x"), ("checkout", "main")]
)
def test_a_symbolic_ref_loop_is_an_error_not_a_traceback(dg: Cli, command: tuple[str, ...]) -> None:
    dot = dg.cwd / ".datagit"
    (dot / "refs/heads/a").write_text("ref: refs/heads/b\n")
    (dot / "refs/heads/b").write_text("ref: refs/heads/a\n")
    (dot / "HEAD").write_text("ref: refs/heads/a\n")
    refused(dg, *command, match="cannot resolve reference")
    fsck = dg("fsck", ok=False)
    assert fsck.exit_code != 0 and "ref refs/heads/a cannot be resolved" in fsck.output


def test_garbage_packed_refs_is_reported_by_fsck(dg: Cli) -> None:
    (dg.cwd / ".datagit" / "packed-refs").write_bytes(b"garbage\nzzz refs/heads/x\n")
    fsck = dg("fsck", ok=False)
    assert fsck.exit_code != 0 and "Traceback" not in fsck.output
    assert "corrupted packed references" in fsck.output
    refused(dg, "branch", match="corrupted packed references")


def test_a_content_pack_replaced_by_a_folder(dg: Cli) -> None:
    pack = dg.cwd / ".datagit" / "content" / "packs" / "pack-000000.pack"
    pack.rename(pack.with_suffix(".moved"))
    pack.mkdir()
    fsck = dg("fsck", ok=False)
    assert fsck.exit_code != 0 and f"content pack {pack} is not a file" in fsck.output
    (dg.cwd / "train" / "2" / "more.png").write_bytes(b"more")
    dg("commit", "-a", "-m", "writes go to a new pack")
    pack.rmdir()
    pack.with_suffix(".moved").rename(pack)
    assert dg("fsck").exit_code == 0


def test_a_git_pack_replaced_by_a_folder(dg: Cli) -> None:
    dg("gc")
    (pack,) = (dg.cwd / ".datagit" / "objects" / "pack").glob("*.pack")
    pack.rename(pack.with_suffix(".moved"))
    pack.mkdir()
    fsck = dg("fsck", ok=False)
    assert fsck.exit_code != 0 and "Traceback" not in fsck.output
    refused(dg, "log", match="its pack cannot be read")


@pytest.mark.parametrize(
    ("name", "body"),
    [("t.csv", "id,lable\na,1\n"), ("t.jsonl", '{"id": "a", "lable": 1}\n')],
)
def test_a_table_without_its_label_column_is_refused(dg: Cli, name: str, body: str) -> None:
    """`dataset add` checks the columns it is told about; a table edited afterwards (a
    column renamed) is refused at the next add rather than read as unlabelled."""
    (dg.cwd / name).write_text(body.replace("lable", "label"))
    dg("dataset", "add", "t", "--layout", "table", "--path", name)
    (dg.cwd / name).write_text(body)
    refused(dg, "add", match="no 'label' column")


def test_a_jsonl_row_may_omit_its_label(dg: Cli) -> None:
    (dg.cwd / "t.jsonl").write_text('{"id": "a", "label": 1}\n{"id": "b"}\n')
    dg("dataset", "add", "t", "--layout", "table", "--path", "t.jsonl")
    dg("commit", "-a", "-m", "t")
    labels = {r.id: r.label for r in Repo.open(dg.cwd).records("t")}
    assert labels == {"a": 1, "b": None}


def test_a_plain_folder_inside_a_class_folder_is_part_of_the_id(dg: Cli) -> None:
    """Decided: accepted (the id is the path under the class folder), unless the folder
    is named like a class, which would be ambiguous."""
    write_tree(dg.cwd, {"train/3/scans/a.png": b"a"})
    dg("commit", "-a", "-m", "nested")
    assert Repo.open(dg.cwd).record("train", "scans/a.png").label == "3"
    write_tree(dg.cwd, {"train/3/7/b.png": b"b"})
    refused(dg, "add", match="train/3/7/ is a class folder nested inside class folder 3/")


HOLD = """
import sys, time
from pathlib import Path
from datagit.storage.lock import WriteLock
WriteLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_status_during_a_checkout_says_a_checkout_is_in_progress(dg: Cli) -> None:
    dot = dg.cwd / ".datagit"
    (dot / "CHECKOUT").write_text('{"tree": "%s", "after": {}}' % ("0" * 40))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(dot / "lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        refused(dg, "status", match="a checkout is in progress")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    (dot / "CHECKOUT").unlink()


def test_a_push_that_loses_a_race_says_so(dg: Cli, tmp_path: Path) -> None:
    url = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(url)], check=True)
    dg("remote", "add", "origin", str(url))
    dg("push", "origin")
    (dg.cwd / "train" / "2" / "more.png").write_bytes(b"more")
    dg("commit", "-a", "-m", "more")
    lock = url / "refs" / "heads" / "main.lock"  # another push is moving main right now
    lock.write_text("")
    before = repo_state(dg.cwd)
    result = dg("push", "origin", ok=False)
    assert result.exit_code != 0 and "another push updated refs/heads/main" in result.output
    assert "datagit pull" in result.output and repo_state(dg.cwd) == before


def test_a_damaged_merge_state_is_a_one_line_error(dg: Cli) -> None:
    (dg.cwd / ".datagit" / "MERGE_STATE").write_bytes(b'{"theirs": "abc", "conf\xff')
    line = refused(dg, "status", match="the merge in progress cannot be read")
    assert "MERGE_STATE is damaged" in line
