"""`bisect narrow`: which examples of the first bad commit cause the regression.

Two stages, cheapest first. Ranking costs no training: the parent's cached
run scores each changed example by its harm (see
`harness.influence_scores`), and examples its model disagrees with (a new label
it finds unlikely) whose harm is positive are the suspects. Confirming costs
retrains: the parent's data plus every change except the top-ranked ones
(`core.hunt.narrow_order`), until the metric recovers three quarters of the
loss; then the parent's data plus only those, to show they reproduce it.
Every retrain is a cached run keyed by its records, so narrowing again trains
nothing.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagit.api import bisect as api_bisect
from datagit.api import harness, hunt
from datagit.api.dataset import DatasetView
from datagit.core import hunt as core
from datagit.core.changes import Change
from datagit.core.diff import label_key
from datagit.errors import DatagitError, InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.harness.config import HarnessConfig

RECOVERY = 0.75  # share of the way back to the parent's value a retrain must reach


@dataclass
class Narrowing:
    culprit: str
    parent: str
    dataset: str
    metric: str
    parent_value: float
    bad_value: float
    changes: int
    regressed: list[str]
    harmful: list[dict[str, Any]]
    ranked: list[dict[str, Any]]
    trials: list[dict[str, Any]] = field(default_factory=list)
    reproduced: float | None = None
    retrains: int = 0
    status: str = "confirmed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _culprit(repo: Repo, commit: str | None, state: dict[str, Any] | None) -> str:
    if commit is not None:
        return repo.resolve(commit)
    first_bad = ((state or {}).get("result") or {}).get("first_bad")
    if not first_bad:
        raise DatagitError(
            "no first bad commit to narrow",
            hint="finish `datagit bisect run --harness` first, or give --commit C",
        )
    return str(first_bad)


def narrow(
    repo: Repo,
    *,
    commit: str | None = None,
    max_retrains: int = 20,
    config_file: str | None = None,
    config_rev: str | None = None,
    metric: str | None = None,
) -> Narrowing:
    """Rank the culprit's changed examples by harm, confirm by retraining, record it."""
    if max_retrains < 2:
        raise InvalidInputError("--max-retrains must be at least 2")
    state = hunt.load(repo)
    culprit = _culprit(repo, commit, state)
    cfg, metric = _judge(repo, state, config_file, config_rev, metric)
    info = repo.git.commit(culprit)
    if not info.parents:
        raise InvalidInputError(
            f"commit {culprit[:10]} has no parent to compare with",
            hint="narrow a commit that changed an existing dataset",
        )
    parent = info.parents[0]
    changes = repo.changes(parent, culprit).get(cfg.train, [])
    if not changes:
        raise InvalidInputError(
            f"commit {culprit[:10]} changes no example of the train dataset {cfg.train!r}",
            hint="narrow the commit that changed the training data",
        )
    good_run = harness.train(repo, parent, config=cfg)
    bad_run = harness.train(repo, culprit, config=cfg)
    good_v = core.metric_value(good_run.metrics, metric)
    bad_v = core.metric_value(bad_run.metrics, metric)
    regressed = _regressed(good_run.outputs(), bad_run.outputs())
    ranked = _rank(repo, cfg, culprit, changes, good_run, regressed, info.author.name)
    # the suspects, unless the harm scores of all changes split off a smaller top group
    suspects = sum(1 for r in ranked if r["suspect"])
    suspects = min(suspects, core.natural_cut(sorted((r["harm"] for r in ranked), reverse=True)))
    same_hunt = ((state or {}).get("result") or {}).get("first_bad") == culprit
    rule = _rule(state if same_hunt else None, metric, good_v, bad_v)
    parent_records = {r.id: r for r in repo.records(cfg.train, parent)}
    by_id = {c.id: c for c in changes}
    order = [r["id"] for r in ranked]

    def retrain(apply: list[str], name: str) -> float:
        recs = dict(parent_records)
        for cid in apply:
            c = by_id[cid]
            if c.new is None:
                recs.pop(cid, None)
            else:
                recs[cid] = c.new
        view = DatasetView.from_records(
            repo, cfg.train, recs.values(), rev=f"{culprit[:10]}[{name}]", commit=culprit
        )
        run = harness.train(repo, culprit, config=cfg, train_view=view)
        return core.metric_value(run.metrics, metric)

    def recovered(reverted: list[str] | tuple[str, ...] | Any) -> tuple[float, bool]:
        gone = set(reverted)
        value = retrain([i for i in order if i not in gone], f"without top {len(gone)}")
        return value, rule.judge([value]) == core.OLD

    cut, trials = core.narrow_order(
        order, suspects, recovered, max_retrains - 1, bad=bad_v, good=good_v
    )
    result = Narrowing(
        culprit, parent, cfg.train, metric, good_v, bad_v, len(changes), regressed,
        harmful=[], ranked=ranked, trials=[asdict(t) for t in trials], retrains=len(trials),
    )  # fmt: skip
    if cut == 0:
        result.status = "not confirmed: no cut recovered within --max-retrains"
        cut = suspects
    else:
        result.reproduced = retrain(order[:cut], f"only top {cut}")
        result.retrains += 1
        if rule.judge([result.reproduced]) != core.NEW:
            result.status = "partly confirmed: the suspects alone do not reproduce the loss"
    confirmed = result.status == "confirmed"
    for r in ranked[:cut]:
        r["verdict"] = "harmful" if confirmed else "suspected"
    result.harmful = ranked[:cut]
    if (
        state is not None
        and state.get("result", {})
        and (state["result"].get("first_bad") == culprit)
    ):
        state["narrow"] = result.to_dict()
        hunt.save(repo, state)
    elif state is None or commit is not None:
        hunt.save(repo, {**(state or {}), "narrow": result.to_dict()})
    return result


