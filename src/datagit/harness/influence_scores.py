"""Per-example harm scores for narrowing a regression to the examples that caused it.

For a model trained on the good parent's data, an SGD step on example (x, y)
moves the weights by -η∇L(x, y); to first order that changes the loss on the
regressed eval examples by -η⟨∇L(x, y), ∇L_regressed⟩. The harm of training on
(x, y) is therefore -⟨∇L(x, y), ∇L_regressed⟩: positive when learning the
example pushes the model away from the answers it lost. A re-label's harm is
the harm of its new label less that of its old one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from datagit.harness.config import HarnessConfig
from datagit.harness.data import StoreDataset, to_torch
from datagit.harness.models import build_model
from datagit.harness.train import fixed_norm


def limit_threads(n: int) -> None:
    """Give this process ``n`` torch threads, so K workers share the cores instead of
    each taking all of them."""
    n = max(1, n)
    os.environ["OMP_NUM_THREADS"] = str(n)
    torch.set_num_threads(n)


def _dataset(
    cfg: HarnessConfig, view: Any, classes: list[Any], norm: dict[str, Any] | None
) -> StoreDataset:
    """The view as the run saw its inputs: a table standardised with the statistics the
    run measured on its training rows (``norm``, from its run.json)."""
    mean = tuple(norm["mean"]) if norm else fixed_norm(cfg.mean, 0.0)
    std = tuple(norm["std"]) if norm else fixed_norm(cfg.std, 1.0)
    return to_torch(
        view,
        None,
        classes=classes,
        unseen="wrong",
        image_mode=cfg.image_mode,
        image_size=cfg.image_size,
        mean=mean,
        std=std,
        features=tuple(norm["features"]) if norm and norm["features"] else cfg.features,
    )


def _grad(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def example_scores(
    cfg: HarnessConfig,
    weights: Path,
    classes: list[Any],
    input_shape: tuple[int, ...],
    views: dict[str, Any],
    regressed: Any,
    search: Path | None,
    normalisation: dict[str, Any] | None = None,
) -> dict[str, dict[str, dict[str, float | Any]]]:
    """For each view (e.g. ``old``/``new`` records of the changes): id → harm, loss,
    the model's probability of the record's label and its prediction.

    ``weights`` are the good parent's run; ``regressed`` the eval examples the
    bad commit's model got wrong and the parent's got right.
    """
    model = build_model(cfg, input_shape, len(classes), search)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    ref = _dataset(cfg, regressed, classes, normalisation)
    xs = torch.stack([ref[i][0] for i in range(len(ref))]) if len(ref) else None
    ys = torch.tensor(ref.targets, dtype=torch.long)
    g_ref = (
        _grad(model, xs[ys >= 0], ys[ys >= 0]) if xs is not None and bool((ys >= 0).any()) else None
    )
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, view in views.items():
        ds = _dataset(cfg, view, classes, normalisation)
        scores: dict[str, dict[str, Any]] = {}
        for i in range(len(ds)):
            x, t = ds[i]
            x = x.unsqueeze(0)
            with torch.no_grad():
                probs = torch.softmax(model(x), dim=1)[0]
            pred = classes[int(probs.argmax())]
            if t < 0:  # a label the parent's model has no class for: nothing to measure
                scores[ds.ids[i]] = {
                    "harm": 0.0,
                    "loss": float("nan"),
                    "p_label": 0.0,
                    "pred": pred,
                }
                continue
            y = torch.tensor([t])
            g = _grad(model, x, y)
            harm = -float(g @ g_ref) if g_ref is not None else 0.0
            scores[ds.ids[i]] = {
                "harm": harm,
                "loss": float(-torch.log(probs[t].clamp_min(1e-12))),
                "p_label": float(probs[t]),
                "pred": pred,
            }
        out[name] = scores
    return out
