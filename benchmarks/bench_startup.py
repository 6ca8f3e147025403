"""Start-up: what every command pays before it does any work, against bare Python.

    python benchmarks/bench_startup.py [--runs 7]

On a repository of 20 small files (so the command's own work is negligible), each
row is the best wall time of ``--runs`` runs and, from ``-X importtime``, the time
spent importing (the best per module over the runs, summed) and the number of
modules loaded; the ratio is against ``python -c pass`` measured in the same run.
Issue 14's goal: verbs load lazily, and `--help` imports no verb module.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATAGIT = [sys.executable, "-m", "datagit"]
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)  # compiling every module on every run is not start-up
_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| \s*(\S+)")
COMMANDS = [
    ["--help"],
    ["status"],
    ["commit", "-m", "nothing"],
    ["checkout", "HEAD"],
    ["cat", "train/3"],
    ["ls", "HEAD"],
    ["blame", "train/3"],
    ["log", "--oneline"],
]


def wall(args: list[str], cwd: Path, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(args, cwd=cwd, env=ENV, capture_output=True, check=False)
        best = min(best, time.perf_counter() - t)
    return best


def imports(args: list[str], cwd: Path, runs: int) -> tuple[float, int]:
    """(seconds importing, modules imported): each module's best self time, summed."""
    best: dict[str, int] = collections.defaultdict(lambda: 1 << 62)
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", *args[1:]],
            cwd=cwd,
            env=ENV,
            capture_output=True,
            text=True,
            check=False,
        ).stderr
        for m in _LINE.finditer(err):
            best[m[2]] = min(best[m[2]], int(m[1]))
    return sum(best.values()) / 1e6, len(best)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    runs = ap.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="dg-startup-"))
    try:
        subprocess.run([*DATAGIT, "init", "."], cwd=work, env=ENV, capture_output=True, check=True)
        (work / "train" / "a").mkdir(parents=True)
        for i in range(20):
            (work / "train" / "a" / f"{i}.bin").write_bytes(os.urandom(64))
        for args in (["dataset", "add", "train", "--layout", "imagefolder", "--path", "train"],
                     ["commit", "-a", "-m", "data"]):  # fmt: skip
            subprocess.run([*DATAGIT, *args], cwd=work, env=ENV, capture_output=True, check=True)
        base = wall([sys.executable, "-c", "pass"], work, runs)
        rows = [("python -c pass", f"{base * 1000:.0f} ms", "", "", "baseline")]
        for args in COMMANDS:
            t = wall([*DATAGIT, *args], work, runs)
            imp, n = imports([*DATAGIT, *args], work, runs)
            rows.append((f"datagit {' '.join(args)}", f"{t * 1000:.0f} ms",
                         f"{imp * 1000:.0f} ms", str(n), f"{t / base:.1f}×"))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'wall':>7}  {'imports':>7}  {'modules':>7}  ratio")
    for what, t, imp, n, ratio in rows:
        print(f"{what:<{width}}  {t:>7}  {imp:>7}  {n:>7}  {ratio}")


if __name__ == "__main__":
    main()
