"""Tables beside images, and a million examples: datagit against git and DVC in one run.

    python benchmarks/bench_tables.py [--images 100000] [--rows 1000000]
                                      [--examples 1000000] [--parquet-rows 1000000]
                                      [--skip git,dvc,images,rows,examples,parquet]

Scenarios (issue 15's goals; every ratio is against a peer measured in this run):

  images + table   N generated files in 10 class folders plus labels.csv, an
                   N-row table (id, label, annotator) declared as a table dataset;
                   a 1% re-label moves N/100 files and edits their rows, and 0.1%
                   of the files get new bytes. git, DVC (when installed), datagit
                   and datagit with `fsmonitor`, each on its own copy.
                   Goals: status ≤ 0.5 s (≤ 0.25 s with fsmonitor), re-label
                   commit ≤ 0.6 s, checkout ≤ 2× git's, peak memory ≤ 150 MiB.
  1M-row table     status ≤ 0.2 s, 1% re-label commit ≤ 2 s, peak ≤ 1 GiB.
  1M examples      built through the API (a million small blobs and records, two
                   commits), then `cat`, `ls DATASET/ID`, `blame DATASET/ID` ≤ 0.3 s;
                   opening the content store ≤ 50 ms and ≤ 20 MiB; a DataLoader's
                   2 workers ≤ 50 MiB private memory each.
  Parquet          commit of a 1M-row file ≤ 1.5× reading it with pyarrow and
                   hashing each row.

Times include process start (~0.1 s for datagit) and are best of 3 where a step can be
repeated without changing state, and for the re-label commits, which cannot, best of 3
runs each from a copy of the repository's state before it (git's and datagit's alike;
DVC's once). The machine is shared: treat ±20% as noise.
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
from collections.abc import Callable
from pathlib import Path

import xxhash

DATAGIT = [sys.executable, "-m", "datagit"]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
ENV.pop("PYTHONDONTWRITEBYTECODE", None)
Row = tuple[str, str, str, str]

# Runs a command and prints its wall time and the peak RSS of its process tree (KiB).
_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)\n"
    "dt = time.perf_counter() - t\n"
    "if r.returncode:\n"
    "    sys.stderr.write(r.stderr.decode()[-2000:])\n"
    "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)\n"
)


def measure(args: list[str], cwd: Path) -> tuple[float, float]:
    """(seconds, peak MiB) of one command; raises if it fails.

    Dirty pages are written back first (untimed): a command that fsyncs a file the
    set-up wrote (a copied-back `.datagit`'s pack) would otherwise pay for the
    set-up's writes, and a command that does not (git) would not."""
    os.sync()
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args], cwd=cwd, env=ENV, capture_output=True, text=True
    )
    dt, rss, rc = out.stdout.split()
    if int(rc):
        raise RuntimeError(f"{' '.join(args)} failed in {cwd}: {out.stderr}")
    return float(dt), int(rss) / 1024


def steps(cmds: list[list[str]], cwd: Path) -> tuple[float, float]:
    """Several commands as one step: summed time, the highest peak."""
    total, peak = 0.0, 0.0
    for c in cmds:
        dt, mb = measure(c, cwd)
        total, peak = total + dt, max(peak, mb)
    return total, peak


REPEATS = 3  # best of: the machine is shared


def best_commit(work: Path, edit: Callable[[], object], message: str) -> tuple[float, float]:
    """Best of `REPEATS` runs of ``commit -a`` after ``edit``, each from the same repository
    state (its .datagit copied aside first): a commit cannot be repeated in place."""
    saved = work.parent / (work.name + "-saved.datagit")
    shutil.copytree(work / ".datagit", saved)
    try:
        got = []
        for k in range(REPEATS):
            if k:
                shutil.rmtree(work / ".datagit")
                shutil.copytree(saved, work / ".datagit")
            edit()
            got.append(measure([*DATAGIT, "commit", "-a", "-m", message], work))
        return min(g[0] for g in got), max(g[1] for g in got)
    finally:
        shutil.rmtree(saved, ignore_errors=True)


