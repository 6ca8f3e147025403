"""The rules of a metric-driven bisect, as pure functions: no torch, no printing.

* `Rule` turns a commit's per-seed metric values into a verdict. A value
  inside the noise band (``z`` standard errors around the threshold) is
  ``unsure``: the caller trains more seeds, and at the cap skips the commit
  (git's 125) rather than guess.
* `multisect` picks K commits that cut the candidates into K+1 parts of equal
  size, so K parallel evaluations per round need ⌈log_{K+1} N⌉ rounds.
* `narrow_order` is the group test that confirms which changes of a culprit
  commit carry the regression, given a ranking and a retrain oracle.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from datagit.errors import InvalidInputError
from datagit.storage.git import GitStore

from . import bisect as core_bisect

LOWER_IS_BETTER = frozenset({"loss"})
METRIC_KINDS = ("accuracy", "macro_f1", "loss", "per_class_accuracy.<label>")
Z = 2.0  # standard errors either side of the threshold that count as noise
OLD, NEW, UNSURE = "old", "new", "unsure"


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def check_metric(metric: str, produced: Iterable[str]) -> str:
    """The harness metric (``[harness] metrics``) that carries ``metric``, or an error."""
    base = metric.split(".", 1)[0]
    known = {"accuracy", "macro_f1", "loss", "per_class_accuracy"}
    if base not in known or (base == "per_class_accuracy") != ("." in metric):
        raise InvalidInputError(
            f"unknown metric {metric!r}",
            hint=f"use one of: {', '.join(METRIC_KINDS)}",
        )
    if base not in set(produced):
        raise InvalidInputError(
            f"metric {metric!r} is not among [harness] metrics",
            hint=f'add "{base}" to [harness] metrics',
        )
    return base


def metric_value(metrics: dict, metric: str) -> float:
    """``metric`` from a run's metrics; ``per_class_accuracy.<label>`` reads one class."""
    if "." in metric:
        base, label = metric.split(".", 1)
        per = metrics.get(base) or {}
        if label not in per:
            raise InvalidInputError(
                f"metric {metric!r}: no class {label!r} in the eval results",
                hint=f"classes: {', '.join(sorted(per)) or '(none)'}",
            )
        return float(per[label])
    if metric not in metrics:
        raise InvalidInputError(f"the harness did not report {metric!r}")
    return float(metrics[metric])


@dataclass(frozen=True)
class Summary:
    """A commit's values over seeds: mean and sample standard deviation."""

    mean: float
    spread: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), spread, len(values))


def pooled_spread(groups: Sequence[Sequence[float]]) -> float:
    """The seed-to-seed standard deviation pooled over groups (0 when none has 2 values)."""
    num = sum((len(g) - 1) * statistics.variance(g) for g in groups if len(g) > 1)
    den = sum(len(g) - 1 for g in groups if len(g) > 1)
    return math.sqrt(num / den) if den else 0.0


@dataclass(frozen=True)
class Rule:
    """Good when the metric is on the good side of ``threshold`` by more than the noise.

    ``mode`` says where the threshold came from: ``threshold`` (given),
    ``drop`` (the good endpoint's mean less ``drop``) or ``noise`` (midway
    between the endpoints' means). ``noise`` is one seed's standard deviation,
    measured at the endpoints; a mean of n seeds is unsure within
    ``z * noise / sqrt(n)`` of the threshold.
    """

    metric: str
    mode: str
    threshold: float
    noise: float = 0.0
    z: float = Z
    drop: float | None = None

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.metric)

    def band(self, n: int) -> float:
        return self.z * self.noise / math.sqrt(max(n, 1))

    def judge(self, values: Sequence[float]) -> str:
        """``old`` (good), ``new`` (bad) or ``unsure`` for a commit's per-seed values."""
        s = Summary.of(values)
        margin = (s.mean - self.threshold) * (1 if self.higher_is_better else -1)
        band = self.band(s.n)
        if band == 0.0:
            return OLD if margin >= 0 else NEW
        if margin > band:
            return OLD
        if margin < -band:
            return NEW
        return UNSURE

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "direction": "higher is better" if self.higher_is_better else "lower is better",
            "mode": self.mode,
            "threshold": self.threshold,
            "drop": self.drop,
            "noise": self.noise,
            "z": self.z,
        }


