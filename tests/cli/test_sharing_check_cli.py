"""Everyday terminal behaviour from the command line: check, tags, shared remotes, the editor,
the pager and colour (in a real pseudo-terminal), and progress that keeps quiet in pipes."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.core.config import Config, DatasetConfig


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def _in_terminal(args: list[str], env: dict[str, str], cwd: Path) -> str:
    """Run datagit with a pseudo-terminal as stdout and stderr; return what it showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "datagit", *args],
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm", **env},
        cwd=cwd,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def leaky(digits_repo: Repo) -> Repo:
    repo = digits_repo
    repo.add_dataset(DatasetConfig(name="eval", layout="imagefolder", path="eval"))
    png, label = digits_pngs(1)[0]
    write_tree(repo.workdir, {f"eval/{label}/copy.png": png})
    repo.commit("train and eval", all=True)
    return repo


# -- check ------------------------------------------------------------------------------------
def test_check_lists_leaks_and_exits_1(leaky: Repo, run_cli: Callable) -> None:  # type: ignore[type-arg]
    cli = run_cli(leaky.workdir)
    r = cli("check", ok=False)
    assert r.exit_code == 1
    assert "leak" in r.output and "eval/copy.png" in r.output and "train/img_0000.png" in r.output
    assert "checked 301 examples in 2 datasets: 1 leaks" in r.output
    data = json.loads(cli("check", "--json", ok=False).output)
    assert data["examples"] == 301 and data["near"] is None
    assert [e["id"] for e in data["leaks"][0]["examples"]] == ["copy.png", "img_0000.png"]
    assert cli("check", "train").exit_code == 0  # one dataset cannot leak


def test_check_bad_inputs_are_one_line_errors(leaky: Repo, run_cli: Callable) -> None:  # type: ignore[type-arg]
    cli = run_cli(leaky.workdir)
    for args, message in [
        (["check", "nope"], "error: no dataset named 'nope' at HEAD"),
        (["check", "--rev", "no-such-rev"], "no-such-rev"),
        (["check", "--near", "--distance", "99"], "error: --distance 99 is out of range"),
    ]:
        r = cli(*args, ok=False)
        assert r.exit_code not in (0, 1) or "error:" in r.output
        assert message in r.output and r.output.count("error:") == 1


def test_commit_warns_about_leaks_under_the_warn_policy(leaky: Repo, run_cli: Callable) -> None:  # type: ignore[type-arg]
    cfg = leaky.workdir / "datagit.toml"
    cfg.write_text(cfg.read_text() + '\n[check]\nleakage = "warn"\n')
    r = run_cli(leaky.workdir)("commit", "-a", "-m", "warn me")
    assert "warning: 1 examples leak across datasets" in r.output


def test_commit_refuses_leaks_under_the_error_policy(leaky: Repo, run_cli: Callable) -> None:  # type: ignore[type-arg]
    cfg = leaky.workdir / "datagit.toml"
    cfg.write_text(cfg.read_text() + '\n[check]\nleakage = "error"\n')
    head = leaky.head()
    r = run_cli(leaky.workdir)("commit", "-a", "-m", "refuse me", ok=False)
    assert r.exit_code != 0 and "error: 1 examples leak across datasets" in r.output
    assert Repo.open(leaky.workdir).head() == head


# -- tags and shared remotes ------------------------------------------------------------------
def test_push_a_tag_and_all_tags(digits_repo: Repo, tmp_path: Path, run_cli: Callable) -> None:  # type: ignore[type-arg]
    digits_repo.commit("digits", all=True)
    url = _bare(tmp_path / "o.git")
    cli = run_cli(digits_repo.workdir)
    cli("remote", "add", "origin", url)
    cli("tag", "v1")
    cli("tag", "v2")
    assert "origin: tag v1 →" in cli("push", "origin", "v1").output
    out = cli("push", "--tags").output
    assert "origin: tag v2 →" in out and "tag v1" not in out
    assert "Everything up-to-date (2 tags already there)" in cli("push", "--tags").output
    r = cli("push", "origin", "nope", ok=False)
    assert r.exit_code != 0 and "error: no branch named 'nope'" in r.output


def test_remote_add_shares_the_content_url_unless_local(
    digits_repo: Repo,
    tmp_path: Path,
    run_cli: Callable,  # type: ignore[type-arg]
) -> None:
    cli = run_cli(digits_repo.workdir)
    url = _bare(tmp_path / "o.git")
    out = cli("remote", "add", "origin", url, "--content", str(tmp_path / "bytes")).output
    assert "commit it so clones find the bytes" in out
    cli("remote", "add", "mine", url, "--content", str(tmp_path / "mine"), "--local")
    shared = Config.load(digits_repo.workdir / "datagit.toml").extra["remotes"]
    assert list(shared) == ["origin"]
    cli("commit", "-a", "-m", "digits and where their bytes go")
    cli("push")
    out = run_cli(tmp_path)("clone", url, "teammate").output
    assert f"content: {tmp_path / 'bytes'}" in out


