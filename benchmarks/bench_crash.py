"""kill -9 at random points of real datagit commands; after each, the next command must work.

    python benchmarks/bench_crash.py [--trials 30] [--images 2000] [--ops first-add,relabel,...]

For each operation (first add, a 1% re-label commit, checkout, push, gc, merge) a
template repository is prepared once; each trial copies it, starts the command,
SIGKILLs it at a random moment between CLI start-up and the command's full
duration (measured on a reference copy), then without any manual step runs
`status`, re-runs the command (or its natural continuation) and checks:

  needed repair        a follow-up command failed (the goal: 0)
  fsck clean           `datagit fsck` and `git fsck --full --strict` (dangling is fine)
  last commit reads    every record of HEAD reads back verified, and the workspace
                       holds exactly HEAD's files byte for byte

Images are real digits (scikit-learn) as PNGs, with a unique suffix so each is
distinct. The forked helper (both cores) runs from DATAGIT_PARALLEL_MIN files, set
low so it is exercised at these sizes. tests/test_crash.py runs a few trials of each.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DATAGIT = [sys.executable, "-m", "datagit"]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Crash",
    "GIT_AUTHOR_EMAIL": "crash@example.com",
    "DATAGIT_PARALLEL_MIN": os.environ.get("DATAGIT_PARALLEL_MIN", "500"),
}
OPS = ("first-add", "relabel", "checkout", "push", "gc", "merge")


def dg(ws: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*DATAGIT, "-C", str(ws), *args], env=ENV, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"datagit {' '.join(args)}: {out.stderr.strip()}")
    return out


def pngs(n: int) -> list[tuple[bytes, int]]:
    """n distinct real digit images (PNG bytes, label)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for i in range(n):
        img, target = d.images[i % len(d.images)], int(d.target[i % len(d.images)])
        buf = io.BytesIO()
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
        out.append((buf.getvalue() + i.to_bytes(4, "little"), target))  # distinct bytes
    return out


def write_images(ws: Path, images: list[tuple[bytes, int]], prefix: str = "img") -> None:
    for i, (data, label) in enumerate(images):
        path = ws / "train" / str(label) / f"{prefix}_{i:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def relabel(ws: Path, fraction: float, seed: int, shift: int = 1) -> None:
    files = sorted((ws / "train").rglob("*.png"))
    for p in random.Random(seed).sample(files, max(1, int(len(files) * fraction))):
        label = (int(p.parent.name) + shift) % 10
        (ws / "train" / str(label)).mkdir(exist_ok=True)
        os.replace(p, ws / "train" / str(label) / p.name)


@dataclass
class Case:
    """A template to copy and the command to kill; ``finish`` completes it afterwards."""

    ws: Path
    command: list[str]
    finish: list[list[str]]
    extra: dict[str, Path] = field(default_factory=dict)


def init(ws: Path, images: list[tuple[bytes, int]]) -> None:
    dg(ws.parent, "init", ws.name)
    dg(ws, "dataset", "add", "train", "--layout", "imagefolder", "--path", "train")
    write_images(ws, images)


