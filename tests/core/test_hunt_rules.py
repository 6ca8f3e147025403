"""The hunt's pure rules: the noise band, the rule from the endpoints, multisection, cuts."""

from __future__ import annotations

import math

import pytest

from datagit import Repo
from datagit.core import hunt
from datagit.errors import InvalidInputError


def test_a_value_inside_the_noise_band_is_unsure_until_seeds_narrow_it() -> None:
    rule = hunt.Rule("accuracy", "noise", threshold=0.90, noise=0.01)
    assert rule.judge([0.93]) == hunt.OLD and rule.judge([0.87]) == hunt.NEW
    assert rule.judge([0.91]) == hunt.UNSURE  # within 2σ of the threshold
    assert rule.judge([0.91, 0.91, 0.91, 0.91, 0.912, 0.908]) == hunt.OLD  # 2σ/√6 < 0.01
    loss = hunt.Rule("loss", "threshold", threshold=0.5)
    assert loss.judge([0.4]) == hunt.OLD and loss.judge([0.6]) == hunt.NEW  # lower is better
    assert hunt.Rule("accuracy", "threshold", 0.9).judge([0.9]) == hunt.OLD  # no band: ≥ is good


def test_the_rule_comes_from_the_threshold_the_drop_or_the_endpoints() -> None:
    good, bad = [0.95, 0.96, 0.94], [0.80, 0.82, 0.81]
    noise = hunt.make_rule("accuracy", good, bad)
    assert noise.mode == "noise" and math.isclose(noise.threshold, (0.95 + 0.81) / 2)
    assert math.isclose(noise.noise, 0.01)  # both groups have σ = 0.01
    drop = hunt.make_rule("accuracy", good, bad, drop=0.05)
    assert drop.mode == "drop" and math.isclose(drop.threshold, 0.90)
    assert math.isclose(hunt.make_rule("loss", [0.3], [0.6], drop=0.1).threshold, 0.4)
    assert hunt.make_rule("accuracy", good, bad, threshold=0.7).threshold == 0.7
    with pytest.raises(InvalidInputError, match="not both"):
        hunt.make_rule("accuracy", good, bad, threshold=0.7, drop=0.1)
    with pytest.raises(InvalidInputError, match="positive"):
        hunt.make_rule("accuracy", good, bad, drop=-0.1)


def test_metrics_are_checked_and_read_by_name() -> None:
    produced = ("accuracy", "per_class_accuracy", "loss")
    assert hunt.check_metric("per_class_accuracy.3", produced) == "per_class_accuracy"
    with pytest.raises(InvalidInputError, match="unknown metric 'recall'"):
        hunt.check_metric("recall", produced)
    with pytest.raises(InvalidInputError, match="not among"):
        hunt.check_metric("macro_f1", produced)
    with pytest.raises(InvalidInputError, match="unknown metric"):
        hunt.check_metric("per_class_accuracy", produced)  # needs a label
    metrics = {"accuracy": 0.9, "per_class_accuracy": {"3": 0.5}}
    assert hunt.metric_value(metrics, "per_class_accuracy.3") == 0.5
    with pytest.raises(InvalidInputError, match="no class '11'"):
        hunt.metric_value(metrics, "per_class_accuracy.11")


def _chain(repo: Repo, n: int) -> list[str]:
    return [repo.commit(f"c{i}", allow_empty=True).id for i in range(n)]


def test_multisection_cuts_the_candidates_into_equal_parts(tmp_repo: Repo) -> None:
    ids = _chain(tmp_repo, 65)  # ids[0] good, ids[64] bad: 64 candidates
    bad, good = ids[64], [ids[0]]
    assert hunt.multisect(tmp_repo.git, bad, good, [], 1) == [ids[32]]
    assert hunt.multisect(tmp_repo.git, bad, good, [], 3) == [ids[16], ids[32], ids[48]]
    # skipped commits are neither picked nor counted
    picks = hunt.multisect(tmp_repo.git, bad, good, [ids[32]], 1)
    assert picks and picks[0] != ids[32]
    assert hunt.rounds_bound(64, 1) == 6 and hunt.rounds_bound(64, 3) == 3


def test_natural_cut_finds_the_gap_and_narrow_order_grows_until_recovered() -> None:
    scores = [8.0, 7.5, 7.1, 6.0, 3.2, 2.9, 1.0, 0.5]
    assert hunt.natural_cut(scores) == 4
    assert hunt.natural_cut([1.0]) == 1 and hunt.natural_cut([]) == 0
    ranked = [f"e{i}" for i in range(20)]
    harmful = set(ranked[:6])

    def oracle(reverted: object) -> tuple[float, bool]:
        left = harmful - set(reverted)  # type: ignore[call-overload]
        return 1.0 - 0.1 * len(left), not left

    cut, trials = hunt.narrow_order(ranked, 4, oracle, max_trials=10)
    assert cut == 6 and [t.reverted for t in trials] == [4, 5, 6]
    cut, trials = hunt.narrow_order(ranked, 1, oracle, max_trials=2)
    assert cut == 0 and len(trials) == 2  # the budget ran out: nothing confirmed