def best_repeat(
    work: Path, meta: str, cmds: list[list[str]], keep: tuple[str, ...] = ()
) -> tuple[float, float]:
    """Best of `REPEATS` runs of ``cmds`` (a commit) from the same state: ``work/meta``
    (``.git``, ``.datagit``) is copied aside first and put back before each later run;
    the workspace is left as it is (a commit does not change it). Entries of ``meta``
    named in ``keep`` — a running filesystem monitor's socket folder — stay in place."""
    saved = work.parent / (work.name + "-saved-meta")
    shutil.copytree(work / meta, saved, symlinks=True, ignore=shutil.ignore_patterns(*keep))
    try:
        got = []
        for k in range(REPEATS):
            if k:
                for entry in (work / meta).iterdir():
                    if entry.name in keep:
                        continue
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
                shutil.copytree(saved, work / meta, symlinks=True, dirs_exist_ok=True)
            got.append(steps(cmds, work))
        return min(g[0] for g in got), max(g[1] for g in got)
    finally:
        shutil.rmtree(saved, ignore_errors=True)


def best(cmds: list[list[str]], cwd: Path, n: int = 3) -> tuple[float, float]:
    got = [steps(cmds, cwd) for _ in range(n)]
    return min(g[0] for g in got), max(g[1] for g in got)


# What every verb pays before datagit's own code runs: the interpreter and the two
# libraries the CLI cannot start without. Measured in the same run, so a verb's time
# over it is what datagit's imports and work cost, whatever the machine's load.
FLOOR = [sys.executable, "-c", "import click, pygit2"]


def over_floor(dt: float, floor: float) -> str:
    return f"{dt / floor:.2f}× floor (+{(dt - floor) * 1000:.0f} ms)"


# -- images + table -----------------------------------------------------------
def generate(root: Path, n: int) -> None:
    rng = random.Random(0)
    for c in range(10):
        (root / "train" / f"class{c}").mkdir(parents=True, exist_ok=True)
    lines = ["id,label,annotator"]
    for i in range(n):
        (root / "train" / f"class{i % 10}" / f"img_{i:07d}.bin").write_bytes(
            rng.randbytes(rng.randint(512, 2048))
        )
        lines.append(f"img_{i:07d},class{i % 10},ann{i % 7}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def relabel(root: Path, n: int) -> None:
    """Move 1% of the files to the next class folder and edit their rows; 0.1% new bytes."""
    moved = set(range(0, n, 100))
    for i in moved:
        src = root / "train" / f"class{i % 10}" / f"img_{i:07d}.bin"
        os.replace(src, root / "train" / f"class{(i + 1) % 10}" / src.name)
    rng = random.Random(1)
    for i in range(7, n, 1000):
        c = (i + 1) % 10 if i in moved else i % 10
        (root / "train" / f"class{c}" / f"img_{i:07d}.bin").write_bytes(rng.randbytes(1024))
    lines = (root / "labels.csv").read_text().splitlines()
    for i in moved:
        lines[i + 1] = f"img_{i:07d},class{(i + 1) % 10},ann{i % 7}"
    (root / "labels.csv").write_text("\n".join(lines) + "\n")


def read_and_hash(root: Path) -> float:
    t = time.perf_counter()
    for dirpath, _dirs, files in os.walk(root):
        if "/." in dirpath:
            continue
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as f:
                xxhash.xxh3_128_hexdigest(f.read())
    return time.perf_counter() - t


def run_git(work: Path, n: int) -> dict[str, tuple[float, float]]:
    git = ["git", "-c", "core.quotepath=off"]
    out = {}
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    out["init + add + commit"] = steps([[*git, "add", "-A"], [*git, "commit", "-qm", "a"]], work)
    first = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
    ).stdout.strip()
    out["status, nothing changed"] = best([[*git, "status", "--porcelain"]], work)
    relabel(work, n)
    commit = [[*git, "add", "-A"], [*git, "commit", "-qm", "r"]]
    out["commit of the 1% relabel"] = best_repeat(work, ".git", commit)
    out["diff"] = best([[*git, "diff", "--stat", "HEAD~1", "HEAD"]], work)
    out["checkout of the first commit"] = steps([[*git, "checkout", "-q", first]], work)
    return out


