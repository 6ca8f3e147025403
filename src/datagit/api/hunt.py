"""`bisect run --harness`: find the data commit that made a metric regress, by training.

One judge for every commit: the harness config is fixed when the hunt starts
(the ``datagit.toml`` of the commit bisect started from, ``--config FILE`` or
``--config-rev REV``) and recorded in ``.datagit/HUNT``. Training reads each
commit's trees through the run cache and never checks the workspace out.

The endpoints are measured first (with at least three seeds when the rule is
derived from their noise) and must be good and bad under the rule; then each
round evaluates ``jobs`` commits at once (multisection), marks them with git's
refs and log lines, and stops when bisect has its answer. A commit inside the
noise band gets more seeds, up to ``max_seeds``, then is skipped — never guessed.
``.datagit/HUNT`` outlives ``bisect reset``, so ``narrow`` and ``report`` work after it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from datagit.api import bisect as api_bisect
from datagit.api import executors as ex
from datagit.api import harness
from datagit.core import bisect as core_bisect
from datagit.core import hunt as core
from datagit.errors import DatagitError, InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.harness.config import HarnessConfig

HUNT = "HUNT"
FORMAT = "datagit-hunt/1"


@dataclass
class Tested:
    """One commit judged: its values over seeds, the verdict, and where the runs came from."""

    commit: str
    role: str  # "good endpoint", "bad endpoint" or "test"
    round: int
    values: list[float]
    verdict: str  # old / new / skip (unsure at the seed cap)
    cached: int
    trained: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def summary(self) -> core.Summary:
        return core.Summary.of(self.values)


@dataclass
class Outcome:
    first_bad: str | None
    only_skipped: list[str]
    tested: list[Tested]
    rounds: int
    rule: core.Rule

    @property
    def trained(self) -> int:
        return sum(t.trained for t in self.tested)

    @property
    def runs(self) -> int:
        return sum(t.trained + t.cached for t in self.tested)


def load(repo: Repo) -> dict[str, Any] | None:
    """The last hunt's record (``.datagit/HUNT``), or None."""
    path = repo.dotdir / HUNT
    if not path.exists():
        return None
    state: dict[str, Any] = orjson.loads(path.read_bytes())
    return state


def save(repo: Repo, state: dict[str, Any]) -> None:
    path = repo.dotdir / HUNT
    tmp = path.with_name(f".{HUNT}.{os.getpid()}")
    tmp.write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def config_from(
    repo: Repo, config_file: str | None, config_rev: str | None
) -> tuple[HarnessConfig, str]:
    """The hunt's judge and where it came from: by default the config of the commit
    bisect started from (the workspace then), not of whatever is checked out now."""
    if config_file is None and config_rev is None:
        start = (repo.dotdir / api_bisect.START).read_text().strip()
        rev = repo.resolve(start)
        return harness.load_config(repo, config_rev=rev), f"datagit.toml at bisect start ({rev})"
    cfg = harness.load_config(repo, config_file, config_rev=config_rev)
    return cfg, f"--config {config_file}" if config_file else f"--config-rev {config_rev}"


