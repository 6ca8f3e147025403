"""The ledger adds up: init + Σ c_i + rounding = θ_final − θ_init, for every update rule."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from harness_helpers import make_repo
from torch import nn

from datagit.api import attribution, harness
from datagit.harness.ledger import Ledger, LedgerError
from datagit.harness.region import LedgerData
from datagit.harness.train import Step

MLP = """
[harness]
train = "train"
eval = "eval"
model = "mlp"
hidden = [16]
image_mode = "L"
lr = 0.05
epochs = 3
batch_size = 32
"""


def completeness(data: LedgerData) -> tuple[float, float]:
    """max|init + Σ c_i + rounding − Δθ| / max|Δθ|, and the rounding's relative size."""
    delta = data.theta_final - data.theta_init
    total = np.asarray(data.contrib, dtype=np.float64).sum(0) + data.init_share + data.rounding
    scale = float(np.abs(delta).max())
    return float(np.abs(total - delta).max()) / scale, float(np.abs(data.rounding).max()) / scale


@pytest.mark.parametrize(
    ("extra", "dtype", "bound"),
    [
        ('lr = 0.05\noptimizer = "sgd"\nmomentum = 0.0', "float64", 1e-12),
        ('lr = 0.05\noptimizer = "sgd"\nmomentum = 0.9\nweight_decay = 0.01', "float64", 1e-12),
        ('lr = 0.05\noptimizer = "sgd"\nmomentum = 0.9\nweight_decay = 0.01', "float32", 1e-4),
        ('optimizer = "adamw"\nlr = 0.01\nweight_decay = 0.01', "float64", 1e-12),
        ('optimizer = "adamw"\nlr = 0.01\nweight_decay = 0.01', "float32", 1e-4),
    ],
)
def test_harness_ledger_is_complete(tmp_path: Path, extra: str, dtype: str, bound: float) -> None:
    repo = make_repo(tmp_path, MLP.replace("lr = 0.05", extra), n=200)
    cfg = harness.load_config(repo, ledger_dtype=dtype)
    hook = attribution.ledger_hook(cfg, ())
    assert hook is not None
    run = harness.train(repo, config=cfg, hooks=[hook])
    folder = run.artifact(hook.key)
    assert folder is not None
    data = LedgerData(folder)
    err, rounding = completeness(data)
    assert err <= bound
    assert rounding < 1e-4  # the per-example parts carry the update; rounding is only rounding
    assert data.contrib.dtype == np.dtype(dtype) and len(data.ids) == run.meta["train"]["examples"]
    assert data.meta["params"][0]["name"] == "3.weight" and data.meta["output"] == "3"
    n, size = data.contrib.shape
    assert data.meta["memory_bytes"] <= 2 * n * size * 8
    weights = run.weights()
    assert np.allclose(data.theta_final[: 10 * 16], weights["3.weight"].numpy().reshape(-1))
    # cached: asking again trains nothing
    again = attribution.ledger_hook(cfg, ())
    assert again is not None
    assert harness.train(repo, config=cfg, hooks=[again]).cached and again.steps == 0


