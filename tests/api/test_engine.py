"""suspects and suggest on real digits: cached folds, noise found, history, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import NOISY, build, state
from testkit import digits_pngs

from datagit.api import engine
from datagit.api import relabel as relabel_api
from datagit.core.folds import fold_of
from datagit.errors import InvalidInputError


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # Module-scoped, so built before the per-test isolated HOME: isolate it here.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("home")))
        mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
        mp.setenv("GIT_AUTHOR_NAME", "Ada Tester")
        mp.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
        repo = build(tmp_path_factory.mktemp("engine") / "ws")
    yield repo
    repo.close()


def test_suspects_finds_flipped_labels_and_caches_its_folds(noisy) -> None:  # type: ignore[no-untyped-def]
    first = engine.suspects(noisy, folds=3, top=10)
    truth = {f"d{i:04d}.png" for i in NOISY}
    assert len(first.runs) == 3 and first.examples == 240
    assert len({s.id for s in first.suspects[:10]} & truth) >= 4
    top = first.suspects[0]
    assert top.annotator == "alice" and top.commit == noisy.head() and top.label != top.suggested
    again = engine.suspects(noisy, folds=3, top=10)
    assert again.trained == 0 and again.runs == first.runs
    assert [s.id for s in again.suspects] == [s.id for s in first.suspects]
    saved = engine.last_suspects(noisy, "train")
    assert saved is not None and saved["suspects"][0]["id"] == top.id
    assert set(saved["suspects"][0]) == {
        "id",
        "label",
        "suggested",
        "score",
        "quality",
        "issue",
        "annotator",
        "commit",
        "lift",
    }


def test_a_relabel_retrains_only_the_folds_that_train_on_it(tmp_path: Path) -> None:
    repo = build(tmp_path / "ws")
    engine.suspects(repo, folds=3)
    victim = "d0007.png"
    relabel_api.relabel(repo, [("train", victim, "7")], annotator="bob")
    repo.commit("fix one label")
    after = engine.suspects(repo, folds=3, top=300, since="HEAD~1")
    assert after.trained == 2  # the fold that holds the example out kept its run
    assert [s.id for s in after.suspects] == [victim]
    assert after.suspects[0].annotator == "bob" and after.suspects[0].commit == repo.head()
    assert fold_of(victim, 3) in range(3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"folds": 40}, "fewer than --folds 40"),
        ({"folds": 1}, "need at least 2 folds"),
        ({"dataset": "nope"}, "no dataset named 'nope'"),
        ({"features": ["age"]}, "unknown history feature"),
        ({"top": -1}, "--top -1"),
    ],
)
def test_suspects_bad_input(noisy, kwargs: dict, match: str) -> None:  # type: ignore[no-untyped-def]
    before = state(noisy)
    with pytest.raises(InvalidInputError, match=match):
        engine.suspects(noisy, **kwargs)
    assert state(noisy) == before


def test_suggest_ranks_the_unlabelled_pool_and_labels_from_its_run(tmp_path: Path) -> None:
    repo = build(tmp_path / "ws", noisy={})
    pool = repo.workdir / "train"
    for i, (png, _label) in enumerate(digits_pngs(340)[300:]):
        (pool / f"u{i:03d}.png").write_bytes(png)  # no class folder: unlabelled
    repo.commit("40 unlabelled digits", all=True)
    assert sum(r.label is None for r in repo.records("train")) == 40
    report = engine.suggest(repo, "train", budget=5, strategy="margin")
    assert report.unlabelled == 40 and len(report.suggestions) == 5
    assert all(s.id.startswith("u") for s in report.suggestions)
    plain = engine.suggest(repo, "train", budget=40, strategy="entropy", diverse=False)
    u = [s.uncertainty for s in plain.suggestions]
    assert u == sorted(u, reverse=True) and plain.run == report.run
    labelled = relabel_api.label_from_run(repo, report.run, "train", min_confidence=0.5)
    assert labelled.annotator == f"model:{report.run}" and labelled.labelled
    assert labelled.left_unlabelled == 40 - len(labelled.labelled)
    e = labelled.labelled[0]
    assert (repo.workdir / "train" / str(e.new) / e.id).is_file()
    assert not (repo.workdir / "train" / e.id).exists()
    repo.commit("pre-labels")
    rec = repo.record("train", e.id)
    assert rec.label == e.new and rec.annotator == f"model:{report.run}"
    assert repo.status().clean


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "random"}, "unknown strategy 'random'"),
        ({"budget": 0}, "--budget 0"),
    ],
)
def test_suggest_bad_input(noisy, kwargs: dict, match: str) -> None:  # type: ignore[no-untyped-def]
    args = {"budget": 3, **kwargs}
    with pytest.raises(InvalidInputError, match=match):
        engine.suggest(noisy, "train", **args)


def test_suggest_on_a_pool_with_no_unlabelled_examples(noisy) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="'train' at HEAD has no unlabelled examples"):
        engine.suggest(noisy, "train", budget=3)


def test_label_from_a_run_of_another_dataset(noisy) -> None:  # type: ignore[no-untyped-def]
    from datagit.api import harness

    run = harness.train(noisy)  # predicts eval, not train
    before = state(noisy)
    with pytest.raises(InvalidInputError, match=f"run {run.id} predicted dataset 'eval'"):
        relabel_api.label_from_run(noisy, run.id, "train")
    with pytest.raises(InvalidInputError, match="'eval' has no unlabelled examples"):
        relabel_api.label_from_run(noisy, run.id, "eval")
    with pytest.raises(InvalidInputError, match="no run with id 'ffff'"):
        relabel_api.label_from_run(noisy, "ffff", "eval")
    assert state(noisy) == before
