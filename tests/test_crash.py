"""kill -9 a real `datagit commit -a` / `datagit checkout` at random points, many times.

After every kill: HEAD is the old or the new commit, `fsck` is clean, every record of every
commit reads back with verified content, and running the command again completes.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testkit import Cli, digits_pngs, write_tree

from datagit import Repo
from datagit.api import maintenance

ITERATIONS = 25
SEED = 20240611


def datagit(ws: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "datagit", "-C", str(ws), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed(ws: Path, *args: str) -> float:
    start = time.perf_counter()
    assert datagit(ws, *args).wait() == 0
    return time.perf_counter() - start


def startup_time() -> float:
    """Median time to start the CLI and do nothing: kills before it hit no write at all."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "datagit", "--version"], check=True, stdout=subprocess.DEVNULL
        )
        times.append(time.perf_counter() - start)
    return sorted(times)[1]


def verify_everything(ws: Path) -> int:
    """fsck is clean and every record of every reachable commit reads back verified."""
    repo = Repo.open(ws)
    try:
        report = maintenance.fsck(repo)
        assert report.ok, report.problems
        n = 0
        for c in repo.git.walk(maintenance.reachable_roots(repo)):
            for name in repo.datasets_at(c.id):
                for r in repo.records(name, c.id):
                    repo.read(r)
                    n += 1
        return n
    finally:
        repo.close()


def kill_at(proc: subprocess.Popen[bytes], delay: float) -> None:
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def template(tmp_path: Path) -> tuple[Path, str]:
    """A workspace with one commit of 200 digits and a big uncommitted change on top."""
    ws = tmp_path / "template"
    repo = Repo.init(ws)
    from datagit.core.config import DatasetConfig

    repo.add_dataset(DatasetConfig("train", "imagefolder", "train"))
    pngs = digits_pngs(260)
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(pngs[:200])})
    old = repo.commit("old", all=True).id
    for i in range(0, 200, 4):  # 50 re-labels
        t = pngs[i][1]
        shutil.move(ws / f"train/{t}/img_{i:03d}.png", ws / f"train/{(t + 3) % 10}/img_{i:03d}.png")
    for i in range(1, 200, 10):  # 20 new bytes
        (ws / f"train/{pngs[i][1]}/img_{i:03d}.png").write_bytes(pngs[i + 50][0][::-1])
    for i in range(2, 200, 20):  # 10 removals
        (ws / f"train/{pngs[i][1]}/img_{i:03d}.png").unlink()
    write_tree(ws, {f"train/{t}/new_{i:03d}.png": p for i, (p, t) in enumerate(pngs[200:])})
    repo.close()
    return ws, old


def fresh_copy(template: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(template, dest, symlinks=True)
    return dest


def test_kill_9_during_commit(template: tuple[Path, str], tmp_path: Path) -> None:
    src, old = template
    ref = fresh_copy(src, tmp_path / "ref")
    t_start = startup_time()
    t_full = timed(ref, "commit", "-a", "-m", "new")
    new_tree = Repo.open(ref).commit_info().tree
    rng = random.Random(SEED)
    outcomes = {"old": 0, "new": 0}
    for _ in range(ITERATIONS):
        ws = fresh_copy(src, tmp_path / "ws")
        kill_at(datagit(ws, "commit", "-a", "-m", "new"), rng.uniform(0.8 * t_start, t_full))
        repo = Repo.open(ws)
        head = repo.commit_info()
        repo.close()
        if head.id == old:
            outcomes["old"] += 1
        else:
            assert head.parents == (old,) and head.tree == new_tree
            outcomes["new"] += 1
        verify_everything(ws)
        again = Cli(ws)("commit", "-a", "-m", "new", ok=False)
        if head.id == old:
            assert again.exit_code == 0, again.output
        else:
            assert "nothing to commit" in again.stderr
        repo = Repo.open(ws)
        assert repo.commit_info().tree == new_tree and repo.status().clean
        repo.close()
    assert sum(outcomes.values()) == ITERATIONS


def test_kill_9_during_checkout(template: tuple[Path, str], tmp_path: Path) -> None:
    src, old = template
    base = fresh_copy(src, tmp_path / "base")
    Cli(base)("commit", "-a", "-m", "new")
    new = Repo.open(base).head()
    ref = fresh_copy(base, tmp_path / "ref")
    t_start = startup_time()
    t_full = timed(ref, "checkout", old)
    expected = {
        p.relative_to(ref).as_posix(): p.read_bytes()
        for p in (ref / "train").rglob("*")
        if p.is_file()
    }
    rng = random.Random(SEED + 1)
    for _ in range(ITERATIONS):
        ws = fresh_copy(base, tmp_path / "ws")
        kill_at(datagit(ws, "checkout", old), rng.uniform(0.8 * t_start, t_full))
        repo = Repo.open(ws)
        assert repo.head() in (old, new)
        repo.close()
        assert verify_everything(ws) == 200 + 250
        again = Cli(ws)("checkout", old, ok=False)
        assert again.exit_code == 0, again.output
        got = {
            p.relative_to(ws).as_posix(): p.read_bytes()
            for p in (ws / "train").rglob("*")
            if p.is_file()
        }
        assert got == expected
        repo = Repo.open(ws)
        assert repo.head() == old and repo.status().clean
        repo.close()


@pytest.fixture
def many_packs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """200 digits and 60 one-image re-labels, each commit in its own git pack."""
    import datagit.storage.git as git_storage

    monkeypatch.setattr(git_storage, "SMALL_BATCH", 1)
    ws = tmp_path / "packs"
    repo = Repo.init(ws)
    from datagit.core.config import DatasetConfig

    repo.add_dataset(DatasetConfig("train", "imagefolder", "train"))
    pngs = digits_pngs(200)
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(pngs)})
    repo.commit("digits", all=True)
    for i, (_, t) in enumerate(pngs[:60]):
        shutil.move(ws / f"train/{t}/img_{i:03d}.png", ws / f"train/{(t + 1) % 10}/img_{i:03d}.png")
        repo.commit(f"relabel {i}", all=True)
    repo.close()
    return ws


