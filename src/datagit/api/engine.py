"""The data engine loop: suspected mislabels and what to label next, on the harness.

`suspects` gets out-of-sample class probabilities for every labelled example
from K-fold cross-validation — each fold an ordinary cached run of the
``[harness]`` config, keyed by its training records — ranks them with
confident learning (cleanlab) and re-ranks with history (`core.suspects`).
`suggest` ranks a dataset's unlabelled examples by the model's uncertainty.
Both answers are plain dataclasses with ``to_dict()``: the CLI's ``--json`` and
the web viewer render the same shape. The last suspects answer per dataset is
kept under ``.datagit/engine/`` so the viewer can show it without training.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import orjson

from datagit.api import harness
from datagit.api.dataset import DatasetView
from datagit.core import folds as folds_core
from datagit.core import suspects as rank_core
from datagit.core.blame import blame_dataset
from datagit.core.records import Record
from datagit.errors import InvalidInputError
from datagit.harness.config import HarnessConfig

if TYPE_CHECKING:
    from datagit.api.repo import Repo

FoldProgress = Callable[[int, int, bool], None]  # (fold done, folds, whether it was cached)
ENGINE_DIR = "engine"
STRATEGIES = ("entropy", "margin", "least-confidence")


@dataclass(frozen=True)
class Suspect:
    """One example the model thinks may be mislabelled."""

    id: str
    label: Any  # as given
    suggested: Any  # the model's label (for a flagged example, never the given one)
    score: float  # suspicion after history, 0–1 (high: likely wrong)
    quality: float  # cleanlab's label-quality score (low: likely wrong)
    issue: bool  # flagged as a label issue (cleanlab, or history made it likelier wrong)
    annotator: str | None
    commit: str | None  # the commit that last set the label
    lift: float = 1.0  # the odds history multiplied the model's by

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SuspectsReport:
    """``suspects`` over one dataset at one commit (the JSON the viewer shows)."""

    dataset: str
    rev: str
    commit: str
    folds: int
    runs: list[str]  # the fold runs, fold 0 first
    trained: int  # folds trained by this call (the rest came from the run cache)
    examples: int  # labelled examples ranked
    issues: int  # flagged, over the whole dataset
    features: list[str]  # the history features used
    since: str | None = None
    seconds: float = 0.0
    suspects: list[Suspect] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["suspects"] = [s.to_dict() for s in self.suspects]
        return d


def suspects(
    repo: Repo,
    dataset: str | None = None,
    rev: str = "HEAD",
    *,
    folds: int = 5,
    top: int | None = None,
    since: str | None = None,
    features: Sequence[str] = rank_core.DEFAULT_FEATURES,
    config: HarnessConfig | None = None,
    progress: FoldProgress | None = None,
) -> SuspectsReport:
    """The labelled examples of ``dataset`` (default: [harness] train) at ``rev``, most
    suspect first: ``top`` of them (all flagged ones when None), those changed since
    ``since`` only when given. Writes the answer to ``.datagit/engine/``."""
    start = time.perf_counter()
    rank_core.cleanlab()  # refuse before training when the extra is missing
    rank_core.check_features(features)
    if top is not None and top < 0:
        raise InvalidInputError(f"--top {top}: must be 0 or more")
    cfg = config or harness.load_config(repo)
    name = dataset or cfg.train
    view = repo.dataset(name, rev)
    labelled = [r for r in view.records if r.label is not None]
    folds_core.check(labelled, folds, f"dataset {name!r} at {rev}")
    changed = _changed_since(repo, name, since, rev) if since is not None else None
    probs, classes, runs, trained = fold_probabilities(repo, view, labelled, cfg, folds, progress)
    index = {_key(c): i for i, c in enumerate(classes)}
    labels = [index[_key(r.label)] for r in labelled]
    blame = blame_dataset(repo.git, view.commit or repo.resolve(rev), name)
    drops = _metric_drops(repo, cfg, name, blame.values()) if "metric" in features else {}
    provenance = [_provenance(blame.get(r.id), drops) for r in labelled]
    ranked = rank_core.rank(labels, probs, provenance, features)
    out = []
    for v in ranked:
        r = labelled[v.index]
        if changed is not None and r.id not in changed:
            continue
        b = blame.get(r.id)
        out.append(
            Suspect(
                r.id,
                r.label,
                classes[v.suggested],
                round(v.score, 6),
                round(v.quality, 6),
                v.issue,
                r.annotator or (b.annotator if b else None),
                b.commit if b else None,
                round(v.lift, 3),
            )
        )
    if top is None:
        out = [s for s in out if s.issue]
    report = SuspectsReport(
        name,
        rev,
        view.commit or "",
        folds,
        runs,
        trained,
        len(labelled),
        sum(v.issue for v in ranked),
        list(features),
        since,
        round(time.perf_counter() - start, 3),
        out[:top],
    )
    _save_last(repo, report)
    return report


def fold_probabilities(
    repo: Repo,
    view: DatasetView,
    labelled: list[Record],
    cfg: HarnessConfig,
    k: int,
    progress: FoldProgress | None = None,
) -> tuple[Any, list[Any], list[str], int]:
    """Out-of-sample probabilities [labelled examples, classes] (rows in ``labelled``'s
    order) from ``k`` cached runs; also the classes, the run ids and how many trained.

    Fold j trains on the labelled examples outside fold j and predicts fold j with
    its labels removed: the held-out labels never reach the run key, so re-labelling
    an example retrains only the folds that train on it.
    """
    import numpy as np

    classes = sorted({r.label for r in labelled}, key=str)
    col = {_key(c): i for i, c in enumerate(classes)}
    row = {r.id: i for i, r in enumerate(labelled)}
    probs = np.zeros((len(labelled), len(classes)), dtype=np.float64)
    fold = {r.id: folds_core.fold_of(r.id, k) for r in labelled}
    runs, trained = [], 0
    for j in range(k):
        train_view = DatasetView.from_records(
            repo,
            view.name,
            (r for r in labelled if fold[r.id] != j),
            rev=f"{view.rev}[folds {k}: not {j}]",
            commit=view.commit,
        )
        held = [replace(r, label=None, annotator=None) for r in labelled if fold[r.id] == j]
        if not held:
            continue
        eval_view = DatasetView.from_records(
            repo, view.name, held, rev=f"{view.rev}[folds {k}: {j}]", commit=view.commit
        )
        run = harness.train(repo, view.rev, config=cfg, train_view=train_view, eval_view=eval_view)
        trained += not run.cached
        runs.append(run.id)
        p = run.probs()
        cols = [col[_key(c)] for c in run.classes]
        for out_row, o in zip(p, run.outputs(), strict=True):
            probs[row[o["id"]], cols] = out_row
        if progress:
            progress(j + 1, k, run.cached)
    return probs, classes, runs, trained


def _provenance(b: Any, drops: dict[str, float]) -> rank_core.Provenance | None:
    if b is None:
        return None
    drop = drops.get(b.commit, 0.0)
    return rank_core.Provenance(b.commit, b.annotator, b.commit != b.added_in, drop)


def _metric_drops(
    repo: Repo, cfg: HarnessConfig, name: str, blame: Iterable[Any]
) -> dict[str, float]:
    """Per commit that set a label (and has a parent): how much training at it rather
    than at its first parent lowered the eval metric — two cached runs per commit."""
    if name != cfg.train:
        return {}  # the harness trains on another dataset: a move says nothing of these labels
    metric = "accuracy"
    drops: dict[str, float] = {}
    for commit in sorted({b.commit for b in blame}):
        parents = repo.git.commit(commit).parents
        if not parents:
            continue
        after = harness.train(repo, commit, config=cfg).metrics.get(metric, 0.0)
        before = harness.train(repo, parents[0], config=cfg).metrics.get(metric, 0.0)
        drops[commit] = max(0.0, float(before) - float(after))
    return drops


def _changed_since(repo: Repo, name: str, since: str, rev: str) -> set[str]:
    changes = repo.changes(since, rev).get(name, [])
    return {c.id for c in changes if c.new is not None}


def _key(label: Any) -> str:
    return orjson.dumps(label, option=orjson.OPT_SORT_KEYS).decode()


def _save_last(repo: Repo, report: SuspectsReport) -> None:
    """Keep the answer for the viewer; a cache, so a failure to write costs nothing."""
    folder = repo.dotdir / ENGINE_DIR
    try:
        folder.mkdir(exist_ok=True)
        tmp = folder / f".suspects-{report.dataset}.{os.getpid()}.tmp"
        tmp.write_bytes(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2))
        os.replace(tmp, folder / f"suspects-{_safe(report.dataset)}.json")
    except OSError:
        pass


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def last_suspects(repo: Repo, dataset: str) -> dict[str, Any] | None:
    """The last `suspects` answer for ``dataset`` as `SuspectsReport.to_dict()`, or None."""
    try:
        data = (repo.dotdir / ENGINE_DIR / f"suspects-{_safe(dataset)}.json").read_bytes()
    except OSError:
        return None
    return orjson.loads(data)  # type: ignore[no-any-return]


# -- suggest --------------------------------------------------------------------------
@dataclass(frozen=True)
class Suggestion:
    id: str
    predicted: Any
    confidence: float
    uncertainty: float


@dataclass
class SuggestReport:
    """The unlabelled examples worth a human's time, most useful first."""

    dataset: str
    rev: str
    strategy: str
    run: str  # the run that predicted the pool (usable with `label --from-run`)
    unlabelled: int
    diverse: bool
    suggestions: list[Suggestion] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["suggestions"] = [asdict(s) for s in self.suggestions]
        return d