def run_dvc(work: Path, n: int) -> dict[str, tuple[float, float]] | None:
    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    if not Path(dvc).exists():
        return None
    out = {}
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    subprocess.run([dvc, "init", "-q"], cwd=work, check=True, env=ENV)
    add = [
        [dvc, "add", "-q", "train", "labels.csv"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "a"],
    ]
    out["init + add + commit"] = steps(add, work)
    first = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=work, capture_output=True, text=True, check=True
    ).stdout.strip()
    out["status, nothing changed"] = best([[dvc, "status", "-q"]], work)
    relabel(work, n)
    out["commit of the 1% relabel"] = steps(add, work)
    out["diff"] = best([[dvc, "diff", "HEAD~1", "HEAD"]], work)
    out["checkout of the first commit"] = steps(
        [["git", "checkout", "-q", first], [dvc, "checkout", "-q"]], work
    )
    return out


def run_datagit(work: Path, n: int, monitor: bool) -> dict[str, tuple[float, float]]:
    dg = DATAGIT
    out = {}
    init = [
        [*dg, "init", "."],
        [*dg, "config", "user.name", "Bench"],
        [*dg, "config", "user.email", "bench@example.com"],
        [*dg, "dataset", "add", "train", "--layout", "imagefolder", "--path", "train"],
        [
            *dg,
            "dataset",
            "add",
            "labels",
            "--layout",
            "table",
            "--path",
            "labels.csv",
            "--id",
            "id",
            "--label",
            "label",
            "--annotator",
            "annotator",
        ],
    ]
    if monitor:
        init.append([*dg, "fsmonitor", "start"])
    try:
        out["init + add + commit"] = steps([*init, [*dg, "commit", "-a", "-m", "a"]], work)
        first = subprocess.run(
            [*dg, "log", "--oneline", "-n", "1"],
            cwd=work,
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[0]
        measure([*dg, "status"], work)  # the first look after a commit may refresh racy entries
        out["status, nothing changed"] = best([[*dg, "status"]], work)
        relabel(work, n)
        commit = [[*dg, "commit", "-a", "-m", "r"]]
        out["commit of the 1% relabel"] = best_repeat(work, ".datagit", commit, ("fsmonitor",))
        out["diff"] = best([[*dg, "diff", "HEAD~1", "HEAD"]], work)
        out["checkout of the first commit"] = steps([[*dg, "checkout", first]], work)
    finally:
        if monitor:
            subprocess.run([*dg, "fsmonitor", "stop"], cwd=work, env=ENV, capture_output=True)
    return out


def bench_images_and_table(n: int, skip: set[str], rows: list[Row]) -> None:
    base = Path(tempfile.mkdtemp(prefix="dg-bench-tables-"))
    try:
        template = base / "template"
        generate(template, n)
        read_and_hash(template)
        t_hash = min(read_and_hash(template) for _ in range(2))
        rows.append(("read + xxh3 of every file", f"{n:,} files + table", f"{t_hash:.2f} s", "-"))
        results: dict[str, dict[str, tuple[float, float]] | None] = {}
        contenders = [("git", "git"), ("DVC", "dvc"), ("datagit", ""), ("datagit+fsmonitor", "")]
        for name, key in contenders:
            if key and key in skip:
                continue
            work = base / name
            shutil.copytree(template, work)
            if name == "git":
                results[name] = run_git(work, n)
            elif name == "DVC":
                results[name] = run_dvc(work, n)
            else:
                results[name] = run_datagit(work, n, monitor=name.endswith("fsmonitor"))
            shutil.rmtree(work, ignore_errors=True)
        git = results.get("git")
        goals = {
            "status, nothing changed": "≤ 0.5 s (≤ 0.25 s fsmonitor)",
            "commit of the 1% relabel": "≤ 0.6 s",
            "checkout of the first commit": "≤ 2× git",
        }
        for step in next(r for r in results.values() if r):
            for name, res in results.items():
                if res is None:
                    rows.append((f"{step}: {name}", f"{n:,}", "-", "not installed"))
                    continue
                dt, mb = res[step]
                note = f"peak {mb:.0f} MiB"
                if git and name != "git":
                    note += f"; {dt / git[step][0]:.2f}× git"
                if name.startswith("datagit") and step in goals:
                    note += f"; goal {goals[step]}"
                rows.append((f"{step}: {name}", f"{n:,}", f"{dt:.2f} s", note))
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- a million-row table --------------------------------------------------------
def bench_big_table(n: int, rows: list[Row]) -> None:
    work = Path(tempfile.mkdtemp(prefix="dg-bench-rows-"))
    try:
        lines = ["id,label,annotator"] + [f"r{i:08d},c{i % 10},ann{i % 7}" for i in range(n)]
        (work / "rows.csv").write_text("\n".join(lines) + "\n")
        t = time.perf_counter()
        data = (work / "rows.csv").read_bytes()
        xxhash.xxh3_128_hexdigest(data)
        t_read = time.perf_counter() - t
        import csv
        import io

        t_csv = float("inf")
        for _ in range(REPEATS):
            t = time.perf_counter()
            for _ in csv.reader(io.StringIO(data.decode())):
                pass
            t_csv = min(t_csv, time.perf_counter() - t)
        rows.append(("read + xxh3 of the table", f"{n:,} rows", f"{t_read:.3f} s", "-"))
        rows.append(("csv.reader over the table", f"{n:,} rows", f"{t_csv:.2f} s", "-"))
        dg = DATAGIT
        steps(
            [
                [*dg, "init", "."],
                [*dg, "config", "user.name", "Bench"],
                [*dg, "config", "user.email", "bench@example.com"],
                [
                    *dg,
                    "dataset",
                    "add",
                    "rows",
                    "--layout",
                    "table",
                    "--path",
                    "rows.csv",
                    "--annotator",
                    "annotator",
                ],
            ],
            work,
        )
        dt, mb = measure([*dg, "commit", "-a", "-m", "rows"], work)
        rows.append(("table: first commit -a", f"{n:,} rows", f"{dt:.2f} s", f"peak {mb:.0f} MiB"))
        measure([*dg, "status"], work)
        floor, _ = best([FLOOR], work)
        rows.append(("table: python + click + pygit2 (floor)", "-", f"{floor:.2f} s", "-"))
        dt, mb = best([[*dg, "status"]], work)
        rows.append(
            (
                "table: status, nothing changed",
                f"{n:,} rows",
                f"{dt:.2f} s",
                f"peak {mb:.0f} MiB; {over_floor(dt, floor)}; goal ≤ 0.2 s, ≤ 1 GiB",
            )
        )
        for i in range(0, n, 100):
            lines[i + 1] = f"r{i:08d},c{(i + 1) % 10},ann{i % 7}"
        relabelled = ("\n".join(lines) + "\n").encode()
        dt, mb = best_commit(work, lambda: (work / "rows.csv").write_bytes(relabelled), "relabel")
        rows.append(
            (
                "table: commit -a of a 1% relabel",
                f"{n // 100:,} rows",
                f"{dt:.2f} s",
                f"peak {mb:.0f} MiB; {dt / t_csv:.2f}× csv.reader; goal ≤ 2 s, ≤ 1 GiB",
            )
        )
        dt, mb = measure([*dg, "checkout", "HEAD~1"], work)
        rows.append(
            (
                "table: checkout HEAD~1",
                f"{n // 100:,} rows differ",
                f"{dt:.2f} s",
                f"peak {mb:.0f} MiB; goal ≤ 1 GiB",
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- a million examples ----------------------------------------------------------
_BUILD = """
import random, sys
from datagit import Repo
from datagit.core import manifest, shardsplice
from datagit.core.records import Record
n = int(sys.argv[1])
repo = Repo.init(".")
rng = random.Random(0)
blobs = [b"example %d " % i + rng.randbytes(48) for i in range(n)]
keys = repo.store.put_many(blobs)
recs = [Record(f"img_{i:07d}.bin", f"class{i % 10}", k, len(b), annotator="ada")
        for i, (k, b) in enumerate(zip(keys, blobs))]
me = repo.identity()
cfg = b'[datasets.train]\\nlayout = "imagefolder"\\npath = "train"\\n'
tree = manifest.write_dataset(repo.git, recs)
root = manifest.write_root(repo.git, cfg, {"train": tree})
c1 = repo.git.create_commit(root, [], "all\\n", me, me)
ups = {r.id: Record(r.id, "class0", r.content, r.size, annotator="bob") for r in recs[::100]}
tree2, _ = shardsplice.apply_changes(repo.git, tree, ups)
root = manifest.write_root(repo.git, cfg, {"train": tree2})
c2 = repo.git.create_commit(root, [c1], "fix\\n", me, me)
repo.git.update_ref("refs/heads/main", c2)
"""

_OPEN = """
import resource, sys, time
from pathlib import Path
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
from datagit.storage.content import ContentStore
before = rss()
t = time.perf_counter()
store = ContentStore(Path(".datagit/content"))
found = store.has(sys.argv[1])
data = store.read(sys.argv[1])
dt = time.perf_counter() - t
print(dt, rss() - before, found)
"""

_LOADER = """
import sys
from datagit import Repo
from torch.utils.data import DataLoader
def private_mb(pid):
    got = 0
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith(("Private_Clean", "Private_Dirty")):
            got += int(line.split()[1])
    return got / 1024
repo = Repo.open(".")
view = repo.dataset("train")
from datagit.core.recordarray import RecordArray
from datagit.harness.data import ContentReader, freeze_inherited
from pathlib import Path
reader = ContentReader(Path(".datagit/content"), None)
mode = sys.argv[2]
# "objects": a plain list of Record objects, as the harness held them before; otherwise
# what StoreDataset holds now (a RecordArray, workers freezing what they inherit).
records = list(view.records) if mode == "objects" else RecordArray(view.records)
read = mode == "read"
class Bytes:
    def __len__(self): return len(records)
    def __getitem__(self, i):
        return len(reader(records[i])) if read else len(records[i].content)
init = None if mode == "objects" else freeze_inherited
loader = DataLoader(Bytes(), batch_size=512, num_workers=2, shuffle=True, worker_init_fn=init)
it = iter(loader)
for _ in range(int(sys.argv[1])):
    next(it)
print(*[round(private_mb(w.pid), 1) for w in it._workers])
"""


def bench_examples(n: int, rows: list[Row]) -> None:
    work = Path(tempfile.mkdtemp(prefix="dg-bench-1m-"))
    try:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", _BUILD, str(n)], cwd=work, env=ENV, check=True)
        rows.append(("examples: build (API)", f"{n:,}", f"{time.perf_counter() - t:.1f} s", "-"))
        ex = f"img_{n // 2 + 1:07d}.bin"
        floor, _ = best([FLOOR], work)
        rows.append(("examples: python + click + pygit2 (floor)", "-", f"{floor:.2f} s", "-"))
        for label, cmd in (
            ("cat of one example", [*DATAGIT, "cat", f"HEAD:train/{ex}"]),
            ("ls DATASET/ID", [*DATAGIT, "ls", "HEAD", f"train/{ex}"]),
            ("blame DATASET/ID", [*DATAGIT, "blame", f"train/{ex}"]),
            ("`datagit --help` (process start)", [*DATAGIT, "--help"]),
        ):
            dt, mb = best([cmd], work)
            note = f"peak {mb:.0f} MiB; {over_floor(dt, floor)}" + (
                "" if "help" in label else "; goal ≤ 0.3 s"
            )
            rows.append((f"examples: {label}", f"{n:,}", f"{dt:.2f} s", note))
        key = subprocess.run(
            [*DATAGIT, "ls", "HEAD", f"train/{ex}"],
            cwd=work,
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\t")[2]
        got = subprocess.run(
            [sys.executable, "-c", _OPEN, key],
            cwd=work,
            env=ENV,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        rows.append(
            (
                "examples: open store + one read",
                f"{n:,}",
                f"{float(got[0]) * 1000:.1f} ms",
                f"+{float(got[1]):.1f} MiB resident; goal ≤ 50 ms, ≤ 20 MiB",
            )
        )
        try:
            import torch  # noqa: F401
        except ImportError:
            rows.append(("examples: DataLoader, 2 workers", "-", "-", "torch not installed"))
            return
        # The same loader touching only the records (no reads) is the baseline: what a
        # forked worker copies of the parent's record list is not the store's doing.
        for mode, note in (
            ("objects", "a list of Record objects (as before)"),
            ("records", "records only (baseline)"),
            ("read", "reading every example's bytes"),
        ):
            got = subprocess.run(
                [sys.executable, "-c", _LOADER, "40", mode],
                cwd=work,
                env=ENV,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            rows.append(
                (
                    f"examples: DataLoader, 2 workers, {note}",
                    "40 batches of 512",
                    " / ".join(f"{g} MiB" for g in got),
                    "private memory per worker; goal ≤ 50 MiB added by reading",
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- Parquet -----------------------------------------------------------------------
_PARQUET_BASE = """
import sys
import orjson, xxhash
import pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
for g in range(f.num_row_groups):
    for row in f.read_row_group(g).to_pylist():
        xxhash.xxh3_128_hexdigest(orjson.dumps(row))
"""


_PARQUET_REWRITE = """
import sys
import pyarrow as pa
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
sink = pa.BufferOutputStream()
pq.write_table(table, sink, row_group_size=65536)
"""


def bench_parquet(n: int, rows: list[Row]) -> None:
    try:
        import orjson  # noqa: F401  (the baseline's process uses it)
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        rows.append(("parquet", "-", "-", "pyarrow not installed: pip install 'datagit[parquet]'"))
        return
    work = Path(tempfile.mkdtemp(prefix="dg-bench-pq-"))
    try:
        table = pa.table(
            {
                "id": [f"r{i:08d}" for i in range(n)],
                "label": [f"c{i % 10}" for i in range(n)],
                "annotator": [f"ann{i % 7}" for i in range(n)],
                "x": [i * 0.5 for i in range(n)],
                "y": [i % 97 for i in range(n)],
            }
        )
        pq.write_table(table, work / "rows.parquet", row_group_size=65536)
        steps(
            [
                [*DATAGIT, "init", "."],
                [*DATAGIT, "config", "user.name", "Bench"],
                [*DATAGIT, "config", "user.email", "bench@example.com"],
                [
                    *DATAGIT,
                    "dataset",
                    "add",
                    "rows",
                    "--layout",
                    "table",
                    "--path",
                    "rows.parquet",
                    "--annotator",
                    "annotator",
                ],
            ],
            work,
        )
        # The baseline runs as a fresh process, as the commit does: both pay Python's
        # start and pyarrow's import (an in-process loop, as this was first, did not).
        # It runs just before each commit, so a burst of load on this shared machine
        # hits both sides of the ratio alike; the best of each is kept.
        base_times: list[float] = []

        def baseline_then_touch() -> None:
            base = [sys.executable, "-c", _PARQUET_BASE, "rows.parquet"]
            base_times.append(measure(base, work)[0])
            os.utime(work / "rows.parquet")

        dt, mb = best_commit(work, baseline_then_touch, "rows")
        t_base = min(base_times)
        rows.append(
            ("parquet: pyarrow read + hash rows", f"{n:,} rows", f"{t_base:.2f} s", "own process")
        )
        rows.append(
            (
                "parquet: commit -a",
                f"{n:,} rows",
                f"{dt:.2f} s",
                f"{dt / t_base:.2f}× baseline; peak {mb:.0f} MiB; goal ≤ 1.5×",
            )
        )
        dt, mb = best([[*DATAGIT, "status"]], work)
        note = f"peak {mb:.0f} MiB"
        rows.append(("parquet: status, nothing changed", f"{n:,} rows", f"{dt:.2f} s", note))
        # A 1% relabel, rewritten by pyarrow (every row group's bytes move): compared in
        # place with the copy the first commit kept, only the relabeled rows are decoded.
        labels = table.column("label").to_pylist()
        for i in range(0, n, 100):
            labels[i] = "relabeled"
        relabeled = table.set_column(1, "label", pa.array(labels))

        def relabel() -> None:
            pq.write_table(relabeled, work / "rows.parquet", row_group_size=65536)

        dt, mb = best_commit(work, relabel, "relabel")
        rows.append(
            (
                "parquet: commit -a of a 1% relabel",
                f"{n:,} rows",
                f"{dt:.2f} s",
                f"{dt / t_base:.2f}× baseline; peak {mb:.0f} MiB; goal ≤ 2 s; "
                "the first after the first commit: compared in place with its copy",
            )
        )
        # Checkout back and forth: the file the table snapshot vouches for is patched
        # row by row (`parquetcheckout`) and recorded as the target's snapshot. The peer
        # is the least a checkout must do: read the file and write it (own process).
        base = [sys.executable, "-c", _PARQUET_REWRITE, "rows.parquet"]
        t_rw = min(measure(base, work)[0] for _ in range(REPEATS))
        rows.append(("parquet: pyarrow read + write the file", f"{n:,} rows", f"{t_rw:.2f} s", "-"))
        for label, rev in (("checkout HEAD~1", "HEAD~1"), ("checkout back", "main")):
            dt, mb = measure([*DATAGIT, "checkout", rev], work)
            note = f"{dt / t_rw:.2f}× read + write; peak {mb:.0f} MiB; {n // 100:,} rows differ"
            rows.append((f"parquet: {label}", f"{n:,} rows", f"{dt:.2f} s", note))
            dt, mb = measure([*DATAGIT, "status"], work)
            note = f"peak {mb:.0f} MiB; the checkout recorded the file it wrote"
            rows.append((f"parquet: status after {label}", f"{n:,} rows", f"{dt:.2f} s", note))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--examples", type=int, default=1_000_000)
    ap.add_argument("--parquet-rows", type=int, default=1_000_000)
    ap.add_argument("--skip", default="", help="any of git,dvc,images,rows,examples,parquet")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    rows: list[Row] = []
    if args.images and "images" not in skip:
        bench_images_and_table(args.images, skip, rows)
    if args.rows and "rows" not in skip:
        bench_big_table(args.rows, rows)
    if args.examples and "examples" not in skip:
        bench_examples(args.examples, rows)
    if args.parquet_rows and "parquet" not in skip:
        bench_parquet(args.parquet_rows, rows)
    header = ("operation", "size", "time", "ratio / note")
    width = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    print(" | ".join(h.ljust(w) for h, w in zip(header, width, strict=True)))
    print("-+-".join("-" * w for w in width))
    for r in rows:
        print(" | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)))


if __name__ == "__main__":
    main()