def run(
    repo: Repo,
    *,
    metric: str = "accuracy",
    threshold: float | None = None,
    drop: float | None = None,
    seeds: int = 1,
    max_seeds: int | None = None,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    config_file: str | None = None,
    config_rev: str | None = None,
    progress: Callable[[Tested], None] | None = None,
) -> Outcome:
    """Bisect by training: verify the endpoints, then multisect until one commit is left."""
    bad, goods, skips = _marks(repo)
    if seeds < 1:
        raise InvalidInputError("--seeds must be at least 1")
    max_seeds = max_seeds if max_seeds is not None else max(4, 2 * seeds)
    if max_seeds < seeds:
        raise InvalidInputError(f"--max-seeds {max_seeds} is below --seeds {seeds}")
    if threshold is not None and drop is not None:
        raise InvalidInputError("give --threshold or --drop, not both")
    cfg, source = config_from(repo, config_file, config_rev)
    core.check_metric(metric, cfg.metrics)
    pool = ex.make(repo, jobs, executor, address)
    try:
        hunt = _Hunt(repo, pool, cfg, metric, seeds, max_seeds, progress)
        end_seeds = seeds if threshold is not None or drop is not None else max(seeds, 3)
        ends = hunt.measure([bad, *goods], end_seeds, 0)
        good_values = [v for g in goods for v in ends[g]]
        rule = core.make_rule(metric, good_values, ends[bad], threshold=threshold, drop=drop)
        _check_endpoints(rule, bad, goods, ends)
        hunt.rule = rule
        state = {
            "format": FORMAT,
            "config": cfg.to_dict(),
            "config_digest": cfg.digest,
            "config_source": source,
            "rule": rule.to_dict(),
            "seeds": seeds,
            "max_seeds": max_seeds,
            "jobs": jobs,
            "executor": executor,
            "bad": bad,
            "good": list(goods),
            "tested": [],
            "result": None,
        }
        for commit in [bad, *goods]:
            role = "bad endpoint" if commit == bad else "good endpoint"
            hunt.record(commit, role, 0, ends[commit], "new" if commit == bad else "old")
        api_bisect._log(repo, f"# hunt: {_describe(rule)}, {seeds} seed(s), config {source}")
        step, rounds = core_bisect.next_step(repo.git, bad, goods, skips), 0
        while step.commit is not None:
            rounds += 1
            picks = core.multisect(repo.git, bad, goods, skips, pool.jobs)
            bad = hunt.round(picks, rounds, bad, goods, skips)
            state["tested"] = [asdict(t) for t in hunt.tested]
            save(repo, state)
            step = core_bisect.next_step(repo.git, bad, goods, skips)
    finally:
        pool.close()
    if step.first_bad is not None:
        api_bisect._log(repo, f"# first {api_bisect.terms(repo).new} commit: [{step.first_bad}]")
    state["tested"] = [asdict(t) for t in hunt.tested]
    state["rounds"] = rounds
    state["result"] = {"first_bad": step.first_bad, "only_skipped": list(step.only_skipped)}
    save(repo, state)
    return Outcome(step.first_bad, list(step.only_skipped), hunt.tested, rounds, rule)


def _marks(repo: Repo) -> tuple[str, list[str], list[str]]:
    if not api_bisect.in_progress(repo):
        raise DatagitError(
            "not bisecting", hint="start with `datagit bisect start BAD GOOD`, then run --harness"
        )
    bad, goods, skips = api_bisect._marks(repo)
    t = api_bisect.terms(repo)
    if bad is None or not goods:
        raise DatagitError(
            f"bisect run needs a {t.new} and a {t.old} commit first",
            hint=f"mark them with `datagit bisect {t.new} REV` and `datagit bisect {t.old} REV`",
        )
    for g in goods:
        if not repo.git.is_ancestor(g, bad):
            raise InvalidInputError(
                f"the {t.old} commit {g[:10]} is not an ancestor of the {t.new} commit {bad[:10]}",
                hint="a metric hunt walks one line of history: mark an ancestor of the bad commit",
            )
    return bad, goods, skips


def _describe(rule: core.Rule) -> str:
    op = ">=" if rule.higher_is_better else "<="
    how = {"threshold": "--threshold", "drop": f"--drop {rule.drop}", "noise": "endpoint midpoint"}
    noise = f" ± {rule.z:g}σ, σ={rule.noise:.4f}" if rule.noise else ""
    return f"good when {rule.metric} {op} {rule.threshold:.4f}{noise} ({how[rule.mode]})"


def _check_endpoints(
    rule: core.Rule, bad: str, goods: Sequence[str], ends: dict[str, list[float]]
) -> None:
    """A good endpoint that is not good, or a bad one that is not bad, stops the hunt."""
    where = "" if rule.mode != "threshold" else f" with --threshold {rule.threshold:g}"
    for commit, want in [(g, core.OLD) for g in goods] + [(bad, core.NEW)]:
        got = rule.judge(ends[commit])
        if got == want:
            continue
        s = core.Summary.of(ends[commit])
        role = "good" if want == core.OLD else "bad"
        what = "is inside the noise band of" if got == core.UNSURE else "is on the wrong side of"
        raise DatagitError(
            f"the {role} endpoint {commit[:10]} is not {role}{where}: {rule.metric} "
            f"{s.mean:.4f} ± {s.spread:.4f} ({s.n} seeds) {what} {rule.threshold:.4f}",
            hint="pick another threshold (--threshold/--drop), more --seeds, or other endpoints",
        )


