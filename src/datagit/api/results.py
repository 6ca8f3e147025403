"""Read-only views of what models made of the data: runs along history, two runs
compared, a bisect's timeline, contributors' credit and suspected mislabels.

The web viewer draws these; each is a plain value built from the run cache
(`harness/runs.py`), the bisect state (`api/bisect.py`) and the history verbs,
so it costs no training and writes nothing.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datagit.api import bisect, harness, history
from datagit.core.changes import counts

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.harness.runs import Run


# -- runs along history ------------------------------------------------------------
@dataclass
class Point:
    """One commit's value of a metric: the mean over its runs (seeds) and their spread."""

    commit: str
    summary: str
    time: int
    value: float
    spread: float  # max - min over the runs at this commit (0 for one run)
    runs: list[str]


def metric_names(runs: list[Run]) -> list[str]:
    """Numeric metrics any run reports, accuracy first."""
    names = {k for r in runs for k, v in r.metrics.items() if isinstance(v, int | float)}
    return sorted(names, key=lambda n: (n != "accuracy", n))


def series(repo: Repo, metric: str, runs: list[Run] | None = None) -> list[Point]:
    """The metric per trained-on commit, oldest commit first."""
    by_commit: dict[str, list[Run]] = {}
    for r in runs if runs is not None else harness.runs(repo):
        if isinstance(r.metrics.get(metric), int | float):
            by_commit.setdefault(r.meta["train"]["commit"], []).append(r)
    points = []
    for commit, rs in by_commit.items():
        values = [float(r.metrics[metric]) for r in rs]
        info = repo.git.commit(commit)
        points.append(
            Point(
                commit,
                info.summary,
                info.author.time,
                statistics.fmean(values),
                max(values) - min(values),
                [r.id for r in rs],
            )
        )
    points.sort(key=lambda p: (p.time, p.commit))
    return points


# -- two runs side by side -------------------------------------------------------------
@dataclass
class VerdictChange:
    id: str
    label: Any
    pred_a: Any
    pred_b: Any
    loss_a: float | None
    loss_b: float | None


@dataclass
class Comparison:
    a: Run
    b: Run
    metrics: list[tuple[str, Any, Any]]
    fixed: list[VerdictChange] = field(default_factory=list)  # wrong in a, right in b
    broken: list[VerdictChange] = field(default_factory=list)  # right in a, wrong in b
    only_a: int = 0
    only_b: int = 0


def compare(repo: Repo, run_a: str, run_b: str) -> Comparison:
    """Metrics of two runs and the eval examples whose verdict (right/wrong) changed."""
    a, b = harness.show(repo, run_a), harness.show(repo, run_b)
    names = sorted(set(a.metrics) | set(b.metrics), key=lambda n: (n != "accuracy", n))
    out = Comparison(a, b, [(n, a.metrics.get(n), b.metrics.get(n)) for n in names])
    outs_a = {o["id"]: o for o in a.outputs()}
    outs_b = {o["id"]: o for o in b.outputs()}
    out.only_a = len(outs_a.keys() - outs_b.keys())
    out.only_b = len(outs_b.keys() - outs_a.keys())
    for i in sorted(outs_a.keys() & outs_b.keys()):
        oa, ob = outs_a[i], outs_b[i]
        ra, rb = oa["pred"] == oa["label"], ob["pred"] == ob["label"]
        if ra == rb:
            continue
        change = VerdictChange(
            i, ob["label"], oa["pred"], ob["pred"], oa.get("loss"), ob.get("loss")
        )
        (out.fixed if rb else out.broken).append(change)
    return out


# -- bisect ------------------------------------------------------------------------------
_MARK = re.compile(r"^# ([\w-]+): \[([0-9a-f]{40})\] ?(.*)$")
_FIRST = re.compile(r"^# first (\w+) commit: \[([0-9a-f]{40})\]")


@dataclass
class BisectStep:
    """One tested commit, in the order it was marked."""

    commit: str
    summary: str
    verdict: str  # the user's word: good/bad/skip or the custom terms
    value: float | None = None  # the metric from the run cache, when a run exists
    spread: float | None = None


@dataclass
class BisectView:
    terms: bisect.Terms
    steps: list[BisectStep]
    culprit: str | None
    culprit_changes: dict[str, dict[str, int]]
    transitions: dict[str, list[tuple[str, str, int]]]
    log: str
    metric: str


def bisect_view(repo: Repo, metric: str = "accuracy") -> BisectView | None:
    """The bisect in progress (None when there is none): its marks as a timeline, the
    first bad commit once found, and what that commit changed."""
    if not bisect.in_progress(repo):
        return None
    terms = bisect.terms(repo)
    text = bisect.log(repo)
    values = {p.commit: p for p in series(repo, metric)}
    steps: list[BisectStep] = []
    culprit = None
    for line in text.splitlines():
        m = _MARK.match(line)
        if m and not line.startswith("# first "):
            word, oid, summary = m.groups()
            p = values.get(oid)
            steps.append(
                BisectStep(oid, summary, word, p.value if p else None, p.spread if p else None)
            )
        f = _FIRST.match(line)
        if f:
            culprit = f.group(2)
    changes: dict[str, dict[str, int]] = {}
    table: dict[str, list[tuple[str, str, int]]] = {}
    if culprit is not None:
        info = repo.git.commit(culprit)
        parent = info.parents[0] if info.parents else None
        for name, ch in repo.changes(parent, culprit).items():
            if ch:
                changes[name] = counts(ch)
        if parent is not None:
            for d in history.diff(repo, parent, culprit).datasets:
                if d.transitions():
                    table[d.name] = d.transitions()
    return BisectView(terms, steps, culprit, changes, table, text, metric)


# -- suspected mislabels ------------------------------------------------------------------
@dataclass
class Suspect:
    """An example whose label the model disputes: its label, the model's, and how surely."""

    dataset: str
    id: str
    label: Any
    suggested: Any
    score: float  # higher: more likely mislabelled (here: the run's loss on it)
    content: str | None = None  # for the thumbnail (None for inline text rows)
    commit: str | None = None  # where the example was scored


@dataclass
class Suspects:
    run: str
    source: str  # what scored them, in words
    items: list[Suspect]


def suspects(repo: Repo, run_id: str | None = None, limit: int = 60) -> Suspects | None:
    """The eval examples the newest (or a given) run got wrong, by loss, highest first.

    Until `datagit suspects` scores training examples out of sample, the run
    cache's own eval outputs are the evidence there is; None without any run.
    """
    runs = harness.runs(repo)
    if run_id is not None:
        runs = [harness.show(repo, run_id)]
    if not runs:
        return None
    run = runs[0]
    dataset = run.meta["eval"]["dataset"]
    tree = repo.dataset_tree(dataset, run.meta["eval"]["commit"])
    wrong = [o for o in run.outputs() if o["pred"] != o["label"] and o.get("loss") is not None]
    wrong.sort(key=lambda o: -float(o["loss"]))
    items = []
    for o in wrong[:limit]:
        rec = tree.get(o["id"])
        items.append(
            Suspect(
                dataset,
                o["id"],
                o["label"],
                o["pred"],
                float(o["loss"]),
                rec.content if rec is not None and rec.text is None else None,
                run.meta["eval"]["commit"],
            )
        )
    return Suspects(run.id, f"eval loss of run {run.id[:10]}", items)
