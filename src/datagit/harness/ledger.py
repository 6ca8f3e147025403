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

Accounts are lazy: an example's account is brought forward only when it is in
a batch, by the product of the maps since it was last touched. Products are
never inverted (that would amplify rounding by μ^-t): a segment (an epoch)
keeps its running prefix product and, once closed, its suffix products, and
since every example is seen once per epoch its last touch is in the current
segment or the one before. So the cost of a step does not grow with N.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from datagit.errors import DatagitError
from datagit.harness.train import Hooks, Step

LEDGER_VERSION = 1
DTYPES = ("float64", "float32")
OUTPUT = "output"  # alias of the last Linear/Conv2d layer: ``output.weight``, ``output.bias``
ARTIFACT_PREFIX = "ledger-"
_CHUNK = 4096  # examples brought forward at once when flushing
_NEVER = -(2**40)  # segment of an account never touched (it is zero: nothing to bring forward)


class LedgerError(DatagitError):
    """The ledger cannot account for this model, parameter or optimiser."""


def artifact_key(layers: Sequence[str], dtype: str) -> str:
    """``ledger-<digest>`` of what the ledger records; the run key names everything else."""
    blob = json.dumps({"layers": sorted(layers), "dtype": dtype, "v": LEDGER_VERSION})
    return ARTIFACT_PREFIX + hashlib.sha256(blob.encode()).hexdigest()[:16]


