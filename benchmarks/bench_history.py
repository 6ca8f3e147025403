"""Speed of the history verbs on synthetic repositories, against their targets.

Builds the repositories in a temporary folder straight through the manifest
(no workspace files), then measures in the same run:

* diff between two commits of a 1,000,000-example dataset differing in 1% of
  records, against parsing both full manifests (target: ≥ 20× and ≤ 0.3 s).
  Two placements of the 1%: ``clustered`` (the changed ids fall in 1% of the
  shards, as a batch of related edits does after hashing only by accident) and
  ``random`` (uniform over ids, which touches ~91% of 4,096 shards). `diff`
  reads the commits' per-commit patches (core/patch.py), so its cost follows
  the changed records whatever their placement; the tree comparison it falls
  back to off a first-parent path is shown for reference.
* blame of a whole 100,000-example dataset over 200 commits (target: ≤ 5 s),
  for commits of 25 random changes and of 120, read from per-commit patches.

Usage: ``python benchmarks/bench_history.py [--records 1000000] [--blame-records 100000]``
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from datagit.core import patch
from datagit.core.blame import blame_dataset
from datagit.core.diff import build, changes_between
from datagit.core.manifest import (
    DatasetTree,
    changed_shards,
    patch_dataset,
    shard_key,
    write_dataset,
    write_root,
)
from datagit.core.records import Record
from datagit.storage.git import GitStore, Signature

CONFIG = b'[datasets.train]\nlayout = "imagefolder"\npath = "train"\n'
LABELS = ["cat", "dog", "bird", "fish", "frog", "horse", "ship", "truck", "plane", "deer"]


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Best of ``repeat`` runs (the first also warms the OS page cache)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def record(i: int, label: str, annotator: str) -> Record:
    return Record(
        f"{i:08d}.png", label, f"{i * 2654435761 % (1 << 128):032x}", 1000 + i % 4000, annotator
    )


def relabel(r: Record, annotator: str) -> Record:
    return Record(r.id, LABELS[(LABELS.index(r.label) + 1) % 10], r.content, r.size, annotator)


def bench_diff(git: GitStore, n: int, rows: list[tuple[str, str, str, str]]) -> None:
    base = {r.id: r for r in (record(i, LABELS[i % 10], "alice") for i in range(n))}
    t = time.perf_counter()
    with git.batch():  # as a real commit stores them: one pack, not loose files
        a = write_dataset(git, base.values())
    rows.append((f"build {n:,}-record manifest", f"{time.perf_counter() - t:.2f} s", "", ""))
    fanout = DatasetTree(git, a).fanout
    k = n // 100
    rng = random.Random(7)
    ids = sorted(base)
    shards = sorted({shard_key(i)[:fanout] for i in ids})
    by_shard: dict[str, list[str]] = {}
    for i in ids:
        by_shard.setdefault(shard_key(i)[:fanout], []).append(i)
    clustered: list[str] = []
    for prefix in shards:  # the fewest shards that hold 1% of the records
        clustered.extend(by_shard[prefix][: k - len(clustered)])
        if len(clustered) >= k:
            break
    placements = {"clustered": clustered, "random": rng.sample(ids, k)}
    sig = Signature("ann", "ann@example.com", 1_700_000_000)
    with git.batch():
        root_a = write_root(git, CONFIG, {"train": a})
    commit_a = git.create_commit(root_a, [], "import\n", sig, sig)
    for name, chosen in placements.items():
        ups = {i: relabel(base[i], "bob") for i in chosen}
        with git.batch():  # as `commit` writes it: the new tree plus its patch
            b = patch_dataset(git, a, ups)
            blob = git.write_blob(patch.encode({i: (base[i], r) for i, r in ups.items()}))
            root_b = write_root(git, CONFIG, {"train": b}, {"train.jsonl": blob})
        commit_b = git.create_commit(root_b, [commit_a], f"relabel {name}\n", sig, sig)
        full_s, _ = timed(lambda b=b: (DatasetTree(git, a).by_id(), DatasetTree(git, b).by_id()), 2)
        tree_s, _ = timed(lambda b=b: build("train", changes_between(git, a, b)))
        rows.append(
            (
                f"  (tree comparison only, {name})",
                f"{tree_s:.3f} s",
                f"full parse {full_s:.2f} s → {full_s / tree_s:.1f}×",
                "the fallback when commits are not on one first-parent path",
            )
        )
        diff_s, d = timed(
            lambda cb=commit_b: build(
                "train", patch.changes_between_commits(git, commit_a, cb, "train") or []
            )
        )
        assert len(d.relabeled) == len(chosen), (len(d.relabeled), len(chosen))  # type: ignore[attr-defined]
        touched = len(changed_shards(git, a, b) or [])
        ratio = full_s / diff_s
        rows.append(
            (
                f"diff 1% {name} ({len(chosen):,} relabels, {touched}/{len(shards)} shards)",
                f"{diff_s:.3f} s",
                f"full parse {full_s:.2f} s → {ratio:.1f}×",
                "ok" if diff_s <= 0.3 and ratio >= 20 else "MISSED (≤0.3 s, ≥20×)",
            )
        )


def bench_blame(
    git: GitStore,
    n: int,
    commits: int,
    relabels: int,
    adds: int,
    rows: list[tuple[str, str, str, str]],
) -> None:
    rng = random.Random(11)
    state = {r.id: r for r in (record(i, LABELS[i % 10], "alice") for i in range(n))}
    with git.batch():
        tree = write_dataset(git, state.values())
        root = write_root(git, CONFIG, {"train": tree})
    sig = Signature("ann", "ann@example.com", 1_700_000_000)
    head = git.create_commit(root, [], "import\n", sig, sig)
    next_id = n
    changed = 0
    t = time.perf_counter()
    for c in range(commits):
        who = ["bob", "carol", "dave"][c % 3]
        ups = {i: relabel(state[i], who) for i in rng.sample(sorted(state), relabels)}
        for _ in range(adds):
            r = record(next_id, LABELS[next_id % 10], who)
            ups[r.id] = r
            next_id += 1
        state.update(ups)
        changed += len(ups)
        olds = {i: state.get(i) for i in ups}
        with git.batch():  # as `commit` writes it: the new tree plus its patch
            tree = patch_dataset(git, tree, ups)
            blob = git.write_blob(patch.encode({i: (olds[i], r) for i, r in ups.items()}))
            root = write_root(git, CONFIG, {"train": tree}, {"train.jsonl": blob})
        state.update(ups)
        s = Signature(who, f"{who}@example.com", 1_700_000_000 + c + 1)
        head = git.create_commit(root, [head], f"c{c}\n", s, s)
    build_s = time.perf_counter() - t
    rows.append(
        (f"build {commits} commits of {relabels + adds} changes", f"{build_s:.1f} s", "", "")
    )
    blame_s, out = timed(lambda: blame_dataset(git, head, "train"), 2)
    assert len(out) == len(state)  # type: ignore[arg-type]
    full_s, _ = timed(lambda: DatasetTree(git, tree).by_id(), 2)
    rows.append(
        (
            f"blame {len(state):,} examples over {commits + 1} commits ({changed:,} changes)",
            f"{blame_s:.2f} s",
            f"{blame_s / full_s:.1f}× one full parse",
            "ok" if blame_s <= 5 else "MISSED (≤5 s)",
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--blame-records", type=int, default=100_000)
    ap.add_argument("--commits", type=int, default=200)
    args = ap.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        git = GitStore.init(Path(tmp) / "bench.git")
        bench_diff(git, args.records, rows)
        for relabels, adds in ((20, 5), (100, 20)):
            bench_blame(git, args.blame_records, args.commits, relabels, adds, rows)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
