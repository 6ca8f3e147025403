"""Every core command through the CLI, text and --json, on a real repository of digits PNGs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import click
import pytest
from testkit import Cli, digits_pngs, write_tree

from datagit import Repo
from datagit.cli import cli as root_command

ROOT = Path(__file__).resolve().parents[2]


def js(result) -> object:  # type: ignore[no-untyped-def]
    return json.loads(result.stdout)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def dg(ws: Path) -> Cli:
    """A CLI runner in a repository initialised by `datagit init` with 40 digits in train/."""
    Cli(ws.parent)("init", "ws")
    run = Cli(ws)
    run("dataset", "add", "train", "--layout", "imagefolder", "--path", "train/")
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(digits_pngs(40))})
    return run


def test_init_and_dataset_list(dg: Cli, ws: Path) -> None:
    assert (ws / ".datagit" / "HEAD").exists()
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
        "--annotator",
        "who",
    )
    assert dg("dataset", "list").stdout.splitlines() == [
        "reviews\ttable\treviews.csv",
        "train\timagefolder\ttrain",
    ]
    listed = js(dg("dataset", "list", "--json"))
    assert listed == [
        {
            "name": "reviews",
            "layout": "table",
            "path": "reviews.csv",
            "id": "rid",
            "label": "y",
            "annotator": "who",
            "content": "text",
        },
        {"name": "train", "layout": "imagefolder", "path": "train"},
    ]
    again = dg("dataset", "add", "train", "--layout", "imagefolder", "--path", "x", ok=False)
    assert again.exit_code != 0 and "already exists" in again.stderr


def test_add_commit_status_log_show(dg: Cli, ws: Path) -> None:
    out = dg("status").stdout
    assert "No commits yet" in out and "train: 40 added" in out
    assert "train: 40 added" in dg("add").stdout
    st = js(dg("status", "--json"))
    assert st["datasets"]["train"]["staged"]["added"] == 40 and not st["clean"]
    out = dg("commit", "-m", "digits", "--annotator", "alice").stdout
    assert out.startswith("[main ") and "digits" in out and "40 added" in out
    assert "nothing to commit, workspace clean" in dg("status").stdout
    assert js(dg("status", "--json"))["clean"] is True
    t = digits_pngs(1)[0][1]
    shutil.move(ws / f"train/{t}/img_000.png", ws / "train/9/img_000.png")
    out = dg("status").stdout
    assert f"relabeled  train/img_000.png  {t} → 9" in out and "Changes not staged" in out
    dg("commit", "-a", "-m", "fix a label", "--author", "Bea Labeller <bea@example.com>")
    log = js(dg("log", "--json"))
    assert [c["message"].splitlines()[0] for c in log] == ["fix a label", "digits"]
    assert log[0]["author"] == {
        **log[0]["author"],
        "name": "Bea Labeller",
        "email": "bea@example.com",
    }
    assert log[0]["committer"]["name"] == "Ada Tester"
    assert log[1]["annotator"] == "alice" and log[0]["parents"] == [log[1]["id"]]
    oneline = dg("log", "--oneline").stdout.splitlines()
    assert oneline == [f"{log[0]['id'][:10]} fix a label", f"{log[1]['id'][:10]} digits"]
    assert len(dg("log", "-n", "1", "--oneline").stdout.splitlines()) == 1
    assert dg("log", "HEAD~1", "--oneline").stdout.splitlines() == oneline[1:]
    full = dg("log").stdout
    assert "Author: Bea Labeller <bea@example.com>" in full and "Annotator: alice" in full
    show = dg("show").stdout
    assert "train: 1 relabeled" in show and f"{t} → 9" in show
    shown = js(dg("show", "HEAD", "--json"))
    assert shown["datasets"]["train"]["changes"] == [
        {"id": "img_000.png", "kind": "relabeled", "from": str(t), "to": "9"}
    ]
    assert js(dg("show", "HEAD~1", "--json"))["datasets"]["train"]["summary"]["added"] == 40


def test_log_of_one_dataset(dg: Cli, ws: Path) -> None:
    dg("dataset", "add", "eval", "--layout", "imagefolder", "--path", "eval")
    write_tree(ws, {"eval/1/a.png": digits_pngs(1)[0][0]})
    dg("commit", "-a", "-m", "both")
    write_tree(ws, {"train/1/extra.png": digits_pngs(2)[1][0]})
    dg("commit", "-a", "-m", "train only")
    assert [
        c.split(" ", 1)[1] for c in dg("log", "--oneline", "--", "eval").stdout.splitlines()
    ] == ["both"]
    assert len(dg("log", "--oneline", "--", "train").stdout.splitlines()) == 2
    assert len(js(dg("log", "--json", "HEAD", "--", "eval"))) == 1  # type: ignore[arg-type]


def test_add_one_class_folder_and_a_single_file(dg: Cli, ws: Path) -> None:
    t = digits_pngs(1)[0][1]
    assert "added" in dg("add", f"train/{t}").stdout
    staged = js(dg("status", "--json"))["datasets"]["train"]
    n = sum(1 for _, label in digits_pngs(40) if label == t)
    assert staged["staged"]["added"] == n and staged["unstaged"]["added"] == 40 - n
    dg("add", "train")
    assert js(dg("status", "--json"))["datasets"]["train"]["unstaged"]["added"] == 0


def test_ls_and_cat(dg: Cli, ws: Path) -> None:
    dg("commit", "-a", "-m", "digits", "--annotator", "alice")
    rows = js(dg("ls", "--json"))
    assert len(rows) == 40 and rows[0]["dataset"] == "train" and rows[0]["annotator"] == "alice"
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    png, t = digits_pngs(1)[0]
    assert rows[0] == {**rows[0], "id": "img_000.png", "label": str(t), "size": len(png)}
    line = dg("ls", "HEAD", "train").stdout.splitlines()[0]
    assert line.split("\t")[:2] == ["img_000.png", str(t)]
    assert dg("ls").stdout.splitlines()[0].startswith("train/img_000.png\t")
    one = dg("ls", "HEAD", "train/img_000.png").stdout.splitlines()
    assert len(one) == 1 and one[0].split("\t")[:2] == ["train/img_000.png", str(t)]
    assert js(dg("ls", "HEAD", "train/img_000.png", "--json")) == [rows[0]]
    (ws / f"train/{t}/img_000.png").write_bytes(digits_pngs(2)[1][0])
    dg("commit", "-a", "-m", "replace")
    assert dg("cat", "HEAD~1:train/img_000.png").stdout_bytes == png
    assert dg("cat", "HEAD:train/img_000.png").stdout_bytes == digits_pngs(2)[1][0]
    assert dg("cat", ":train/img_000.png").stdout_bytes == digits_pngs(2)[1][0]


def test_checkout_switch_branch_tag(dg: Cli, ws: Path) -> None:
    dg("commit", "-a", "-m", "one")
    write_tree(ws, {"train/3/new.png": digits_pngs(41)[40][0]})
    dg("commit", "-a", "-m", "two")
    assert "HEAD is now at" in dg("checkout", "HEAD~1").stdout
    assert not (ws / "train/3/new.png").exists()
    assert "HEAD detached at" in dg("status").stdout
    assert dg("checkout", "main").stdout.strip() == "Switched to branch 'main'"
    assert (ws / "train/3/new.png").exists()
    assert "Switched to a new branch 'fix'" in dg("switch", "-c", "fix").stdout
    assert "Created branch old at" in dg("branch", "old", "HEAD~1").stdout
    assert dg("branch").stdout.splitlines() == ["* fix", "  main", "  old"]
    branches = js(dg("branch", "--json"))
    assert [(b["name"], b["current"]) for b in branches] == [
        ("fix", True),
        ("main", False),
        ("old", False),
    ]
    dg("switch", "old")
    assert not (ws / "train/3/new.png").exists()
    assert (
        "Deleted branch fix"
        in dg("branch", "-d", "fix", ok=False).stdout + dg("branch", "-D", "fix").stdout
    )
    dg("tag", "v1", "main", "-m", "release")
    dg("tag", "v0", "HEAD")
    assert [line.split("\t")[0] for line in dg("tag").stdout.splitlines()] == ["v0", "v1"]
    dg("checkout", "v1")
    assert (ws / "train/3/new.png").exists()
    assert "Deleted tag v0" in dg("tag", "-d", "v0").stdout


def test_checkout_refuses_dirty_workspace_then_force(dg: Cli, ws: Path) -> None:
    dg("commit", "-a", "-m", "one")
    write_tree(ws, {"train/3/new.png": digits_pngs(41)[40][0]})
    dg("commit", "-a", "-m", "two")
    (ws / "train/3/new.png").write_bytes(b"edited")
    r = dg("checkout", "HEAD~1", ok=False)
    assert r.exit_code != 0 and r.stderr.startswith("error: checkout HEAD~1 would overwrite")
    assert (ws / "train/3/new.png").read_bytes() == b"edited"
    dg("checkout", "-f", "HEAD~1")
    assert not (ws / "train/3/new.png").exists()


def test_fsck_and_gc(dg: Cli, ws: Path) -> None:
    dg("commit", "-a", "-m", "one")
    assert dg("fsck").stdout.strip() == "checked 1 commits, 40 content objects: ok"
    report = js(dg("fsck", "--json"))
    assert report == {"ok": True, "commits": 1, "objects": 40, "problems": [], "missing": []}
    write_tree(ws, {"train/1/tmp.png": b"soon unreachable"})
    dg("add")
    (ws / "train/1/tmp.png").unlink()
    dg("add")
    content, objects = dg("gc").stdout.strip().splitlines()
    assert content == "kept 40 objects, removed 1"
    assert re.fullmatch(
        r"git objects: \d+ in 1 pack \(was 0 packs, \d+ loose; \d+ unreachable dropped\)", objects
    )
    assert dg("gc").stdout.strip().splitlines()[1].endswith("in 1 pack (already packed)")
    report = js(dg("gc", "--json"))
    assert report["kept"] == 40 and report["removed"] == 0
    assert report["git"]["packs"] == 1 and report["git"]["dropped"] == 0
    assert report["git"]["objects"] > 0 and report["git"]["bytes_after"] > 0


def test_config_identity_is_used_for_commits(
    dg: Cli, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIT_AUTHOR_NAME")
    monkeypatch.delenv("GIT_AUTHOR_EMAIL")
    r = dg("commit", "-a", "-m", "nobody", ok=False)
    assert r.exit_code != 0 and "user.name" in r.stderr
    dg("config", "user.name", "Cleo Curator")
    dg("config", "user.email", "cleo@example.com")
    assert dg("config", "user.name").stdout.strip() == "Cleo Curator"
    assert "user.email=cleo@example.com" in dg("config", "--list").stdout
    dg("commit", "-a", "-m", "by cleo")
    assert js(dg("log", "--json"))[0]["author"]["name"] == "Cleo Curator"
    dg("config", "--unset", "user.name")
    assert dg("config", "user.name", ok=False).exit_code == 1


def test_table_dataset_through_the_cli(dg: Cli, ws: Path) -> None:
    dg(
        "dataset",
        "add",
        "reviews",
        "--layout",
        "table",
        "--path",
        "reviews.jsonl",
        "--content",
        "text",
        "--annotator",
        "rater",
    )
    rows = [
        {"id": f"r{i}", "label": "pos" if i % 2 else "neg", "text": f"review {i}", "rater": "zed"}
        for i in range(5)
    ]
    (ws / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    dg("commit", "-a", "-m", "reviews")
    rows[1]["label"] = "neg"
    (ws / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "relabeled  reviews/r1  pos → neg" in dg("status").stdout
    dg("commit", "-a", "-m", "relabel r1")
    assert dg("cat", "HEAD:reviews/r3").stdout_bytes == b"review 3"
    dg("checkout", "HEAD~1")
    assert '"label":"pos"' in (ws / "reviews.jsonl").read_text().replace(" ", "").split("\n")[1]
    assert "nothing to commit" in dg("status").stdout


# -- help and docs -------------------------------------------------------------
def test_status_notes_a_dataset_whose_folder_does_not_exist(dg: Cli, ws: Path) -> None:
    dg("dataset", "add", "eval", "--layout", "imagefolder", "--path", "eval")
    out = dg("status").stdout
    assert "note: dataset eval: folder eval/ does not exist (an empty dataset)" in out
    assert "eval:" not in out.replace("dataset eval:", "")  # no changes listed for it
    assert js(dg("status", "--json"))["datasets"]["eval"]["missing"] == "eval/"  # type: ignore[index]
    dg("commit", "-a", "-m", "digits, and eval declared")
    shutil.rmtree(ws / "train")
    out = dg("status").stdout
    assert "note: dataset train: folder train/ does not exist (an empty dataset)" in out
    assert "train: 40 removed" in out
    assert "train: 40 removed" in dg("commit", "-a", "-m", "drop train").stdout
    dg("checkout", "HEAD~1")
    assert len(list((ws / "train").rglob("*.png"))) == 40
    assert "note:" not in dg("status").stdout.replace("dataset eval", "")


def _commands() -> list[tuple[str, click.Command, str]]:
    """(name, command, help text where its example may live: its own and its group's)."""
    out = []
    for name, cmd in sorted(root_command.commands.items()):
        out.append((name, cmd, cmd.help or ""))
        if isinstance(cmd, click.Group):
            out.extend(
                (f"{name} {sub}", c, (c.help or "") + (cmd.help or ""))
                for sub, c in sorted(cmd.commands.items())
            )
    return out


@pytest.mark.parametrize(("name", "command", "text"), _commands(), ids=[n for n, *_ in _commands()])
def test_every_command_has_help_with_an_example(
    name: str, command: click.Command, text: str
) -> None:
    assert (command.help or "").strip(), f"`datagit {name}` has no help text"
    example = f"datagit {name}" if not isinstance(command, click.Group) else f"datagit {name} "
    if " " in name:  # a subcommand: its own example, or its group's examples of the group
        example = f"datagit {name.split()[0]} "
    assert example in text, f"`datagit {name}` help has no example"
    result = Cli(Path.cwd())(*name.split(), "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout


def test_every_command_is_in_the_readme() -> None:
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not written yet")
    text = readme.read_text()
    missing = [n for n in sorted(root_command.commands) if not re.search(rf"datagit {n}\b", text)]
    assert not missing, f"commands not mentioned in README.md: {missing}"


def test_python_api_is_what_the_cli_sees(dg: Cli, ws: Path) -> None:
    dg("commit", "-a", "-m", "one")
    repo = Repo.open(ws)
    rows = js(dg("ls", "--json"))
    assert {r["id"]: r["content"] for r in rows} == {r.id: r.content for r in repo.records("train")}


def test_ids_with_colons_spaces_and_unicode(dg: Cli, ws: Path) -> None:
    pngs = digits_pngs(3)
    names = {"a:b.png": pngs[0][0], "ü é.png": pngs[1][0], "sub/dir:x.png": pngs[2][0]}
    write_tree(ws, {f"train/5/{n}": data for n, data in names.items()})
    dg("commit", "-a", "-m", "odd names")
    for name, data in names.items():
        assert dg("cat", f"HEAD:train/{name}").stdout_bytes == data
        assert dg("cat", f"main:train/{name}").stdout_bytes == data
    ids = {r["id"] for r in js(dg("ls", "--json"))}  # type: ignore[union-attr]
    assert set(names) <= ids


def test_long_listings_are_cut_and_verbose_shows_all(dg: Cli, ws: Path) -> None:
    out = dg("status").stdout
    assert "… and 20 more (use -v)" in out and out.count("added      train/") == 20
    assert dg("status", "-v").stdout.count("added      train/") == 40
    dg("commit", "-a", "-m", "forty")
    short_id = dg("log", "--oneline").stdout.split()[0]
    shown = dg("show", short_id, "--limit", "5").stdout
    assert shown.count("  added      train/") == 5 and "… and 35 more (use --limit 0)" in shown
    assert dg("show", short_id[:7], "--limit", "0").stdout.count("  added      train/") == 40
    assert js(dg("show", short_id, "--json"))["id"].startswith(short_id)
