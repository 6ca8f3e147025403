"""The ``[harness]`` section of ``datagit.toml``: what to train, on what, and how.

Parsing is torch-free so that a cached ``eval`` can build its run key without
importing torch. Every field that can change the trained weights goes into
`HarnessConfig.digest`; settings that only change speed (workers, preload)
stay out, so toggling them reuses the cache.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import sys
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from datagit.errors import InvalidInputError

BUILTIN_MODELS = ("logreg", "mlp", "cnn")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step")
METRICS = ("accuracy", "per_class_accuracy", "macro_f1", "loss")
DEVICES = ("auto", "cpu", "cuda")
UNSEEN = ("error", "wrong")
IMAGE_MODES = ("L", "RGB")
AUTO = "auto"

# Bump when the training loop or a built-in model changes what it computes,
# so old cached runs stop matching.
HARNESS_VERSION = 1
# Fields that change speed or bookkeeping, never the result.
_NOT_HASHED = {"num_workers", "preload", "eval_rev", "seed"}  # seed: its own key part
# The ledger watches training without changing it: its settings key an artifact, not the run.
_NOT_HASHED |= {"ledger", "ledger_dtype"}
LEDGER_DTYPES = ("float64", "float32")
# Keys added after runs were cached: hashed only when set away from their default, so the
# run keys of configs that do not use them stay what they were.
_HASHED_IF_SET = {"nesterov": False, "dampening": 0.0}


@dataclass(frozen=True)
class HarnessConfig:
    """One harness setup; defaults suit a small image-folder classification task."""

    train: str = "train"
    eval: str = "eval"
    eval_rev: str | None = None  # None: the same commit as the training data
    model: str = "mlp"  # a built-in name or a ``module:function`` entry point
    transform: str | None = None  # optional ``module:function`` entry point
    hidden: tuple[int, ...] = (128,)  # mlp hidden widths
    channels: tuple[int, ...] = (16, 32)  # cnn conv widths
    image_mode: str = "RGB"
    image_size: tuple[int, int] | None = None  # (height, width); None: keep, must agree
    # "auto": a table's columns are standardised with the training data's own per-column
    # mean and std (computed per run, stored in it); images are left in [0, 1].
    mean: tuple[float, ...] | str = AUTO
    std: tuple[float, ...] | str = AUTO
    features: tuple[str, ...] | None = None  # table columns; None: every numeric column
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False  # sgd only
    dampening: float = 0.0  # sgd only
    weight_decay: float = 0.0
    schedule: str = "constant"
    step_size: int = 10  # epochs between decays (schedule = "step")
    gamma: float = 0.1
    epochs: int = 10
    batch_size: int = 64
    seed: int = 0
    metrics: tuple[str, ...] = METRICS
    device: str = "auto"
    unseen_labels: str = "error"  # eval labels train never saw: "error" or count as "wrong"
    num_workers: int = 0
    preload: bool = True  # decode every example once, then index tensors each epoch
    ledger: tuple[str, ...] | None = None  # record a ledger of these layers ([]: output layer)
    ledger_dtype: str = "float64"

    @property
    def digest(self) -> str:
        """A hash of every field that can change the weights or the metrics."""
        d = {k: v for k, v in asdict(self).items() if k not in _NOT_HASHED}
        for key, default in _HASHED_IF_SET.items():
            if d[key] == default:
                del d[key]
        d["harness_version"] = HARNESS_VERSION
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def entry_points(self) -> list[str]:
        return [ep for ep in (self.model, self.transform) if ep and ":" in ep]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse(raw: Any, where: str = "datagit.toml [harness]") -> HarnessConfig:
    """Validate a ``[harness]`` table; every problem names the key and the fix."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where} must be a table")
    known = {f.name: f for f in fields(HarnessConfig)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown key {unknown[0]!r}",
            hint=f"known keys: {', '.join(sorted(known))} (see docs/harness.md)",
        )
    values: dict[str, Any] = {}
    defaults = HarnessConfig()
    for key, value in raw.items():
        values[key] = _coerce(key, value, getattr(defaults, key), where)
    cfg = replace(defaults, **values)
    _check(cfg, where)
    return cfg


def _coerce(key: str, value: Any, default: Any, where: str) -> Any:
    bad = InvalidInputError(
        f"{where}: {key} = {value!r} has the wrong type",
        hint=f"expected something like {key} = {json.dumps(_example(key, default))}",
    )
    if key in ("image_size",):
        if isinstance(value, int) and not isinstance(value, bool):
            return (value, value)
        if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
            return (value[0], value[1])
        raise bad
    if key in ("mean", "std"):
        if value == AUTO:
            return AUTO
        value = [value] if isinstance(value, int | float) else value
        if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
            return tuple(float(v) for v in value)
        raise bad
    if isinstance(default, tuple) or key in ("features", "ledger"):
        value = [value] if isinstance(value, str | int) and key != "hidden" else value
        if key == "hidden" and isinstance(value, int):
            value = [value]
        if not isinstance(value, list):
            raise bad
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if not isinstance(value, str):
        raise bad
    return value


def _example(key: str, default: Any) -> Any:
    if isinstance(default, tuple):
        return list(default)
    return {"image_size": [28, 28], "eval_rev": "v1", "transform": "mypkg.data:to_tensor"}.get(
        key, default
    )


