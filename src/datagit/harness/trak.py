"""Counterfactual influence for regions whose exact Hessian is too big: TRAK-style random
projections of per-example gradients.

For the output layer `Probe.influence` solves the exact Hessian. A hidden layer
has too many weights for that (and its Hessian is not the output layer's
closed form), so here, as in TRAK (Park et al., 2023), each training example's
loss gradient g_i on the recorded parameters is projected to k dimensions by a
fixed Gaussian matrix P (φ_i = Pᵀ g_i / √k, inner products preserved in
expectation), the curvature is the projected empirical Fisher
F = ΦᵀΦ / N + λI (k × k, solved exactly), and the effect of including example
i along a direction u of the parameters is estimated as

    −⟨φ_i, F⁻¹ Pᵀu⟩ / N.

With k ≥ rank(G) this is the influence function under the empirical-Fisher
approximation of the Hessian; smaller k trades accuracy for memory.
Per-example gradients come from `torch.func` (vmap of grad), so any layer the
ledger records (Linear or Conv2d) is covered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from datagit.errors import InvalidInputError

if TYPE_CHECKING:
    from datagit.harness.influence import Probe

DIM = 2048  # default projection size
_MAX_PROJECTION = 2**28  # elements of P (1 GiB in float32)
_CHUNK = 256  # examples per vmap call


def projection(size: int, dim: int, seed: int) -> torch.Tensor:
    """The fixed Gaussian projection [size, dim], scaled so inner products are kept."""
    if size * dim > _MAX_PROJECTION:
        raise InvalidInputError(
            f"--counterfactual: a {dim}-dimensional projection of {size} weights is too big",
            hint=f"set [harness] counterfactual_dim below {_MAX_PROJECTION // size} "
            "or blame a smaller recorded layer",
        )
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(size, dim, generator=gen, dtype=torch.float64) / dim**0.5


def projected_gradients(probe: Probe, proj: torch.Tensor | None) -> torch.Tensor:
    """[N, k] projected per-example loss gradients on the probe's parameters (float64);
    unprojected [N, |R|] when ``proj`` is None."""
    from torch.func import functional_call, grad, vmap

    model = probe.model
    model.eval()
    params = dict(model.named_parameters())
    region = {n: params[n].detach() for n in probe.names}
    rest = {n: p.detach() for n, p in params.items() if n not in region}
    buffers = dict(model.named_buffers())

    def loss(w: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, ({**rest, **w}, buffers), (x[None],))
        return F.cross_entropy(out, y[None])

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    out = []
    for s in range(0, len(probe.train_x), _CHUNK):
        g = per_example(region, probe.train_x[s : s + _CHUNK], probe.train_y[s : s + _CHUNK])
        flat = torch.cat([g[n].reshape(g[n].shape[0], -1).double() for n in probe.names], 1)
        out.append(flat if proj is None else flat @ proj)
    return torch.cat(out)


def projected_influence(
    probe: Probe, direction: np.ndarray, damping: float, dim: int = DIM, seed: int = 0
) -> np.ndarray:
    """Per training example: the estimated change along ``direction`` that including it
    causes, −⟨φ_i, (ΦᵀΦ/N + λI)⁻¹ Pᵀu⟩ / N. No projection when the region has at most
    ``dim`` weights (then it is the empirical-Fisher influence itself)."""
    if dim < 1:
        raise InvalidInputError(f"counterfactual_dim = {dim} must be at least 1", hint="e.g. 2048")
    size = len(direction)
    proj = projection(size, dim, seed) if size > dim else None
    phi = projected_gradients(probe, proj)
    n = phi.shape[0]
    u = torch.as_tensor(direction, dtype=torch.float64)
    pu = u if proj is None else u @ proj
    fisher = phi.T @ phi / n + damping * torch.eye(phi.shape[1], dtype=torch.float64)
    q = torch.linalg.solve(fisher, pu)
    return (-(phi @ q) / n).numpy()