def _judge(
    repo: Repo,
    state: dict[str, Any] | None,
    config_file: str | None,
    config_rev: str | None,
    metric: str | None,
) -> tuple[HarnessConfig, str]:
    """The hunt's config and metric, unless the user names others."""
    from datagit.harness import config as hconfig

    if config_file is None and config_rev is None and state and "config" in state:
        raw = dict(state["config"])
        cfg = hconfig.parse({k: v for k, v in raw.items() if v is not None}, "the hunt's config")
    else:
        cfg = harness.load_config(repo, config_file, config_rev=config_rev)
    metric = metric or ((state or {}).get("rule") or {}).get("metric") or "accuracy"
    core.check_metric(metric, cfg.metrics)
    return cfg, metric


def _rule(state: dict[str, Any] | None, metric: str, good: float, bad: float) -> core.Rule:
    """Recovered means three quarters of the way back from the culprit's value to the
    parent's — and good under the hunt's own rule when there is one (a retrain is one
    seed, so its noise band is ignored). Halfway would let half the flips pass."""
    threshold = bad + RECOVERY * (good - bad)
    rule = (state or {}).get("rule") or {}
    if rule.get("metric") == metric and rule.get("threshold") is not None:
        pick = max if core.higher_is_better(metric) else min
        threshold = pick(threshold, float(rule["threshold"]))
    return core.Rule(metric, "narrow", threshold)


def _regressed(good: list[dict[str, Any]], bad: list[dict[str, Any]]) -> list[str]:
    """Eval examples the parent's model got right and the culprit's got wrong."""
    was = {o["id"]: o["pred"] == o["label"] for o in good}
    return [o["id"] for o in bad if was.get(o["id"]) and o["pred"] != o["label"]]


def _rank(
    repo: Repo,
    cfg: HarnessConfig,
    culprit: str,
    changes: list[Change],
    good_run: Any,
    regressed: list[str],
    author: str,
) -> list[dict[str, Any]]:
    from datagit.harness.influence_scores import example_scores

    olds = [c.old for c in changes if c.old is not None]
    news = [c.new for c in changes if c.new is not None]
    eval_view = repo.dataset(cfg.eval, cfg.eval_rev or culprit)
    keep = set(regressed)
    ref = eval_view.subset(lambda r: r.id in keep)
    views = {
        "old": DatasetView.from_records(repo, cfg.train, olds, rev="old", commit=None),
        "new": DatasetView.from_records(repo, cfg.train, news, rev="new", commit=None),
    }
    scores = example_scores(
        cfg,
        good_run.weights_path,
        good_run.classes,
        tuple(good_run.meta["input_shape"]),
        views,
        ref,
        Path(repo.workdir),
        good_run.meta.get("normalisation"),
    )
    harms = [abs(s["harm"]) for v in scores.values() for s in v.values()] or [1.0]
    scale = statistics.fmean(harms) or 1.0
    out: list[dict[str, Any]] = []
    for c in changes:
        old = scores["old"].get(c.id) if c.old is not None else None
        new = scores["new"].get(c.id) if c.new is not None else None
        harm = (new["harm"] if new else 0.0) - (old["harm"] if old else 0.0)
        disagrees = new is None or new["pred"] != c.new.label  # type: ignore[union-attr]
        p_wrong = 1.0 - new["p_label"] if new else 0.5
        out.append(
            {
                "id": c.id,
                "kind": c.kind,
                "old_label": label_key(c.old.label) if c.old else None,
                "new_label": label_key(c.new.label) if c.new else None,
                "annotator": c.new.annotator if c.new else c.old.annotator if c.old else None,
                "author": author,
                "harm": harm / scale,
                "loss": new["loss"] if new else None,
                "parent_prediction": label_key(new["pred"]) if new else None,
                "suspect": harm > 0 and disagrees,
                "confidence": round(p_wrong, 4),
                "verdict": "kept",
            }
        )
    out.sort(key=lambda r: (not r["suspect"], -float(r["harm"]), str(r["id"])))
    return out


