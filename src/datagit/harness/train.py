"""Train a model on one dataset view and evaluate it on another, deterministically.

`fit` is the whole training loop in one function. Code that needs to watch
training (attribution, per-example loss tracking) attaches through `Hooks`
rather than by editing the loop: ``before_step`` sees the gradients of a batch
before the optimiser moves the weights, ``after_step`` sees the weights and the
optimiser state after it did.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from datagit.errors import DatagitError, InvalidInputError
from datagit.harness import metrics as metrics_mod
from datagit.harness.config import AUTO, HarnessConfig, load_entry_point
from datagit.harness.data import (
    RowToTensor,
    StoreDataset,
    column_stats,
    freeze_inherited,
    stack,
    to_torch,
)
from datagit.harness.models import build_model, optimizer, schedule
from datagit.progress import Event, Progress


class TrainingError(DatagitError):
    """Training cannot go on: the loss is not finite, or the model fails on a batch."""


@dataclass
class Step:
    """One optimiser step, as hooks see it.

    ``ids`` name the batch's examples (train dataset ids) in batch order;
    ``losses`` are their per-example losses (detached), ``loss`` their mean,
    the value that was back-propagated.
    """

    epoch: int
    step: int  # global, from 0
    batch: int  # within the epoch, from 0
    ids: list[str]
    indices: torch.Tensor  # positions in the train dataset (id order)
    inputs: torch.Tensor
    targets: torch.Tensor
    losses: torch.Tensor
    loss: float
    lr: float
    model: nn.Module
    optimizer: torch.optim.Optimizer


class Hooks:
    """Step callbacks; subclass and override what you need (all default to no-ops).

    A hook that keeps something worth caching sets ``artifact`` to a key naming
    what produced it (e.g. ``ledger-<digest of its settings>``) and writes it in
    `save_artifact`; the run cache then answers later requests for that key
    without training, and the plain run is never invalidated by it.
    """

    artifact: str | None = None

    def save_artifact(self, folder: Path) -> None:
        """Write this hook's artifact into ``folder`` (called once, after training)."""

    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Once, after the model and optimiser exist and before the first batch."""

    def before_step(self, step: Step) -> None:
        """After backward (``p.grad`` holds the batch gradient), before ``optimizer.step()``."""

    def after_step(self, step: Step) -> None:
        """After ``optimizer.step()``: new weights and optimiser state (e.g. momentum)."""

    def on_epoch_end(self, epoch: int, mean_loss: float) -> None:
        """After the last batch of each epoch, with the epoch's mean training loss."""

    def on_train_end(self, model: nn.Module) -> None:
        """Once, after the last step and before evaluation."""


# Training reports `datagit.progress` events: one phase per epoch ("epoch 3/10"),
# counting batches, with the epoch's mean loss so far as the note.
ProgressFn = Progress


@dataclass
class TrainResult:
    """A trained model's weights, its metrics and one output row per eval example."""

    classes: list[Any]
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    outputs: list[dict[str, Any]]
    probs: torch.Tensor  # [eval examples, classes], float32
    device: str
    input_shape: tuple[int, ...]
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    # a table's feature standardisation as this run computed it (None: images, own transform)
    normalisation: dict[str, Any] | None = None

    @property
    def weights_sha(self) -> str:
        return weights_digest(self.state_dict)


def run(
    cfg: HarnessConfig,
    train_view: Any,
    eval_view: Any,
    *,
    search: Path | None = None,
    hooks: Sequence[Hooks] = (),
    progress: ProgressFn | None = None,
) -> TrainResult:
    """Train on ``train_view`` and evaluate on ``eval_view`` (DatasetView-like objects)."""
    start = time.perf_counter()
    device = resolve_device(cfg.device)
    with deterministic(cfg.seed, device):
        train_ds, eval_ds = datasets(cfg, train_view, eval_view, search)
        model, losses, shape = fit(cfg, train_ds, device, search, hooks, progress)
        probs, per_example = predict(model, eval_ds, device, cfg.num_workers)
    targets = torch.tensor(eval_ds.targets, dtype=torch.long)
    unseen = sorted(
        {r.label for r, t in zip(eval_ds.records, eval_ds.targets, strict=True) if t == -1},
        key=str,
    )
    result_metrics = metrics_mod.compute(
        probs, per_example, targets, train_ds.classes, cfg.metrics, unseen
    )
    pred = probs.argmax(dim=1).tolist()
    outputs = [
        {
            "id": r.id,
            "label": r.label,
            "pred": train_ds.classes[p],
            "confidence": float(probs[i, p]),
            "loss": None if t < 0 else float(per_example[i]),
        }
        for i, (r, p, t) in enumerate(zip(eval_ds.records, pred, eval_ds.targets, strict=True))
    ]
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return TrainResult(
        classes=train_ds.classes,
        state_dict=state,
        metrics=result_metrics,
        outputs=outputs,
        probs=probs,
        device=str(device),
        input_shape=shape,
        epoch_losses=losses,
        seconds=time.perf_counter() - start,
        normalisation=train_ds.normalisation,
    )


