"""Unlabelled examples: training skips them; eval predicts them but scores only labelled ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness_helpers import make_repo
from testkit import digits_pngs

from datagit.api import harness
from datagit.errors import InvalidInputError


def test_training_skips_unlabelled_and_eval_leaves_them_out_of_metrics(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", n=100, commit=False)
    extra = digits_pngs(110)[100:]
    for i, (png, _) in enumerate(extra[:5]):
        (repo.workdir / "train" / f"u{i}.png").write_bytes(png)
    for i, (png, _) in enumerate(extra[5:]):
        (repo.workdir / "eval" / f"u{i}.png").write_bytes(png)
    repo.commit("digits and a few unlabelled", all=True)
    run = harness.train(repo)
    assert run.metrics["examples"] == 20  # 25 eval examples, 5 without a label
    outputs = {o["id"]: o for o in run.outputs()}
    assert outputs["u0.png"]["label"] is None and outputs["u0.png"]["loss"] is None
    assert outputs["u0.png"]["pred"] in run.classes
    assert run.meta["train"]["examples"] == 85


def test_a_train_set_with_no_labels_is_refused(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "ws", n=20, commit=False)
    for p in list((repo.workdir / "train").rglob("*.png")):
        p.rename(repo.workdir / "train" / p.name)  # every file out of its class folder
    repo.commit("no labels", all=True)
    with pytest.raises(InvalidInputError, match="has no labelled examples"):
        harness.train(repo)
