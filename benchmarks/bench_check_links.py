"""Everyday verbs at scale, as ratios against baselines measured in the same run.

    python benchmarks/bench_check_links.py [--files 100000]

Rows (issue 14's targets):
  check (duplicates + leakage) / `datagit ls` of the same datasets   ≤ 2×
  checkout with core.link = hardlink / `cp -al` of the same files     ≤ 1.5×
  checkout with core.link = copy / `cp -a` of the same files          ≤ 3×
and, for the record: the first linked checkout (which moves objects out of
packs), a copy checkout, and the disk used by the workspace plus .datagit
(unique inodes, after gc) with copies and with hard links.

Data is synthetic random bytes of 2–8 KB in 10 class folders, 90% train and
10% eval, with 1% of eval copied from train (the leaks `check` must find).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATAGIT = [sys.executable, "-m", "datagit"]
ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)


def run(args: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    t = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, check=False)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(args)} exited {done.returncode}")
    return time.perf_counter() - t


def generate(root: Path, n: int) -> None:
    rng = random.Random(0)
    train_n = n * 9 // 10
    train: list[bytes] = []
    for i in range(n):
        split, c = ("train", i % 10) if i < train_n else ("eval", i % 10)
        folder = root / split / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        if split == "eval" and i % 100 == 0:
            data = train[i % len(train)]  # a leak: the same bytes as a training example
        else:
            data = rng.randbytes(rng.randint(2048, 8192))
        if split == "train":
            train.append(data)
        (folder / f"img_{i:07d}.bin").write_bytes(data)


def disk_used(root: Path) -> int:
    """Bytes allocated under ``root``, each inode counted once (hard links share one)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


def cp_a(work: Path, dest: Path) -> float:
    """Seconds for `cp -a` of the datasets into a fresh folder: the copy baseline."""
    dest.mkdir()
    t = time.perf_counter()
    for name in ("train", "eval"):
        subprocess.run(["cp", "-a", str(work / name), str(dest / name)], check=True)
    took = time.perf_counter() - t
    shutil.rmtree(dest)
    return took


def best(fn: object, times: int = 2) -> float:
    return min(fn() for _ in range(times))  # type: ignore[operator]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=100_000)
    n = ap.parse_args().files
    work = Path(tempfile.mkdtemp(prefix="dg-everyday-"))
    rows: list[tuple[str, str, str, str]] = []
    try:
        run([*DATAGIT, "init", "."], work)
        for name in ("train", "eval"):
            (work / name).mkdir()
            run([*DATAGIT, "dataset", "add", name, "--layout", "imagefolder", "--path", name], work)
        run([*DATAGIT, "commit", "-a", "-m", "empty datasets"], work)
        generate(work, n)
        run([*DATAGIT, "commit", "-a", "-m", "data"], work)

        # -- check vs ls -------------------------------------------------------------------
        run([*DATAGIT, "ls", "HEAD"], work)  # warm caches alike
        ls = best(lambda: run([*DATAGIT, "ls", "HEAD"], work))
        check = best(lambda: run([*DATAGIT, "check"], work, ok=(1,)))  # 1: leaks found
        rows.append(
            ("datagit ls HEAD (train + eval)", f"{n:,} examples", f"{ls:.2f} s", "baseline")
        )
        rows.append(("datagit check (leaks found)", f"{n:,} examples", f"{check:.2f} s",
                     f"{check / ls:.2f}× (target ≤ 2×)"))  # fmt: skip

        # -- checkout: copy, first hardlink, hardlink vs cp -al ----------------------------
        copies, cpas = [], []
        for k in range(3):  # best of 3, each copy checkout beside a `cp -a`: the machine is shared
            run([*DATAGIT, "checkout", "HEAD~1"], work)
            copies.append(run([*DATAGIT, "checkout", "main"], work))
            if k == 0:
                after_copy = run([*DATAGIT, "status"], work)  # the first, right after copies
            cpas.append(cp_a(work, work.parent / f"{work.name}-cpa{k}"))
        copy, cpa = min(copies), min(cpas)
        run([*DATAGIT, "gc"], work)
        copy_disk = disk_used(work)
        run([*DATAGIT, "config", "core.link", "hardlink"], work)
        run([*DATAGIT, "checkout", "HEAD~1"], work)
        first = run([*DATAGIT, "checkout", "main"], work)
        run([*DATAGIT, "gc"], work)
        link_disk = disk_used(work)
        linked = []
        for _ in range(3):  # best of 3: the machine is shared
            run([*DATAGIT, "checkout", "HEAD~1"], work)
            linked.append(run([*DATAGIT, "checkout", "main"], work))
        hard = min(linked)
        cps = []
        for k in range(3):
            dest = work.parent / f"{work.name}-cp{k}"
            dest.mkdir()
            t = time.perf_counter()
            for name in ("train", "eval"):
                subprocess.run(["cp", "-al", str(work / name), str(dest / name)], check=True)
            cps.append(time.perf_counter() - t)
            shutil.rmtree(dest)
        cp = min(cps)
        rows.append(("cp -al of the workspace's files", f"{n:,} files", f"{cp:.2f} s", "baseline"))
        rows.append(("checkout, core.link = hardlink", f"{n:,} files", f"{hard:.2f} s",
                     f"{hard / cp:.2f}× (target ≤ 1.5×)"))  # fmt: skip
        rows.append(("first hardlink checkout (pack → loose)", f"{n:,} files", f"{first:.2f} s",
                     f"{first / cp:.2f}×"))  # fmt: skip
        rows.append(("cp -a of the workspace's files", f"{n:,} files", f"{cpa:.2f} s",
                     "baseline (copies)"))  # fmt: skip
        ratio = f"{copy / cpa:.2f}× cp -a (target ≤ 3×), {copy / cp:.2f}× cp -al"
        rows.append(("checkout, core.link = copy", f"{n:,} files", f"{copy:.2f} s", ratio))
        rows.append(("first status after the copy checkout", f"{n:,} files",
                     f"{after_copy:.2f} s", f"{after_copy / ls:.2f}× ls"))  # fmt: skip
        rows.append(("disk, workspace + .datagit, copy", "after gc", f"{copy_disk / 2**20:.0f} MiB",
                     "baseline"))  # fmt: skip
        rows.append(("disk, workspace + .datagit, hardlink", "after gc",
                     f"{link_disk / 2**20:.0f} MiB", f"{link_disk / copy_disk:.2f}×"))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'size':>16}  {'time/size':>10}  ratio")
    for what, size, value, ratio in rows:
        print(f"{what:<{width}}  {size:>16}  {value:>10}  {ratio}")


if __name__ == "__main__":
    main()
