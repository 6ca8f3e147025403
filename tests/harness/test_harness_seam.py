"""The seams the model-data features stand on: one judge, subsets, artifacts, read-only repos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from harness_helpers import FAST, make_repo, set_harness

from datagit import Repo
from datagit.api import harness
from datagit.errors import InvalidInputError, ReadOnlyError
from datagit.harness.train import Hooks, Step


class CountSteps(Hooks):
    """A hook that keeps an artifact: how many optimiser steps it saw."""

    artifact = "steps-v1"

    def __init__(self) -> None:
        self.steps = 0

    def before_step(self, step: Step) -> None:
        self.steps += 1

    def save_artifact(self, folder: Path) -> None:
        (folder / "steps.json").write_text(json.dumps(self.steps))


def test_subset_views_are_keyed_by_their_records(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    view = repo.dataset("train")
    half = view.subset(lambda r: r.id < "d0150")
    same = repo.dataset("train").subset(lambda r: r.id < "d0150")
    assert half.identity.startswith("records:") and half.identity == same.identity
    assert view.identity == view.tree
    whole = harness.plan(repo).key
    part = harness.plan(repo, train_view=half).key
    assert part.train_tree == half.identity and part.id != whole.id
    run = harness.train(repo, train_view=half)
    assert run.meta["train"]["examples"] == len(half) < len(view)
    assert harness.train(repo, train_view=same).cached


def test_artifacts_are_added_without_retraining_the_plain_run(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    plain = harness.train(repo)
    created = plain.meta["created"]
    hook = CountSteps()
    watched = harness.train(repo, hooks=[hook])
    assert not watched.cached and hook.steps > 0
    assert watched.id == plain.id and watched.meta["created"] == created  # plain files kept
    folder = watched.artifact("steps-v1")
    assert folder is not None and json.loads((folder / "steps.json").read_text()) == hook.steps
    again = CountSteps()
    assert harness.train(repo, hooks=[again]).cached and again.steps == 0
    assert harness.train(repo).cached and harness.show(repo, plain.id).artifacts() == ["steps-v1"]


def test_config_from_a_revision_judges_every_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    first = repo.head()
    set_harness(repo, "")  # the workspace (as after a checkout) has no [harness]
    with pytest.raises(InvalidInputError, match=r"no \[harness\] section in datagit\.toml"):
        harness.load_config(repo)
    cfg = harness.load_config(repo, config_rev=first)
    assert cfg.model == "logreg" and cfg.epochs == 3
    with pytest.raises(InvalidInputError, match="not both"):
        harness.load_config(repo, tmp_path / "x.toml", config_rev=first)
    set_harness(repo, FAST)


def test_readonly_repo_reads_and_refuses_writes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    repo.close()
    (tmp_path / "index.before").write_bytes((tmp_path / ".datagit/index.sqlite").read_bytes())
    cache = tmp_path / ".datagit" / "cache"
    before = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    ro = Repo.open(tmp_path, readonly=True)
    assert len(list(ro.records("train"))) > 0
    ro.status()
    with pytest.raises(ReadOnlyError, match="read-only"):
        ro.commit("nope", all=True, allow_empty=True)
    after = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert after == before
    assert (tmp_path / ".datagit/index.sqlite").read_bytes() == (
        tmp_path / "index.before"
    ).read_bytes()
