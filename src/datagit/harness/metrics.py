"""Eval metrics from per-example predictions: accuracy, per-class accuracy, macro-F1, loss.

Targets of -1 mark eval labels the training data never had (``unseen_labels =
"wrong"``): they count as errors in accuracy and F1 and are left out of loss.
Targets of -2 (`UNLABELLED`) mark examples with no label at all: they are
predicted (a pool to rank, a held-out fold) but left out of every metric.
"""

from __future__ import annotations

import json
from typing import Any

import torch

UNLABELLED = -2  # the target of an example without a label: predicted, never scored


def class_name(label: Any) -> str:
    return label if isinstance(label, str) else json.dumps(label)


def compute(
    probs: torch.Tensor,
    losses: torch.Tensor,
    targets: torch.Tensor,
    classes: list[Any],
    wanted: tuple[str, ...],
    unseen: list[Any] | None = None,
) -> dict[str, Any]:
    """The metrics named in ``wanted``; ``unseen`` names the eval-only labels for per-class."""
    labelled = targets != UNLABELLED
    if not bool(labelled.all()):
        probs, losses, targets = probs[labelled], losses[labelled], targets[labelled]
    pred = probs.argmax(dim=1)
    correct = pred == targets
    n = len(targets)
    out: dict[str, Any] = {"examples": n}
    if "accuracy" in wanted:
        out["accuracy"] = float(correct.float().mean()) if n else 0.0
    if "loss" in wanted:
        seen = targets >= 0
        out["loss"] = float(losses[seen].mean()) if bool(seen.any()) else float("nan")
    if "per_class_accuracy" in wanted:
        per: dict[str, float] = {}
        for i, c in enumerate(classes):
            mask = targets == i
            if bool(mask.any()):
                per[class_name(c)] = float(correct[mask].float().mean())
        for c in unseen or []:
            per[class_name(c)] = 0.0
        out["per_class_accuracy"] = per
    if "macro_f1" in wanted:
        out["macro_f1"] = macro_f1(pred, targets, len(classes))
    return out


def macro_f1(pred: torch.Tensor, targets: torch.Tensor, k: int) -> float:
    """Mean F1 over classes that occur in the targets or the predictions."""
    scores = []
    for i in range(k):
        tp = int(((pred == i) & (targets == i)).sum())
        fp = int(((pred == i) & (targets != i)).sum())
        fn = int(((pred != i) & (targets == i)).sum())
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    unseen_misses = int((targets < 0).sum())
    if unseen_misses:
        scores.append(0.0)  # the eval-only labels, recalled never
    return sum(scores) / len(scores) if scores else 0.0
