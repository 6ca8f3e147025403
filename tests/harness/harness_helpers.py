"""Builders shared by the harness tests: small real digits repositories with a [harness]."""

from __future__ import annotations

import os
import subprocess
import sys
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
epochs = 3
batch_size = 32
"""


def digits_files(n: int = 300) -> dict[str, bytes | str]:
    """Every fifth image to eval/, the rest to train/, in class folders."""
    files: dict[str, bytes | str] = {}
    for i, (png, label) in enumerate(digits_pngs(n)):
        split = "eval" if i % 5 == 0 else "train"
        files[f"{split}/{label}/d{i:04d}.png"] = png
    return files


def make_repo(root: Path, harness: str = FAST, n: int = 300, commit: bool = True) -> Repo:
    repo = Repo.init(root)
    write_tree(root, digits_files(n))
    for name in ("train", "eval"):
        (root / name).mkdir(exist_ok=True)
        repo.add_dataset(DatasetConfig(name=name, layout="imagefolder", path=name))
    set_harness(repo, harness)
    if commit:
        repo.commit("digits", all=True)
    return repo


def set_harness(repo: Repo, harness: str) -> None:
    """Replace the [harness] section of the workspace's datagit.toml."""
    cfg = Config.load(repo.workdir / "datagit.toml")
    cfg.extra.pop("harness", None)
    if harness.strip():
        cfg.extra["harness"] = tomllib.loads(harness)["harness"]
    (repo.workdir / "datagit.toml").write_bytes(cfg.dumps())


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (the test's HOME and git identity carry over)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
    )
