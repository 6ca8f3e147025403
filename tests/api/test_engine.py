"""suspects and suggest on real digits: cached folds, noise found, history, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_helpers import FAST, NOISY, build, state
from sklearn.datasets import load_digits
from testkit import digits_pngs

from datagit import Repo
from datagit.api import engine
from datagit.api import relabel as relabel_api
from datagit.core.config import DatasetConfig
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


def test_a_table_pool_gets_its_empty_label_cells_filled(tmp_path: Path) -> None:
    """Unlabelled rows of a numeric table: suggest ranks them, label --from-run fills
    their cells (and the annotator column) in place."""
    d = load_digits()
    cols = [f"p{j}" for j in range(64)]
    lines = ["id,label,who," + ",".join(cols)]
    for i in range(160):
        label = "" if i >= 150 else str(d.target[i])
        pixels = ",".join(str(int(v)) for v in d.data[i])
        lines.append(f"r{i:03d},{label},{'al' if label else ''},{pixels}")
    root = tmp_path / "ws"
    repo = Repo.init(root)
    (root / "digits.csv").write_text("\n".join(lines) + "\n")
    repo.add_dataset(DatasetConfig(name="tab", layout="table", path="digits.csv",
                                   annotator="who"))  # fmt: skip
    toml = root / "datagit.toml"
    toml.write_text(toml.read_text() + FAST.replace('"train"', '"tab"').replace('"eval"', '"tab"')
                    .replace('image_mode = "L"', "std = [16.0]"))  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_AUTHOR_NAME", "Ada Tester")
        mp.setenv("GIT_AUTHOR_EMAIL", "ada@example.com")
        repo.commit("a table", all=True)
        report = engine.suggest(repo, "tab", budget=3)
        assert report.unlabelled == 10 and len(report.suggestions) == 3
        done = relabel_api.label_from_run(repo, report.run, "tab")
        assert len(done.labelled) == 10 and done.left_unlabelled == 0
        text = (root / "digits.csv").read_text().splitlines()
        given = {e.id: e.new for e in done.labelled}
        row = next(x for x in text if x.startswith("r155,")).split(",")
        assert row[1] == given["r155"] and row[2] == f"model:{report.run}"
        assert text[1].startswith(f"r000,{d.target[0]},al,")
        repo.commit("machine labels")
    rec = repo.record("tab", "r155")
    assert rec.label not in (None, "") and rec.annotator == f"model:{report.run}"
    assert repo.status().clean
