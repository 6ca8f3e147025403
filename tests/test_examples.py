"""The examples run: the README's tour (`examples/demo.py`) end to end, harness steps aside
(tests/harness covers training), so a change that breaks the tour fails CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_tour_runs(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "demo.py"),
            "--dir",
            str(tmp_path / "demo"),
            "--no-train",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    text = out.stdout
    assert "3 → 8  60" in text and "9 → 5  40" in text  # the label transition table
    assert "relabeled 3 → 8" in text  # blame of a re-labelled example
    assert "checked 3 commits" in text and ": ok" in text  # fsck
