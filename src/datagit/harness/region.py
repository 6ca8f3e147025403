"""Reading a stored ledger and scoring its accounts against a weight region (numpy only).

A region is a parameter with optional row and column slices, written as in
Python: ``output.weight[8]``, ``3.weight[3, :]``, ``0.weight[0:4]``. A
parameter of more than two axes (a Conv2d kernel) is seen as
``[out_channels, everything else]``. Scores are projections of each account
onto the region's change, so they add up exactly to its norm together with the
init and rounding shares.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datagit.errors import InvalidInputError

_REGION = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(?:\[(.*)\])?\s*$")
_INDEX = re.compile(r"^\s*(-?\d+)?\s*(:)?\s*(-?\d+)?\s*$")


@dataclass(frozen=True)
class Region:
    """A parsed region: a parameter name and up to two index expressions (text)."""

    param: str
    rows: str | None = None
    cols: str | None = None

    @classmethod
    def parse(cls, text: str) -> Region:
        m = _REGION.match(text)
        if not m:
            raise InvalidInputError(
                f"region {text!r} is not PARAM or PARAM[ROWS] or PARAM[ROWS, COLS]",
                hint="e.g. --region 'output.weight[8]' or --region '0.weight[0:4, :]'",
            )
        name, inside = m.group(1), m.group(2)
        parts = [p.strip() for p in inside.split(",")] if inside is not None else []
        if len(parts) > 2 or any(not _INDEX.match(p) or p == "" for p in parts):
            raise InvalidInputError(
                f"region {text!r}: indices must be one or two of N, A:B, :",
                hint="e.g. 'output.weight[8]', 'output.weight[3, :]', '0.weight[0:4]'",
            )
        return cls(name, *([*parts, None, None])[:2])

    def __str__(self) -> str:
        idx = ", ".join(p for p in (self.rows, self.cols) if p is not None)
        return f"{self.param}[{idx}]" if idx else self.param


def _select(expr: str | None, size: int, axis: str, region: Region) -> np.ndarray:
    """Positions along one axis; out-of-range indices are errors, not clipped."""
    if expr is None:
        return np.arange(size)
    m = _INDEX.match(expr)
    assert m is not None
    lo, colon, hi = m.group(1), m.group(2), m.group(3)
    bad = InvalidInputError(
        f"region {region}: {axis} {expr!r} is out of range for size {size}",
        hint=f"{axis} run from 0 to {size - 1}",
    )
    if not colon:
        if lo is None:
            raise bad
        i = int(lo)
        if not -size <= i < size:
            raise bad
        return np.array([i % size])
    start = int(lo) if lo is not None else 0
    stop = int(hi) if hi is not None else size
    start, stop = (start + size if start < 0 else start), (stop + size if stop < 0 else stop)
    if not 0 <= start < stop <= size:
        raise bad
    return np.arange(start, stop)


class LedgerData:
    """A ledger artifact as stored by `datagit.harness.ledger.Ledger.save_artifact`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.meta: dict[str, Any] = json.loads((folder / "ledger.json").read_text())
        self.ids: list[str] = self.meta["ids"]
        self.contrib = np.load(folder / "contributions.npy", mmap_mode="r")
        with np.load(folder / "vectors.npz") as v:
            self.theta_init = v["theta_init"].astype(np.float64)
            self.theta_final = v["theta_final"].astype(np.float64)
            self.init_share = v["init_share"].astype(np.float64)
            self.rounding = v["rounding"].astype(np.float64)
        self.params = {p["name"]: p for p in self.meta["params"]}

    @property
    def output(self) -> str:
        return str(self.meta["output"])

    def real_name(self, name: str) -> str:
        head, _, tail = name.partition(".")
        return f"{self.output}.{tail}" if head == "output" and tail else name

    def indices(self, region: Region) -> np.ndarray:
        """Flat positions of ``region`` in the ledger's vector of recorded parameters."""
        name = self.real_name(region.param)
        p = self.params.get(name)
        if p is None:
            raise InvalidInputError(
                f"region {region}: the ledger records no parameter {region.param!r}",
                hint=f"it records {', '.join(self.params)} (alias output.* = {self.output}.*); "
                f"record others with `datagit train --ledger {region.param}`",
            )
        shape = p["shape"]
        rows_n = shape[0]
        cols_n = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        if len(shape) == 1 and region.cols is not None:
            raise InvalidInputError(
                f"region {region}: {name} has one axis, not two", hint=f"e.g. {name}[0:4]"
            )
        rows = _select(region.rows, rows_n, "rows", region)
        cols = _select(region.cols, cols_n, "columns", region)
        return int(p["offset"]) + (rows[:, None] * cols_n + cols[None, :]).reshape(-1)

    def class_indices(self, row: int) -> np.ndarray:
        """The output layer's row for one class: its weight row and, when recorded, its bias."""
        out: list[np.ndarray] = []
        for suffix in ("weight", "bias"):
            name = f"{self.output}.{suffix}"
            if name in self.params:
                out.append(self.indices(Region(name, str(row))))
        if not out:
            raise InvalidInputError(
                f"the ledger does not record the output layer {self.output}",
                hint="record it with `datagit train --ledger` (no layer: the output layer)",
            )
        return np.concatenate(out)

    def init_state(self) -> dict[str, Any]:
        """The whole model's weights before the first step (imports torch)."""
        import torch

        state: dict[str, Any] = torch.load(self.folder / "init.pt", weights_only=True)
        return state

    def delta(self, idx: np.ndarray) -> np.ndarray:
        return self.theta_final[idx] - self.theta_init[idx]


@dataclass
class Scores:
    """Per-example scores along a direction, and the shares that close the sum."""

    score: np.ndarray  # [examples]: ⟨c_i, u⟩
    norm: np.ndarray  # [examples]: ‖c_i‖ on the region
    init: float
    rounding: float
    total: float  # Σ score + init + rounding, up to float error


def project(data: LedgerData, idx: np.ndarray, direction: np.ndarray | None = None) -> Scores:
    """Scores along the region's own change (default), or along ``direction``, unnormalised.

    Along the region's change the direction is Δθ_R/‖Δθ_R‖, so the total is
    ‖Δθ_R‖; along a loss gradient it is ⟨Δθ_R, g⟩, the first-order change of
    that loss.
    """
    delta = data.delta(idx)
    if direction is None:
        n = float(np.linalg.norm(delta))
        if n == 0.0:
            raise InvalidInputError(
                "the region did not move during training", hint="pick another region"
            )
        u = delta / n
    else:
        u = direction.astype(np.float64)
    score = np.zeros(len(data.ids))
    norm = np.zeros(len(data.ids))
    step = max(1, 2**22 // max(1, len(idx)))
    for s in range(0, len(data.ids), step):
        block = np.asarray(data.contrib[s : s + step][:, idx], dtype=np.float64)
        score[s : s + step] = block @ u
        norm[s : s + step] = np.linalg.norm(block, axis=1)
    return Scores(
        score,
        norm,
        float(data.init_share[idx] @ u),
        float(data.rounding[idx] @ u),
        float(delta @ u),
    )
