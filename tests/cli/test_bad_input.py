"""Every bad input the issue lists: a one-line `error:` naming what and where, exit ≠ 0, and the
repository (refs, STAGE, HEAD) and workspace exactly as they were."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from testkit import Cli, digits_pngs, write_tree

from datagit import Repo


def repo_state(ws: Path) -> dict[str, str]:
    """What a failed command must not change: refs, STAGE, HEAD, config, and workspace files."""
    out: dict[str, str] = {}
    dot = ws / ".datagit"
    for p in [
        dot / "HEAD",
        dot / "STAGE",
        dot / "packed-refs",
        dot / "config",
        *sorted((dot / "refs").rglob("*")),
    ]:
        if p.is_file():
            out[p.relative_to(ws).as_posix()] = p.read_text()
    for p in sorted(ws.rglob("*")):
        if ".datagit" not in p.relative_to(ws).parts and (p.is_file() or p.is_symlink()):
            data = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
            out[p.relative_to(ws).as_posix()] = hashlib.sha1(data).hexdigest()
    return out


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def dg(ws: Path) -> Cli:
    """A repository with one commit of 20 digits in train/ (imagefolder)."""
    Cli(ws.parent)("init", "ws")
    run = Cli(ws)
    run("dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    write_tree(ws, {f"train/{t}/img_{i:02d}.png": p for i, (p, t) in enumerate(digits_pngs(20))})
    run("commit", "-a", "-m", "digits")
    return run


def refused(dg: Cli, *args: str, match: str) -> str:
    """Run a command that must fail cleanly; return its error line."""
    before = repo_state(dg.cwd)
    result = dg(*args, ok=False)
    assert result.exit_code != 0, result.output
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: "), result.output
    assert len(lines) <= 2 and all(x.startswith(("error: ", "hint: ")) for x in lines), lines
    assert match in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert repo_state(dg.cwd) == before
    return lines[0]


# -- ids and paths -------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("id,label\nok,1\n../escape,2\n", "t.csv line 3: id '../escape' contains '..'"),
        ("id,label\n/etc/passwd,1\n", "t.csv line 2: id '/etc/passwd' is an absolute path"),
        ('id,label\n"two\nlines",1\n', "t.csv line 3: id 'two\\nlines' contains a newline"),
        (
            '{"id": "nul\\u0000byte", "label": 1}\n',
            "t.jsonl line 1: id 'nul\\x00byte' contains a NUL",
        ),
    ],
    ids=["dotdot", "absolute", "newline", "nul"],
)
def test_bad_ids_in_a_table(dg: Cli, body: str, match: str) -> None:
    path = "t.jsonl" if body.startswith("{") else "t.csv"
    dg("dataset", "add", "t", "--layout", "table", "--path", path)
    (dg.cwd / path).write_text(body)
    refused(dg, "add", match=match)
    refused(dg, "commit", "-a", "-m", "x", match=match)
    refused(dg, "status", match=match)


def test_file_path_column_with_dotdot(dg: Cli) -> None:
    dg("dataset", "add", "t", "--layout", "table", "--path", "t.csv", "--file", "path")
    (dg.cwd / "t.csv").write_text("id,label,path\na,1,../../etc/passwd\n")
    refused(dg, "add", match="t.csv line 2: id '../../etc/passwd' contains '..'")


def test_newline_in_a_file_name(dg: Cli) -> None:
    write_tree(dg.cwd, {"train/1/bad\nname.png": b"x"})
    line = refused(dg, "add", match="id 'bad\\nname.png' contains a newline")
    assert line.startswith("error: train/1/bad\\nname.png: ")


@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("../outside", "'../outside' must be a relative path"),
        ("/abs/data", "'/abs/data' must be a relative path"),
        ("a\nb", "must be a relative path"),
    ],
)
def test_dataset_paths_that_leave_the_workspace(dg: Cli, path: str, match: str) -> None:
    refused(dg, "dataset", "add", "x", "--layout", "imagefolder", "--path", path, match=match)


def test_add_of_an_absolute_path_outside(dg: Cli, tmp_path: Path) -> None:
    refused(dg, "add", str(tmp_path), match=f"{tmp_path} is outside the workspace")
    refused(dg, "add", "../elsewhere", match="../elsewhere is outside the workspace")


def test_cat_with_bad_ids(dg: Cli) -> None:
    refused(dg, "cat", "HEAD:train/../../etc/passwd", match="no example '../../etc/passwd'")
    refused(dg, "cat", "HEAD", match="'HEAD' is not REV:DATASET/ID")


# -- image folders ---------------------------------------------------------------
def test_same_name_in_two_class_folders(dg: Cli) -> None:
    png = digits_pngs(21)[20][0]
    write_tree(dg.cwd, {"train/3/twin.png": png, "train/5/twin.png": png})
    for args in (["add"], ["commit", "-a", "-m", "x"], ["status"]):
        line = refused(dg, *args, match="id 'twin.png' is given by both")
        assert "train/3/twin.png" in line and "train/5/twin.png" in line


def test_nested_class_folder(dg: Cli) -> None:
    write_tree(dg.cwd, {"train/3/7/inner.png": b"x"})
    refused(dg, "add", match="train/3/7/ is a class folder nested inside class folder 3/")


def test_file_outside_any_class_folder_twin_of_a_labelled_one(dg: Cli) -> None:
    """A file directly in the dataset folder is an unlabelled example; its name is
    its id, so it may not also sit in a class folder."""
    write_tree(dg.cwd, {"train/stray.png": b"x", "train/3/stray.png": b"y"})
    refused(dg, "add", match="id 'stray.png' is given by both")


def test_symlink_leaving_the_workspace(dg: Cli, tmp_path: Path) -> None:
    (tmp_path / "secret.png").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.png", dg.cwd / "train/1/link.png")
    refused(dg, "add", match=f"train/1/link.png is a symlink to {tmp_path / 'secret.png'}")
    refused(dg, "status", match="outside the workspace")


def test_class_folder_or_dataset_folder_linked_outside(dg: Cli, tmp_path: Path) -> None:
    write_tree(tmp_path, {"elsewhere/x.png": b"outside bytes"})
    os.symlink(tmp_path / "elsewhere", dg.cwd / "train/11")
    refused(dg, "add", match=f"train/11 is a symlink to {tmp_path / 'elsewhere'}")
    os.unlink(dg.cwd / "train/11")
    os.symlink(tmp_path / "elsewhere", dg.cwd / "eval")
    dg("dataset", "add", "eval", "--layout", "imagefolder", "--path", "eval")
    refused(dg, "add", "eval", match="eval is a symlink to")


def test_table_or_its_files_linked_outside(dg: Cli, tmp_path: Path) -> None:
    write_tree(tmp_path, {"x.png": b"outside bytes", "t.csv": "id,label,p\n"})
    dg("dataset", "add", "t", "--layout", "table", "--path", "t.csv", "--file", "p")
    os.symlink(tmp_path / "x.png", dg.cwd / "img.png")
    (dg.cwd / "t.csv").write_text("id,label,p\na,1,img.png\n")
    refused(dg, "add", match=f"t.csv line 2: img.png is a symlink to {tmp_path / 'x.png'}")
    (dg.cwd / "t.csv").unlink()
    os.symlink(tmp_path / "t.csv", dg.cwd / "t.csv")
    refused(dg, "add", match=f"t.csv is a symlink to {tmp_path / 't.csv'}")


def test_dangling_symlink_is_an_unreadable_file(dg: Cli) -> None:
    os.symlink(dg.cwd / "train/1/gone.png", dg.cwd / "train/1/dangling.png")
    refused(dg, "add", match="cannot read train/1/dangling.png")
    refused(dg, "commit", "-a", "-m", "x", match="cannot read train/1/dangling.png")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(dg: Cli) -> None:
    path = dg.cwd / "train/1/locked.png"
    path.write_bytes(b"no entry")
    path.chmod(0)
    try:
        refused(dg, "add", match="cannot read train/1/locked.png: Permission denied")
    finally:
        path.chmod(0o644)


# -- tables ----------------------------------------------------------------------
def test_malformed_csv_row_names_the_line(dg: Cli) -> None:
    dg("dataset", "add", "t", "--layout", "table", "--path", "t.csv")
    (dg.cwd / "t.csv").write_text("id,label\na,1\nb,2\nc,3,extra\n")
    refused(dg, "add", match="t.csv line 4: expected 2 fields, got 3")
    (dg.cwd / "t.csv").write_text('id,label\na,1\nb,"open quote\n')
    refused(dg, "add", match="malformed CSV")


def test_malformed_jsonl_row_names_the_line(dg: Cli) -> None:
    dg("dataset", "add", "t", "--layout", "table", "--path", "t.jsonl")
    (dg.cwd / "t.jsonl").write_text('{"id": "a", "label": 1}\n{"id": "b", \n')
    refused(dg, "add", match="t.jsonl line 2: malformed JSON")


def test_duplicate_id_in_a_table(dg: Cli) -> None:
    dg("dataset", "add", "t", "--layout", "table", "--path", "t.csv")
    (dg.cwd / "t.csv").write_text("id,label\na,1\nb,2\na,3\n")
    refused(dg, "commit", "-a", "-m", "x", match="t.csv line 4: duplicate id 'a' (first on line 2)")


def test_bad_datagit_toml(dg: Cli) -> None:
    (dg.cwd / "datagit.toml").write_text('[datasets.train]\nlayout = "imagefolder"\npath = \n')
    refused(dg, "status", match="datagit.toml")
    refused(dg, "commit", "-a", "-m", "x", match="datagit.toml")


# -- revisions -------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["checkout", "nope"],
        ["log", "nope"],
        ["show", "HEAD~7"],
        ["ls", "v9"],
        ["cat", "deadbeef:train/img_00.png"],
        ["branch", "b", "nope"],
        ["tag", "t", "nope"],
    ],
    ids=lambda a: a[0],
)
def test_unknown_revision(dg: Cli, args: list[str]) -> None:
    rev = next(a.split(":")[0] for a in args[1:] if a not in ("b", "t"))
    refused(dg, *args, match=f"unknown revision '{rev}'")


# -- corruption ------------------------------------------------------------------
def test_corrupted_object_fsck_names_it_checkout_refuses(dg: Cli) -> None:
    ws = dg.cwd
    t = digits_pngs(1)[0][1]
    (ws / f"train/{t}/img_00.png").write_bytes(digits_pngs(21)[20][0])
    dg("commit", "-a", "-m", "replace one image")
    repo = Repo.open(ws)
    key = repo.record("train", "img_00.png", "HEAD~1").content
    loc = repo.store.index[key]
    repo.close()
    with open(loc.path, "r+b") as f:  # flip one byte of that object inside its pack
        f.seek(loc.offset + loc.length // 2)
        byte = f.read(1)
        f.seek(loc.offset + loc.length // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    result = dg("fsck", ok=False)
    assert result.exit_code != 0
    assert any(key in line and Path(loc.path).name in line for line in result.stdout.splitlines())
    assert result.stderr.startswith("error: fsck found 1 problems")
    assert key in " ".join(Cli(ws)("fsck", "--json", ok=False).stdout.split())
    line = refused(dg, "checkout", "HEAD~1", match=f"content {key} is corrupt")
    assert Path(loc.path).name in line
    refused(dg, "cat", "HEAD~1:train/img_00.png", match=f"content {key} is corrupt")


def test_corrupted_git_object_fsck_names_it_and_readers_refuse(dg: Cli) -> None:
    write_tree(dg.cwd, {"train/3/later.png": digits_pngs(21)[20][0]})
    dg("commit", "-a", "-m", "two")
    git = Repo.open(dg.cwd).git
    old_tree = git.commit(git.resolve("HEAD~1")).tree
    records_tree = git.tree_entries(
        git.tree_entries(git.tree_entries(old_tree)["datasets"].oid)["train"].oid
    )["records"].oid
    loose = dg.cwd / ".datagit" / "objects" / records_tree[:2] / records_tree[2:]
    assert loose.exists()
    loose.chmod(0o644)
    raw = bytearray(loose.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    loose.write_bytes(bytes(raw))
    result = dg("fsck", ok=False)
    assert result.exit_code != 0 and records_tree in result.stdout
    # (`show HEAD` reads HEAD's own patch, not HEAD~1's records, so it is not refused.)
    for args in (["checkout", "HEAD~1"], ["ls", "HEAD~1"], ["gc"]):
        refused(dg, *args, match=f"git object {records_tree} (")


@pytest.mark.parametrize("how", ["flip", "truncate", "missing"])
def test_corrupted_parent_commit_is_named_not_an_unknown_revision(dg: Cli, how: str) -> None:
    write_tree(dg.cwd, {"train/3/later.png": digits_pngs(21)[20][0]})
    dg("commit", "-a", "-m", "two")
    first = Repo.open(dg.cwd).resolve("HEAD~1")
    loose = dg.cwd / ".datagit" / "objects" / first[:2] / first[2:]
    loose.chmod(0o644)
    raw = loose.read_bytes()
    if how == "flip":
        loose.write_bytes(raw[:40] + bytes([raw[40] ^ 0xFF]) + raw[41:])
    elif how == "truncate":  # libgit2 alone would spin forever on this one
        loose.write_bytes(raw[: len(raw) // 2])
    else:
        loose.unlink()
    state = "missing" if how == "missing" else "corrupt in .datagit/objects/"
    for args in (["checkout", "HEAD~1"], ["show", "HEAD~1"], ["diff", "HEAD~1"]):
        line = refused(dg, *args, match=f"git object {first} (commit HEAD~1) is {state}")
        assert "unknown revision" not in line
    refused(dg, "log", match=f"git object {first} (parent of commit")
    result = dg("show", "HEAD~1", ok=False)
    assert "hint: run `datagit fsck`" in result.stderr
    refused(dg, "show", "nope", match="unknown revision 'nope'")
    result = dg("fsck", ok=False)
    assert result.exit_code != 0 and f"git object {first}" in result.stdout
    assert "1 problems" in result.stdout
    for args in (["log"], ["gc"], ["fsck"]):
        refused(dg, *args, match="error: ")


def test_a_file_where_the_dataset_folder_should_be(dg: Cli) -> None:
    shutil.rmtree(dg.cwd / "train")
    (dg.cwd / "train").write_bytes(b"oops")
    for args in (["status"], ["add"], ["commit", "-a", "-m", "x"]):
        refused(dg, *args, match="dataset train: train is not a folder")


# -- locks and places ----------------------------------------------------------
HOLD = """
import sys
from datagit import Repo
repo = Repo.open(sys.argv[1])
repo.lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_second_writer_while_the_lock_is_held(dg: Cli) -> None:
    write_tree(dg.cwd, {"train/2/new.png": digits_pngs(22)[21][0]})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(dg.cwd)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for args in (
            ["add"],
            ["commit", "-a", "-m", "x"],
            ["checkout", "HEAD"],
            ["gc"],
            ["branch", "b"],
            ["dataset", "add", "e", "--layout", "imagefolder", "--path", "e"],
        ):
            line = refused(dg, *args, match=f"another datagit process (pid {holder.pid})")
            assert ".datagit/lock" in line
    finally:
        holder.communicate("")
    dg("commit", "-a", "-m", "after the lock is released")