def output_layer(model: nn.Module) -> str:
    """The name of the last Linear or Conv2d module: the layer that makes the logits."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear | nn.Conv2d):
            last = name
    if last is None:
        raise LedgerError("the model has no Linear or Conv2d layer for the ledger to record")
    return last


def resolve_layers(model: nn.Module, layers: Sequence[str]) -> list[str]:
    """Parameter names for ``layers`` (none: the output layer's weight and bias).

    A layer may be a module name (all its parameters), a parameter name, or
    the ``output`` alias for either.
    """
    out_name = output_layer(model)
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    wanted = list(layers) or [OUTPUT]
    names: list[str] = []
    for layer in wanted:
        real = out_name + layer[len(OUTPUT) :] if layer.split(".")[0] == OUTPUT else layer
        if real in params:
            found = [real]
        elif real in modules and real != "":
            found = [f"{real}.{p}" for p, _ in modules[real].named_parameters(recurse=False)]
        else:
            found = []
        if not found:
            raise LedgerError(
                f"ledger layer {layer!r} names no parameter of the model",
                hint=f"parameters: {', '.join(params)} (or `output` for the last layer)",
            )
        names += [n for n in found if n not in names]
    for name in names:
        module = modules[name.rsplit(".", 1)[0]] if "." in name else model
        if not isinstance(module, nn.Linear | nn.Conv2d) or (
            isinstance(module, nn.Conv2d) and module.groups != 1
        ):
            raise LedgerError(
                f"ledger parameter {name!r} belongs to {type(module).__name__}, which the "
                "ledger cannot split per example",
                hint="record Linear or Conv2d (groups = 1) layers",
            )
    return names


@dataclass(frozen=True)
class Rule:
    """The optimiser's update rule as the ledger applies it."""

    kind: str  # sgd | adam | adamw
    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def rule_of(opt: torch.optim.Optimizer, params: Sequence[nn.Parameter]) -> Rule:
    """The decomposable rule of ``opt`` for ``params``; anything else is refused by name."""
    kind = type(opt).__name__
    groups = [g for g in opt.param_groups if any(p is q for p in params for q in g["params"])]
    if len(groups) != 1:
        raise LedgerError("the ledger's parameters must share one optimiser parameter group")
    g = groups[0]
    refuse = []
    if g.get("maximize"):
        refuse.append("maximize")
    if g.get("amsgrad"):
        refuse.append("amsgrad")
    if kind not in ("SGD", "Adam", "AdamW") or refuse:
        what = f"{kind} with {', '.join(refuse)}" if refuse else kind
        raise LedgerError(
            f"the ledger cannot decompose optimiser {what}",
            hint="use [harness] optimizer = sgd, adam or adamw (without amsgrad/maximize)",
        )
    if kind == "SGD":
        return Rule("sgd", g["momentum"], g["dampening"], g["nesterov"], g["weight_decay"])
    b1, b2 = g["betas"]
    return Rule(kind.lower(), 0.0, 0.0, False, g["weight_decay"], (b1, b2), g["eps"])


class _Capture:
    """Inputs and output gradients of one layer for the current batch."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.inputs: torch.Tensor | None = None
        self.grad_out: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._forward)

    def _forward(self, module: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if not (torch.is_grad_enabled() and module.training and out.requires_grad):
            return
        self.inputs = args[0].detach()
        out.register_hook(self._backward)

    def _backward(self, grad: torch.Tensor) -> None:
        self.grad_out = grad.detach()

    def per_example(self, param: str, dtype: torch.dtype) -> torch.Tensor:
        """[B, numel] gradients of ``param`` ("weight" or "bias") for each example."""
        if self.inputs is None or self.grad_out is None:
            raise LedgerError("the ledger saw no forward/backward pass through a recorded layer")
        a, g = self.inputs.to(dtype), self.grad_out.to(dtype)
        m = self.module
        if isinstance(m, nn.Conv2d):
            g = g.flatten(2)  # [B, O, L]
            if param == "bias":
                return g.sum(2)
            if isinstance(m.padding, str):
                raise LedgerError(f"the ledger cannot split Conv2d(padding={m.padding!r})")
            cols = nn.functional.unfold(
                a, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride
            )
            return torch.einsum("bol,bkl->bok", g, cols).flatten(1)
        if param == "bias":
            return g.reshape(g.shape[0], -1, g.shape[-1]).sum(1)
        a = a.reshape(a.shape[0], -1, a.shape[-1])
        g = g.reshape(g.shape[0], -1, g.shape[-1])
        return torch.einsum("bno,bni->boi", g, a).flatten(1)


def _mul(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """2×2 products per element, stacked as [..., 4, *S]: first ``q``, then ``p``."""
    a, b, c, d = _parts(p)
    e, f, g, h = _parts(q)
    return torch.stack((a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h), dim=-2)


def _parts(m: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(m.select(-2, k) for k in range(4))


class Ledger(Hooks):
    """Records per-example accounts of the chosen parameters while the harness trains."""

    def __init__(
        self, layers: Sequence[str] = (), dtype: str = "float64", config_digest: str = ""
    ) -> None:
        if dtype not in DTYPES:
            raise LedgerError(f"ledger dtype {dtype!r} is not supported", hint="float64 or float32")
        self.layers = tuple(layers)
        self.dtype_name = dtype
        self.dtype = getattr(torch, dtype)
        self.config_digest = config_digest
        self.key = artifact_key(self.layers, dtype)
        self.artifact = self.key
        self.seconds = 0.0

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
        self.theta0 = self._theta()
        self.init_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        # S: the shape of one step's per-element coefficients: one value for SGD,
        # one per element for Adam(W), whose preconditioner differs per element.
        self.s = 1 if self.rule.kind == "sgd" else size
        self.eye = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=dt, device=device)[:, None].expand(
            4, self.s
        )
        self.c = torch.zeros(0, size, dtype=dt, device=device)
        self.b = torch.zeros(0, size, dtype=dt, device=device)
        self.seg = torch.zeros(0, dtype=torch.long)  # segment of the last touch
        self.pos = torch.zeros(0, dtype=torch.long)  # position in that segment
        self.ids: list[str | None] = []
        self.k = 0  # current segment
        self.cur: list[torch.Tensor] = []  # this segment's maps [4, S]
        self.prefix = self.eye.clone()
        self.prev_suffix: torch.Tensor | None = None  # [E+1, 4, S] of segment k-1
        self.init_acc = (self.theta0.clone(), torch.zeros_like(self.theta0))
        self.round_acc = (torch.zeros_like(self.theta0), torch.zeros_like(self.theta0))
        self.total = (self.theta0.clone(), torch.zeros_like(self.theta0))
        self.steps = 0
        self.table_peak = 0

    def _theta(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1).to(self.dtype) for p in self.params])

    def _grow(self, n: int) -> None:
        have = self.c.shape[0]
        if n <= have:
            return
        new = max(n, 2 * have, 64)
        pad = new - have
        z = torch.zeros(pad, self.c.shape[1], dtype=self.dtype, device=self.device)
        self.c, self.b = torch.cat([self.c, z]), torch.cat([self.b, z.clone()])
        self.seg = torch.cat([self.seg, torch.full((pad,), _NEVER, dtype=torch.long)])
        self.pos = torch.cat([self.pos, torch.zeros(pad, dtype=torch.long)])
        self.ids += [None] * pad

    # -- one step -----------------------------------------------------------------
    def after_step(self, step: Step) -> None:
        t0 = time.perf_counter()
        h = torch.cat(
            [
                self.captures[n.rsplit(".", 1)[0]].per_example(n.rsplit(".", 1)[1], self.dtype)
                for n in self.names
            ],
            dim=1,
        )
        for cap in self.captures.values():
            cap.inputs = cap.grad_out = None
        m, v = self._map(step)
        idx = step.indices.cpu()
        self._grow(int(idx.max()) + 1)
        for j, i in zip(idx.tolist(), step.ids, strict=True):
            self.ids[j] = i
        c, b = self._forward(idx)
        c, b = _apply(m, c, b)
        c += v[0] * h
        b += v[1] * h
        dev_idx = idx.to(self.device)
        self.c[dev_idx], self.b[dev_idx] = c, b
        self.seg[idx] = self.k
        self.pos[idx] = len(self.cur)
        self.cur.append(m)
        self.prefix = _mul(m, self.prefix)
        self.init_acc = _apply(m, *self.init_acc)
        self.round_acc = _apply(m, *self.round_acc)
        tc, tb = _apply(m, *self.total)
        hs = h.sum(0)
        tc, tb = tc + v[0] * hs, tb + v[1] * hs
        # What torch actually did, less what the accounts say it did, is float rounding.
        theta = self._theta()
        rc, rb = self.round_acc
        self.round_acc = (rc + (theta - tc), rb)
        self.total = (theta, tb)
        self.steps += 1
        self.seconds += time.perf_counter() - t0

    def _map(self, step: Step) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """This step's M_t [4, S] and v_t (two [S] tensors) for the ledger's rule."""
        r, dt, dev = self.rule, self.dtype, self.device
        group = next(
            g for g in self.optimizer.param_groups if any(q is self.params[0] for q in g["params"])
        )
        lr, wd = float(group["lr"]), r.weight_decay

        def full(x: float | torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(x, dtype=dt, device=dev).expand(self.s).clone()

        if r.kind == "sgd":
            mu = r.momentum
            k = 1.0 if self.steps == 0 or mu == 0 else 1.0 - r.dampening
            if r.nesterov:
                a = 1 + mu * k
                parts = (1 - lr * wd * a, -lr * mu * mu, k * wd, mu)
                v = (full(-lr * a), full(k))
            else:
                parts = (1 - lr * k * wd, -lr * mu, k * wd, mu)
                v = (full(-lr * k), full(k))
            return torch.stack([full(x) for x in parts]), v
        b1, b2 = r.betas
        d = self._preconditioner(b2, b1, r.eps, lr)
        one = torch.ones_like(d)
        if r.kind == "adamw":
            m = torch.stack((one * (1 - lr * wd), -d * b1, one * 0.0, one * b1))
        else:
            m = torch.stack((1 - d * (1 - b1) * wd, -d * b1, one * (1 - b1) * wd, one * b1))
        return m, (-d * (1 - b1), one * (1 - b1))

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

    def _forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's accounts brought forward to just before this step."""
        dev_idx = idx.to(self.device)
        c, b = self.c[dev_idx].clone(), self.b[dev_idx].clone()
        seg, pos = self.seg[idx], self.pos[idx]
        prev = (seg == self.k - 1).nonzero().flatten()
        if len(prev):
            assert self.prev_suffix is not None
            ms = _mul(self.prefix, self.prev_suffix[pos[prev]])
            rows = prev.to(self.device)
            c[rows], b[rows] = _apply(ms, c[rows], b[rows])
        for r in (seg == self.k).nonzero().flatten().tolist():  # twice in one segment: rare
            ms = self.eye
            for m in self.cur[int(pos[r]) + 1 :]:
                ms = _mul(m, ms)
            c[r], b[r] = _apply(ms, c[r], b[r])
        return c, b

    # -- segments -----------------------------------------------------------------
    def on_epoch_end(self, epoch: int, mean_loss: float) -> None:
        self._close()

    def _close(self) -> None:
        """End a segment: its suffix products, and examples it never saw brought past it."""
        if not self.cur:
            return
        t0 = time.perf_counter()
        e = len(self.cur)
        suffix = [self.eye] * (e + 1)
        for j in range(e - 2, -1, -1):
            suffix[j] = _mul(suffix[j + 1], self.cur[j + 1])
        suffix_t = torch.stack(suffix)
        missed = (self.seg == self.k - 1).nonzero().flatten()
        if len(missed):
            assert self.prev_suffix is not None
            self._flush(missed, lambda pos: _mul(self.prefix, self.prev_suffix[pos]))  # type: ignore[index]
            self.seg[missed] = self.k
            self.pos[missed] = e
        self.table_peak = max(self.table_peak, 2 * suffix_t.numel() * suffix_t.element_size())
        self.prev_suffix = suffix_t
        self.k += 1
        self.cur = []
        self.prefix = self.eye.clone()
        self.seconds += time.perf_counter() - t0

    def _flush(self, rows: torch.Tensor, maps: Any) -> None:
        for start in range(0, len(rows), _CHUNK):
            part = rows[start : start + _CHUNK]
            dev = part.to(self.device)
            self.c[dev], self.b[dev] = _apply(maps(self.pos[part]), self.c[dev], self.b[dev])

    def on_train_end(self, model: nn.Module) -> None:
        self._close()
        t0 = time.perf_counter()
        last = (self.seg == self.k - 1).nonzero().flatten()
        if len(last):
            assert self.prev_suffix is not None
            self._flush(last, lambda pos: self.prev_suffix[pos])  # type: ignore[index]
        for cap in self.captures.values():
            cap.handle.remove()
        self.seconds += time.perf_counter() - t0

    # -- results --------------------------------------------------------------------
    def contributions(self) -> tuple[list[str], torch.Tensor]:
        """(ids, [examples, |R|] accounts) of every example seen, in dataset order."""
        seen = [j for j, i in enumerate(self.ids) if i is not None]
        return [self.ids[j] for j in seen], self.c[seen]  # type: ignore[misc]

    @property
    def init_share(self) -> torch.Tensor:
        return self.init_acc[0] - self.theta0

    @property
    def rounding(self) -> torch.Tensor:
        return self.round_acc[0]

    def memory_bytes(self) -> int:
        """Bytes of the per-example accounts (share and momentum): 2·N·|R|·itemsize."""
        n = sum(1 for i in self.ids if i is not None)
        return 2 * n * self.c.shape[1] * self.c.element_size()

    def save_artifact(self, folder: Path) -> None:
        import numpy as np

        ids, contrib = self.contributions()
        arr = contrib.cpu().numpy()
        np.save(folder / "contributions.npy", arr)
        vectors = {
            "theta_init": self.theta0,
            "theta_final": self.total[0],
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


def _apply(m: torch.Tensor, c: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, b) mapped by per-element 2×2 ``m`` ([4, S] or [n, 4, S], S broadcasting over |R|)."""
    a, bb, cc, d = _parts(m)
    return a * c + bb * b, cc * c + d * b