def suggest(
    repo: Repo,
    pool: str,
    *,
    budget: int,
    strategy: str = "entropy",
    rev: str = "HEAD",
    diverse: bool = True,
    config: HarnessConfig | None = None,
) -> SuggestReport:
    """Rank the unlabelled examples of ``pool`` by the [harness] model's uncertainty.

    The model is trained on [harness] train at ``rev`` and predicts the pool's
    unlabelled examples (a cached run). With ``diverse``, a batch spreads over
    the class pairs the model hesitates between instead of taking ``budget``
    near-copies of one confusion.
    """
    if strategy not in STRATEGIES:
        raise InvalidInputError(
            f"unknown strategy {strategy!r}", hint=f"use one of: {', '.join(STRATEGIES)}"
        )
    if budget < 1:
        raise InvalidInputError(f"--budget {budget}: must be at least 1")
    import numpy as np

    cfg = config or harness.load_config(repo)
    view = repo.dataset(pool, rev)
    unlabelled = [r for r in view.records if r.label is None]
    if not unlabelled:
        raise InvalidInputError(
            f"dataset {pool!r} at {rev} has no unlabelled examples",
            hint="put unlabelled images directly in the dataset folder (no class folder), "
            "or leave a table's label cell empty",
        )
    run = predict_pool(repo, view, unlabelled, cfg)
    probs = np.asarray(run.probs(), dtype=np.float64)
    ids = [o["id"] for o in run.outputs()]
    scores = uncertainty(probs, strategy)
    chosen = (
        _diverse(probs, scores, budget) if diverse else list(np.argsort(-scores, kind="stable"))
    )
    out = [
        Suggestion(
            ids[i],
            run.classes[int(probs[i].argmax())],
            round(float(probs[i].max()), 6),
            round(float(scores[i]), 6),
        )
        for i in chosen[:budget]
    ]
    return SuggestReport(pool, rev, strategy, run.id, len(unlabelled), diverse, out)