def _loop(make_opt: Callable[..., torch.optim.Optimizer], layers: tuple[str, ...], conv: bool,
          close_every: int = 1, skip: bool = False, **ledger_args: object) -> Ledger:  # fmt: skip
    """A hand-written loop (Nesterov, dampening, Conv2d, uneven epochs: what the harness
    config cannot ask for) driving the ledger through the same hook calls as `fit`."""
    torch.manual_seed(0)
    n = 96
    if conv:
        x = torch.randn(n, 2, 6, 6)
        model: nn.Module = nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 4, 3, stride=2),
            nn.Flatten(), nn.Linear(16, 4),
        )  # fmt: skip
    else:
        x = torch.randn(n, 12)
        model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))
    y = torch.randint(0, 4, (n,))
    opt = make_opt(model.parameters())
    ledger = Ledger(layers, "float64", **ledger_args)  # type: ignore[arg-type]
    ledger.on_train_start(model, opt)
    sched = torch.optim.lr_scheduler.StepLR(opt, 7, 0.5)  # maps that change along the run
    gen = torch.Generator().manual_seed(1)
    step = 0
    for epoch in range(5):
        order = torch.randperm(n, generator=gen)
        if skip:
            order = order[: n // 2 + 9 * epoch]
        for b, idx in enumerate(order.split(16)):
            opt.zero_grad()
            losses = F.cross_entropy(model(x[idx]), y[idx], reduction="none")
            losses.mean().backward()
            ids = [f"e{i:03d}" for i in idx.tolist()]
            info = Step(epoch, step, b, ids, idx, x[idx], y[idx], losses, 0.0, 0.0, model, opt)
            ledger.before_step(info)
            opt.step()
            ledger.after_step(info)
            sched.step()
            step += 1
        if (epoch + 1) % close_every == 0:
            ledger.on_epoch_end(epoch, 0.0)
    ledger.on_train_end(model)
    return ledger


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01),
    ],
    ids=["nesterov", "dampening", "adam", "adamw"],
)
@pytest.mark.parametrize(
    ("conv", "close_every", "skip"),
    [(False, 1, False), (True, 2, True)],
    ids=["linear-epochs", "conv-uneven"],
)
def test_every_rule_adds_up(
    make_opt: Callable[..., torch.optim.Optimizer], conv: bool, close_every: int, skip: bool
) -> None:
    layers = ("0", "output") if conv else ("0.weight", "output.bias")
    ledger = _loop(make_opt, layers, conv, close_every, skip)
    _, contrib = ledger.contributions()
    delta = ledger._theta() - ledger.theta0
    total = contrib.sum(0) + ledger.init_share + ledger.rounding
    assert float((total - delta).abs().max() / delta.abs().max()) <= 1e-12
    assert float(ledger.rounding.abs().max() / delta.abs().max()) < 1e-4


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.1),
    ],
    ids=["nesterov", "dampening", "momentum", "plain"],
)
@pytest.mark.parametrize("budget", [None, 3000], ids=["fold-at-end", "fold-mid-training"])
def test_factored_path_matches_per_step_accounts(
    make_opt: Callable[..., torch.optim.Optimizer], budget: int | None
) -> None:
    """SGD on Linear layers keeps gradient factors and folds them later; each example's
    account is the one the per-step path brings forward, to float64 rounding, whether the
    store folds once at the end or many times mid-training (a small budget)."""
    layers = ("0.weight", "output")
    fast = _loop(make_opt, layers, False, 1, True, factor_budget=budget)
    slow = _loop(make_opt, layers, False, 1, True, factored=False)
    assert fast.store is not None and slow.store is None
    assert fast.store.folds == 1 if budget is None else fast.store.folds > 3
    ids_f, c_f = fast.contributions()
    ids_s, c_s = slow.contributions()
    assert ids_f == ids_s
    assert float((c_f - c_s).abs().max() / c_s.abs().max()) <= 1e-12
    delta = fast._theta() - fast.theta0
    total = c_f.sum(0) + fast.init_share + fast.rounding
    assert float((total - delta).abs().max() / delta.abs().max()) <= 1e-12
    if budget is None:  # store and final shares within 2·N·|R|·8 bytes
        assert fast.memory_bytes() <= 2 * c_f.numel() * 8


