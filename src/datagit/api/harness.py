"""Train and evaluate on any data commit, through the run cache.

The harness config is read from the workspace's ``datagit.toml`` (or a file
given with ``config_file``), not from the commit being evaluated: every commit
is judged by the same harness, which is what comparing and bisecting need.
torch is imported only when a run has to be trained or its weights loaded.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagit.core import manifest
from datagit.errors import DatagitError, InvalidInputError
from datagit.harness import config as hconfig
from datagit.harness.config import HarnessConfig, RunKey
from datagit.harness.runs import Run, RunStore

if TYPE_CHECKING:
    from datagit.api.repo import Repo
    from datagit.harness.train import Hooks
    from datagit.progress import Progress


@dataclass(frozen=True)
class Plan:
    """What a run would train on and the key it is cached under."""

    config: HarnessConfig
    key: RunKey
    train_rev: str
    eval_rev: str
    train_commit: str
    eval_commit: str


def load_config(
    repo: Repo, config_file: str | Path | None = None, **overrides: Any
) -> HarnessConfig:
    """``[harness]`` from ``config_file`` or the workspace's ``datagit.toml``, with overrides."""
    if config_file is not None:
        path = Path(config_file)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InvalidInputError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInputError(f"{path}: {exc}", hint="fix the TOML syntax") from None
        where = f"{path} [harness]"
        # a file holding only the harness keys is accepted as well as a full datagit.toml
        section = raw.get("harness", raw if "datasets" not in raw else None)
    else:
        where = "datagit.toml [harness]"
        section = repo.config.extra.get("harness")
    if section is None:
        raise InvalidInputError(
            f"no [harness] section in {config_file or 'datagit.toml'}",
            hint='add one, e.g. [harness] train = "train", eval = "eval", model = "mlp" '
            "(see docs/harness.md)",
        )
    cfg = hconfig.parse(section, where)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **overrides) if overrides else cfg


def plan(repo: Repo, rev: str = "HEAD", cfg: HarnessConfig | None = None) -> Plan:
    """Resolve the data trees and compute the run key, without importing torch."""
    cfg = cfg or load_config(repo)
    eval_rev = cfg.eval_rev or rev
    train_commit, eval_commit = repo.resolve(rev), repo.resolve(eval_rev)
    train_tree = _tree(repo, cfg.train, train_commit, rev, "train")
    eval_tree = _tree(repo, cfg.eval, eval_commit, eval_rev, "eval")
    key = RunKey(
        train_tree=train_tree,
        eval_tree=eval_tree,
        config=cfg.digest,
        seed=cfg.seed,
        code=hconfig.code_version(cfg, repo.workdir),
        extra={"torch": _torch_version()},
    )
    return Plan(cfg, key, rev, eval_rev, train_commit, eval_commit)


def _tree(repo: Repo, name: str, commit: str, rev: str, role: str) -> str:
    try:
        return repo.dataset_tree(name, commit).oid
    except DatagitError as exc:
        raise InvalidInputError(
            f"[harness] {role} = {name!r}: no dataset {name!r} at {rev}",
            hint=exc.hint or "fix the dataset name in [harness]",
        ) from None


def _torch_version() -> str:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return ""


def store(repo: Repo) -> RunStore:
    return RunStore(repo.dotdir / "runs")


def train(
    repo: Repo,
    rev: str = "HEAD",
    *,
    config: HarnessConfig | None = None,
    config_file: str | Path | None = None,
    seed: int | None = None,
    no_cache: bool = False,
    hooks: Sequence[Hooks] = (),
    progress: Progress | None = None,
) -> Run:
    """Train on the data at ``rev`` and evaluate, reusing a cached run when one matches.

    With ``hooks`` the model is always trained (hooks need the loop to run) and
    the fresh run replaces any cached one. ``run.cached`` says which happened.
    """
    cfg = config or load_config(repo, config_file, seed=seed)
    if config is not None and seed is not None:
        cfg = replace(cfg, seed=seed)
    p = plan(repo, rev, cfg)
    runs = store(repo)
    if not no_cache and not hooks:
        hit = runs.get(p.key.id)
        if hit is not None:
            hit.cached = True
            return hit
    from datagit.harness import train as harness_train
    from datagit.harness.runs import write_result

    train_view = repo.dataset(cfg.train, p.train_commit)
    eval_view = repo.dataset(cfg.eval, p.eval_commit)
    result = harness_train.run(
        cfg, train_view, eval_view, search=repo.workdir, hooks=hooks, progress=progress
    )
    meta = {
        "key": {**p.key.__dict__},
        "train": _side(cfg.train, p.train_rev, p.train_commit, p.key.train_tree, len(train_view)),
        "eval": _side(cfg.eval, p.eval_rev, p.eval_commit, p.key.eval_tree, len(eval_view)),
        "config": cfg.to_dict(),
        "classes": result.classes,
        "metrics": result.metrics,
        "device": result.device,
        "input_shape": list(result.input_shape),
        "epoch_losses": result.epoch_losses,
        "seconds": round(result.seconds, 3),
        "weights_sha256": result.weights_sha,
    }
    return runs.save(p.key.id, meta, lambda folder: write_result(folder, result))


def _side(name: str, rev: str, commit: str, tree: str, n: int) -> dict[str, Any]:
    return {"dataset": name, "rev": rev, "commit": commit, "tree": tree, "examples": n}


evaluate = train  # `eval` trains first when no cached run matches; same function, same cache


def runs(repo: Repo) -> list[Run]:
    """Every cached run, newest first."""
    return store(repo).list()


def show(repo: Repo, run_id: str) -> Run:
    """One run by id or unique id prefix."""
    return store(repo).find(run_id)


@dataclass(frozen=True)
class RunsGcReport:
    kept: int
    removed: int


def gc(repo: Repo, *, everything: bool = False) -> RunsGcReport:
    """Drop runs whose train or eval data no branch, tag, HEAD or the stage still holds."""
    rs = store(repo)
    rs.remove_partial()
    live = set() if everything else _live_trees(repo)
    kept = removed = 0
    for run in list(rs):
        key = run.meta.get("key", {})
        if not everything and key.get("train_tree") in live and key.get("eval_tree") in live:
            kept += 1
        else:
            rs.remove(run.id)
            removed += 1
    return RunsGcReport(kept, removed)


def _live_trees(repo: Repo) -> set[str]:
    from datagit.api.maintenance import reachable_roots

    roots = [c.tree for c in repo.git.walk(reachable_roots(repo))]
    stage = repo.stage_tree()
    if stage:
        roots.append(stage)
    live: set[str] = set()
    for tree in set(roots):
        live.update(manifest.read_root(repo.git, tree)[1].values())
    return live
