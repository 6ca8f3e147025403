"""What the ledger records and how: the recorded layers, the optimiser's rule, and the
hooks that capture each batch's layer inputs and output gradients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from datagit.errors import DatagitError

OUTPUT = "output"  # alias of the last Linear/Conv2d layer: ``output.weight``, ``output.bias``


class LedgerError(DatagitError):
    """The ledger cannot account for this model, parameter or optimiser."""


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


SgdMap = tuple[tuple[float, float, float, float], tuple[float, float]]


def sgd_map(rule: Rule, lr: float, step: int) -> SgdMap:
    """SGD's step map M_t (on an account's share and momentum, the same for every weight)
    and injection v_t, for learning rate ``lr`` at global step ``step`` (the first step
    takes no dampening)."""
    mu, wd = rule.momentum, rule.weight_decay
    k = 1.0 if step == 0 or mu == 0 else 1.0 - rule.dampening
    if rule.nesterov:
        a = 1 + mu * k
        return (1 - lr * wd * a, -lr * mu * mu, k * wd, mu), (-lr * a, k)
    return (1 - lr * k * wd, -lr * mu, k * wd, mu), (-lr * k, k)


def planned_lrs(cfg: Any, examples: int) -> list[float]:
    """The learning rate of every step of a harness run on ``examples`` examples, by
    stepping the harness's own schedule on a throwaway parameter: what `fit` will use,
    float for float. The factor store folds with it (see `ledger_factors`) and checks
    each step against it."""
    import math
    import warnings

    from datagit.harness.models import optimizer, schedule

    per_epoch = math.ceil(examples / cfg.batch_size)
    p = nn.Parameter(torch.zeros(1))
    opt = optimizer(cfg, [p])
    sched = schedule(cfg, opt, per_epoch)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stepping a schedule without optimiser steps
        for _ in range(cfg.epochs * per_epoch):
            lrs.append(float(opt.param_groups[0]["lr"]))
            sched.step()
    return lrs
