"""Object lookups before and after `gc` consolidates a long history's per-commit packs.

    python benchmarks/bench_gc.py [--commits 1000] [--records 20000] [--changes 30]

Builds a repository whose every commit re-labels ``--changes`` random records
of a ``--records``-example dataset, written as `commit` writes it (one git
pack per commit for the shard blobs and trees, a loose commit object), then
times in the same run, before and after `datagit gc`:

* ``log``: walk every commit (``Repo.log``), in a freshly opened repository;
* ``shards``: read every shard blob at 50 random commits (tree and blob lookups);
* ``datagit log --oneline`` and ``git log --oneline`` as processes;
* one more commit (median of 50): each object it writes is first looked up.

Each lookup figure is the best of three; the speed-up is before / after.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from datagit import Repo
from datagit.api import maintenance
from datagit.core import patch
from datagit.core.manifest import DatasetTree, patch_dataset, write_dataset, write_root
from datagit.core.records import Record
from datagit.storage import gitgc
from datagit.storage.git import Signature

CONFIG = b'[datasets.train]\nlayout = "imagefolder"\npath = "train"\n'
LABELS = ["cat", "dog", "bird", "fish", "frog", "horse", "ship", "truck", "plane", "deer"]
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}


def best(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


class History:
    """A repository on disk and the synthetic re-labelling that keeps adding commits to it."""

    def __init__(self, ws: Path, n: int, changes: int) -> None:
        self.ws, self.changes = ws, changes
        self.total = 0.0  # seconds spent in the last `commit` call
        self.rng = random.Random(5)
        self.state = {
            f"{i:07d}.png": Record(f"{i:07d}.png", LABELS[i % 10], f"{i:032x}", 1000)
            for i in range(n)
        }
        self.keys = sorted(self.state)
        repo = Repo.init(ws)
        git = repo.git
        sig = Signature("ann", "ann@example.com", 1_700_000_000)
        with git.batch():
            self.tree = write_dataset(git, self.state.values())
            root = write_root(git, CONFIG, {"train": self.tree})
        self.ids = [git.create_commit(root, [], "import\n", sig, sig)]
        git.update_ref("refs/heads/main", self.ids[-1], "commit (initial): import")
        repo.close()

    def commit(self, count: int, roll: bool = False) -> float:
        """Add ``count`` commits as `commit` writes them; returns the median seconds of one.

        With ``roll``, each commit ends as `datagit commit` does, with `roll_up`
        (merging small packs past 50), and its time counts in the commit's.
        """
        repo = Repo.open(self.ws)
        git = repo.git
        times = []
        self.total = 0.0
        for _ in range(count):
            t = time.perf_counter()
            c = len(self.ids)
            picked = self.rng.sample(self.keys, self.changes)
            ups = {
                i: Record(i, self.rng.choice(LABELS), self.state[i].content, 1000, "bob")
                for i in picked
            }
            with git.batch():  # the new tree plus its patch: one pack, as `commit` writes
                self.tree = patch_dataset(git, self.tree, ups)
                pairs = {i: (self.state[i], r) for i, r in ups.items()}
                blob = git.write_blob(patch.encode(pairs))
                root = write_root(git, CONFIG, {"train": self.tree}, {"train.jsonl": blob})
            self.state.update(ups)
            s = Signature("bob", "bob@example.com", 1_700_000_000 + c)
            self.ids.append(git.create_commit(root, [self.ids[-1]], f"relabel {c}\n", s, s))
            git.update_ref("refs/heads/main", self.ids[-1], f"commit: relabel {c}")
            if roll:
                gitgc.roll_up(git)
            times.append(time.perf_counter() - t)
            self.total += times[-1]
        repo.close()
        return statistics.median(times)


def measure(ws: Path, sample: list[str]) -> dict[str, float]:
    def log() -> None:
        repo = Repo.open(ws)
        assert sum(1 for _ in repo.log()) > 0
        repo.close()

    def shards() -> None:
        repo = Repo.open(ws)
        for c in sample:
            for blob in DatasetTree(repo.git, repo.datasets_at(c)["train"]).shards().values():
                repo.git.read_blob(blob)
        repo.close()

    out = {"log (API)": best(log), f"every shard at {len(sample)} commits": best(shards)}
    out["datagit log --oneline"] = best(
        lambda: subprocess.run(
            [sys.executable, "-m", "datagit", "-C", str(ws), "log", "--oneline"],
            env=ENV,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    )
    if shutil.which("git"):
        out["git log --oneline"] = best(
            lambda: subprocess.run(
                ["git", "--git-dir", str(ws / ".datagit"), "log", "--oneline"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--commits", type=int, default=1000)
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--changes", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dg-bench-gc-") as tmp:
        ws = Path(tmp) / "ws"
        history = History(ws, args.records, args.changes)
        first = history.commit(50)
        history.commit(args.commits - 100)
        last = history.commit(50)
        sample = random.Random(9).sample(history.ids, min(50, len(history.ids)))
        before = measure(ws, sample)
        repack_s: list[float] = []

        def timed_repack(*a: object) -> object:  # the git half of gc, timed on its own
            t = time.perf_counter()
            out = real_repack(*a)  # type: ignore[arg-type]
            repack_s.append(time.perf_counter() - t)
            return out

        real_repack, maintenance.repack = maintenance.repack, timed_repack  # type: ignore[assignment]
        repo = Repo.open(ws)
        t = time.perf_counter()
        report = maintenance.gc(repo).git
        t_gc = time.perf_counter() - t
        repo.close()
        assert report is not None
        after = measure(ws, sample)
        after_commit = history.commit(50)
        # The same history as `datagit commit` writes it: small packs rolled up past 50.
        rolled = History(Path(tmp) / "rolled", args.records, args.changes)
        rolled.commit(args.commits - 50, roll=True)
        spent = rolled.total
        rolled_last = rolled.commit(50, roll=True)
        spent += rolled.total
        rolled_packs = len(list((Path(tmp) / "rolled" / ".datagit/objects/pack").glob("*.pack")))
    rows = [
        (
            f"{args.commits:,} commits of {args.changes} re-labels ({args.records:,} records)",
            "",
            "",
            "",
        ),
        (
            "datagit gc: all of it / the git repack",
            f"{t_gc:.2f} s",
            f"{repack_s[0]:.2f} s",
            f"{report.packs_before:,} packs + {report.loose_before:,} loose → "
            f"{report.objects:,} objects in {report.packs} pack",
        ),
        (
            "objects/ on disk",
            f"{report.bytes_before / 1e6:.1f} MB",
            f"{report.bytes_after / 1e6:.1f} MB",
            "",
        ),
        ("", "before gc", "after gc", "speed-up"),
    ]
    for name, b in before.items():
        a = after[name]
        rows.append((name, f"{b:.3f} s", f"{a:.3f} s", f"{b / a:.1f}×"))
    rows.append(
        (
            "one commit (median of 50)",
            f"{last * 1000:.1f} ms",
            f"{after_commit * 1000:.1f} ms",
            f"{last / after_commit:.1f}× (the first 50 took {first * 1000:.1f} ms)",
        )
    )
    rows.append(
        (
            "one commit, rolling packs up (median of the last 50)",
            f"{rolled_last * 1000:.1f} ms",
            f"mean {spent / args.commits * 1000:.1f} ms",
            f"roll-ups included; {rolled_packs} packs after {args.commits:,} commits",
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
