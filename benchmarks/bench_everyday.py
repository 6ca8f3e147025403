"""What issue 14's fixes cost, as ratios against baselines measured in the same run.

    python benchmarks/bench_everyday.py [--files 20000] [--rows 100000]

Rows:
  listing an image folder with a 3-pattern .datagitignore / without one   ≤ 1.5×
  checkout of a 1%-relabelled CSV table in the user's style / datagit's own
                                                                           ≤ 2×
  status --porcelain / status (long form), 1% of examples relabelled      ≤ 1.2×

Data is synthetic (scale only; tests use real digits and scikit-learn tables).
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from datagit import Repo
from datagit.core.config import DatasetConfig
from datagit.core.layouts import list_imagefolder, render_table
from datagit.core.records import Record
from datagit.core.tables import render_like
from datagit.storage.content import address

os.environ.setdefault("GIT_AUTHOR_NAME", "Bench")
os.environ.setdefault("GIT_AUTHOR_EMAIL", "bench@example.com")


def pair(a, b, n: int = 5) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best of ``n`` of each, measured alternately so that a busy machine slows both alike."""
    ta, tb = [], []
    for _ in range(n):
        for fn, times in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return min(ta), min(tb)


def listing(root: Path, files: int) -> tuple[float, float]:
    for c in range(10):
        (root / "train" / f"c{c}").mkdir(parents=True)
    for i in range(files):
        (root / "train" / f"c{i % 10}" / f"img_{i:07d}.bin").write_bytes(b"x")
    cfg = DatasetConfig(name="train", layout="imagefolder", path="train")
    (root / "other").mkdir()
    (root / "other" / ".datagitignore").write_text("README*\n*.txt\ntrain/**/scratch/\n")

    def with_ignore() -> None:
        os.replace(root / "other" / ".datagitignore", root / ".datagitignore")
        list_imagefolder(cfg, root)
        os.replace(root / ".datagitignore", root / "other" / ".datagitignore")

    return pair(lambda: list_imagefolder(cfg, root), with_ignore)


def table(rows: int) -> tuple[float, float]:
    cfg = DatasetConfig(name="t", layout="table", path="t.csv", id="rid", label="y", content="x")
    rng = random.Random(0)
    now = {}
    for i in range(rows):
        text = f"text {rng.random()}"
        now[f"r{i:07d}"] = Record(f"r{i:07d}", str(i % 5), address(text.encode()), 10, text=text)
    template = render_table(cfg, list(now.values())).replace(b"\n", b"\r\n")
    target = dict(now)
    for i in range(0, rows, 100):
        r = now[f"r{i:07d}"]
        target[r.id] = Record(r.id, "relabelled", r.content, r.size, text=r.text)
    return pair(
        lambda: render_table(cfg, list(target.values())),
        lambda: render_like(cfg, target, now, template),
    )


def status(root: Path, files: int) -> tuple[float, float]:
    from click.testing import CliRunner

    from datagit.cli import cli

    repo = Repo.init(root)
    for c in range(10):
        (root / "train" / f"c{c}").mkdir(parents=True)
    for i in range(files):
        (root / "train" / f"c{i % 10}" / f"img_{i:07d}.bin").write_bytes(os.urandom(64))
    repo.add_dataset(DatasetConfig(name="train", layout="imagefolder", path="train"))
    repo.commit("all", all=True)
    for i in range(0, files, 100):
        c = i % 10
        os.rename(
            root / "train" / f"c{c}" / f"img_{i:07d}.bin",
            root / "train" / f"c{(c + 1) % 10}" / f"img_{i:07d}.bin",
        )
    runner = CliRunner()
    return pair(
        lambda: runner.invoke(cli, ["-C", str(root), "status"]),
        lambda: runner.invoke(cli, ["-C", str(root), "status", "--porcelain"]),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        plain, ignored = listing(Path(tmp) / "a", args.files)
        own, styled = table(args.rows)
        long, short = status(Path(tmp) / "b", args.files)
    rows = [
        (f"list {args.files} files, .datagitignore / none", ignored, plain, 1.5),
        (f"table of {args.rows} rows, 1% changed: user's style / own", styled, own, 2.0),
        (f"status --porcelain / status, {args.files} files, 1% relabelled", short, long, 1.2),
    ]
    print(f"{'measure':<62} {'s':>8} {'baseline s':>11} {'ratio':>7} {'target':>7}")
    for name, value, base, target in rows:
        ratio = value / base
        ok = "ok" if ratio <= target else "MISSED"
        print(f"{name:<62} {value:8.3f} {base:11.3f} {ratio:6.2f}× ≤{target:.1f}× {ok}")


if __name__ == "__main__":
    main()
