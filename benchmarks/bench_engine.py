"""The data engine loop on digits: does `suspects` find injected label noise, and how fast?

    .venv/bin/python benchmarks/bench_engine.py [--quick] [--only ranking|timing]

Digits (scikit-learn), 1,200 train / 597 eval PNGs in image folders, the
[harness] below (an MLP on 8×8 greyscale: strong on digits, seconds to train).
Scenarios, each in a fresh repository:

* ``uniform 10%`` / ``uniform 20%``: that share of the train labels flipped to
  another class uniformly at random, committed with the data (history has
  nothing to say: one commit);
* ``threes→8``: clean digits committed by annotator alice, then 30 threes
  re-labelled 8 by annotator mallory in one commit (`relabel`).

For each, the baseline is cleanlab alone on the same 5-fold probabilities
(``--history ''``), then each history feature alone and all of them; columns:
AUROC of the score, F1 of the flagged set, precision at k = number of true
errors. Then times: a first `suspects` (trains 5 folds), a second (cached), one
after a commit re-labelling 1% of train, against one plain `train` of the same
config measured in the same run; and `suggest` on a 10,000-example pool.
"""

from __future__ import annotations

import io
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from datagit import Repo
from datagit.api import engine, harness
from datagit.api import relabel as relabel_api
from datagit.core.config import Config, DatasetConfig

HARNESS = """
[harness]
train = "train"
eval = "eval"
model = "mlp"
hidden = [256]
image_mode = "L"
epochs = 15
label_smoothing = 0.1
lr = 0.05
batch_size = 64
"""
VARIANTS = {
    "cleanlab alone (baseline)": [],
    "+ commit": ["commit"],
    "+ annotator": ["annotator"],
    "+ relabelled": ["relabelled"],
    "+ metric (commit's eval drop)": ["metric"],
    "+ all four": ["commit", "annotator", "relabelled", "metric"],
}


def digits() -> tuple[list[bytes], np.ndarray]:
    d = load_digits()
    out = []
    for img in d.images:
        buf = io.BytesIO()
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out, d.target


def build(root: Path, pngs: list[bytes], labels: list[int]) -> Repo:
    repo = Repo.init(root)
    for i, png in enumerate(pngs):
        split = "train" if i < 1200 else "eval"
        path = root / split / str(labels[i]) / f"d{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    for name in ("train", "eval"):
        repo.add_dataset(DatasetConfig(name=name, layout="imagefolder", path=name))
    cfg = Config.load(root / "datagit.toml")
    cfg.extra["harness"] = tomllib.loads(HARNESS)["harness"]
    (root / "datagit.toml").write_bytes(cfg.dumps())
    repo.commit("digits", all=True, annotator="alice")
    return repo


def scores(repo: Repo, truth: set[str], features: list[str]) -> tuple[float, float, float]:
    report = engine.suspects(repo, top=10**9, features=features)
    ids = [s.id for s in report.suspects]
    y = np.array([i in truth for i in ids])
    auroc = roc_auc_score(y, [s.score for s in report.suspects])
    flagged = {s.id for s in report.suspects if s.issue}
    tp = len(flagged & truth)
    f1 = 2 * tp / (len(flagged) + len(truth))
    p_at_k = len(set(ids[: len(truth)]) & truth) / len(truth)
    return auroc, f1, p_at_k


def uniform(tmp: Path, pngs: list[bytes], target: np.ndarray, rate: float) -> dict:
    rng = np.random.default_rng(7)
    labels = [int(t) for t in target]
    noisy = rng.choice(1200, int(rate * 1200), replace=False)
    for i in noisy:
        labels[i] = int(rng.choice([c for c in range(10) if c != target[i]]))
    repo = build(tmp / f"uniform{rate}", pngs, labels)
    truth = {f"d{i:04d}.png" for i in noisy}
    return {name: scores(repo, truth, f) for name, f in VARIANTS.items()}