def test_outside_a_repository(tmp_path: Path) -> None:
    elsewhere = tmp_path / "plain"
    elsewhere.mkdir()
    for args in (["status"], ["log"], ["add"], ["commit", "-m", "x"], ["fsck"], ["ls"]):
        result = Cli(elsewhere)(*args, ok=False)
        assert result.exit_code != 0
        first = result.stderr.splitlines()[0]
        assert first == f"error: not a datagit repository: {elsewhere} (nor any parent folder)"
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["commit", "-a", "-m", "x", "--author", "no email"], "--author 'no email' is not"),
        (["commit", "-m", " "], "empty commit message"),
        (["commit", "-m", "x"], "nothing to commit"),
        (["config", "nosection", "v"], "config key 'nosection' needs a section"),
        (["config", "a.b_c", "v"], "cannot set config 'a.b_c'"),
        (["dataset", "add", "bad name", "--layout", "imagefolder", "--path", "x"], "'bad name'"),
        (["dataset", "add", "t", "--layout", "table", "--path", "t.csv", "--content", "a",
          "--file", "b"], "sets both content and file"),
        (["branch", "a..b"], "'a..b' is not a valid branch name"),
        (["branch", "main"], "branch 'main' already exists"),
        (["branch", "-d", "nope"], "no branch named 'nope'"),
        (["branch", "-d", "main"], "cannot delete branch 'main': it is checked out"),
        (["switch", "nope"], "no branch named 'nope'"),
        (["tag", "-d", "nope"], "no tag named 'nope'"),
        (["ls", "HEAD", "nope"], "no dataset named 'nope' at HEAD"),
        (["cat", "HEAD:nope/x.png"], "no dataset named 'nope' at HEAD"),
        (["cat", "HEAD:train/missing.png"], "no example 'missing.png' in dataset 'train' at HEAD"),
        (["add", "nope"], "nope is not a dataset name nor inside any dataset's folder"),
        (["add", "train/typo"], "train/typo matches no file of dataset train"),
        (["add", "train/1/img_01.pn"], "train/1/img_01.pn matches no file of dataset train"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)  # fmt: skip