def _loop_lrs(skip: bool = True) -> list[float]:
    """The learning rate of every step of `_loop` (StepLR(7, 0.5) from 0.1): its plan."""
    steps = sum(-(-(96 // 2 + 9 * e if skip else 96) // 16) for e in range(5))
    return [0.1 * 0.5 ** (t // 7) for t in range(steps)]


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
    ],
    ids=["nesterov", "dampening"],
)
def test_planned_folds_go_straight_to_final_shares(
    make_opt: Callable[..., torch.optim.Optimizer],
) -> None:
    """With the learning rate of every step known (the plan), a full store folds into the
    final shares mid-training: no (share, momentum) accounts, the same accounts as the
    per-step path, and the memory bound holds however many times it folds."""
    layers = ("0.weight", "output")
    planned = _loop(make_opt, layers, False, 1, True, plan=_loop_lrs, factor_budget=3000)
    slow = _loop(make_opt, layers, False, 1, True, factored=False)
    store = planned.store
    assert store is not None and store.plan is not None and store.folds > 3
    assert store.state is not None and store.state.shape[1] == 1  # shares only
    _, c_p = planned.contributions()
    _, c_s = slow.contributions()
    assert float((c_p - c_s).abs().max() / c_s.abs().max()) <= 1e-12
    assert planned.memory_bytes() <= 2 * c_p.numel() * 8


def test_a_plan_training_departs_from_is_refused_or_dropped() -> None:
    """A plan is only trusted while training follows it: departing before the first fold
    drops it (the accounts stay exact), departing after it is a one-line LedgerError, and
    so is stopping before the plan's last step."""
    sgd = lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)  # noqa: E731
    layers = ("output",)
    early = _loop(
        sgd, layers, False, 1, True, plan=lambda: [0.2, *_loop_lrs()[1:]], factor_budget=3000
    )
    assert early.store is not None and early.store.plan is None and early.store.folds > 3
    _, c_e = early.contributions()
    _, c_s = _loop(sgd, layers, False, 1, True, factored=False).contributions()
    assert float((c_e - c_s).abs().max() / c_s.abs().max()) <= 1e-12
    late = _loop_lrs()
    late[-3] = 0.3
    with pytest.raises(LedgerError, match="departed from the ledger's plan at step 20") as err:
        _loop(sgd, layers, False, 1, True, plan=lambda: late, factor_budget=3000)
    assert "\n" not in str(err.value)
    with pytest.raises(
        LedgerError, match="training stopped after 23 steps; the ledger's plan had 24"
    ):
        _loop(sgd, layers, False, 1, True, plan=lambda: [*_loop_lrs(), 0.0125], factor_budget=3000)


def test_long_harness_run_stays_within_its_memory_bound(tmp_path: Path) -> None:
    """A harness run longer than one factor store folds with its schedule's plan: the
    peak of store, shares and fold temporaries stays within 2·N·|R|·8 bytes, and the
    accounts still add up."""
    toml = MLP.replace("epochs = 3", 'epochs = 24\nschedule = "cosine"\nweight_decay = 0.01')
    repo = make_repo(tmp_path, toml, n=120)
    cfg = harness.load_config(repo)
    hook = attribution.ledger_hook(cfg, (), attribution.train_size(repo, "HEAD", cfg))
    assert hook is not None
    run = harness.train(repo, config=cfg, hooks=[hook])
    assert hook.store is not None and hook.store.plan is not None and hook.store.folds > 1
    folder = run.artifact(hook.key)
    assert folder is not None
    data = LedgerData(folder)
    assert completeness(data)[0] <= 1e-12
    n, size = data.contrib.shape
    assert data.meta["memory_bytes"] <= 2 * n * size * 8


def test_factored_path_sums_positions_of_a_sequence() -> None:
    """A Linear applied to [B, n, in] has per-example gradient Σ_n δ_n ⊗ a_n, not one
    outer product: the store keeps n rows per example and the fold sums them."""
    torch.manual_seed(0)
    x = torch.randn(40, 3, 6)
    y = torch.randint(0, 4, (40,))
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))
    accounts = []
    for factored in (True, False):
        torch.manual_seed(1)
        for p in model.parameters():
            nn.init.normal_(p, std=0.3)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        ledger = Ledger(("0",), factored=factored)
        ledger.on_train_start(model, opt)
        for step, idx in enumerate(torch.arange(40).split(8) * 2):
            opt.zero_grad()
            losses = F.cross_entropy(model(x[idx]).mean(1), y[idx], reduction="none")
            losses.mean().backward()
            info = Step(0, step, step, [f"e{i}" for i in idx.tolist()], idx, x[idx], y[idx],
                        losses, 0.0, 0.0, model, opt)  # fmt: skip
            opt.step()
            ledger.after_step(info)
        ledger.on_train_end(model)
        accounts.append(ledger.contributions()[1])
    assert float((accounts[0] - accounts[1]).abs().max() / accounts[1].abs().max()) <= 1e-12