class _Hunt:
    """The evaluations of one hunt, run through an executor."""

    def __init__(
        self,
        repo: Repo,
        pool: ex.Executor,
        cfg: HarnessConfig,
        metric: str,
        seeds: int,
        max_seeds: int,
        progress: Callable[[Tested], None] | None,
    ) -> None:
        self.repo, self.pool, self.cfg, self.metric = repo, pool, cfg, metric
        self.seeds, self.max_seeds, self.progress = seeds, max_seeds, progress
        self.results: dict[str, list[ex.EvalResult]] = {}
        self.tested: list[Tested] = []
        self.rule: core.Rule | None = None

    def measure(self, commits: Sequence[str], n: int, start: int = 0) -> dict[str, list[float]]:
        """Seeds ``start``..``n-1`` for every commit, in one batch for the executor."""
        tasks = [
            ex.EvalTask(str(self.repo.workdir), c, self.cfg, self.cfg.seed + s)
            for c in commits
            for s in range(start, n)
        ]
        for r in self.pool.map(tasks):
            self.results.setdefault(r.commit, []).append(r)
        return {
            c: [core.metric_value(r.metrics, self.metric) for r in self.results[c]] for c in commits
        }

    def record(self, commit: str, role: str, rnd: int, values: list[float], verdict: str) -> None:
        rs = self.results[commit]
        t = Tested(
            commit, role, rnd, values, verdict,
            cached=sum(r.cached for r in rs), trained=sum(not r.cached for r in rs),
            runs=[asdict(r) for r in rs],
        )  # fmt: skip
        self.tested.append(t)
        line = f"# {self.metric} {t.summary.mean:.4f} ± {t.summary.spread:.4f} "
        line += f"({t.summary.n} seeds; {t.cached} cached, {t.trained} trained) [{commit}]"
        api_bisect._log(self.repo, line)
        if self.progress:
            self.progress(t)

    def _doubtful(self, picks: list[str], verdicts: dict[str, str]) -> list[str]:
        """Picks inside the noise band, and picks whose verdicts contradict each other
        (a good commit descending from a bad one): both need more seeds."""
        out = {c for c in picks if verdicts[c] == core.UNSURE}
        bads = [c for c in picks if verdicts[c] == core.NEW]
        for g in (c for c in picks if verdicts[c] == core.OLD):
            for b in bads:
                if self.repo.git.is_ancestor(b, g):
                    out.update((b, g))
        return [c for c in picks if c in out]

    def round(
        self, picks: list[str], rnd: int, bad: str, goods: list[str], skips: list[str]
    ) -> str:
        """Evaluate ``picks`` together (more seeds for the unsure), mark them; the new bad."""
        assert self.rule is not None
        values = self.measure(picks, self.seeds)
        verdicts = {c: self.rule.judge(v) for c, v in values.items()}
        n = self.seeds
        while n < self.max_seeds and self._doubtful(picks, verdicts):
            doubtful = self._doubtful(picks, verdicts)
            more = min(self.max_seeds, n + self.seeds)
            values.update(self.measure(doubtful, more, n))
            verdicts.update({c: self.rule.judge(values[c]) for c in doubtful})
            n = more
        for c in self._doubtful(picks, verdicts):
            verdicts[c] = core.UNSURE  # still in the band, or contradicting another pick
        lowest_bad = None
        for c in picks:  # picks come ancestors first: the first bad one is the one to keep
            v = verdicts[c]
            word = "skip" if v == core.UNSURE else v
            self.record(c, "test", rnd, values[c], word)
            if word == "old":
                goods.append(c)
                api_bisect._mark_one(self.repo, "old", c)
            elif word == "skip":
                skips.append(c)
                api_bisect._mark_one(self.repo, "skip", c)
            elif lowest_bad is None:
                lowest_bad = c
        if lowest_bad is not None:
            api_bisect._mark_one(self.repo, "new", lowest_bad)
            return lowest_bad
        return bad
