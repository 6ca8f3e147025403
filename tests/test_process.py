"""`datagit.process`: what only the `datagit` command may change in its process."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import gc, json, sys
from datagit import process
out = {}
if sys.argv[1] == "cli":
    process.own()
    out["loading"] = gc.isenabled()
process.settle()
out["after"] = gc.isenabled()
out["frozen"] = gc.get_freeze_count()
print(json.dumps(out))
"""


def _probe(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_cli_collects_no_garbage_while_loading_then_resumes_with_imports_frozen() -> None:
    got = _probe("cli")
    assert got["loading"] is False
    assert got["after"] is True and got["frozen"] > 0  # type: ignore[operator]


def test_a_library_user_keeps_its_garbage_collector() -> None:
    got = _probe("library")
    assert got == {"after": True, "frozen": 0}


def test_the_cli_resumes_collection_for_the_command_it_runs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import gc, sys; from datagit.cli.main import main\n"
        "sys.argv = ['datagit', '-C', sys.argv[1], 'init']\n"
        "import atexit; atexit.register(lambda: print('gc', gc.isenabled()))\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("gc True")