def git_fsck_clean(ws: Path) -> None:
    if shutil.which("git") is None:
        return
    out = subprocess.run(
        ["git", "--git-dir", str(ws / ".datagit"), "fsck", "--full", "--strict"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    # A kill before the old packs go leaves unreachable objects: "dangling" is no error.
    problems = [
        ln for ln in (out.stdout + out.stderr).splitlines() if not ln.startswith("dangling ")
    ]
    assert problems == [], problems


# `datagit gc` on a slow disk: every object written and every file deleted under
# objects/ takes a millisecond, so a kill lands inside the repack, not only
# before or after it.
SLOW_GC = """
import sys, time
from pathlib import Path
import datagit.storage.gitgc as gitgc

real_bodies, real_unlink = gitgc._bodies, Path.unlink

def bodies(store, order):
    for item in real_bodies(store, order):
        time.sleep(0.001)
        yield item

def unlink(self, missing_ok=False):
    if "objects" in self.parts:
        time.sleep(0.001)
    real_unlink(self, missing_ok=missing_ok)

gitgc._bodies, Path.unlink = bodies, unlink
from datagit.cli import cli
cli(["-C", sys.argv[1], "gc"])
"""


def slow_gc(ws: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_GC, str(ws)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_kill_9_during_gc(many_packs: Path, tmp_path: Path) -> None:
    ref = fresh_copy(many_packs, tmp_path / "ref")
    records = verify_everything(ref)
    t_start = startup_time()
    t = time.perf_counter()
    assert slow_gc(ref).wait() == 0
    t_full = time.perf_counter() - t
    assert len(list((ref / ".datagit/objects/pack").glob("*.pack"))) == 1
    rng = random.Random(SEED + 2)
    for _ in range(8):
        ws = fresh_copy(many_packs, tmp_path / "ws")
        kill_at(slow_gc(ws), rng.uniform(t_start, t_full))
        assert verify_everything(ws) == records
        git_fsck_clean(ws)
        Cli(ws)("gc")
        assert len(list((ws / ".datagit/objects/pack").glob("*.pack"))) == 1
        assert verify_everything(ws) == records
        git_fsck_clean(ws)


# `datagit checkout` killed after its Nth rename: the write of a re-labelled, edited
# example has landed and the delete of its old path has not, so one id sits in two
# class folders (2 of 30 random kills found this).
KILLED_CHECKOUT = """
import os, signal, sys
real_replace, count = os.replace, [0]

def replace(src, dst, **kw):
    real_replace(src, dst, **kw)
    if "/train/" in str(dst) and ".datagit" not in str(dst):
        count[0] += 1
        if count[0] == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

os.replace = replace
from datagit.cli import cli
cli(["-C", sys.argv[1], *sys.argv[3:]])
"""


def files_of(ws: Path) -> dict[str, bytes]:
    return {
        p.relative_to(ws).as_posix(): p.read_bytes()
        for p in (ws / "train").rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("after", [1, 60])
@pytest.mark.parametrize(
    "next_command",
    [
        ("status",),
        ("commit", "-a", "-m", "x"),
        ("checkout", "-f", "NEW"),
        ("checkout", "-f", "OLD"),
        ("checkout", "OLD"),
    ],
)
def test_a_killed_checkout_is_finished_or_undone_exactly_by_the_next_command(
    template: tuple[Path, str], tmp_path: Path, after: int, next_command: tuple[str, ...]
) -> None:
    src, old = template
    base = fresh_copy(src, tmp_path / "base")
    Cli(base)("commit", "-a", "-m", "new")
    new = Repo.open(base).head()
    assert new is not None
    at_new = files_of(base)
    ref = fresh_copy(base, tmp_path / "ref")
    Cli(ref)("checkout", old)
    at_old = files_of(ref)
    ws = fresh_copy(base, tmp_path / "ws")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_CHECKOUT, str(ws), str(after), "checkout", old],
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL
    assert (ws / ".datagit" / "CHECKOUT").exists()  # the journal says where it was going
    args = [{"NEW": new, "OLD": old}.get(a, a) for a in next_command]
    result = Cli(ws)(*args, ok=False)
    if args[0] == "commit":  # the finished checkout left nothing to commit, and says so
        assert "nothing to commit: the workspace matches HEAD" in result.output
        assert "commit -a" not in result.output
    else:
        assert result.exit_code == 0, result.output
    repo = Repo.open(ws)
    expect_new = args[:3] == ["checkout", "-f", new]
    assert repo.head() == (new if expect_new else old)
    assert files_of(ws) == (at_new if expect_new else at_old)
    assert repo.status().clean
    assert not (ws / ".datagit" / "CHECKOUT").exists()
    repo.close()
    verify_everything(ws)


# -- a fast sample of benchmarks/bench_crash.py (which runs ≥ 30 trials of each) -------------
def _bench_crash():  # type: ignore[no-untyped-def]
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_crash.py"
    spec = importlib.util.spec_from_file_location("bench_crash", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_crash", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("op", ["first-add", "relabel", "checkout", "push", "gc", "merge"])
def test_kill_9_sample_needs_no_repair(
    op: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two random kills per operation on 120 digits, the forked helper engaged (from 60
    files): the next commands work, fsck is clean, HEAD reads back into the workspace."""
    bench = _bench_crash()
    monkeypatch.setitem(bench.ENV, "DATAGIT_PARALLEL_MIN", "60")
    outcome = bench.run_op(op, 2, 120, SEED + len(op), tmp_path)
    assert outcome.repaired == 0, outcome.errors
    assert outcome.fsck_clean == outcome.reads_back == outcome.trials == 2, bench.FSCK_LOG


# `datagit merge` killed after its commit moved the branch and before it deleted the
# merge state (1 of 34 crash points of a merge): the state names a merge already made.
KILLED_MERGE = """
import os, signal, sys
real_unlink = os.unlink

def unlink(path, *args, **kw):
    if str(path).endswith("MERGE_STATE"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_unlink(path, *args, **kw)

os.unlink = unlink
from datagit.cli import cli
cli(["-C", sys.argv[1], "merge", "other"])
"""


@pytest.mark.parametrize(
    "next_command", [("status",), ("commit", "-m", "again"), ("merge", "other")]
)
def test_a_merge_killed_after_its_commit_is_done_not_made_again(
    tmp_repo: Repo, next_command: tuple[str, ...]
) -> None:
    ws = tmp_repo.workdir
    pngs = digits_pngs(20)
    write_tree(ws, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(pngs)})
    cli = Cli(ws)
    cli("commit", "-a", "-m", "first")
    cli("switch", "-c", "other")
    t = pngs[0][1]
    shutil.move(ws / f"train/{t}/img_000.png", ws / f"train/{(t + 1) % 10}/img_000.png")
    cli("commit", "-a", "-m", "theirs")
    cli("switch", "main")
    (ws / f"train/{pngs[1][1]}/img_001.png").write_bytes(pngs[1][0] + b"ours")
    cli("commit", "-a", "-m", "ours")
    ours, theirs = tmp_repo.head(), tmp_repo.resolve("other")
    killed = subprocess.run([sys.executable, "-c", KILLED_MERGE, str(ws)], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    merged = Repo.open(ws).commit_info()
    assert merged.parents == (ours, theirs)  # killed after the merge commit...
    assert (ws / ".datagit" / "MERGE_STATE").exists()  # ...before the state went
    result = cli(*next_command, ok=False)
    if next_command[0] == "commit":
        assert result.exit_code != 0 and "nothing to commit" in result.output
    else:
        assert result.exit_code == 0, result.output
        assert "in progress" not in result.output and "conflict" not in result.output
    repo = Repo.open(ws)
    assert repo.head() == merged.id  # no second merge commit
    assert not (ws / ".datagit" / "MERGE_STATE").exists()
    assert repo.status().clean and not repo.status().conflicts
    repo.close()
    verify_everything(ws)
    git_fsck_clean(ws)
