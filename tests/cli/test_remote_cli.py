"""The remote verbs from the command line: output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from datagit import Repo


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


@pytest.fixture
def shared(digits_repo: Repo, tmp_path: Path, run_cli: Callable) -> tuple[object, str]:  # type: ignore[type-arg]
    digits_repo.commit("digits", all=True)
    url = _bare(tmp_path / "shared.git")
    cli = run_cli(digits_repo.workdir)
    cli("remote", "add", "origin", url)
    return cli, url


def test_remote_add_list_remove(shared: tuple, tmp_path: Path) -> None:  # type: ignore[type-arg]
    cli, url = shared
    cli("remote", "add", "backup", url, "--content", "s3://bucket/datasets")
    rows = json.loads(cli("remote", "list", "--json").output)
    assert rows == [
        {"name": "backup", "url": url, "content": "s3://bucket/datasets"},
        {"name": "origin", "url": url, "content": f"{url}/datagit-content"},
    ]
    assert "origin\t" in cli("remote").output
    cli("remote", "modify", "backup", "profile", "team")
    cli("remote", "modify", "backup", "token", "abc123")
    assert "  profile=team\n  token=****\n" in cli("remote", "list", "-v").output
    config = cli("config", "-l").output
    assert "remote.backup.datagit-option=profile=team" in config
    assert "remote.backup.datagit-option=token=abc123" in config  # config shows what it stores
    cli("remote", "remove", "backup")
    assert "backup" not in cli("remote", "list").output


def test_push_clone_pull_round_trip(shared: tuple, tmp_path: Path, run_cli: Callable) -> None:  # type: ignore[type-arg]
    cli, url = shared
    out = cli("push").output
    assert "300 objects uploaded" in out
    assert "Everything up-to-date" in cli("push").output
    cloner = run_cli(tmp_path)
    out = cloner("clone", url, "copy").output
    assert "Cloned into" in out and "300 objects" in out
    copy = run_cli(tmp_path / "copy")
    assert "Already up to date." in copy("pull").output
    assert "ok" in copy("remote", "check").output
    repo = Repo.open(cli.cwd)
    (repo.workdir / "train/3/extra.png").write_bytes(b"extra example bytes")
    cli("commit", "-a", "-m", "one more")
    cli("push")
    assert "Fast-forward" in copy("pull").output
    assert (tmp_path / "copy/train/3/extra.png").read_bytes() == b"extra example bytes"


def test_partial_clone_from_the_cli(shared: tuple, tmp_path: Path, run_cli: Callable) -> None:  # type: ignore[type-arg]
    cli, url = shared
    cli("push")
    out = run_cli(tmp_path)("clone", "--no-content", url, "part").output
    assert "history only" in out
    part = run_cli(tmp_path / "part")
    assert part("fsck", ok=False).exit_code == 0
    assert "Already up to date." in part("pull", "--dataset", "train").output


def test_errors_are_one_line_with_a_hint(shared: tuple, tmp_path: Path, run_cli: Callable) -> None:  # type: ignore[type-arg]
    cli, url = shared
    r = cli("push", "nowhere", ok=False)
    assert r.exit_code != 0
    assert "error: no remote named 'nowhere'" in r.output and "hint:" in r.output
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    r = run_cli(tmp_path)("clone", url, "full", ok=False)
    assert r.exit_code != 0 and "not an empty directory" in r.output
    cli("remote", "add", "dead", "http://127.0.0.1:9/x.git", "--content", str(tmp_path / "c"))
    r = cli("fetch", "dead", ok=False)
    assert r.exit_code != 0
    assert [line for line in r.output.splitlines() if line.startswith("error:")] == [
        line for line in r.output.splitlines() if "cannot reach git remote" in line
    ]


def test_every_remote_verb_has_help_with_an_example(shared: tuple) -> None:  # type: ignore[type-arg]
    cli, _ = shared
    for verb in (
        ["remote"],
        ["remote", "add"],
        ["remote", "modify"],
        ["remote", "list"],
        ["push"],
        ["fetch"],
        ["pull"],
        ["clone"],
    ):
        out = cli(*verb, "--help").output
        assert "Example" in out, verb
