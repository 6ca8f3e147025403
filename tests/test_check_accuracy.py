"""examples/check_accuracy.py: a broken setup aborts the bisect (128), it is not skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "check_accuracy.py"


def _run(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--min", "0.5"],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_import_error_aborts_and_a_datagit_error_skips(tmp_path: Path) -> None:
    shim = tmp_path / "shim" / "datagit"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    broken = _run(tmp_path, {"PYTHONPATH": str(shim.parent)})
    assert broken.returncode == 128, broken.stderr
    assert "No module named torch" in broken.stderr
    # datagit itself answered "error: ..." (here: no repository): this commit is skipped
    skipped = _run(tmp_path, {})
    assert skipped.returncode == 125 and skipped.stderr.startswith("error:")