def prepare(op: str, root: Path, images: list[tuple[bytes, int]]) -> Case:
    ws = root / "template"
    init(ws, images)
    if op == "first-add":
        return Case(ws, ["commit", "-a", "-m", "first"], [["commit", "-a", "-m", "first"]])
    dg(ws, "commit", "-a", "-m", "first")
    if op == "relabel":
        relabel(ws, 0.01, 1)
        return Case(ws, ["commit", "-a", "-m", "relabel"], [["commit", "-a", "-m", "relabel"]])
    if op == "checkout":
        relabel(ws, 0.2, 2)
        (ws / "train" / "3" / "edited.png").write_bytes(images[0][0][::-1])
        dg(ws, "commit", "-a", "-m", "second")
        return Case(ws, ["checkout", "HEAD~1"], [["checkout", "-f", "main"]])
    if op == "push":
        remote = root / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
        dg(ws, "remote", "add", "origin", str(remote))
        dg(ws, "push", "origin")
        relabel(ws, 0.05, 3)
        new = [(data + b"new", label) for data, label in images[: len(images) // 10]]
        write_images(ws, new, prefix="new")  # bytes the remote lacks: the push uploads
        dg(ws, "commit", "-a", "-m", "second")
        return Case(ws, ["push", "origin"], [["push", "origin"]], {"remote": remote})
    if op == "gc":
        for i in range(20):
            relabel(ws, 0.002, 10 + i)
            dg(ws, "commit", "-a", "-m", f"relabel {i}")
        dg(ws, "branch", "gone")
        dg(ws, "branch", "-D", "gone")
        return Case(ws, ["gc"], [["gc"]])
    if op == "merge":
        before = {p.name: p.parent.name for p in (ws / "train").rglob("img_*.png")}
        dg(ws, "switch", "-c", "other")
        relabel(ws, 0.05, 4, shift=2)
        dg(ws, "commit", "-a", "-m", "theirs")
        moved = {
            p.name for p in (ws / "train").rglob("img_*.png") if before[p.name] != p.parent.name
        }
        dg(ws, "switch", "main")
        files = sorted(p for p in (ws / "train").rglob("img_*.png") if p.name not in moved)
        for p in files[: len(files) // 50]:  # ours: new bytes, never re-labelled by theirs
            p.write_bytes(p.read_bytes() + b"ours")
        dg(ws, "commit", "-a", "-m", "ours")
        return Case(ws, ["merge", "other"], [["merge", "other"]])
    raise ValueError(op)


def timed(ws: Path, args: list[str]) -> float:
    t = time.perf_counter()
    dg(ws, *args)
    return time.perf_counter() - t


def workspace_files(ws: Path) -> dict[str, bytes]:
    return {
        p.relative_to(ws).as_posix(): p.read_bytes()
        for p in sorted((ws / "train").rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


FSCK_LOG: list[str] = []  # why a trial's fsck was not clean (printed with the table)


def fsck_clean(ws: Path) -> bool:
    ours = dg(ws, "fsck", check=False)
    if ours.returncode != 0:
        FSCK_LOG.append(f"datagit fsck: {(ours.stdout + ours.stderr).strip()[-300:]}")
        return False
    out = subprocess.run(
        ["git", "--git-dir", str(ws / ".datagit"), "fsck", "--full", "--strict"],
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if not ln.startswith("dangling")]
    if out.returncode != 0 or lines:
        FSCK_LOG.append(f"git fsck: {lines[:3]}")
        return False
    return True


def reads_back(ws: Path) -> bool:
    """Every HEAD record reads back verified and the workspace is exactly HEAD."""
    from datagit import Repo

    repo = Repo.open(ws)
    try:
        want = {f"train/{r.label}/{r.id}": repo.read(r) for r in repo.records("train", "HEAD")}
        have = workspace_files(ws)
        if want != have:
            extra, lost = sorted(set(have) - set(want)), sorted(set(want) - set(have))
            FSCK_LOG.append(f"workspace != HEAD: extra {extra[:3]}, missing {lost[:3]}")
            return False
        status = repo.status()
        if not status.clean:
            changed = [(d.name, d.staged[:2], d.unstaged[:2]) for d in status.datasets]
            FSCK_LOG.append(f"status not clean: {changed}")
            return False
        return True
    except Exception as exc:
        FSCK_LOG.append(f"reading HEAD: {exc!r}")
        return False
    finally:
        repo.close()


@dataclass
class Outcome:
    trials: int = 0
    repaired: int = 0
    fsck_clean: int = 0
    reads_back: int = 0
    errors: list[str] = field(default_factory=list)


def trial(
    case: Case, dest: Path, delay: float, extra_copy: Callable[[], None]
) -> tuple[bool, bool, bool, str]:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(case.ws, dest, symlinks=True)
    extra_copy()
    proc = subprocess.Popen(
        [*DATAGIT, "-C", str(dest), *case.command],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.05)  # let an orphaned helper (there should be none) show itself
    failure = ""
    for args in (["status"], *case.finish, ["status"]):
        out = dg(dest, *args, check=False)
        if args[0] == "merge" and "already in progress" in out.stderr:
            out = dg(dest, "commit", "-m", "merge", check=False)  # what its hint says to do
        done = out.returncode == 0 or "nothing to commit" in out.stderr
        if not done or "Traceback" in out.stderr:
            failure = f"{' '.join(args)}: {out.stderr.strip().splitlines()[-1:]}"
            break
    return bool(failure), fsck_clean(dest), reads_back(dest), failure


def run_op(op: str, trials: int, n_images: int, seed: int, root: Path) -> Outcome:
    images = pngs(n_images)
    work = root / op
    work.mkdir()
    case = prepare(op, work, images)
    remote = case.extra.get("remote")
    saved_remote = work / "origin.saved"
    if remote is not None:
        shutil.copytree(remote, saved_remote)

    def restore_remote() -> None:
        if remote is not None:
            shutil.rmtree(remote)
            shutil.copytree(saved_remote, remote)

    ref = work / "ref"
    shutil.copytree(case.ws, ref, symlinks=True)
    restore_remote()
    full = timed(ref, case.command)
    start = timed(ref, ["--version"])
    rng = random.Random(seed)
    outcome = Outcome()
    for _ in range(trials):
        delay = rng.uniform(0.8 * start, max(full, start))
        repaired, clean, back, why = trial(case, work / "ws", delay, restore_remote)
        outcome.trials += 1
        outcome.repaired += repaired
        outcome.fsck_clean += clean
        outcome.reads_back += back
        if why:
            outcome.errors.append(why)
    return outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    print(f"{args.trials} kill -9 trials per operation, {args.images} digits images")
    print(f"{'operation':<10} | trials | needed repair | fsck clean | last commit reads back")
    total = Outcome()
    with tempfile.TemporaryDirectory() as tmp:
        for i, op in enumerate(args.ops.split(",")):
            o = run_op(op, args.trials, args.images, args.seed + i, Path(tmp))
            print(
                f"{op:<10} | {o.trials:>6} | {o.repaired:>13} | {o.fsck_clean:>10} | "
                f"{o.reads_back:>22}",
                flush=True,
            )
            for e in o.errors[:3]:
                print(f"    e.g. {e}")
            total.trials += o.trials
            total.repaired += o.repaired
    print(f"total: {total.repaired} of {total.trials} trials needed a repair")
    sys.exit(1 if total.repaired else 0)


if __name__ == "__main__":
    main()
