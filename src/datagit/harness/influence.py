"""Gradients of a trained model's losses on the ledger's region, and curvature-corrected influence.

The ledger answers "which examples moved these weights along the path
training took". Two further questions need the model itself:

- which way a set of eval examples' loss pulls the region (`Probe.loss_gradient`),
  to rank training examples by the first-order loss change their accounts
  caused (regressions, ``credit --value``);
- what would change without an example (`Probe.counterfactual`): for the output
  layer an influence function with its exact Hessian, which for softmax
  cross-entropy is Σ_i (diag p_i − p_i p_iᵀ) ⊗ ã_i ã_iᵀ (ã_i: the layer's input
  with a 1 for the bias), small enough to form and solve exactly for the
  built-in models; for any other recorded layer, TRAK-style random projections
  of per-example gradients (`datagit.harness.trak`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datagit.errors import InvalidInputError
from datagit.harness.config import HarnessConfig
from datagit.harness.data import stack
from datagit.harness.models import build_model
from datagit.harness.train import datasets, deterministic, resolve_device


@dataclass
class Probe:
    """A model with given weights, the train and eval tensors, and the ledger's parameters."""

    model: nn.Module
    names: list[str]
    output: str
    train_ids: list[str]
    train_x: torch.Tensor
    train_y: torch.Tensor
    eval_ids: list[str]
    eval_x: torch.Tensor
    eval_y: torch.Tensor

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)

    def _region_grad(self) -> torch.Tensor:
        params = dict(self.model.named_parameters())
        grads = [params[n].grad for n in self.names]
        return torch.cat(
            [
                (g if g is not None else torch.zeros_like(params[n])).reshape(-1).double()
                for g, n in zip(grads, self.names, strict=True)
            ]
        )

    def loss_gradient(self, ids: list[str] | None = None) -> tuple[np.ndarray, float, int]:
        """∇ of the mean eval loss (over ``ids``, default all with a known label) on the
        region, the loss itself, and how many examples it averages."""
        keep = self.eval_y >= 0
        if ids is not None:
            pos = {i: k for k, i in enumerate(self.eval_ids)}
            missing = [i for i in ids if i not in pos]
            if missing:
                raise InvalidInputError(
                    f"eval example {missing[0]!r} is not in the eval dataset",
                    hint="give ids as `datagit ls REV EVAL` lists them",
                )
            mask = torch.zeros_like(keep)
            mask[[pos[i] for i in ids]] = True
            keep &= mask
        if not bool(keep.any()):
            raise InvalidInputError("no eval example with a known label to take a loss over")
        self.model.zero_grad(set_to_none=True)
        self.model.eval()
        loss = F.cross_entropy(self.model(self.eval_x[keep]), self.eval_y[keep])
        loss.backward()
        return self._region_grad().numpy(), float(loss.detach()), int(keep.sum())

    def line_gradient(
        self, start: dict[str, Any], end: dict[str, Any], points: int
    ) -> tuple[np.ndarray, float]:
        """The eval-loss gradient on the region averaged along the straight line from
        ``start`` to ``end`` (``points``-point Gauss-Legendre), and ⟨Δθ, ḡ⟩ over the
        parameters outside the region. By the fundamental theorem of calculus
        L(end) − L(start) = ⟨Δθ, ḡ⟩ over all parameters, up to the quadrature error."""
        nodes, weights = np.polynomial.legendre.leggauss(points)
        params = dict(self.model.named_parameters())
        rest_names = [n for n in params if n not in self.names]
        gbar: np.ndarray | None = None
        rest = 0.0
        for x, w in zip((nodes + 1) / 2, weights / 2, strict=True):
            self.load(
                {
                    k: start[k] + float(x) * (v - start[k]) if v.is_floating_point() else v
                    for k, v in end.items()
                }
            )
            g = self.loss_gradient()[0]
            gbar = w * g if gbar is None else gbar + w * g
            for n in rest_names:
                grad = params[n].grad
                if grad is not None:
                    step = (end[n] - start[n]).double()
                    rest += float(w) * float((grad.double() * step).sum())
        self.load(end)
        assert gbar is not None
        return gbar, rest

    def output_only(self) -> bool:
        """Whether the ledger's parameters are the output Linear layer's (exact Hessian)."""
        layer = dict(self.model.named_modules())[self.output]
        allowed = {f"{self.output}.weight", f"{self.output}.bias"}
        return isinstance(layer, nn.Linear) and set(self.names) <= allowed

    def counterfactual(
        self, direction: np.ndarray, damping: float, dim: int
    ) -> tuple[np.ndarray, str]:
        """Per-example influence along ``direction`` and the estimator used: the exact
        Hessian for the output layer, a ``dim``-dimensional projection otherwise."""
        if self.output_only():
            return self.influence(direction, damping), "exact-hessian"
        from datagit.harness.trak import projected_influence

        size = len(direction)
        kind = f"projected-fisher (k={dim})" if size > dim else "empirical-fisher"
        return projected_influence(self, direction, damping, dim), kind

    def influence(self, direction: np.ndarray, damping: float) -> np.ndarray:
        """Per training example: the estimated change along ``direction`` (a vector on the
        ledger's parameters) that including it causes, −⟨H⁻¹ g_i, direction⟩ / N."""
        g, h = self.output_curvature()
        n = g.shape[0]
        h += damping * torch.eye(h.shape[0], dtype=h.dtype)
        q = torch.linalg.solve(h, torch.as_tensor(direction, dtype=h.dtype))
        return (-(g @ q) / n).numpy()

    def output_curvature(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example gradients [N, |R|] and the mean Hessian of the output layer's loss."""
        layer = dict(self.model.named_modules())[self.output]
        if not self.output_only():
            raise InvalidInputError(
                f"the exact Hessian is for a ledger of the output Linear layer only "
                f"({self.output}), not {', '.join(self.names)}",
                hint="record one with `datagit train --ledger` (no layer: the output layer)",
            )
        seen: list[torch.Tensor] = []
        handle = layer.register_forward_hook(lambda m, a, o: seen.append(a[0].detach()))
        self.model.eval()
        with torch.no_grad():
            logits = self.model(self.train_x).double()
        handle.remove()
        a = seen[0].double().reshape(len(self.train_x), -1)
        a1 = torch.cat([a, torch.ones(len(a), 1, dtype=a.dtype)], dim=1)  # [N, d+1]
        p = torch.softmax(logits, dim=1)
        r = p - F.one_hot(self.train_y, p.shape[1]).double()  # dℓ/dlogits
        s = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]  # [N, o, o]
        o, d1 = p.shape[1], a1.shape[1]
        h = torch.einsum("nab,nc,ne->acbe", s, a1, a1).reshape(o * d1, o * d1) / len(a)
        g = (r[:, :, None] * a1[:, None, :]).reshape(len(a), o * d1)
        # ledger order: weight (o×d, row-major) then bias (o); augmented order: o×(d+1)
        index = {
            f"{self.output}.weight": [k * d1 + j for k in range(o) for j in range(d1 - 1)],
            f"{self.output}.bias": [k * d1 + d1 - 1 for k in range(o)],
        }
        order = torch.tensor([i for n in self.names for i in index[n]])
        return g[:, order], h[order][:, order]


def probe(
    cfg: HarnessConfig,
    meta: dict[str, Any],
    state: dict[str, Any],
    train_view: Any,
    eval_view: Any,
    names: list[str],
    output: str,
    search: Path | None,
) -> Probe:
    """A model of the run's architecture holding ``state``, with the data as tensors."""
    device = resolve_device("cpu")
    with deterministic(cfg.seed, device):
        train_ds, eval_ds = datasets(cfg, train_view, eval_view, search)
        tx, ty = stack(train_ds, cfg.num_workers)
        ex, ey = stack(eval_ds, cfg.num_workers)
        shape = tuple(meta.get("input_shape") or tx.shape[1:])
        model = build_model(cfg, shape, len(train_ds.classes), search)
    model.load_state_dict(state)
    return Probe(model, names, output, list(train_ds.ids), tx, ty, list(eval_ds.ids), ex, ey)