def datasets(
    cfg: HarnessConfig, train_view: Any, eval_view: Any, search: Path | None
) -> tuple[StoreDataset, StoreDataset]:
    """The train and eval torch datasets; eval labels map through train's classes."""
    for view, role in ((train_view, "train"), (eval_view, "eval")):
        if len(view) == 0:
            raise InvalidInputError(
                f"{role} dataset {view.name!r} at {getattr(view, 'rev', '?')} has no examples",
                hint="add examples and commit them, or point [harness] at another dataset",
            )
    transform = load_entry_point(cfg.transform, search) if cfg.transform else None
    fixed_mean = fixed_norm(cfg.mean, 0.0)
    fixed_std = fixed_norm(cfg.std, 1.0)
    opts: dict[str, Any] = {
        "image_mode": cfg.image_mode,
        "image_size": cfg.image_size,
        "return_index": True,
    }
    train = to_torch(
        train_view,
        transform,
        features=cfg.features,
        mean=fixed_mean,
        std=fixed_std,
        skip_unlabelled=True,
        **opts,
    )
    if len(train) == 0:
        raise InvalidInputError(
            f"train dataset {train_view.name!r} at {getattr(train_view, 'rev', '?')} has no "
            "labelled examples",
            hint="label some examples (`datagit relabel`, class folders, label cells) first",
        )
    mean, std = fixed_mean, fixed_std
    if (
        transform is None
        and isinstance(train.transform, RowToTensor)
        and AUTO in (cfg.mean, cfg.std)
    ):
        # Standardise with the training rows only, so eval data never leaks into the inputs.
        raw_mean, raw_std = column_stats(train)
        mean = raw_mean if cfg.mean == AUTO else fixed_mean
        std = raw_std if cfg.std == AUTO else fixed_std
        train.transform = replace(train.transform, mean=mean, std=std)
    ev = to_torch(
        eval_view,
        transform,
        classes=train.classes,
        unseen=cfg.unseen_labels,
        features=train.features,
        mean=mean,
        std=std,
        **opts,
    )
    train.normalisation = ev.normalisation = (
        {"features": list(train.features or ()), "mean": list(mean), "std": list(std)}
        if isinstance(train.transform, RowToTensor)
        else None
    )
    return train, ev


def fixed_norm(value: tuple[float, ...] | str, identity: float) -> tuple[float, ...]:
    """A configured mean or std, with "auto" standing for no change (images; or until the
    training rows have been measured)."""
    return (identity,) if isinstance(value, str) else value


