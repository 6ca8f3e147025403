"""`datagit ui` serves the viewer: 127.0.0.1 by default, a warning for any other host."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from testkit import Cli

from datagit import Repo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(root: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "datagit", "-C", str(root), "ui", "--port", str(port), *args],
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    return proc, port


def get(port: int, path: str = "/") -> tuple[int, str]:
    """The first answer from the server, waiting while it starts (it exits if it fails)."""
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as r:
                return r.status, r.read().decode()
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the viewer never answered")


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate()
    return err


def test_ui_serves_history_on_localhost(tmp_repo: Repo, cli: Cli) -> None:
    cli("commit", "--allow-empty", "-m", "an empty start")
    proc, port = serve(tmp_repo.workdir)
    try:
        status, html = get(port)
        assert status == 200 and "an empty start" in html
    finally:
        err = stop(proc)
    assert f"datagit ui: http://127.0.0.1:{port}/" in err
    assert "warning" not in err


def test_ui_warns_when_serving_beyond_localhost(tmp_repo: Repo) -> None:
    proc, port = serve(tmp_repo.workdir, "--host", "0.0.0.0")
    try:
        assert get(port)[0] == 200
    finally:
        err = stop(proc)
    assert "warning: serving on 0.0.0.0: anyone who can reach this machine" in err


def test_ui_outside_a_repository_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "datagit", "-C", str(tmp_path), "ui", "--port", "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.startswith("error: not a datagit repository")


@pytest.mark.parametrize("port", ["-1", "70000", "http"])
def test_ui_rejects_a_bad_port(tmp_repo: Repo, cli: Cli, port: str) -> None:
    result = cli("ui", "--port", port, ok=False)
    assert result.exit_code == 2 and "--port" in result.output
