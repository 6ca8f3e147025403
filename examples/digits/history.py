"""Digits histories with a known regression, for the metric hunt's demo, tests and benchmark.

``regression_history``: a base commit, then ``commits`` data commits each adding a
few training images; one of them (the culprit) also moves a share of one class to
another class folder (a careless re-label). ``narrowing_history``: a parent whose
data holds some wrong labels, then one commit of 300 changes — harmless additions,
correct re-labels fixing those, and 30 harmful flips — so the truth is known.
Both use the API in-process (fast) and real scikit-learn digits as PNGs.
"""

from __future__ import annotations

import io
import random
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from datagit import Repo, Signature
from datagit.core.config import Config, DatasetConfig

# fixed identities: the histories build the same anywhere, whatever git config says
ADA = Signature("Ada Lovelace", "ada@example.com", 1_764_547_200)
BOB = Signature("Bob Babbage", "bob@example.com", 1_764_547_200)

# A harness cheap enough that a 64-commit hunt takes seconds, trained to convergence
# (cosine decay): seeds then agree to ~0.3 points, so a flip's effect stands out.
FAST_HARNESS = """
[harness]
train = "train"
eval = "eval"
model = "logreg"
image_mode = "L"
lr = 0.2
epochs = 20
batch_size = 64
schedule = "cosine"
"""


@cache
def digits() -> list[tuple[bytes, int]]:
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for img, target in zip(d.images, d.target, strict=True):
        buf = io.BytesIO()
        Image.fromarray((img * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
        out.append((buf.getvalue(), int(target)))
    return out


@dataclass
class History:
    root: Path
    commits: list[str]  # oldest first; commits[0] is the base
    culprit: str
    flipped: list[str] = field(default_factory=list)  # ids the culprit flipped (harmful)
    harmless: list[str] = field(default_factory=list)  # ids it changed harmlessly


def _init(root: Path, harness: str) -> Repo:
    repo = Repo.init(root)
    repo.git.config_set("user.name", ADA.name)  # the committer, whatever the machine's git says
    repo.git.config_set("user.email", ADA.email)
    for name in ("train", "eval"):
        (root / name).mkdir(exist_ok=True)
        repo.add_dataset(DatasetConfig(name=name, layout="imagefolder", path=name))
    cfg = Config.load(root / "datagit.toml")
    cfg.extra["harness"] = tomllib.loads(harness)["harness"]
    (root / "datagit.toml").write_bytes(cfg.dumps())
    return repo


def _write(root: Path, i: int, label: int) -> str:
    png = digits()[i][0]
    path = root / "train" / str(label) / f"d{i:04d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path.name


def _move(root: Path, name: str, src: int, dst: int) -> None:
    (root / "train" / str(dst)).mkdir(parents=True, exist_ok=True)
    (root / "train" / str(src) / name).rename(root / "train" / str(dst) / name)


def _split() -> tuple[list[int], list[int]]:
    n = len(digits())
    eval_ids = [i for i in range(n) if i % 5 == 0]
    train_ids = [i for i in range(n) if i % 5 != 0]
    return eval_ids, train_ids


def regression_history(
    root: Path,
    *,
    commits: int = 64,
    culprit: int | None = None,
    seed: int = 0,
    flip: tuple[int, int] = (3, 8),
    fraction: float = 0.4,
    base: int = 1000,
    harness: str = FAST_HARNESS,
) -> History:
    """``commits`` data commits after a base; commit number ``culprit`` (1-based; default
    a seeded choice) also re-labels ``fraction`` of class ``flip[0]`` as ``flip[1]``."""
    rng = random.Random(seed)
    culprit = culprit if culprit is not None else rng.randint(1, commits)
    repo = _init(root, harness)
    eval_ids, train_ids = _split()
    for i in eval_ids:
        path = root / "eval" / str(digits()[i][1]) / f"d{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(digits()[i][0])
    rng.shuffle(train_ids)
    src, dst = flip
    # later batches hold no example of the flipped class, so they do not dilute the flip
    later = [i for i in train_ids[base:] if digits()[i][1] != src]
    per = len(later) // commits
    labels: dict[str, int] = {}
    for i in train_ids[:base]:
        labels[_write(root, i, digits()[i][1])] = digits()[i][1]
    ids = [repo.commit("base: digits", all=True, author=ADA).id]
    flipped: list[str] = []
    for k in range(1, commits + 1):
        for i in later[(k - 1) * per : k * per]:
            labels[_write(root, i, digits()[i][1])] = digits()[i][1]
        message = f"add {per} digits (batch {k})"
        if k == culprit:
            of_class = sorted(n for n, lab in labels.items() if lab == src)
            flipped = rng.sample(of_class, round(fraction * len(of_class)))
            for name in flipped:
                _move(root, name, src, dst)
                labels[name] = dst
            message += f"; re-label some {src}s as {dst}"
        who = BOB if k == culprit else ADA
        ids.append(repo.commit(message, all=True, annotator=f"annotator{k % 3}", author=who).id)
    repo.close()
    return History(root, ids, ids[culprit], flipped)


def narrowing_history(
    root: Path,
    *,
    seed: int = 0,
    parent_size: int = 600,
    wrong: int = 40,
    additions: int = 230,
    harmful: int = 30,
    flip: tuple[int, int] = (3, 8),
    harness: str = FAST_HARNESS,
) -> History:
    """A parent with ``wrong`` mislabelled examples, then one commit that adds
    ``additions`` images, fixes the ``wrong`` labels and flips ``harmful`` of class
    ``flip[0]`` to ``flip[1]``: 300 changes by default, 30 of them harmful."""
    rng = random.Random(seed)
    repo = _init(root, harness)
    eval_ids, train_ids = _split()
    for i in eval_ids:
        path = root / "eval" / str(digits()[i][1]) / f"d{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(digits()[i][0])
    rng.shuffle(train_ids)
    parent_ids = train_ids[:parent_size]
    src, dst = flip
    candidates = [i for i in parent_ids if digits()[i][1] not in flip]
    mislabelled = set(rng.sample(candidates, wrong))
    for i in parent_ids:
        true = digits()[i][1]
        _write(root, i, (true + rng.randint(1, 9)) % 10 if i in mislabelled else true)
    parent = repo.commit(
        "digits, some of them mislabelled", all=True, annotator="ada", author=ADA
    ).id
    added = train_ids[parent_size : parent_size + additions]
    harmless = []
    for i in added:
        harmless.append(_write(root, i, digits()[i][1]))
    for i in mislabelled:
        name = f"d{i:04d}.png"
        current = next(p for p in (root / "train").glob(f"*/{name}"))
        _move(root, name, int(current.parent.name), digits()[i][1])
        harmless.append(name)
    threes = [i for i in parent_ids if digits()[i][1] == src]
    flipped = [f"d{i:04d}.png" for i in rng.sample(threes, harmful)]
    for name in flipped:
        _move(root, name, src, dst)
    culprit = repo.commit(
        f"add {additions} digits, fix {wrong} labels, re-label some {src}s",
        all=True,
        annotator="bob",
        author=BOB,
    ).id
    repo.close()
    return History(root, [parent, culprit], culprit, flipped, harmless)
