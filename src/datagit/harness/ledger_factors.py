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
The store is bounded (by default so that store plus final shares stay within
2·N·|R|·8 bytes: about 2·|R|/(in + out) epochs of a float64 ledger, 3× that for
float32); when it fills before the end of training it is folded into (share,
momentum) accounts, 2·N·|R|·itemsize, and emptied; from then on the store is
kept to an eighth of 2·N·|R|·8, so a long float64 run holds at most 1.125× that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from datagit.harness.ledger_layers import LedgerError

Map = tuple[float, float, float, float]


_FOLD_BYTES = 64 * 2**20  # temporaries of one fold chunk


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
    ) -> None:
        """``budget_bytes``: the most the store may hold (default: 2·N·|R|·8 bytes less
        the final shares, with N the capacity or the examples seen so far).
        ``expected_rows``: how many example rows training will record, when known: a run
        too long for one store folds mid-way from the start with the smaller store,
        rather than after filling the big one."""
        self.layers = layers
        self.size = size
        self.dtype = dtype
        self.device = device
        self.capacity = capacity
        self.budget_bytes = budget_bytes
        self.expected_rows = expected_rows
        self.rows = 0
        self.bufs: dict[str, torch.Tensor] = {}
        self.maps: list[tuple[Map, tuple[float, float]]] = []
        self.state: torch.Tensor | None = None  # [N, 2, |R|] once a fold happened mid-way
        self.fresh = False  # state just allocated, not yet written
        self.seen = 0  # 1 + the largest example position recorded
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
        if self._full(rows):
            self.fold(final=False)
        self._reserve(rows, factors)
        at = self.rows
        self.bufs["idx"][at : at + rows] = row_idx
        self.bufs["step"][at : at + rows] = len(self.maps)
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
        self.maps.append((m, v))
        return hs

    def _row_bytes(self, factors: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> int:
        n = 8 + 4  # idx, step
        for layer, (g, a) in zip(self.layers, factors, strict=True):
            n += layer.out * g.element_size()
            if layer.weight is not None:
                n += layer.inp * a.element_size()
        return n

    def _budget(self) -> int:
        if self.budget_bytes is not None:
            return self.budget_bytes
        # the final shares (N·|R|·itemsize) and the store together within 2·N·|R|·8 bytes
        # once (share, momentum) accounts exist (a long run), a smaller store folds more often
        n = max(self.capacity, self.seen) * self.size
        whole = n * (16 - torch.empty(0, dtype=self.dtype).element_size())
        if self.state is not None or self.expected_rows * self.row_bytes > whole:
            return 2 * n * 8 // 8
        return whole

    def _full(self, rows: int) -> bool:
        if not self.rows or "idx" not in self.bufs:
            return False
        return (self.rows + rows) * self.row_bytes > self._budget()

    def _reserve(self, rows: int, factors: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Room for ``rows`` more rows: the whole budget at once when it is known (untouched
        pages cost nothing), doubling otherwise."""
        self.row_bytes = self._row_bytes(factors)
        need = self.rows + rows
        have = self.bufs["idx"].shape[0] if self.bufs else 0
        if need <= have:
            return
        cap = max(need, 2 * have, self._budget() // self.row_bytes)
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
        state = 0 if self.state is None else self.state.numel() * self.state.element_size()
        return self.rows * getattr(self, "row_bytes", 0) + state

    # -- folding -------------------------------------------------------------------------
    def _coefficients(self) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
        """[steps, 2] coefficients P(S, t) v_t of the stored steps, and P(S, S0) (the
        product of all their maps, which carries the accounts of the previous fold)."""
        r = (1.0, 0.0, 0.0, 1.0)
        coef = [(0.0, 0.0)] * len(self.maps)
        for t in range(len(self.maps) - 1, -1, -1):
            (m00, m01, m10, m11), (v0, v1) = self.maps[t]
            a, b, c, d = r
            coef[t] = (a * v0 + b * v1, c * v0 + d * v1)
            r = (a * m00 + b * m10, a * m01 + b * m11, c * m00 + d * m10, c * m01 + d * m11)
        return torch.tensor(coef, dtype=self.dtype, device=self.device).reshape(-1, 2), r

    def fold(self, final: bool) -> torch.Tensor | None:
        """Fold the stored factors into the accounts and empty the store. ``final``: return
        the shares [N, |R|] (the momentum is not needed any more); otherwise keep (share,
        momentum) accounts in ``state`` for the next fold. Accounts already folded are
        carried forward in place, a chunk of examples at a time."""
        n = max(self.capacity, self.seen)
        coef, (c0, c1, c2, c3) = self._coefficients()
        if self.state is None:
            # not zeroed: every slot is written once below (beta = 0), untouched rows zeroed
            self.state = torch.empty(n, 1 if final else 2, self.size, dtype=self.dtype,
                                     device=self.device)  # fmt: skip
            self.fresh = True
        else:
            if self.state.shape[0] < n:
                pad = self.state.new_zeros(n - self.state.shape[0], *self.state.shape[1:])
                self.state = torch.cat([self.state, pad])
            step = max(1, _FOLD_BYTES // (self.size * self.state.element_size()))
            for lo in range(0, n, step):
                x, y = self.state[lo : lo + step, 0], self.state[lo : lo + step, 1]
                keep = x.clone() if c2 and not final else None  # c2 = 0 without weight decay
                x.mul_(c0).add_(y, alpha=c1)
                if not final:  # the momentum is not needed after the last fold
                    y.mul_(c3)
                    if keep is not None:
                        y.add_(keep, alpha=c2)
        self.peak = max(self.peak, self.used_bytes())
        out = self.state[:, :1] if final else self.state
        if self.rows:
            self._fold_rows(out, coef[:, : out.shape[1]])
        elif self.fresh:
            out.zero_()
        self.fresh = False
        self.rows = 0
        self.maps = []
        self.folds += 1
        if final:
            self.bufs = {}
            return out[:, 0]
        return None

    def _fold_rows(self, out: torch.Tensor, coef: torch.Tensor) -> None:
        """out[i, j] += Σ_{rows r of example i} coef[step r, j] · h_r, example by example:
        rows sorted by example, padded to the most occurrences, one bmm per chunk."""
        idx = self.bufs["idx"][: self.rows]
        order = torch.argsort(idx, stable=True)
        sidx = idx[order]
        counts = torch.bincount(sidx, minlength=out.shape[0])
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.arange(self.rows, device=self.device) - starts[sidx]
        most = int(counts.max())
        width = sum(la.out + la.inp for la in self.layers) * most + self.size
        per = max(1, _FOLD_BYTES // (width * out.element_size() * out.shape[1]))
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
            self._fold_chunk(out, ex[lo:hi], rows, local, rank[r0:r1], most, coef)

    def _fold_chunk(
        self,
        out: torch.Tensor,
        examples: torch.Tensor,
        rows: torch.Tensor,
        local: torch.Tensor,
        rank: torch.Tensor,
        most: int,
        coef: torch.Tensor,
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

        c = coef.index_select(0, self.bufs["step"].index_select(0, rows).long())
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