def test_refuses_what_it_cannot_decompose() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    with pytest.raises(LedgerError, match="cannot decompose optimiser RMSprop"):
        Ledger().on_train_start(model, torch.optim.RMSprop(model.parameters()))
    with pytest.raises(LedgerError, match="Adam with amsgrad"):
        Ledger().on_train_start(model, torch.optim.Adam(model.parameters(), amsgrad=True))
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(LedgerError, match=r"'1\.weight' belongs to BatchNorm1d"):
        Ledger(("1.weight",)).on_train_start(model, sgd)
    with pytest.raises(LedgerError, match="'fc' names no parameter"):
        Ledger(("fc",)).on_train_start(model, sgd)
    with pytest.raises(LedgerError, match="dtype 'float16'"):
        Ledger((), "float16")


def test_ledger_json_names_its_settings(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, MLP.replace("epochs = 3", "epochs = 1"), n=100)
    cfg = harness.load_config(repo)
    hook = attribution.ledger_hook(cfg, ("output.weight",))
    assert hook is not None and hook.key.startswith("ledger-")
    assert hook.key != attribution.ledger_hook(cfg, ())
    run = harness.train(repo, config=cfg, hooks=[hook])
    folder = run.artifact(hook.key)
    assert folder is not None
    meta = json.loads((folder / "ledger.json").read_text())
    assert meta["rule"]["kind"] == "sgd" and meta["rule"]["momentum"] == 0.9
    assert meta["config"] == run.meta["key"]["config"] and meta["steps"] == 3
    info = attribution.ledger_info(run, hook.key)
    assert info is not None and info["params"] == ["3.weight"] and info["size"] == 160


@pytest.mark.parametrize(
    "extra",
    ["nesterov = true\nweight_decay = 0.01", "dampening = 0.3\nweight_decay = 0.01"],
    ids=["nesterov", "dampening"],
)
def test_harness_config_reaches_nesterov_and_dampening(tmp_path: Path, extra: str) -> None:
    """`[harness] nesterov` and `dampening` reach torch's SGD and the ledger's rule, and
    the accounts still add up end to end."""
    repo = make_repo(tmp_path, MLP.replace("epochs = 3", "epochs = 2\n" + extra), n=120)
    cfg = harness.load_config(repo)
    plain = harness.load_config(repo, nesterov=False, dampening=0.0)
    assert cfg.digest != plain.digest  # set away from its default, the key is hashed
    hook = attribution.ledger_hook(cfg, ())
    assert hook is not None
    run = harness.train(repo, config=cfg, hooks=[hook])
    folder = run.artifact(hook.key)
    assert folder is not None
    data = LedgerData(folder)
    rule = data.meta["rule"]
    assert rule["nesterov"] == ("nesterov" in extra)
    assert rule["dampening"] == (0.3 if "dampening" in extra else 0.0)
    assert completeness(data)[0] <= 1e-12


def test_new_momentum_keys_keep_old_run_keys() -> None:
    """Configs that do not set nesterov or dampening keep the digest they had before those
    keys existed, so their cached runs stay valid."""
    from datagit.harness.config import HarnessConfig

    cfg = HarnessConfig()
    d = {k: v for k, v in cfg.to_dict().items()
         if k not in {"num_workers", "preload", "eval_rev", "seed", "ledger", "ledger_dtype",
                      "nesterov", "dampening"}}  # fmt: skip
    d["harness_version"] = 1
    blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
    import hashlib

    assert cfg.digest == hashlib.sha256(blob).hexdigest()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('optimizer = "adam"\nnesterov = true', "apply to optimizer"),
        ("dampening = 1.5", r"dampening = 1\.5 must be in \[0, 1\)"),
        ("nesterov = true\ndampening = 0.2", "needs momentum > 0 and dampening = 0"),
        ("nesterov = true\nmomentum = 0.0", "needs momentum > 0"),
        ('nesterov = "yes"', "nesterov = 'yes' has the wrong type"),
    ],
)
def test_bad_momentum_keys_are_one_line_errors(tmp_path: Path, extra: str, message: str) -> None:
    from datagit.errors import DatagitError

    repo = make_repo(tmp_path, MLP + extra + "\n", n=40)
    with pytest.raises(DatagitError, match=message) as err:
        harness.load_config(repo)
    assert "\n" not in str(err.value) and "datagit.toml" in str(err.value)
