"""Ranking suspected mislabels: confident learning (cleanlab) plus what history knows.

cleanlab sees one snapshot: each example's given label and its out-of-sample
class probabilities. datagit also knows which commit set each label and who
annotated it. A label set in a commit (or by an annotator) whose labels the
model disagrees with far more often than elsewhere is more likely wrong, so
the history turns that group's excess disagreement into prior odds that
multiply the model's own odds of a mislabel. Pure numpy; cleanlab is imported
lazily, as an optional extra (``pip install datagit[engine]``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from datagit.errors import InvalidInputError

FEATURES = ("commit", "annotator", "relabelled", "metric")  # history signals to switch on
DEFAULT_FEATURES = ("commit",)  # what the benchmark showed to help (docs/engine.md)
SMOOTHING = 20.0  # pseudo-examples pulling a group's disagreement rate towards the dataset's
MIN_LIFT = 2.0  # a group must disagree this many times the base rate to move anything
CLIP = 1e-4
METRIC_MARGIN = 0.005  # an eval-metric drop within this is noise
METRIC_SCALE = 0.01  # each point of accuracy a commit cost multiplies its labels' odds by e


@dataclass(frozen=True, slots=True)
class Provenance:
    """Who and what set one example's label (from blame)."""

    commit: str
    annotator: str | None
    relabelled: bool  # the label was changed after the example was added
    metric_drop: float = 0.0  # how much that commit lowered the eval metric (≥ 0)


@dataclass(frozen=True, slots=True)
class Ranked:
    """One example's verdict: the given label's quality and the history-aware score."""

    index: int
    suggested: int  # the class the model favours (for a flagged one, over its given label)
    quality: float  # cleanlab's label-quality score (low: likely wrong)
    score: float  # suspicion after history, in [0, 1] (high: likely wrong)
    issue: bool  # flagged as a label issue
    cleanlab_issue: bool  # flagged by cleanlab alone
    lift: float  # the prior odds history multiplied the model's odds by


def cleanlab() -> Any:
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError:
        raise InvalidInputError(
            "suspects needs cleanlab, which is not installed",
            hint="pip install 'datagit[engine]' (or: pip install cleanlab)",
        ) from None
    return cleanlab


def rank(
    labels: Any,
    probs: Any,
    provenance: Sequence[Provenance | None] = (),
    features: Sequence[str] = DEFAULT_FEATURES,
) -> list[Ranked]:
    """Every example, most suspect first.

    ``labels`` are class indices, ``probs`` out-of-sample probabilities
    [examples, classes]; ``provenance`` (same order) feeds the history features.
    """
    import numpy as np

    cl = cleanlab()
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(axis=1, keepdims=True)
    quality = cl.rank.get_label_quality_scores(labels, probs, method="self_confidence")
    flagged = cl.filter.find_label_issues(labels, probs, filter_by="prune_by_noise_rate")
    disagree = probs.argmax(axis=1) != labels
    lift = history_lift(disagree, provenance, features) if provenance else np.ones(len(labels))
    q = np.clip(quality, CLIP, 1 - CLIP)
    odds = (1 - q) / q * lift
    score = odds / (1 + odds)
    # A boosted example is an issue when history makes it more likely wrong than right;
    # elsewhere cleanlab's own verdict stands.
    issue = np.where(lift > 1, flagged | (score >= 0.5), flagged)
    order = np.lexsort((np.arange(len(labels)), -score))
    # A flagged label the model itself favours (history flagged it) is wrong by
    # verdict, so the suggestion is the likeliest *other* class.
    others = probs.copy()
    others[np.arange(len(labels)), labels] = -1.0
    suggested = np.where(issue, others.argmax(axis=1), probs.argmax(axis=1))
    return [
        Ranked(
            int(i),
            int(suggested[i]),
            float(quality[i]),
            float(score[i]),
            bool(issue[i]),
            bool(flagged[i]),
            float(lift[i]),
        )
        for i in order
    ]


def history_lift(
    disagree: Any, provenance: Sequence[Provenance | None], features: Sequence[str]
) -> Any:
    """Per example: the product, over the chosen history features, of how much more
    often the model disagrees with that group's labels than with the dataset's."""
    import numpy as np

    check_features(features)
    n = len(disagree)
    base = (float(disagree.sum()) + 1.0) / (n + 2.0)
    lift = np.ones(n)
    for feature in features:
        if feature == "metric":
            lift *= [_metric_lift(p) for p in provenance]
            continue
        keys = [_group(p, feature) for p in provenance]
        lift *= _group_lift(disagree, keys, base)
    return lift


def check_features(features: Sequence[str]) -> None:
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise InvalidInputError(
            f"unknown history feature {unknown[0]!r}", hint=f"use any of: {', '.join(FEATURES)}"
        )


def _metric_lift(p: Provenance | None) -> float:
    if p is None or p.metric_drop <= METRIC_MARGIN:
        return 1.0
    return math.exp(p.metric_drop / METRIC_SCALE)


def _group(p: Provenance | None, feature: str) -> str | None:
    if p is None:
        return None
    if feature == "commit":
        return p.commit
    if feature == "annotator":
        return p.annotator
    return "relabelled" if p.relabelled else None


def _group_lift(disagree: Any, keys: Sequence[str | None], base: float) -> Any:
    """Odds ratio of a group's smoothed disagreement rate to the base rate (≥ 1 only
    past `MIN_LIFT`: a group that agrees with the model is not made less suspect)."""
    import numpy as np

    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        if key is not None:
            members[key].append(i)
    out = np.ones(len(keys))
    base_odds = base / (1 - base)
    for idx in members.values():
        if len(idx) == len(keys):
            continue  # one group holding everything says nothing
        rate = (float(disagree[idx].sum()) + SMOOTHING * base) / (len(idx) + SMOOTHING)
        ratio = (rate / (1 - rate)) / base_odds
        if rate / base >= MIN_LIFT:
            out[idx] = ratio
    return out
