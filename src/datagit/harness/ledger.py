"""The attribution ledger: each training example's exact share of a weight region's change.

While the harness trains, `Ledger` (a `Hooks`) captures per-example gradients
of the chosen parameters from forward/backward hooks (Linear and Conv2d, as
outer products) and pushes them through the optimiser's own update rule. Every
update rule the ledger accepts (SGD with momentum, dampening, Nesterov and
weight decay; Adam and AdamW with their preconditioners taken from the
optimiser's state) is, per weight element and given that step's
preconditioner, a linear map of an account's state (its share ``c`` of the
weights and ``b`` of the momentum) plus the example's gradient::

    (c, b)' = M_t (c, b) + v_t h_i          M_t: 2×2 per element, v_t: 2-vector

so the accounts of the examples, of the initial weights and of float rounding
add up to the weights at every step: ``θ_T − θ_0 = init + Σ_i c_i + rounding``.

SGD on Linear layers takes the factored path (`ledger_factors`): a step only
stores the gradient factors, folded into accounts at the end of training.
Otherwise (Adam's per-element maps, Conv2d kernels) accounts are lazy: an
example's account is brought forward only when it is in a batch, by the
product of the maps since it was last touched. Products are
never inverted (that would amplify rounding by μ^-t): a segment (an epoch)
keeps its running prefix product and, once closed, its suffix products, and
since every example is seen once per epoch its last touch is in the current
segment or the one before. So the cost of a step does not grow with N.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from datagit.harness.ledger_factors import FactorStore, factor_layers
from datagit.harness.ledger_layers import (
    LedgerError,
    _Capture,
    output_layer,
    resolve_layers,
    rule_of,
    sgd_map,
)
from datagit.harness.train import Hooks, Step

LEDGER_VERSION = 1
DTYPES = ("float64", "float32")
ARTIFACT_PREFIX = "ledger-"
_CHUNK = 4096  # examples brought forward at once when flushing
_NEVER = -(2**40)  # segment of an account never touched (it is zero: nothing to bring forward)


def artifact_key(layers: Sequence[str], dtype: str) -> str:
    """``ledger-<digest>`` of what the ledger records; the run key names everything else."""
    blob = json.dumps({"layers": sorted(layers), "dtype": dtype, "v": LEDGER_VERSION})
    return ARTIFACT_PREFIX + hashlib.sha256(blob.encode()).hexdigest()[:16]


# A step's map is four per-element coefficients (m00, m01, m10, m11): Python floats
# for SGD, whose map is the same for every element, [|R|] tensors for Adam(W).
Map = tuple[Any, Any, Any, Any]
EYE: Map = (1.0, 0.0, 0.0, 1.0)


def _mul(p: Map, q: Map) -> Map:
    """The 2×2 product per element: apply ``q`` first, then ``p``."""
    a, b, c, d = p
    e, f, g, h = q
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def _apply(m: Map, st: torch.Tensor) -> torch.Tensor:
    """Accounts ``st`` [..., 2, |R|] (share, momentum) mapped by ``m``."""
    a, b, c, d = m
    x, y = st.select(-2, 0), st.select(-2, 1)
    return torch.stack((a * x + b * y, c * x + d * y), dim=-2)


def _table(maps: list[Map], dtype: torch.dtype, device: torch.device, size: int) -> torch.Tensor:
    """Maps stacked as [E, 4] (all floats) or [E, 4, |R|], for gathering by row."""
    if all(isinstance(x, float) for m in maps for x in m):
        return torch.tensor(maps, dtype=dtype, device=device)
    out = torch.empty(len(maps), 4, size, dtype=dtype, device=device)
    for j, m in enumerate(maps):
        for k, x in enumerate(m):
            out[j, k] = x
    return out


def _rows(table: torch.Tensor, pos: torch.Tensor) -> Map:
    """The maps at ``pos`` as a Map whose parts broadcast over [n, |R|] accounts."""
    g = table[pos.to(table.device)]
    parts = g.unbind(1)
    if g.dim() == 2:
        parts = tuple(x[:, None] for x in parts)
    return (parts[0], parts[1], parts[2], parts[3])


class Ledger(Hooks):
    """Records per-example accounts of the chosen parameters while the harness trains."""

    def __init__(
        self,
        layers: Sequence[str] = (),
        dtype: str = "float64",
        config_digest: str = "",
        capacity: int = 0,
        factored: bool = True,
        factor_budget: int | None = None,
        epochs: int = 0,
        plan: Callable[[], Sequence[float]] | None = None,
    ) -> None:
        """``capacity``: the number of training examples when known, so the accounts are
        allocated once rather than grown (which copies them) during the first epoch.
        ``factored``: SGD on Linear layers keeps gradient factors and folds them later
        (`ledger_factors`); False forces the per-step account path (kept for Adam and
        Conv2d, and to check one against the other). ``factor_budget``: the most bytes
        the factor store holds before it folds mid-training (see `FactorStore`);
        ``epochs``: how many epochs training will run, when known. ``plan``: the learning
        rate of every step, when known in advance (`planned_lrs` for a harness run): a run
        too long for one factor store then folds into final shares mid-training and stays
        within 2·N·|R|·8 bytes (see `FactorStore`); it is checked step by step."""
        if dtype not in DTYPES:
            raise LedgerError(f"ledger dtype {dtype!r} is not supported", hint="float64 or float32")
        self.layers = tuple(layers)
        self.dtype_name = dtype
        self.dtype = getattr(torch, dtype)
        self.config_digest = config_digest
        self.key = artifact_key(self.layers, dtype)
        self.artifact = self.key
        self.seconds = 0.0
        self.steps = 0
        self.capacity = capacity
        self.factored = factored
        self.factor_budget = factor_budget
        self.epochs = epochs
        self.plan = plan
        self.store: FactorStore | None = None
        self.shares: torch.Tensor | None = None

    # -- setup ------------------------------------------------------------------
    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.names = resolve_layers(model, self.layers)
        self.output = output_layer(model)
        params = dict(model.named_parameters())
        self.params = [params[n] for n in self.names]
        self.rule = rule_of(optimizer, self.params)
        self.optimizer = optimizer
        modules = dict(model.named_modules())
        self.captures: dict[str, _Capture] = {}
        for n in self.names:
            owner = n.rsplit(".", 1)[0]
            if owner not in self.captures:
                self.captures[owner] = _Capture(modules[owner])
        self.sizes = [p.numel() for p in self.params]
        size = sum(self.sizes)
        device, dt = self.params[0].device, self.dtype
        self.device = device
        layers = factor_layers(modules, self.names, self.sizes)
        self.store = None
        if self.factored and self.rule.kind == "sgd" and layers:
            rows, budget = self.capacity * self.epochs, self.factor_budget
            plan, rule = self.plan, self.rule
            planned = (
                None
                if plan is None
                else lambda: [sgd_map(rule, lr, t) for t, lr in enumerate(plan())]
            )
            self.store = FactorStore(layers, size, dt, device, self.capacity, budget, rows, planned)
        self.shares = None
        self.theta0 = self._theta()
        self.init_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        self.state = torch.zeros(0, 2, size, dtype=dt, device=device)  # per example
        self.seg = torch.zeros(0, dtype=torch.long)  # segment of the last touch
        self.pos = torch.zeros(0, dtype=torch.long)  # position in that segment
        self.ids: list[str | None] = []
        self.k = 0  # current segment
        self.cur: list[Map] = []  # this segment's maps
        self.prefix: Map = EYE
        self.prev_suffix: torch.Tensor | None = None  # table of segment k-1's suffixes
        # Eager accounts: the initial weights, float rounding, and the total (= θ).
        self.acc = torch.zeros(3, 2, size, dtype=dt, device=device)
        self.acc[0, 0] = self.theta0
        self.acc[2, 0] = self.theta0
        self.steps = 0
        self.table_peak = 0
        self._grow(self.capacity)
        self._sgd_cache: tuple[tuple[float, float], Map, tuple[float, float]] | None = None

    def _theta(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1).to(self.dtype) for p in self.params])

    def _grow(self, n: int) -> None:
        have = len(self.ids)
        if n <= have or n == 0:
            return
        pad = max(n, 2 * have, 64) - have
        if self.store is None:  # the factored path keeps no per-example state while training
            z = torch.zeros(pad, *self.state.shape[1:], dtype=self.dtype, device=self.device)
            self.state = torch.cat([self.state, z])
        self.seg = torch.cat([self.seg, torch.full((pad,), _NEVER, dtype=torch.long)])
        self.pos = torch.cat([self.pos, torch.zeros(pad, dtype=torch.long)])
        self.ids += [None] * pad

    # -- one step -----------------------------------------------------------------
    def after_step(self, step: Step) -> None:
        t0 = time.perf_counter()
        m, v = self._map()
        idx = step.indices.cpu()
        self._grow(int(idx.max()) + 1)
        for j, i in zip(idx.tolist(), step.ids, strict=True):
            self.ids[j] = i
        if self.store is not None:
            hs = self.store.record(idx, self.captures, m, v)
        else:
            hs = self._step_accounts(idx, m, v)
        self._step_eager(m, v, hs)
        self.steps += 1
        self.seconds += time.perf_counter() - t0

    def _step_accounts(self, idx: torch.Tensor, m: Map, v: tuple[Any, Any]) -> torch.Tensor:
        """The per-step account path: bring the batch's accounts forward and add their
        gradients; returns the batch's summed gradient."""
        v0, v1 = v
        h = torch.cat(
            [
                self.captures[n.rsplit(".", 1)[0]].per_example(n.rsplit(".", 1)[1], self.dtype)
                for n in self.names
            ],
            dim=1,
        )
        for cap in self.captures.values():
            cap.inputs = cap.grad_out = None
        dev_idx = idx.to(self.device)
        st = self.state.index_select(0, dev_idx)
        if self.rule.kind == "sgd":
            # one 2×2 map per row, applied by one batched matmul: few ops per step
            new = torch.bmm(self._row_matrices(idx, m), st)
            new[:, 0].add_(h, alpha=v0)
            new[:, 1].add_(h, alpha=v1)
        else:
            new = self._elementwise(st, self._row_maps(idx, m), h, v0, v1)
        self.state.index_copy_(0, dev_idx, new)
        self.seg[idx] = self.k
        self.pos[idx] = len(self.cur)
        self.cur.append(m)
        self.prefix = _mul(m, self.prefix)
        return h.sum(0)

    def _step_eager(self, m: Map, v: tuple[Any, Any], hs: torch.Tensor) -> None:
        """The eager accounts: initial weights, rounding, and the total (which is θ)."""
        v0, v1 = v
        acc = (
            torch.matmul(self._matrix(m), self.acc)
            if self.rule.kind == "sgd"
            else _apply(m, self.acc)
        )
        acc[2, 0] += v0 * hs
        acc[2, 1] += v1 * hs
        # What torch actually did, less what the accounts say it did, is float rounding.
        theta = self._theta()
        acc[1, 0] += theta - acc[2, 0]
        acc[2, 0] = theta
        self.acc = acc

    def _map(self) -> tuple[Map, tuple[Any, Any]]:
        """This step's map M_t and injection v_t for the ledger's rule."""
        r = self.rule
        group = next(
            g for g in self.optimizer.param_groups if any(q is self.params[0] for q in g["params"])
        )
        lr, wd = float(group["lr"]), r.weight_decay
        if r.kind == "sgd":
            k = 1.0 if self.steps == 0 or r.momentum == 0 else 1.0 - r.dampening
            if self._sgd_cache is not None and self._sgd_cache[0] == (lr, k):
                return self._sgd_cache[1], self._sgd_cache[2]
            m, v = sgd_map(r, lr, self.steps)
            self._sgd_cache = ((lr, k), m, v)
            return m, v
        b1, b2 = r.betas
        d = self._preconditioner(b2, b1, r.eps, lr)
        if r.kind == "adamw":
            return (1 - lr * wd, -d * b1, 0.0, b1), (-d * (1 - b1), 1 - b1)
        return (1 - d * (1 - b1) * wd, -d * b1, (1 - b1) * wd, b1), (-d * (1 - b1), 1 - b1)

    def _preconditioner(self, b2: float, b1: float, eps: float, lr: float) -> torch.Tensor:
        """lr / (bias1 · (√(v / bias2) + eps)) per element, from the optimiser's state."""
        parts = []
        for p in self.params:
            st = self.optimizer.state[p]
            n = float(st["step"])
            v = st["exp_avg_sq"].detach().reshape(-1).to(self.dtype)
            bc1, bc2 = 1 - b1**n, 1 - b2**n
            parts.append(lr / (bc1 * (v.sqrt() / bc2**0.5 + eps)))
        return torch.cat(parts)

    def _matrix(self, m: Map) -> torch.Tensor:
        return torch.tensor(m, dtype=self.dtype, device=self.device).view(2, 2)

    def _row_matrices(self, idx: torch.Tensor, m: Map) -> torch.Tensor:
        """SGD: [B, 2, 2], each row's map from its last touch through this step.

        Accounts last touched in the previous segment take M_t ∘ prefix ∘ suffix[pos]
        (one matmul over that segment's suffix table, then a gather); accounts never
        touched are zero, so any map serves them.
        """
        seg = self.seg[idx].tolist()
        if self.prev_suffix is None:
            rows = self._matrix(m).expand(len(seg), 2, 2).clone()
        else:
            table = self._matrix(_mul(m, self.prefix)) @ self.prev_suffix.view(-1, 2, 2)
            rows = table[self.pos[idx].to(self.device)]
        for r, sg in enumerate(seg):
            if sg == self.k:  # twice in one segment: rare
                one = m
                for step_map in reversed(self.cur[int(self.pos[idx[r]]) + 1 :]):
                    one = _mul(one, step_map)
                rows[r] = self._matrix(one)
        return rows

    @staticmethod
    def _elementwise(st: torch.Tensor, rm: Map, h: torch.Tensor, v0: Any, v1: Any) -> torch.Tensor:
        """Adam(W): per-element maps, written in place into a new [B, 2, |R|]."""
        new = torch.empty_like(st)
        x, y, nx, ny = st[:, 0], st[:, 1], new[:, 0], new[:, 1]
        for out, p, q, v in ((nx, rm[0], rm[1], v0), (ny, rm[2], rm[3], v1)):
            torch.mul(x, p, out=out)
            out.addcmul_(y, torch.as_tensor(q, dtype=st.dtype, device=st.device))
            out.addcmul_(h, torch.as_tensor(v, dtype=st.dtype, device=st.device))
        return new

    def _row_maps(self, idx: torch.Tensor, m: Map) -> Map:
        """Per batch row, the map from its last touch through this step: M_t alone for
        accounts untouched so far (they are zero), M_t ∘ prefix ∘ suffix otherwise."""
        seg, pos = self.seg[idx], self.pos[idx]
        prev = (seg == self.k - 1).nonzero().flatten()
        again = (seg == self.k).nonzero().flatten().tolist()  # twice in one segment: rare
        if not len(prev) and not again:
            return m
        shape = (len(idx), 1 if self.rule.kind == "sgd" else self.state.shape[2])
        out = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in range(4)]
        for part, value in zip(out, m, strict=True):
            part[:] = value
        if len(prev):
            assert self.prev_suffix is not None
            ms = _mul(m, _mul(self.prefix, _rows(self.prev_suffix, pos[prev])))
            rows = prev.to(self.device)
            for part, value in zip(out, ms, strict=True):
                part[rows] = value
        for r in again:
            one = m
            for step_map in reversed(self.cur[int(pos[r]) + 1 :]):
                one = _mul(one, step_map)
            for part, value in zip(out, one, strict=True):
                part[r] = value
        return (out[0], out[1], out[2], out[3])

    # -- segments -----------------------------------------------------------------
    def on_epoch_end(self, epoch: int, mean_loss: float) -> None:
        if self.store is not None and epoch == 0:  # the plan's length is checked with it
            self.store.epoch_steps, self.store.epochs = self.steps, self.epochs
        if self.store is None:
            self._close()

    def _close(self) -> None:
        """End a segment: its suffix products, and examples it never saw brought past it."""
        if not self.cur:
            return
        t0 = time.perf_counter()
        e = len(self.cur)
        suffix = [EYE] * (e + 1)
        for j in range(e - 2, -1, -1):
            suffix[j] = _mul(suffix[j + 1], self.cur[j + 1])
        table = _table(suffix, self.dtype, self.device, self.state.shape[2])
        missed = (self.seg == self.k - 1).nonzero().flatten()
        if len(missed):
            prev, full = self.prev_suffix, self.prefix
            assert prev is not None
            self._flush(missed, lambda pos: _mul(full, _rows(prev, pos)))
            self.seg[missed] = self.k
            self.pos[missed] = e
        self.table_peak = max(self.table_peak, 2 * table.numel() * table.element_size())
        self.prev_suffix = table
        self.k += 1
        self.cur = []
        self.prefix = EYE
        self.seconds += time.perf_counter() - t0

    def _flush(self, rows: torch.Tensor, maps: Any) -> None:
        for start in range(0, len(rows), _CHUNK):
            part = rows[start : start + _CHUNK]
            dev = part.to(self.device)
            self.state[dev] = _apply(maps(self.pos[part]), self.state[dev])

    def on_train_end(self, model: nn.Module) -> None:
        t0 = time.perf_counter()
        if self.store is not None:
            for cap in self.captures.values():
                cap.handle.remove()
            self.shares = self.store.fold(final=True)
            self.seconds += time.perf_counter() - t0
            return
        self._close()
        t0 = time.perf_counter()
        last = (self.seg == self.k - 1).nonzero().flatten()
        if len(last):
            prev = self.prev_suffix
            assert prev is not None
            self._flush(last, lambda pos: _rows(prev, pos))
        for cap in self.captures.values():
            cap.handle.remove()
        self.seconds += time.perf_counter() - t0

    # -- results --------------------------------------------------------------------
    def contributions(self) -> tuple[list[str], torch.Tensor]:
        """(ids, [examples, |R|] accounts) of every example seen, in dataset order."""
        seen = [j for j, i in enumerate(self.ids) if i is not None]
        shares = self.state[:, 0] if self.shares is None else self.shares
        return [self.ids[j] for j in seen], shares[seen]  # type: ignore[misc]

    @property
    def init_share(self) -> torch.Tensor:
        return self.acc[0, 0] - self.theta0

    @property
    def rounding(self) -> torch.Tensor:
        return self.acc[1, 0]

    def memory_bytes(self) -> int:
        """Bytes of the per-example buffers: the accounts (share and momentum,
        2·N·|R|·itemsize) on the per-step path; on the factored path the peak of factor
        store, accounts and the fold's temporaries together."""
        if self.store is not None:
            return self.store.peak
        n = sum(1 for i in self.ids if i is not None)
        return 2 * n * self.state.shape[2] * self.state.element_size()

    def save_artifact(self, folder: Path) -> None:
        import numpy as np

        ids, contrib = self.contributions()
        arr = contrib.cpu().numpy()
        np.save(folder / "contributions.npy", arr)
        vectors = {
            "theta_init": self.theta0,
            "theta_final": self.acc[2, 0],
            "init_share": self.init_share,
            "rounding": self.rounding,
        }
        arrays = {k: v.cpu().numpy() for k, v in vectors.items()}
        np.savez(folder / "vectors.npz", **arrays)  # type: ignore[arg-type]
        torch.save(self.init_state, folder / "init.pt")
        offsets, at = [], 0
        for n, p in zip(self.names, self.params, strict=True):
            offsets.append({"name": n, "shape": list(p.shape), "offset": at})
            at += p.numel()
        meta = {
            "version": LEDGER_VERSION,
            "layers": list(self.layers),
            "params": offsets,
            "output": self.output,
            "dtype": self.dtype_name,
            "rule": self.rule.to_dict(),
            "config": self.config_digest,
            "ids": ids,
            "steps": self.steps,
            "memory_bytes": self.memory_bytes(),
            "table_bytes": self.table_peak,  # segment products: scalars for SGD, |R| for Adam
            "seconds": round(self.seconds, 4),
            "contributions_sha256": hashlib.sha256(arr.tobytes()).hexdigest(),
        }
        (folder / "ledger.json").write_text(json.dumps(meta))