def _check(cfg: HarnessConfig, where: str) -> None:
    choices = {
        "optimizer": OPTIMIZERS,
        "schedule": SCHEDULES,
        "device": DEVICES,
        "unseen_labels": UNSEEN,
        "image_mode": IMAGE_MODES,
        "loss": ("cross_entropy",),
        "ledger_dtype": LEDGER_DTYPES,
    }
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise InvalidInputError(
                f"{where}: {key} = {getattr(cfg, key)!r} is not supported",
                hint=f"use one of: {', '.join(allowed)}",
            )
    if cfg.model not in BUILTIN_MODELS and ":" not in cfg.model:
        raise InvalidInputError(
            f"{where}: unknown model {cfg.model!r}",
            hint=f"use {', '.join(BUILTIN_MODELS)} or a `module:function` entry point",
        )
    if cfg.transform is not None and ":" not in cfg.transform:
        raise InvalidInputError(
            f"{where}: transform {cfg.transform!r} is not a `module:function` entry point",
            hint='e.g. transform = "mypkg.data:to_tensor"',
        )
    for m in cfg.metrics:
        if m not in METRICS:
            raise InvalidInputError(
                f"{where}: unknown metric {m!r}", hint=f"use any of: {', '.join(METRICS)}"
            )
    for key in ("epochs", "batch_size"):
        if getattr(cfg, key) < 1:
            raise InvalidInputError(f"{where}: {key} must be at least 1")
    if cfg.lr <= 0:
        raise InvalidInputError(f"{where}: lr must be positive")
    _check_momentum(cfg, where)
    if cfg.ledger is not None and not all(isinstance(x, str) and x for x in cfg.ledger):
        raise InvalidInputError(
            f"{where}: ledger = {list(cfg.ledger)!r} must list parameter or layer names",
            hint='e.g. ledger = ["output"] or ledger = [] for the output layer',
        )
    if any(h < 1 for h in (*cfg.hidden, *cfg.channels)):
        raise InvalidInputError(f"{where}: hidden and channels widths must be at least 1")


def _check_momentum(cfg: HarnessConfig, where: str) -> None:
    """SGD's momentum options, refused in one line before torch would refuse them mid-run."""
    if (cfg.nesterov or cfg.dampening) and cfg.optimizer != "sgd":
        raise InvalidInputError(
            f'{where}: nesterov and dampening apply to optimizer = "sgd", not {cfg.optimizer!r}',
            hint='remove them or set optimizer = "sgd"',
        )
    if not 0.0 <= cfg.dampening < 1.0:
        raise InvalidInputError(
            f"{where}: dampening = {cfg.dampening} must be in [0, 1)", hint="e.g. dampening = 0.1"
        )
    if cfg.nesterov and (cfg.momentum <= 0 or cfg.dampening):
        raise InvalidInputError(
            f"{where}: nesterov = true needs momentum > 0 and dampening = 0",
            hint="e.g. momentum = 0.9 and no dampening",
        )


# -- entry points -------------------------------------------------------------
def code_version(cfg: HarnessConfig, search: Path | None) -> str:
    """A hash of the source files of the user's entry points ("" for built-ins).

    Found with ``importlib.util.find_spec`` rather than imported, so a cached
    run is recognised without running the user's code (or importing torch).
    """
    eps = cfg.entry_points()
    if not eps:
        return ""
    h = hashlib.sha256()
    with search_path(search):
        for ep in eps:
            module = ep.split(":", 1)[0]
            origin = _origin(module, ep)
            h.update(ep.encode() + b"\0" + Path(origin).read_bytes())
    return h.hexdigest()


def _origin(module: str, ep: str) -> str:
    # PathFinder, unlike find_spec, ignores sys.modules: a module of the same name
    # imported earlier (another workspace, an older version) must not answer.
    try:
        if "." in module:
            spec = importlib.util.find_spec(module)
        else:
            spec = importlib.machinery.PathFinder.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise InvalidInputError(
            f"entry point {ep!r}: module {module!r} not found",
            hint="put the module in the workspace (next to datagit.toml) or install it",
        )
    return spec.origin


def load_entry_point(ep: str, search: Path | None) -> Any:
    """Import ``module:function`` (the workspace first on ``sys.path``).

    A module already imported is imported again when its file or its source
    changed, so the code that runs is the code `code_version` hashed.
    """
    module, _, name = ep.partition(":")
    with search_path(search):
        origin = _origin(module, ep)
        digest = hashlib.sha256(Path(origin).read_bytes()).hexdigest()
        mod = sys.modules.get(module)
        if (
            mod is None
            or getattr(mod, "__file__", None) != origin
            or (getattr(mod, "__datagit_source__", None) != digest)
        ):
            sys.modules.pop(module, None)
            importlib.invalidate_caches()
            mod = importlib.import_module(module)
            mod.__datagit_source__ = digest  # type: ignore[attr-defined]
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise InvalidInputError(
            f"entry point {ep!r}: {module} has no function {name!r}",
            hint=f"define `def {name}(...)` in {module}, or fix the name in [harness]",
        )
    return fn


class search_path:
    """Put the workspace first on ``sys.path`` for the duration of a block."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = str(folder) if folder else None
        self.added = False

    def __enter__(self) -> None:
        if self.folder and self.folder not in sys.path:
            sys.path.insert(0, self.folder)
            self.added = True

    def __exit__(self, *exc: object) -> None:
        if self.added:
            sys.path.remove(self.folder)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RunKey:
    """What identifies a run: the data, the harness, the seed and the user's code."""

    train_tree: str
    eval_tree: str
    config: str
    seed: int
    code: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    @property
    def id(self) -> str:
        return self.digest[:16]
