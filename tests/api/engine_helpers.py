"""A small real digits repository for the engine tests: noisy train labels, a fast harness."""

from __future__ import annotations

import tomllib
from pathlib import Path

from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.core.config import Config, DatasetConfig

FAST = """
[harness]
train = "train"
eval = "eval"
model = "logreg"
image_mode = "L"
lr = 0.1
epochs = 4
batch_size = 32
"""
NOISY = {7: 1, 13: 0, 21: 5, 33: 2, 42: 9, 57: 4}  # index → the wrong label it is given


def build(root: Path, n: int = 300, noisy: dict[int, int] | None = None) -> Repo:
    """Every fifth image to eval/, the rest to train/; ``noisy`` train labels flipped."""
    noisy = NOISY if noisy is None else noisy
    files: dict[str, bytes | str] = {}
    for i, (png, label) in enumerate(digits_pngs(n)):
        split = "eval" if i % 5 == 0 else "train"
        given = noisy.get(i, label) if split == "train" else label
        files[f"{split}/{given}/d{i:04d}.png"] = png
    repo = Repo.init(root)
    write_tree(root, files)
    for name in ("train", "eval"):
        repo.add_dataset(DatasetConfig(name=name, layout="imagefolder", path=name))
    cfg = Config.load(root / "datagit.toml")
    cfg.extra["harness"] = tomllib.loads(FAST)["harness"]
    (root / "datagit.toml").write_bytes(cfg.dumps())
    repo.commit("digits", all=True, annotator="alice")
    return repo


def state(repo: Repo) -> tuple[str | None, str | None, bytes | None]:
    """HEAD, the stage file, and the workspace listing: what a refused command must keep."""
    stage = repo.dotdir / "STAGE"
    listing = "\n".join(
        sorted(
            str(p.relative_to(repo.workdir))
            for p in repo.workdir.rglob("*")
            if ".datagit" not in p.parts
        )
    )
    return repo.head(), stage.read_text() if stage.exists() else None, listing.encode()
