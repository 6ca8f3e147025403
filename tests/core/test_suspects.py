"""Ranking: cleanlab's verdict, and the history lift a disagreeing commit earns."""

from __future__ import annotations

import numpy as np
import pytest

from datagit.core import folds
from datagit.core.records import Record, validate_label
from datagit.core.suspects import Provenance, history_lift, rank
from datagit.errors import InvalidInputError


def _probs(n: int, labels: list[int], wrong: set[int]) -> np.ndarray:
    """Confident, correct probabilities except for ``wrong``, which favour class 0/1 flips."""
    p = np.full((n, 3), 0.05)
    for i, y in enumerate(labels):
        truth = (y + 1) % 3 if i in wrong else y
        p[i, truth] = 0.9
    return p / p.sum(axis=1, keepdims=True)


def test_cleanlab_flags_the_examples_the_model_contradicts() -> None:
    labels = [i % 3 for i in range(90)]
    ranked = rank(labels, _probs(90, labels, {4, 40}), features=())
    assert {r.index for r in ranked[:2]} == {4, 40}
    assert all(r.issue == (r.index in {4, 40}) for r in ranked)
    assert all(r.lift == 1.0 for r in ranked)


def test_a_commit_the_model_disagrees_with_lifts_its_examples() -> None:
    n = 300
    labels = [i % 3 for i in range(n)]
    bad = set(range(0, 30, 3))  # 10 of the 30 labels commit "c2" set are wrong
    p = _probs(n, labels, bad | {100, 200})
    prov = [Provenance("c2" if i < 30 else "c1", None, i < 30) for i in range(n)]
    disagree = p.argmax(axis=1) != np.array(labels)
    lift = history_lift(disagree, prov, ["commit"])
    assert lift[0] > 5 and lift[100] == 1.0
    ranked = rank(labels, p, prov, ["commit"])
    top = [r.index for r in ranked[:10]]
    assert set(top) == bad  # the suspect commit's errors outrank equally clear ones elsewhere
    assert all(r.suggested != labels[r.index] for r in ranked if r.issue)


def test_unknown_history_feature() -> None:
    with pytest.raises(InvalidInputError, match="unknown history feature 'age'"):
        history_lift(np.zeros(2, dtype=bool), [None, None], ["age"])


def test_folds_are_stable_and_checked() -> None:
    assert folds.fold_of("a.png", 5) == folds.fold_of("a.png", 5)
    assert {folds.fold_of(f"{i}.png", 5) for i in range(100)} == set(range(5))
    recs = [Record(f"{i}", "cat" if i < 10 else "dog", "x", 1) for i in range(13)]
    folds.check(recs, 3, "train")
    with pytest.raises(InvalidInputError, match="label 'dog' has 3 examples, fewer than --folds 5"):
        folds.check(recs, 5, "dataset 'train'")
    with pytest.raises(InvalidInputError, match="has no labelled examples"):
        folds.check([Record("a", None, "x", 1)], 2, "pool")
    with pytest.raises(InvalidInputError, match="one label only"):
        folds.check(recs[:10], 2, "train")


@pytest.mark.parametrize(
    ("label", "layout", "match"),
    [
        ("", "imagefolder", "is empty"),
        ("a/b", "imagefolder", "path separator"),
        (".hidden", "imagefolder", "plain folder name"),
        (3, "imagefolder", "not a string"),
        ("x\ny", "table", "newline"),
    ],
)
def test_bad_labels(label: object, layout: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        validate_label(label, layout, "train/a.png")


def test_good_labels() -> None:
    assert validate_label("cat", "imagefolder", "x") == "cat"
    assert validate_label(3, "table", "x") == 3


def test_a_commit_that_cost_accuracy_lifts_its_labels() -> None:
    prov = [
        Provenance("c2", None, True, metric_drop=0.02),
        Provenance("c3", None, True, metric_drop=0.001),  # within noise
        None,
    ]
    lift = history_lift(np.zeros(3, dtype=bool), prov, ["metric"])
    assert lift[0] == pytest.approx(np.exp(2.0)) and lift[1] == 1.0 and lift[2] == 1.0


def test_a_label_only_history_flags_gets_the_likeliest_other_class() -> None:
    n = 300
    labels = [i % 3 for i in range(n)]
    p = _probs(n, labels, set(range(6)))  # commit c2's first 6 labels are clearly wrong
    p[9] = [0.55, 0.05, 0.4]  # c2's label 0 here: the model leans to it, then to 2
    prov = [Provenance("c2" if i < 10 else "c1", None, True) for i in range(n)]
    r = next(x for x in rank(labels, p, prov, ["commit"]) if x.index == 9)
    assert r.lift > 5 and r.issue and not r.cleanlab_issue and r.suggested == 2
