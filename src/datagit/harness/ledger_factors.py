"""The ledger's fast path for SGD on Linear layers: keep each step's gradient factors,
fold them into per-example accounts with batched matmuls when needed.

SGD's update (momentum, dampening, Nesterov, coupled weight decay) maps every
element's (share, momentum) by the same scalar 2×2 matrix M_t, and a Linear
layer's per-example gradient is an outer product δ_i ⊗ a_i (output gradient,
input). So example i's share at a fold time S is

    Σ_t  P(S, t) v_t  δ_{i,t} ⊗ a_{i,t},      P(S, t) = M_S ⋯ M_{t+1}

two scalar coefficients per step times a rank-one term. Recording δ and a costs
O(B·(in + out)) per step, where moving B accounts of |R| = out·(in + 1) weights in
and out of the account table cost O(B·|R|) memory traffic. The fold sums each
example's occurrences in one batched matmul. Coefficients come from a backward
recurrence over the stored maps, never from an inverse, so float64 holds to ~1e-15.

The factors are kept in the dtype torch computed them in (float32 for a float32
model), which loses nothing: the float64 ledger multiplies them out in float64.
The store is bounded so that store, final shares and the fold's temporaries stay
within 2·N·|R|·8 bytes (about 2·|R|/(in + out) epochs of a float64 ledger, 3× that
for float32). When it fills before the end of training it is folded and emptied:

* with a plan (the learning rate of every step, known in advance for a harness run:
  its schedule is fixed by the config), the coefficients P(T, t) v_t to the *end* of
  training are known at any time, so the store folds straight into the final shares
  (N·|R|·itemsize) and goes on; nothing per example is carried forward, and every
  step is checked against the plan (a step that departs from it, once folded with it,
  is a `LedgerError`, never a silently wrong account);
* without one (a hand-written loop), the future maps are unknown, so a fold keeps
  (share, momentum) accounts, 2·N·|R|·itemsize, brought forward by each later fold;
  from then on the store is kept to an eighth of 2·N·|R|·8, so a long float64 run
  holds about 1.16× that (1.155 measured, temporaries included).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from datagit.harness.ledger_layers import LedgerError

Map = tuple[float, float, float, float]


_FOLD_BYTES = 64 * 2**20  # temporaries of one fold chunk, at most
_INDEX_BYTES = 40  # per stored row, the fold's sort and rank temporaries (int64)
Planned = Callable[[], list[tuple[Map, tuple[float, float]]]]


@dataclass(frozen=True)
class FactorLayer:
    """One recorded Linear module: where its weight and bias sit in the account vector."""

    module: str
    out: int
    inp: int
    weight: tuple[int, int] | None  # [start, stop) in the account vector
    bias: tuple[int, int] | None


def factor_layers(
    modules: dict[str, nn.Module], names: Sequence[str], sizes: Sequence[int]
) -> list[FactorLayer] | None:
    """The recorded parameters grouped by Linear module, or None when one is not Linear."""
    at, spans = 0, {}
    for name, size in zip(names, sizes, strict=True):
        spans[name] = (at, at + size)
        at += size
    out: list[FactorLayer] = []
    for owner in dict.fromkeys(n.rsplit(".", 1)[0] for n in names):
        m = modules[owner]
        if not isinstance(m, nn.Linear):
            return None
        w, b = spans.get(f"{owner}.weight"), spans.get(f"{owner}.bias")
        out.append(FactorLayer(owner, m.out_features, m.in_features, w, b))
    return out


class FactorStore:
    """Per-step factors of the recorded Linear layers, and the accounts they fold into."""

    def __init__(
        self,
        layers: list[FactorLayer],
        size: int,
        dtype: torch.dtype,
        device: torch.device,
        capacity: int,
        budget_bytes: int | None = None,
        expected_rows: int = 0,
        planned: Planned | None = None,
    ) -> None:
        """``budget_bytes``: the most the store may hold (default: 2·N·|R|·8 bytes less
        the final shares and the fold's temporaries, with N the capacity or the examples
        seen so far). ``expected_rows``: how many example rows training will record, when
        known: without a plan, a run too long for one store folds with the smaller store
        from the start rather than after filling the big one. ``planned``: the (map,
        injection) of every step to the end of training, asked for when the store first
        fills before the end."""
        self.layers = layers
        self.size = size
        self.dtype = dtype
        self.itemsize = torch.empty(0, dtype=dtype).element_size()
        self.device = device
        self.capacity = capacity
        self.budget_bytes = budget_bytes
        self.expected_rows = expected_rows
        self.planned = planned
        self.plan: list[tuple[Map, tuple[float, float]]] | None = None  # once folded with it
        self.plan_coef: torch.Tensor | None = None  # [T, 1]: P(T, t) v_t of the plan
        self.rows = 0
        self.high_rows = 0  # the store's pages touched so far
        self.row_bytes = 0
        self.bufs: dict[str, torch.Tensor] = {}
        self.maps: list[tuple[Map, tuple[float, float]]] = []  # since the last fold
        self.step0 = 0  # global step of maps[0]
        self.steps = 0
        self.state: torch.Tensor | None = None  # [N, 1 or 2, |R|] once a fold happened
        self.fresh = False  # state just allocated, not yet written
        self.seen = 0  # 1 + the largest example position recorded
        self.epoch_steps = 0  # steps of the first epoch, once it ended
        self.epochs = 0  # how many epochs training runs, when known
        self.peak = 0
        self.folds = 0

    # -- recording ---------------------------------------------------------------------
    def record(
        self, idx: torch.Tensor, captures: dict[str, Any], m: Map, v: tuple[float, float]
    ) -> torch.Tensor:
        """Store this step's factors; return Σ_i h_i (the batch's summed per-example
        gradients, in the ledger's dtype) for the eager total."""
        factors = []
        for layer in self.layers:
            cap = captures[layer.module]
            if cap.inputs is None or cap.grad_out is None:
                raise LedgerError("the ledger saw no backward pass through a recorded layer")
            g = cap.grad_out.detach()
            a = cap.inputs.detach()
            factors.append((g.reshape(-1, layer.out), a.reshape(-1, layer.inp)))
            cap.inputs = cap.grad_out = None
        rows = factors[0][0].shape[0]
        per = rows // len(idx)
        row_idx = idx.to(self.device).repeat_interleave(per) if per > 1 else idx.to(self.device)
        self.seen = max(self.seen, int(idx.max()) + 1)
        self.row_bytes = self._row_bytes(factors)
        if self._full(rows):
            self.fold(final=False)
        if self.plan is not None:
            self._check_plan(self.steps, (m, v))
        self._reserve(rows, factors)
        at = self.rows
        self.bufs["idx"][at : at + rows] = row_idx
        self.bufs["step"][at : at + rows] = self.steps
        hs = torch.empty(self.size, dtype=self.dtype, device=self.device)
        for k, (layer, (g, a)) in enumerate(zip(self.layers, factors, strict=True)):
            self.bufs[f"g{k}"][at : at + rows] = g
            gd = g.to(self.dtype)
            if layer.weight is not None:
                self.bufs[f"a{k}"][at : at + rows] = a
                hs[layer.weight[0] : layer.weight[1]] = (gd.T @ a.to(self.dtype)).reshape(-1)
            if layer.bias is not None:
                hs[layer.bias[0] : layer.bias[1]] = gd.sum(0)
        self.rows += rows
        self.high_rows = max(self.high_rows, self.rows)
        if self.plan is None:
            self.maps.append((m, v))
        self.steps += 1
        return hs

    def _check_plan(self, step: int, got: tuple[Map, tuple[float, float]]) -> None:
        """Accounts already folded with the plan are only right if training follows it."""
        assert self.plan is not None
        want = self.plan[step] if step < len(self.plan) else None
        if got != want:
            planned = f"past its {len(self.plan)} steps" if want is None else "with another map"
            raise LedgerError(
                f"training departed from the ledger's plan at step {step} ({planned}: the "
                "learning rate or optimiser settings differ), after folding accounts with it",
                hint="give the ledger the learning rate of every step it will run (plan=...), "
                "or no plan: it then keeps (share, momentum) accounts",
            )

    def _row_bytes(self, factors: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> int:
        n = 8 + 4  # idx, step
        for layer, (g, a) in zip(self.layers, factors, strict=True):
            n += layer.out * g.element_size()
            if layer.weight is not None:
                n += layer.inp * a.element_size()
        return n

    def bound(self) -> int:
        """2·N·|R|·8 bytes, N the capacity or the examples seen so far."""
        return 2 * max(self.capacity, self.seen) * self.size * 8

    def _temp_bytes(self) -> int:
        """The most a fold chunk's temporaries take: small beside the bound."""
        return min(_FOLD_BYTES, self.bound() // 32)

    def _budget(self) -> int:
        """Bytes of stored rows, the fold's index temporaries included, before a fold."""
        if self.budget_bytes is not None:
            return self.budget_bytes
        bound, n = self.bound(), max(self.capacity, self.seen)
        legacy = self.planned is None and (
            (self.state is not None and self.state.shape[1] == 2)
            or self.expected_rows * (self.row_bytes + _INDEX_BYTES)
            > bound - n * self.size * self.itemsize
        )
        if legacy:  # (share, momentum) accounts: 2·N·|R|·itemsize, a small store beside
            return bound // 8
        # the final shares (N·|R|·itemsize), the store and the fold's temporaries
        return bound - n * self.size * self.itemsize - self._temp_bytes() - 16 * n

    def _full(self, rows: int) -> bool:
        if not self.rows or "idx" not in self.bufs:
            return False
        return (self.rows + rows) * (self.row_bytes + _INDEX_BYTES) > self._budget()

    def _reserve(self, rows: int, factors: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Room for ``rows`` more rows: the whole budget at once when it is known (untouched
        pages cost nothing), doubling otherwise."""
        need = self.rows + rows
        have = self.bufs["idx"].shape[0] if self.bufs else 0
        if need <= have:
            return
        cap = max(need, 2 * have, self._budget() // (self.row_bytes + _INDEX_BYTES))
        new = {
            "idx": torch.empty(cap, dtype=torch.long, device=self.device),
            "step": torch.empty(cap, dtype=torch.int32, device=self.device),
        }
        for k, (layer, (g, a)) in enumerate(zip(self.layers, factors, strict=True)):
            new[f"g{k}"] = torch.empty(cap, layer.out, dtype=g.dtype, device=self.device)
            if layer.weight is not None:
                new[f"a{k}"] = torch.empty(cap, layer.inp, dtype=a.dtype, device=self.device)
        for key, old in self.bufs.items():
            new[key][: self.rows] = old[: self.rows]
        self.bufs = new

    def used_bytes(self) -> int:
        """The store's touched rows plus the accounts."""
        state = 0 if self.state is None else self.state.numel() * self.state.element_size()
        return self.high_rows * self.row_bytes + state

    def _note_peak(self, temps: int) -> None:
        self.peak = max(self.peak, self.used_bytes() + temps)

    # -- folding -------------------------------------------------------------------------
    @staticmethod
    def _coefficients(
        maps: Sequence[tuple[Map, tuple[float, float]]], dtype: torch.dtype, device: torch.device
    ) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
        """[steps, 2] coefficients P(S, t) v_t of ``maps`` (S: after the last of them), and
        P(S, S0) (the product of all of them, which carries earlier accounts forward)."""
        r = (1.0, 0.0, 0.0, 1.0)
        coef = [(0.0, 0.0)] * len(maps)
        for t in range(len(maps) - 1, -1, -1):
            (m00, m01, m10, m11), (v0, v1) = maps[t]
            a, b, c, d = r
            coef[t] = (a * v0 + b * v1, c * v0 + d * v1)
            r = (a * m00 + b * m10, a * m01 + b * m11, c * m00 + d * m10, c * m01 + d * m11)
        return torch.tensor(coef, dtype=dtype, device=device).reshape(-1, 2), r

    def _start_plan(self) -> bool:
        """Fold with the plan from now on, if there is one and training followed it so far."""
        if self.planned is None or self.state is not None:
            return False
        plan = self.planned()
        runs = self.epoch_steps * self.epochs  # the length training will have, when known
        if len(plan) < self.steps or plan[: self.steps] != self.maps or runs not in (0, len(plan)):
            self.planned = None  # not the run it planned: keep (share, momentum) accounts
            return False
        self.plan = plan
        self.plan_coef = self._coefficients(plan, self.dtype, self.device)[0][:, :1]
        return True

    def fold(self, final: bool) -> torch.Tensor | None:
        """Fold the stored factors into the accounts and empty the store. ``final``: return
        the shares [N, |R|]. Otherwise, with a plan, add them to the final shares; without
        one, keep (share, momentum) accounts in ``state`` for the next fold, carrying those
        already folded forward in place, a chunk of examples at a time."""
        n = max(self.capacity, self.seen)
        if self.plan is not None or (not final and self._start_plan()):
            return self._fold_planned(n, final)
        coef, (c0, c1, c2, c3) = self._coefficients(self.maps, self.dtype, self.device)
        if self.state is None:
            # not zeroed: every slot is written once below (beta = 0), untouched rows zeroed
            self.state = torch.empty(n, 1 if final else 2, self.size, dtype=self.dtype,
                                     device=self.device)  # fmt: skip
            self.fresh = True
        else:
            self._pad_state(n)
            step = max(1, self._temp_bytes() // (self.size * self.itemsize))
            for lo in range(0, n, step):
                x, y = self.state[lo : lo + step, 0], self.state[lo : lo + step, 1]
                keep = x.clone() if c2 and not final else None  # c2 = 0 without weight decay
                x.mul_(c0).add_(y, alpha=c1)
                if not final:  # the momentum is not needed after the last fold
                    y.mul_(c3)
                    if keep is not None:
                        y.add_(keep, alpha=c2)
        out = self.state[:, :1] if final else self.state
        if self.rows:
            self._fold_rows(out, coef[:, : out.shape[1]], self.step0)
        elif self.fresh:
            out.zero_()
        return self._folded(final, out)

    def _fold_planned(self, n: int, final: bool) -> torch.Tensor | None:
        """Add the stored rows to the final shares with the plan's coefficients."""
        assert self.plan is not None and self.plan_coef is not None
        if final and self.steps != len(self.plan):
            raise LedgerError(
                f"training stopped after {self.steps} steps; the ledger's plan had "
                f"{len(self.plan)}, and its accounts were folded with that plan",
                hint="give the ledger the learning rate of every step it will run",
            )
        if self.state is None:
            self.state = torch.zeros(n, 1, self.size, dtype=self.dtype, device=self.device)
        self._pad_state(n)
        if self.rows:
            self._fold_rows(self.state, self.plan_coef, 0)
        return self._folded(final, self.state)

    def _pad_state(self, n: int) -> None:
        assert self.state is not None
        if self.state.shape[0] < n:
            pad = self.state.new_zeros(n - self.state.shape[0], *self.state.shape[1:])
            self.state = torch.cat([self.state, pad])

    def _folded(self, final: bool, out: torch.Tensor) -> torch.Tensor | None:
        self._note_peak(0)
        self.fresh = False
        self.rows = 0
        self.maps = []
        self.step0 = self.steps
        self.folds += 1
        if final:
            self.bufs = {}
            return out[:, 0]
        return None

    def _fold_rows(self, out: torch.Tensor, coef: torch.Tensor, step0: int) -> None:
        """out[i, j] += Σ_{rows r of example i} coef[step r − step0, j] · h_r, example by
        example: rows sorted by example, padded to the most occurrences, one bmm per chunk
        of examples sized so that its temporaries stay within `_temp_bytes`."""
        idx = self.bufs["idx"][: self.rows]
        order = torch.argsort(idx, stable=True)
        sidx = idx[order]
        counts = torch.bincount(sidx, minlength=out.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(self.rows, device=self.device) - starts[sidx]
        most = int(counts.max())
        # per example: padded factors (stored dtype and ledger dtype), coefficients, the
        # scaled output gradients, and its accounts when they are not a slice of ``out``
        jn = out.shape[1]
        factors = sum(la.out + la.inp for la in self.layers)
        width = (2 * factors + jn + 2 * max(la.out for la in self.layers)) * most
        width = width * self.itemsize + jn * self.size * self.itemsize
        per = max(1, self._temp_bytes() // width)
        self._note_peak(self.rows * _INDEX_BYTES + min(per, out.shape[0]) * width)
        ex = counts.nonzero().flatten()  # examples with rows, ascending
        if self.fresh and len(ex) < out.shape[0]:
            out[counts == 0] = 0
        bounds = torch.cumsum(counts[ex], 0)
        for lo in range(0, len(ex), per):
            hi = min(len(ex), lo + per)
            r0 = int(bounds[lo - 1]) if lo else 0
            r1 = int(bounds[hi - 1])
            rows = order[r0:r1]
            local = torch.searchsorted(ex[lo:hi], sidx[r0:r1])
            self._fold_chunk(out, ex[lo:hi], rows, local, rank[r0:r1], most, coef, step0)

    def _fold_chunk(
        self,
        out: torch.Tensor,
        examples: torch.Tensor,
        rows: torch.Tensor,
        local: torch.Tensor,
        rank: torch.Tensor,
        most: int,
        coef: torch.Tensor,
        step0: int,
    ) -> None:
        n, jn = len(examples), out.shape[1]
        uniform = len(rows) == n * most  # every example seen equally often: no padding
        lo = int(examples[0])
        target = out[lo : lo + n] if int(examples[-1]) - lo == n - 1 else None
        fresh = self.fresh or target is None
        acc = (
            target
            if target is not None
            else torch.empty(n, jn, self.size, dtype=self.dtype, device=self.device)
        )

        def padded(key: str, width: int) -> torch.Tensor:
            src = self.bufs[key].index_select(0, rows).to(self.dtype)
            if uniform:
                return src.view(n, most, width)
            dst = torch.zeros(n, most, width, dtype=self.dtype, device=self.device)
            dst[local, rank] = src
            return dst

        c = coef.index_select(0, self.bufs["step"].index_select(0, rows).long() - step0)
        if uniform:
            c = c.view(n, most, jn)
        else:
            pad = torch.zeros(n, most, jn, dtype=self.dtype, device=self.device)
            pad[local, rank] = c
            c = pad
        for k, layer in enumerate(self.layers):
            g = padded(f"g{k}", layer.out)
            a = padded(f"a{k}", layer.inp) if layer.weight is not None else None
            for j in range(jn):
                gj = g * c[:, :, j : j + 1]  # [n, most, out]
                if a is not None and layer.weight is not None:
                    w0, w1 = layer.weight
                    view = acc[:, j, w0:w1].view(n, layer.out, layer.inp)
                    view.baddbmm_(gj.transpose(1, 2), a, beta=0 if fresh else 1)
                if layer.bias is not None:
                    bias = acc[:, j, layer.bias[0] : layer.bias[1]]
                    bias.copy_(gj.sum(1)) if fresh else bias.add_(gj.sum(1))
        if target is None:
            (out.index_copy_ if self.fresh else out.index_add_)(0, examples, acc)