def apply(repo: Repo, result: Narrowing) -> dict[str, Any]:
    """Revert the harmful changes in the workspace and stage the dataset.

    Only examples that HEAD still holds as the culprit left them are reverted;
    the rest are listed. Nothing is touched when a precondition fails. Image
    folders get their files moved back, written back or removed; a table gets
    its label cells set back and its harmful added rows removed (through the same
    `relabel` and `rm` a user runs), and a table row whose bytes the culprit
    changed or removed is listed, not reverted.
    """
    if api_bisect.in_progress(repo):
        raise DatagitError(
            "narrow --apply changes the workspace, which bisect has checked out elsewhere",
            hint="run `datagit bisect reset` first (the hunt's results are kept), then --apply",
        )
    cfg = repo.dataset_config(result.dataset)
    status = repo.status()
    if not status.clean:
        raise DatagitError(
            "narrow --apply needs a clean workspace", hint="commit or discard your changes first"
        )
    if cfg.layout == "table":
        return _apply_table(repo, result)
    head = {r.id: r for r in repo.records(result.dataset, "HEAD")}
    root = repo.workdir / cfg.path
    moves: list[tuple[Path | None, Path | None, Any, Any]] = []
    kept = []
    for e in result.harmful:
        old = _record(repo, result.dataset, e["id"], result.parent)
        new = _record(repo, result.dataset, e["id"], result.culprit)
        now = head.get(e["id"])
        if (now is None) != (new is None) or (now and new and not now.same_example(new)):
            kept.append(e["id"])
            continue
        src = root / str(new.label) / e["id"] if new else None
        dst = root / str(old.label) / e["id"] if old else None
        moves.append((src, dst, old, new))
    for src, dst, old, new in moves:
        if dst is not None:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src is not None and new is not None and old.content == new.content:
                src.rename(dst)  # a re-label: the same bytes go back to their class folder
                continue
            dst.write_bytes(repo.read(old))
        if src is not None:
            src.unlink()
    repo.add([result.dataset])
    return {"reverted": len(moves), "kept_changed": kept}


def _apply_table(repo: Repo, result: Narrowing) -> dict[str, Any]:
    from datagit.api import examples, relabel

    head = {r.id: r for r in repo.records(result.dataset, "HEAD")}
    labels, drop, kept = [], [], []
    for e in result.harmful:
        old = _record(repo, result.dataset, e["id"], result.parent)
        new = _record(repo, result.dataset, e["id"], result.culprit)
        now = head.get(e["id"])
        if new is None or now is None or not now.same_example(new):
            kept.append(e["id"])  # removed by the culprit, or changed since: by hand
        elif old is None:
            drop.append(str(repo.workdir / result.dataset / e["id"]))  # rm resolves paths
        elif old.content == new.content:
            labels.append((result.dataset, e["id"], old.label))
        else:
            kept.append(e["id"])  # the culprit rewrote the row's bytes: by hand
    if drop:
        examples.rm(repo, drop)
    if labels:
        relabel.relabel(repo, labels)
    return {"reverted": len(labels) + len(drop), "kept_changed": kept}


def _record(repo: Repo, dataset: str, example_id: str, rev: str) -> Any:
    return repo.dataset_tree(dataset, rev).get(example_id)