def test_bad_arguments(dg: Cli, args: list[str], match: str) -> None:
    refused(dg, *args, match=match)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["remote", "add", "s3", "../o.git", "--option", "endpoint_url"],
         "remote 's3': option 'endpoint_url' is not KEY=VALUE"),
        (["remote", "add", "s3", "../o.git", "-o", "a b=1"], "option name 'a b' is not valid"),
        (["remote", "add", "s3", "../o.git", "-o", "a=1", "-o", "a=2"],
         "option 'a' is given twice"),
        (["remote", "add", "s3", "../o.git", "-o", "anon="], "option 'anon' has an empty value"),
        (["remote", "add", "s3", "../o.git", "-o", "c=1", "-o", "c.d=2"],
         "option 'c.d' conflicts with option 'c'"),
        (["remote", "modify", "origin", "anon"], "remote modify origin anon: needs a VALUE"),
        (["remote", "modify", "origin", "--unset", "anon", "x"], "takes no VALUE"),
        (["remote", "modify", "origin", "--unset", "nope"], "remote 'origin' has no option 'nope'"),
        (["remote", "modify", "nowhere", "anon", "true"], "no remote named 'nowhere'"),
        (["remote", "modify", "origin", "bad key", "1"], "option name 'bad key' is not valid"),
        (["remote", "modify", "origin", "anon.x", "1"],
         "option 'anon.x' conflicts with option 'anon'"),
        (["clone", "../o.git", "copy", "-o", "novalue"], "option 'novalue' is not KEY=VALUE"),
        (["config", "remote.origin.datagit-option", "x"],
         "cannot set config 'remote.origin.datagit-option'"),
    ],
    ids=lambda v: "-".join(v[:2]) if isinstance(v, list) else None,
)  # fmt: skip
def test_bad_remote_options(dg: Cli, args: list[str], match: str) -> None:
    dg("remote", "add", "origin", "../o.git", "-o", "anon=true", "-o", "profile=team")
    refused(dg, *args, match=match)
