"""Built-in models (logreg, mlp, cnn) and the user's ``module:function`` models.

Layers are chosen so that training is deterministic on CUDA as well as CPU
under ``torch.use_deterministic_algorithms(True)``: no adaptive pooling or
interpolation, whose CUDA backward passes have no deterministic kernel.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from datagit.errors import InvalidInputError
from datagit.harness.config import HarnessConfig, load_entry_point


def build_model(
    cfg: HarnessConfig, input_shape: tuple[int, ...], num_classes: int, search: Path | None
) -> nn.Module:
    """The configured model for inputs of ``input_shape`` (one example, no batch axis)."""
    if cfg.model == "logreg":
        return nn.Sequential(nn.Flatten(), nn.Linear(_numel(input_shape), num_classes))
    if cfg.model == "mlp":
        return mlp(_numel(input_shape), cfg.hidden, num_classes)
    if cfg.model == "cnn":
        return cnn(input_shape, cfg.channels, num_classes)
    fn = load_entry_point(cfg.model, search)
    model = fn(num_classes=num_classes, input_shape=input_shape)
    if not isinstance(model, nn.Module):
        raise InvalidInputError(
            f"entry point {cfg.model!r} returned {type(model).__name__}, not a torch.nn.Module",
            hint="return the model instance, e.g. `return nn.Sequential(...)`",
        )
    return model


def mlp(inputs: int, hidden: tuple[int, ...], num_classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def cnn(input_shape: tuple[int, ...], channels: tuple[int, ...], num_classes: int) -> nn.Module:
    """3x3 conv + ReLU blocks, each halving the image with a 2x2 max-pool while it is ≥ 2."""
    if len(input_shape) != 3:
        raise InvalidInputError(
            f"model cnn needs image inputs (C, H, W), got shape {tuple(input_shape)}",
            hint='use model = "mlp" or "logreg" for tables',
        )
    c, h, w = input_shape
    layers: list[nn.Module] = []
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
        if min(h, w) >= 2:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c = out
    layers += [nn.Flatten(), nn.Linear(c * h * w, num_classes)]
    return nn.Sequential(*layers)


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def optimizer(cfg: HarnessConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            dampening=cfg.dampening,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def schedule(
    cfg: HarnessConfig, opt: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A per-step schedule, so cosine decays smoothly within an epoch too."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(
            opt, step_size=cfg.step_size * steps_per_epoch, gamma=cfg.gamma
        )
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