# -- the editor -------------------------------------------------------------------------------
def _editor(tmp_path: Path, body: str) -> str:
    script = tmp_path / "editor.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_commit_without_m_asks_the_editor(
    digits_repo: Repo,
    tmp_path: Path,
    run_cli: Callable,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    editor = _editor(tmp_path, "printf 'Digits from the editor\\n\\n# a comment\\n' > \"$1\"")
    monkeypatch.setenv("GIT_EDITOR", editor)
    out = run_cli(digits_repo.workdir)("commit", "-a").output
    assert "Digits from the editor" in out
    assert Repo.open(digits_repo.workdir).commit_info().message == "Digits from the editor\n"


def test_core_editor_is_used_when_no_environment_names_one(
    digits_repo: Repo,
    tmp_path: Path,
    run_cli: Callable,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    for name in ("GIT_EDITOR", "VISUAL", "EDITOR"):
        monkeypatch.delenv(name, raising=False)
    digits_repo.git.config_set("core.editor", _editor(tmp_path, "echo 'from core.editor' > \"$1\""))
    run_cli(digits_repo.workdir)("commit", "-a")
    assert Repo.open(digits_repo.workdir).commit_info().summary == "from core.editor"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (": # leaves only the comments", "error: aborting commit due to empty commit message"),
        ("exit 3", "error: there was a problem with the editor"),
    ],
)
def test_an_empty_message_or_a_failing_editor_commits_nothing(
    digits_repo: Repo,
    tmp_path: Path,
    run_cli: Callable,  # type: ignore[type-arg]
    monkeypatch: pytest.MonkeyPatch,
    body: str,
    message: str,
) -> None:
    monkeypatch.setenv("GIT_EDITOR", _editor(tmp_path, body))
    r = run_cli(digits_repo.workdir)("commit", "-a", ok=False)
    assert r.exit_code != 0 and message in r.output
    reopened = Repo.open(digits_repo.workdir)
    assert reopened.head() is None and reopened.stage_tree() is None


# -- pager, colour and progress in a real terminal ---------------------------------------------
def test_log_pages_on_a_terminal_and_not_with_no_pager(digits_repo: Repo, tmp_path: Path) -> None:
    digits_repo.commit("Paged commit", all=True)
    out = tmp_path / "paged.txt"
    env = {"PAGER": f"cat > {out}"}
    shown = _in_terminal(["log"], env, digits_repo.workdir)
    assert "Paged commit" in out.read_text() and "Paged commit" not in shown
    out.unlink()
    shown = _in_terminal(["--no-pager", "log"], env, digits_repo.workdir)
    assert "Paged commit" in shown and not out.exists()
    digits_repo.git.config_set("core.pager", "cat")  # cat: no pager at all
    assert "Paged commit" in _in_terminal(["log"], {"PAGER": "false"}, digits_repo.workdir)


def test_status_is_coloured_on_a_terminal_only(digits_repo: Repo, run_cli: Callable) -> None:  # type: ignore[type-arg]
    digits_repo.commit("digits", all=True)
    first = sorted((digits_repo.workdir / "train").rglob("*.png"))[0]
    first.rename(first.parent.parent / ("9" if first.parent.name != "9" else "8") / first.name)
    coloured = _in_terminal(["status"], {}, digits_repo.workdir)
    assert "relabeled" in coloured and "\x1b[33m" in coloured
    plain = _in_terminal(["status"], {"NO_COLOR": "1"}, digits_repo.workdir)
    assert "relabeled" in plain and "\x1b[" not in plain
    digits_repo.git.config_set("color.ui", "never")
    assert "\x1b[" not in _in_terminal(["status"], {}, digits_repo.workdir)
    piped = run_cli(digits_repo.workdir)("status").output
    assert "relabeled" in piped and "\x1b[" not in piped


def test_progress_is_silent_when_stderr_is_not_a_terminal(
    digits_repo: Repo, tmp_path: Path
) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "datagit", "commit", "-a", "-m", "quiet"],
        cwd=digits_repo.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stderr == ""
    r = subprocess.run(
        [sys.executable, "-m", "datagit", "fsck"],
        cwd=digits_repo.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stderr == "" and "ok" in r.stdout
