"""`credit --value`: each contributor's share of the eval loss improvement, from the ledger.

Split from `datagit.api.attribution` (which finds or trains the run holding a
ledger): the region blame ranks examples by how they moved weights, this splits
a loss change among people, and the two share only `ledger_run` and the probe.
`ValueCredit.to_dict` is the one JSON shape, for `--json` and the viewer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagit.api import history
from datagit.api.attribution import _probe, _provenance, ledger_run

if TYPE_CHECKING:
    from datagit.api.repo import Repo

VALUE_POINTS = 16  # quadrature points along θ_init → θ_final


@dataclass
class ValueCredit:
    """Each contributor's first-order share of the eval loss improvement, and the rest."""

    run: str
    ledger: str
    params: list[str]
    eval_loss_init: float
    eval_loss_final: float
    improvement: float
    init: float
    rounding: float
    residual: float
    authors: list[dict[str, Any]]
    annotators: list[dict[str, Any]]
    unrecorded: float = 0.0  # −⟨Δθ, ḡ⟩ over the parameters the ledger does not record
    method: str = (
        "integrated gradients: −⟨c_i, ḡ⟩, ḡ the eval-loss gradient averaged along the straight "
        f"line θ_init → θ_final ({VALUE_POINTS}-point Gauss-Legendre)"
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``credit --value --json`` (and of the viewer's value column)."""
        return dict(self.__dict__)


def credit_value(
    repo: Repo,
    rev: str = "HEAD",
    *,
    config_file: str | Path | None = None,
    progress: Callable[[Any], None] | None = None,
) -> ValueCredit:
    """Split L_eval(θ_init) − L_eval(θ_final) among the contributors of the training data.

    Example i's value is −⟨c_i, ḡ⟩ with ḡ the eval-loss gradient averaged along the
    straight line from θ_init to θ_final (integrated gradients in weight space). Since
    L(θ_final) − L(θ_init) = −⟨Δθ, ḡ⟩ exactly and Δθ on the recorded parameters is
    init + Σ c_i + rounding, the values, the init and rounding shares, and
    ``unrecorded`` (the same product over the parameters the ledger does not record)
    sum to the improvement; ``residual`` is the quadrature error (and any buffer, such
    as batch-norm statistics, that the gradient does not see).
    """
    import numpy as np

    run, data = ledger_run(repo, rev, config_file=config_file, progress=progress)
    start, end = data.init_state(), run.weights()
    p = _probe(repo, run, data, start)
    _, l0, _ = p.loss_gradient()
    p.load(end)
    _, l1, _ = p.loss_gradient()
    g, rest = p.line_gradient(start, end, VALUE_POINTS)
    values = -np.asarray(data.contrib, dtype=np.float64) @ g
    init, rounding = float(-data.init_share @ g), float(-data.rounding @ g)
    improvement = l0 - l1
    info = _provenance(repo, run)
    labour = history.credit(repo, rev, datasets=[run.meta["train"]["dataset"]]).to_dict()
    tables = {}
    for by, key in (("author", "authors"), ("annotator", "annotators")):
        sums: dict[str, list[float]] = {}
        for k, i in enumerate(data.ids):
            name = info.get(i, {}).get(by) or "-"
            acc = sums.setdefault(name, [0.0, 0])
            acc[0] += float(values[k])
            acc[1] += 1
        counts = {c["name"]: c for c in labour[key]}
        tables[key] = sorted(
            (
                {
                    **counts.get(name, {"name": name}),
                    "value": v,
                    "share": v / improvement if improvement else 0.0,
                    "examples": n,
                }
                for name, (v, n) in sums.items()
            ),
            key=lambda r: (-r["value"], r["name"]),
        )
    answer = ValueCredit(
        run=run.id,
        ledger=data.folder.name,
        params=[q["name"] for q in data.meta["params"]],
        eval_loss_init=l0,
        eval_loss_final=l1,
        improvement=improvement,
        init=init,
        rounding=rounding,
        residual=improvement - float(values.sum()) - init - rounding + rest,
        authors=tables["authors"],
        annotators=tables["annotators"],
        unrecorded=-rest,
    )
    _keep(repo, repo.resolve(rev), answer)
    return answer


VALUE_FILE = "engine/credit-value.json"


def _keep(repo: Repo, commit: str, answer: ValueCredit) -> None:
    """Keep the last answer for the viewer (which never trains); a cache, so a
    failure to write it costs nothing."""
    import os

    import orjson

    path = repo.dotdir / VALUE_FILE
    try:
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".credit-value.{os.getpid()}.tmp")
        tmp.write_bytes(orjson.dumps({"commit": commit, **answer.to_dict()}))
        os.replace(tmp, path)
    except OSError:
        pass


def last_credit_value(repo: Repo, commit: str) -> dict[str, Any] | None:
    """The last `credit --value` answer when it was for ``commit``, else None."""
    import orjson

    try:
        kept = orjson.loads((repo.dotdir / VALUE_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return kept if kept.get("commit") == commit else None  # type: ignore[no-any-return]
