"""Weight-region blame: from the trained weights back to examples,
commits and contributors, through the ledger the harness records while it trains.

`ledger_run` finds (or trains) a run holding a ledger; `blame_region` ranks
training examples — or commits, authors, annotators, labels, as exact sums of
their examples — by how far their accounts moved a weight region, by the
first-order loss change they caused on chosen eval examples, or by a
curvature-corrected counterfactual estimate (`credit --value`, which splits the
eval loss improvement among contributors, is `datagit.api.value_credit`).
`RegionBlame.to_dict` is the one JSON shape of the answer, for the CLI and the
viewer alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagit.api import harness, history
from datagit.errors import DatagitError, InvalidInputError
from datagit.harness import config as hconfig
from datagit.harness.config import HarnessConfig
from datagit.harness.runs import Run

if TYPE_CHECKING:
    import numpy as np

    from datagit.api.repo import Repo
    from datagit.harness.influence import Probe
    from datagit.harness.ledger import Ledger
    from datagit.harness.region import LedgerData

BY = ("example", "commit", "author", "annotator", "label")
COUNTERFACTUAL_DAMPING = 1e-3  # added to the Hessian's diagonal (with the weight decay)


# -- recording and finding ledgers --------------------------------------------------
def ledger_hook(
    cfg: HarnessConfig, layers: Sequence[str] | None = None, examples: int = 0
) -> Ledger | None:
    """The ledger hook for ``layers`` (given, else ``[harness] ledger``; None: no ledger);
    ``examples``, when known, sizes its accounts once and gives it the run's plan (the
    learning rate of every step), so a long run stays within its memory bound."""
    chosen = tuple(layers) if layers is not None else cfg.ledger
    if chosen is None:
        return None
    from datagit.harness.ledger import Ledger
    from datagit.harness.ledger_layers import planned_lrs

    plan = (lambda: planned_lrs(cfg, examples)) if examples else None
    return Ledger(
        chosen, cfg.ledger_dtype, cfg.digest, capacity=examples, epochs=cfg.epochs, plan=plan
    )


def train_size(repo: Repo, rev: str, cfg: HarnessConfig) -> int:
    """How many examples the run of ``rev`` trains on (0 when it cannot be told)."""
    try:
        return len(repo.dataset(cfg.train, repo.resolve(rev)))
    except DatagitError:  # the harness reports a missing dataset better, when it trains
        return 0


def ledger_run(
    repo: Repo,
    rev: str = "HEAD",
    *,
    run_id: str | None = None,
    config_file: str | Path | None = None,
    layers: Sequence[str] | None = None,
    want: str | None = None,
    progress: Callable[[Any], None] | None = None,
    seed: int | None = None,
) -> tuple[Run, LedgerData]:
    """A run with a ledger: run ``run_id`` as it is, or the run of ``rev`` (trained with a
    ledger when the cache lacks one; ``seed`` overrides the config's). ``want`` picks,
    among several ledgers, one that records that parameter."""
    from datagit.harness.region import LedgerData

    if run_id is not None:
        run = harness.show(repo, run_id)
        keys = [k for k in run.artifacts() if k.startswith("ledger-")]
        if not keys:
            rev_hint = run.meta.get("train", {}).get("rev", "REV")
            raise InvalidInputError(
                f"run {run.id} was trained without a ledger",
                hint=f"record one with `datagit train {rev_hint} --ledger` "
                "(or [harness] ledger = [] in datagit.toml)",
            )
        datas = [LedgerData(run.path / "artifacts" / k) for k in keys]
        data = _pick(datas, want)
    else:
        over: dict[str, Any] = {} if seed is None else {"seed": seed}
        cfg = harness.load_config(repo, config_file, **over)
        found = _cached(repo, rev, cfg, want) if layers is None else None
        if found is not None:
            run, data = found
        else:
            chosen = layers if layers is not None else (cfg.ledger or ())
            hook = ledger_hook(cfg, chosen, train_size(repo, rev, cfg))
            assert hook is not None
            run = harness.train(repo, rev, config=cfg, hooks=[hook], progress=progress)
            folder = run.artifact(hook.key)
            assert folder is not None
            data = LedgerData(folder)
    run_config = run.meta.get("key", {}).get("config")
    if data.meta.get("config") and data.meta["config"] != run_config:
        raise InvalidInputError(
            f"the ledger in run {run.id} was recorded under another harness config "
            f"({str(data.meta['config'])[:12]}, the run's is {str(run_config)[:12]})",
            hint="record it again with `datagit train REV --ledger --no-cache`",
        )
    return run, data


def ledger_info(run: Run, key: str) -> dict[str, Any] | None:
    """What a run's ledger ``key`` holds, read from its ledger.json (no torch, no numpy)."""
    import json

    folder = run.artifact(key)
    if folder is None:
        return None
    meta = json.loads((folder / "ledger.json").read_text())
    size = 0
    for p in meta["params"]:
        n = 1
        for s in p["shape"]:
            n *= s
        size += n
    return {
        "key": key,
        "params": [p["name"] for p in meta["params"]],
        "size": size,
        "examples": len(meta["ids"]),
        "dtype": meta["dtype"],
        "rule": meta["rule"],
        "steps": meta["steps"],
        "memory_bytes": meta["memory_bytes"],
        "table_bytes": meta.get("table_bytes", 0),
        "seconds": meta["seconds"],
    }


def _cached(
    repo: Repo, rev: str, cfg: HarnessConfig, want: str | None
) -> tuple[Run, LedgerData] | None:
    """The cached run of ``rev`` when one of its ledgers records ``want``."""
    from datagit.harness.region import LedgerData

    if want is None:
        return None
    hit = harness.store(repo).get(harness.plan(repo, rev, cfg).key.id)
    if hit is None:
        return None
    for key in hit.artifacts():
        if key.startswith("ledger-"):
            data = LedgerData(hit.path / "artifacts" / key)
            if data.real_name(want) in data.params:
                return hit, data
    return None


def _pick(datas: list[LedgerData], want: str | None) -> LedgerData:
    if want is not None:
        for d in datas:
            if d.real_name(want) in d.params:
                return d
    return datas[0]


def run_config(run: Run) -> HarnessConfig:
    """The harness config a run was trained with, as stored in its run.json."""
    raw = {
        k: list(v) if isinstance(v, tuple) else v  # a run saved in this process holds tuples
        for k, v in run.meta.get("config", {}).items()
        if v is not None
    }
    return hconfig.parse(raw, f"run {run.id} config")


def _probe(repo: Repo, run: Run, data: LedgerData, state: dict[str, Any]) -> Probe:
    from datagit.harness.influence import probe

    cfg = run_config(run)
    train_view = repo.dataset(cfg.train, run.meta["train"]["commit"])
    eval_view = repo.dataset(cfg.eval, run.meta["eval"]["commit"])
    names = [p["name"] for p in data.meta["params"]]
    return probe(cfg, run.meta, state, train_view, eval_view, names, data.output, repo.workdir)


# -- blame --region -----------------------------------------------------------------
@dataclass
class RegionRow:
    """One ranked line: an example, or a group of examples (commit, author, ...)."""

    key: str
    score: float
    norm: float
    examples: int
    label: Any = None
    commit: str | None = None
    author: str | None = None
    annotator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RegionBlame:
    """The answer of ``blame --region``; the scores plus init and rounding add up to total."""

    run: str
    train_commit: str
    ledger: str
    region: str
    size: int
    by: str
    method: str  # path | loss | counterfactual
    total: float  # ‖Δθ_R‖ (path), ⟨Δθ_R, ∇L⟩ (loss), Σ estimates (counterfactual)
    delta_norm: float
    init: float | None
    rounding: float | None
    examples: int
    rows: list[RegionRow] = field(default_factory=list)
    eval_examples: list[str] = field(default_factory=list)
    estimator: str = ""  # counterfactual: exact-hessian | projected-fisher (k=…) | empirical-fisher
    seeds: list[int] = field(default_factory=list)  # counterfactual: the runs' seeds

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``blame --region --json`` (and of the viewer's region blame)."""
        d = {k: v for k, v in self.__dict__.items() if k != "rows"}
        d["rows"] = [r.to_dict() for r in self.rows]
        return d


def blame_region(
    repo: Repo,
    region: str | None = None,
    *,
    rev: str = "HEAD",
    run_id: str | None = None,
    config_file: str | Path | None = None,
    cls: str | None = None,
    by: str = "example",
    top: int = 20,
    negative: bool = False,
    eval_examples: Sequence[str] | None = None,
    regressed: str | None = None,
    counterfactual: bool = False,
    projection_dim: int = 2048,
    progress: Callable[[Any], None] | None = None,
    ensemble: int = 1,
) -> RegionBlame:
    """Rank training examples (or their commits, authors, annotators, labels) by what
    their ledger accounts did to ``region`` (or to the output row of class ``cls``).
    ``counterfactual``: influence estimates instead (along the region's change, or of the
    eval examples' loss), exact for the output layer and projected to ``projection_dim``
    dimensions for other layers; ``ensemble``: of eval examples' loss, averaged over that
    many seeds (`datagit.api.counterfactual`)."""
    import numpy as np

    from datagit.harness.region import Region, project

    if by not in BY:
        raise InvalidInputError(f"--by {by!r} is not one of {', '.join(BY)}")
    if (region is None) == (cls is None):
        raise InvalidInputError(
            "give a region or --class, not both or neither",
            hint="e.g. --region 'output.weight[8]' or --class 8",
        )
    if regressed is not None:
        a, sep, b = regressed.partition("..")
        if not sep or not a or not b:
            raise InvalidInputError(f"--regressed {regressed!r} is not A..B")
        rev = b
    parsed = Region.parse(region) if region is not None else None
    if ensemble != 1:  # before any training
        from datagit.api.counterfactual import check_ensemble

        check_ensemble(ensemble, counterfactual, bool(regressed or eval_examples), run_id)
    run, data = ledger_run(
        repo,
        rev,
        run_id=run_id,
        config_file=config_file,
        want=parsed.param if parsed else "output.weight",
    )
    if parsed is not None:
        idx, name = data.indices(parsed), str(parsed)
    else:
        row = _class_row(run, str(cls))
        idx, name = data.class_indices(row), f"class {cls} (output row {row})"
    delta = data.delta(idx)
    dnorm = float(np.linalg.norm(delta))
    wanted: list[str] = []
    if regressed is not None:
        wanted = _regressed(repo, regressed.split("..")[0], run, config_file)
    elif eval_examples:
        wanted = list(eval_examples)
    method, estimator = "path", ""
    seeds: list[int] = []
    init: float | None
    rounding: float | None
    if counterfactual:
        from datagit.api import counterfactual as cf

        cf.check_region(ensemble, parsed, data, name)
        if not wanted and dnorm == 0.0:
            raise InvalidInputError(f"region {name} did not move during training")
        scores, estimator, seeds = cf.estimates(
            repo, run, data, idx, None if wanted else delta / dnorm, wanted, rev=rev,
            config_file=config_file, projection_dim=projection_dim, ensemble=ensemble,
            want=parsed.param if parsed else "output.weight",
        )  # fmt: skip
        norms = np.abs(scores)
        method, total, init, rounding = "counterfactual", float(scores.sum()), None, None
    else:
        direction = None
        if wanted:
            p = _probe(repo, run, data, run.weights())
            grad = p.loss_gradient(wanted)[0]
            direction, method = grad[idx], "loss"
        s = project(data, idx, direction)
        scores, norms = s.score, s.norm
        total, init, rounding = s.total, s.init, s.rounding
    rows = _group(repo, run, data, idx, scores, norms, by, counterfactual)
    rows.sort(key=lambda r: (r.score if negative else -r.score, r.key))
    return RegionBlame(
        run=run.id,
        train_commit=run.meta["train"]["commit"],
        ledger=data.folder.name,
        region=name,
        size=len(idx),
        by=by,
        method=method,
        total=total,
        delta_norm=dnorm,
        init=init,
        rounding=rounding,
        examples=len(data.ids),
        rows=rows[:top] if top > 0 else rows,
        eval_examples=wanted,
        estimator=estimator,
        seeds=seeds,
    )


def _class_row(run: Run, cls: str) -> int:
    classes = [str(c) for c in run.classes]
    if cls not in classes:
        raise InvalidInputError(
            f"--class {cls!r} is not a class of run {run.id}",
            hint=f"classes: {', '.join(classes)}",
        )
    return classes.index(cls)


def _regressed(repo: Repo, base: str, run: Run, config_file: str | Path | None) -> list[str]:
    """Eval examples the run at ``base`` got right and ``run`` gets wrong."""
    cfg = harness.load_config(repo, config_file)
    before = {o["id"]: o for o in harness.train(repo, base, config=cfg).outputs()}
    worse = [
        o["id"]
        for o in run.outputs()
        if o["id"] in before
        and str(before[o["id"]]["pred"]) == str(o["label"])
        and str(o["pred"]) != str(o["label"])
    ]
    if not worse:
        raise InvalidInputError(
            f"no eval example regressed between {base} and run {run.id}",
            hint="compare other revisions, or name examples with --eval-examples",
        )
    return worse


def _group(
    repo: Repo,
    run: Run,
    data: LedgerData,
    idx: np.ndarray,
    scores: np.ndarray,
    norms: np.ndarray,
    by: str,
    estimate: bool,
) -> list[RegionRow]:
    """Rows per example, or exact sums per commit/author/annotator/label."""
    import numpy as np

    info = _provenance(repo, run)
    if by == "example":
        out = []
        for k, i in enumerate(data.ids):
            p = info.get(i, {})
            out.append(
                RegionRow(
                    i,
                    float(scores[k]),
                    float(norms[k]),
                    1,
                    p.get("label"),
                    p.get("commit"),
                    p.get("author"),
                    p.get("annotator"),
                )
            )
        return out
    groups: dict[str, list[int]] = {}
    for k, i in enumerate(data.ids):
        value = info.get(i, {}).get(by)
        groups.setdefault("-" if value is None else str(value), []).append(k)
    out = []
    for key, members in groups.items():
        m = np.array(members)
        if estimate:
            norm = float(abs(scores[m].sum()))
        else:  # the norm of the group's summed account, an exact vector sum
            summed = np.asarray(data.contrib[m][:, idx], dtype=np.float64).sum(0)
            norm = float(np.linalg.norm(summed))
        row = RegionRow(key, float(scores[m].sum()), norm, len(members))
        if by == "commit":
            row.author = info[data.ids[members[0]]].get("author")
        out.append(row)
    return out


def _provenance(repo: Repo, run: Run) -> dict[str, dict[str, Any]]:
    """Per training id: label, the commit that last set its label or bytes, author, annotator."""
    train = run.meta.get("train", {})
    commit = train.get("commit")
    if not commit:
        return {}
    rows = history.blame(repo, train["dataset"], commit)
    authors: dict[str, str] = {}
    out = {}
    for b in rows:
        c = b.set_in or b.commit
        if c not in authors:
            authors[c] = repo.git.commit(c).author.name
        out[b.id] = {
            "label": b.label,
            "commit": c,
            "author": authors[c],
            "annotator": b.annotator,
        }
    return out