def predict_pool(
    repo: Repo, view: DatasetView, unlabelled: list[Record], cfg: HarnessConfig
) -> Any:
    """The cached run of [harness] train at ``view``'s revision, predicting ``unlabelled``."""
    eval_view = DatasetView.from_records(
        repo, view.name, unlabelled, rev=f"{view.rev}[unlabelled]", commit=view.commit
    )
    return harness.train(repo, view.rev, config=cfg, eval_view=eval_view)


def uncertainty(probs: Any, strategy: str) -> Any:
    """Higher is more uncertain, for each strategy."""
    import numpy as np

    if strategy == "entropy":
        p = np.clip(probs, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1) / math.log(max(2, probs.shape[1]))
    top2 = -np.sort(-probs, axis=1)[:, :2]
    if strategy == "margin":
        second = top2[:, 1] if probs.shape[1] > 1 else 0.0
        return 1.0 - (top2[:, 0] - second)
    return 1.0 - top2[:, 0]


def _diverse(probs: Any, scores: Any, budget: int, decay: float = 0.5) -> list[int]:
    """Greedy batch: each pick discounts the remaining candidates that hesitate between
    the same two classes, so a batch covers several confusions."""
    import numpy as np

    order = np.argsort(-scores, kind="stable")[: max(budget * 4, budget)]
    pairs = np.sort(np.argsort(-probs[order], axis=1)[:, :2], axis=1)
    keys = [tuple(p) for p in pairs.tolist()]
    taken: dict[tuple[int, ...], int] = {}
    left = list(range(len(order)))
    out: list[int] = []
    while left and len(out) < budget:
        best = max(left, key=lambda j: (scores[order[j]] * decay ** taken.get(keys[j], 0), -j))
        left.remove(best)
        taken[keys[best]] = taken.get(keys[best], 0) + 1
        out.append(int(order[best]))
    return out