def make_rule(
    metric: str,
    good: Sequence[float],
    bad: Sequence[float],
    *,
    threshold: float | None = None,
    drop: float | None = None,
) -> Rule:
    """The rule a hunt uses, from the user's choice and the endpoints' values."""
    if threshold is not None and drop is not None:
        raise InvalidInputError("give --threshold or --drop, not both")
    noise = pooled_spread([good, bad])
    g = statistics.fmean(good)
    sign = 1 if higher_is_better(metric) else -1
    if threshold is not None:
        return Rule(metric, "threshold", threshold, noise)
    if drop is not None:
        if drop <= 0:
            raise InvalidInputError("--drop must be positive", hint="e.g. --drop 0.02")
        return Rule(metric, "drop", g - sign * drop, noise, drop=drop)
    return Rule(metric, "noise", (g + statistics.fmean(bad)) / 2, noise)


# -- multisection -------------------------------------------------------------
def multisect(
    git: GitStore, bad: str, good: Sequence[str], skip: Iterable[str], k: int
) -> list[str]:
    """Up to ``k`` commits to test at once, cutting the candidates into k+1 equal parts.

    A commit's reach is how many untested candidates it makes good when good
    (its ancestors among the candidates); the picks are the commits whose reach
    is nearest to j·T/(k+1). With k = 1 this is git's own choice.
    """
    cands = core_bisect.candidates(git, bad, good)
    skipped = set(skip)
    index = {c: i for i, c in enumerate(cands)}
    masks = [0] * len(cands)
    for i in range(len(cands) - 1, -1, -1):  # oldest first: parents come later
        m = 1 << i
        for p in git.commit(cands[i]).parents:
            j = index.get(p)
            if j is not None:
                m |= masks[j]
        masks[i] = m
    live = [i for i, c in enumerate(cands) if c not in skipped]
    live_mask = sum(1 << i for i in live)
    total = len(live)
    reach = {cands[i]: (masks[i] & live_mask).bit_count() for i in live if cands[i] != bad}
    if not reach:
        return []
    picks: list[str] = []
    for j in range(1, k + 1):
        target = j * total / (k + 1)
        left = [c for c in reach if c not in picks]
        if not left:
            break
        best = min(left, key=lambda c: (abs(reach[c] - target), index[c]))
        picks.append(best)
    return sorted(set(picks), key=lambda c: reach[c])


def rounds_bound(n: int, k: int) -> int:
    """⌈log_{k+1} n⌉: rounds multisection needs for n candidates."""
    rounds, size = 0, n
    while size > 1:
        size = math.ceil(size / (k + 1))
        rounds += 1
    return rounds


# -- narrowing ----------------------------------------------------------------
@dataclass(frozen=True)
class Trial:
    """One retrain: the parent's data plus every change except ``reverted``."""

    reverted: int  # how many of the ranked suspects were left out
    value: float
    recovered: bool


def natural_cut(scores: Sequence[float]) -> int:
    """How many of the top ``scores`` (sorted high to low) stand apart from the rest:
    the split with the largest between-group variance (Otsu's rule, in one dimension).

    Harmful flips score far above the harmless changes the model merely found
    hard, so the ranking's own gap is a better first cut than any fixed count.
    """
    n = len(scores)
    if n < 2:
        return n
    total = sum(scores)
    best, best_i, head = -1.0, n, 0.0
    for i in range(1, n):
        head += scores[i - 1]
        m0, m1 = head / i, (total - head) / (n - i)
        between = i * (n - i) * (m0 - m1) ** 2
        if between > best:
            best, best_i = between, i
    return best_i


def narrow_order(
    ranked: Sequence[str],
    suspects: int,
    recovered: Callable[[Sequence[str]], tuple[float, bool]],
    max_trials: int,
    *,
    bad: float | None = None,
    good: float | None = None,
) -> tuple[int, list[Trial]]:
    """How many of the top-ranked changes must be reverted to undo the regression.

    Starts from the ranking's own cut (``suspects``) and widens it — doubling
    while a retrain wins back less than half of the way from ``bad`` to
    ``good``, by a quarter after that — until reverting the cut recovers the
    metric; each test is one retrain, at most ``max_trials``. It never shrinks a
    cut that recovers: single label flips move the metric by less than the
    training noise, so a smaller cut that still "recovers" would trade recall
    for luck.
    ``recovered(reverted_ids)`` retrains and says whether the metric came back.
    Returns the cut (0 when nothing recovers within the budget) and the trials.
    """
    trials: list[Trial] = []
    n = max(1, min(suspects, len(ranked)))
    while len(trials) < max_trials:
        value, ok = recovered(ranked[:n])
        trials.append(Trial(n, value, ok))
        if ok:
            return n, trials
        if n >= len(ranked):
            break
        far = (
            bad is not None
            and good is not None
            and good != bad
            and ((value - bad) / (good - bad) < 0.5)
        )
        n = min(len(ranked), n * 2 if far else n + max(1, n // 4))
    return 0, trials