def threes(tmp: Path, pngs: list[bytes], target: np.ndarray) -> tuple[dict, Repo]:
    repo = build(tmp / "threes", pngs, [int(t) for t in target])
    rng = np.random.default_rng(3)
    picked = rng.choice([i for i in range(1200) if target[i] == 3], 30, replace=False)
    edits = [("train", f"d{i:04d}.png", "8") for i in picked]
    relabel_api.relabel(repo, edits, annotator="mallory")
    repo.commit("re-label ambiguous threes")
    truth = {f"d{i:04d}.png" for i in picked}
    return {name: scores(repo, truth, f) for name, f in VARIANTS.items()}, repo


def timings(tmp: Path, pngs: list[bytes], target: np.ndarray) -> None:
    """Print each timing row as it is measured, against a plain train in the same run."""
    print("| timing (digits, 1,200 train) | seconds | vs plain train | note |")
    print("|---|---|---|---|", flush=True)
    base = 0.0
    for name, sec, note in _timings(tmp, pngs, target):
        base = base or sec
        print(f"| {name} | {sec:.2f} | {sec / base:.2f}× | {note} |", flush=True)


def _timings(tmp: Path, pngs: list[bytes], target: np.ndarray) -> Iterator[tuple[str, float, str]]:
    repo = build(tmp / "timing", pngs, [int(t) for t in target])
    import datagit.harness.train  # noqa: F401  torch's import is paid by neither side

    t = time.perf_counter()
    harness.train(repo)
    base = time.perf_counter() - t
    yield "plain `train` (baseline)", base, "1 run"
    t = time.perf_counter()
    r = engine.suspects(repo)
    yield "first `suspects`", time.perf_counter() - t, f"{r.trained}/5 folds trained"
    t = time.perf_counter()
    r = engine.suspects(repo)
    yield "second `suspects` (cached)", time.perf_counter() - t, f"{r.trained}/5 trained"
    rng = np.random.default_rng(1)
    edits = [
        ("train", f"d{i:04d}.png", str((int(target[i]) + 1) % 10))
        for i in rng.choice(1200, 12, replace=False)
    ]
    relabel_api.relabel(repo, edits, annotator="bob")
    repo.commit("re-label 1%")
    t = time.perf_counter()
    r = engine.suspects(repo)
    yield "`suspects` after a 1% re-label", time.perf_counter() - t, f"{r.trained}/5"
    first = edits[0][1]
    relabel_api.relabel(repo, [("train", first, str(target[int(first[1:5])]))], annotator="bob")
    repo.commit("re-label one example")
    t = time.perf_counter()
    r = engine.suspects(repo)
    yield "`suspects` after 1 re-label", time.perf_counter() - t, f"{r.trained}/5"
    pool = repo.workdir / "pool"
    pool.mkdir()
    for i in range(10_000):
        (pool / f"p{i:05d}.png").write_bytes(pngs[i % len(pngs)])
    repo.add_dataset(DatasetConfig(name="pool", layout="imagefolder", path="pool"))
    repo.commit("a pool of 10,000 unlabelled digits", all=True)
    t = time.perf_counter()
    s = engine.suggest(repo, "pool", budget=100)
    yield "`suggest` 10,000 pool, first", time.perf_counter() - t, f"run {s.run[:8]}"
    t = time.perf_counter()
    engine.suggest(repo, "pool", budget=100)
    yield "`suggest` 10,000 pool, cached run", time.perf_counter() - t, ""


def ranking(tmp: Path, pngs: list[bytes], target: np.ndarray, quick: bool) -> None:
    print("| scenario | ranking | AUROC | F1 | p@k |")
    print("|---|---|---|---|---|", flush=True)
    scenarios = [
        ("threes→8 (one annotator, one commit)", lambda: threes(tmp, pngs, target)[0]),
        ("uniform 10%", lambda: uniform(tmp, pngs, target, 0.10)),
        ("uniform 20%", lambda: uniform(tmp, pngs, target, 0.20)),
    ]
    for scenario, run in scenarios[:1] if quick else scenarios:
        for name, (auroc, f1, pk) in run().items():
            print(f"| {scenario} | {name} | {auroc:.4f} | {f1:.3f} | {pk:.3f} |", flush=True)


def main() -> None:
    pngs, target = digits()
    tmp = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    try:
        if only in (None, "ranking"):
            ranking(tmp, pngs, target, quick="--quick" in sys.argv)
            print()
        if only in (None, "timing"):
            timings(tmp, pngs, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