def fit(
    cfg: HarnessConfig,
    data: StoreDataset,
    device: torch.device,
    search: Path | None,
    hooks: Sequence[Hooks],
    progress: ProgressFn | None,
) -> tuple[nn.Module, list[float], tuple[int, ...]]:
    """The training loop. Data order comes from a generator seeded by ``cfg.seed``."""
    tensors = _stack(data, cfg.num_workers) if cfg.preload else None
    shape = tuple(tensors[0].shape[1:]) if tensors else tuple(data[0][0].shape)
    model = build_model(cfg, shape, len(data.classes), search).to(device)
    opt = optimizer(cfg, list(model.parameters()))
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    sched = schedule(cfg, opt, steps_per_epoch)
    order_rng = torch.Generator().manual_seed(cfg.seed)
    for h in hooks:
        h.on_train_start(model, opt)
    model.train()
    step, epoch_losses = 0, []
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(data), generator=order_rng)
        total, seen = 0.0, 0
        for b, (idx, x, y) in enumerate(_batches(data, tensors, order, cfg)):
            x, y = x.to(device), y.to(device)
            opt.zero_grad(set_to_none=True)
            losses = F.cross_entropy(
                model(x), y, reduction="none", label_smoothing=cfg.label_smoothing
            )
            loss = losses.mean()
            value = loss.item()
            ids = [data.ids[i] for i in idx.tolist()]
            if not math.isfinite(value):
                bad = [ids[j] for j in (~torch.isfinite(losses)).nonzero().flatten().tolist()]
                raise TrainingError(
                    f"loss is {value} at step {step} (epoch {epoch + 1}, batch {b}); "
                    f"examples with a non-finite loss: {', '.join(bad[:5])}"
                    + (f" and {len(bad) - 5} more" if len(bad) > 5 else ""),
                    hint="check those examples' inputs, normalise the features, or lower lr",
                )
            loss.backward()
            info = Step(
                epoch, step, b, ids, idx, x, y, losses.detach(), value,
                opt.param_groups[0]["lr"], model, opt,
            )  # fmt: skip
            for h in hooks:
                h.before_step(info)
            opt.step()
            for h in hooks:
                h.after_step(info)
            sched.step()
            step += 1
            total += value * len(idx)
            seen += len(idx)
            if progress:
                progress(
                    Event(
                        f"epoch {epoch + 1}/{cfg.epochs}", b + 1, steps_per_epoch, "batches",
                        f"loss {total / seen:.4f}", finished=b + 1 == steps_per_epoch,
                    )
                )  # fmt: skip
        epoch_losses.append(total / len(data))
        for h in hooks:
            h.on_epoch_end(epoch, epoch_losses[-1])
    for h in hooks:
        h.on_train_end(model)
    return model, epoch_losses, shape


def _batches(
    data: StoreDataset,
    tensors: tuple[torch.Tensor, torch.Tensor] | None,
    order: torch.Tensor,
    cfg: HarnessConfig,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(positions, inputs, targets) per batch, from memory or decoded on the fly."""
    chunks = list(order.split(cfg.batch_size))
    if tensors is not None:
        for idx in chunks:
            yield idx, tensors[0][idx], tensors[1][idx]
        return
    loader = DataLoader(
        data,
        batch_sampler=[c.tolist() for c in chunks],
        num_workers=cfg.num_workers,
        worker_init_fn=freeze_inherited,
    )
    for x, y, idx in _named(loader, data):
        yield idx, x, y


def _stack(data: StoreDataset, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        return stack(data, workers)
    except RuntimeError as exc:
        raise _shape_error(data, exc) from None


def _named(loader: DataLoader, data: StoreDataset) -> Iterator[Any]:
    try:
        yield from loader
    except RuntimeError as exc:
        raise _shape_error(data, exc) from None


def _shape_error(data: StoreDataset, exc: RuntimeError) -> Exception:
    if "equal size" in str(exc) or "same size" in str(exc):
        return InvalidInputError(
            f"dataset {data.name!r}: examples have different shapes ({exc})",
            hint="set [harness] image_size = [H, W] to resize every image",
        )
    return exc


def predict(
    model: nn.Module, data: StoreDataset, device: torch.device, workers: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities and per-example loss (NaN for unseen labels), in id order."""
    model.eval()
    probs, losses = [], []
    loader = DataLoader(
        data, batch_size=256, shuffle=False, num_workers=workers, worker_init_fn=freeze_inherited
    )
    with torch.no_grad():
        for x, y, _ in _named(loader, data):
            logits = model(x.to(device)).float().cpu()
            loss = F.cross_entropy(logits, y.clamp(min=0), reduction="none")
            losses.append(torch.where(y < 0, torch.full_like(loss, math.nan), loss))
            probs.append(torch.softmax(logits, dim=1))
    return torch.cat(probs), torch.cat(losses)


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when available, else CPU. The same code runs on either."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            "[harness] device = 'cuda' but no CUDA device is available",
            hint='use device = "auto" to fall back to the CPU',
        )
    return torch.device(name)


@contextlib.contextmanager
def deterministic(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch and require deterministic kernels, restoring the caller's state after."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    previous = torch.are_deterministic_algorithms_enabled()
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous)


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over names, dtypes, shapes and raw bytes: equal iff bit-identical."""
    h = hashlib.sha256()
    for name, t in state.items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
