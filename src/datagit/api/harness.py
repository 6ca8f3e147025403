"""Train and evaluate on any data commit, through the run cache.

The harness config is read from the workspace's ``datagit.toml`` (or a file
given with ``config_file``, or the ``datagit.toml`` of a revision given with
``config_rev``), never from the commit being evaluated: every commit is judged
by the same harness, which is what comparing and bisecting need.

Training never checks anything out. It reads a commit's dataset trees — or any
set of records (`DatasetView.from_records`, `DatasetView.subset`): a fold, a
parent plus part of a change — and keys the run by that data's identity, so
the same records always find the same cached run.

A run can carry artifacts (a ledger, fold probabilities) written by `Hooks`
that name an ``artifact`` key: asking for an artifact trains only when the
cached run lacks it, and adding one never invalidates the plain run.
torch is imported only when a run has to be trained or its weights loaded.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datagit.core import manifest
from datagit.errors import DatagitError, InvalidInputError
from datagit.harness import config as hconfig
from datagit.harness.config import HarnessConfig, RunKey
from datagit.harness.runs import Run, RunStore

if TYPE_CHECKING:
    from datagit.api.dataset import DatasetView
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
    repo: Repo,
    config_file: str | Path | None = None,
    *,
    config_rev: str | None = None,
    **overrides: Any,
) -> HarnessConfig:
    """``[harness]`` from ``config_file``, a revision's ``datagit.toml`` (``config_rev``)
    or the workspace's ``datagit.toml``, with overrides."""
    if config_file is not None and config_rev is not None:
        raise InvalidInputError(
            "give the harness config as a file or as a revision, not both",
            hint="drop --config or --config-rev",
        )
    if config_rev is not None:
        where = f"{config_rev}:datagit.toml [harness]"
        section = repo.config_at(config_rev).extra.get("harness")
    elif config_file is not None:
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
            f"no [harness] section in {where.removesuffix(' [harness]')}",
            hint='add one, e.g. [harness] train = "train", eval = "eval", model = "mlp" '
            "(see docs/harness.md)",
        )
    cfg = hconfig.parse(section, where)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(cfg, **overrides) if overrides else cfg


def plan(
    repo: Repo,
    rev: str = "HEAD",
    cfg: HarnessConfig | None = None,
    *,
    train_view: DatasetView | None = None,
    eval_view: DatasetView | None = None,
) -> Plan:
    """Resolve the data and compute the run key, without importing torch.

    ``train_view``/``eval_view`` replace the datasets ``[harness]`` names at
    ``rev`` (a subset, a fold); the key then names them by their `identity`.
    """
    cfg = cfg or load_config(repo)
    eval_rev = cfg.eval_rev or rev
    train_commit = train_view.commit if train_view is not None else repo.resolve(rev)
    eval_commit = eval_view.commit if eval_view is not None else repo.resolve(eval_rev)
    train_tree = (
        train_view.identity
        if train_view is not None
        else _tree(repo, cfg.train, train_commit or "", rev, "train")
    )
    eval_tree = (
        eval_view.identity
        if eval_view is not None
        else _tree(repo, cfg.eval, eval_commit or "", eval_rev, "eval")
    )
    key = RunKey(
        train_tree=train_tree,
        eval_tree=eval_tree,
        config=cfg.digest,
        seed=cfg.seed,
        code=hconfig.code_version(cfg, repo.workdir),
        extra={"torch": _torch_version()},
    )
    return Plan(cfg, key, rev, eval_rev, train_commit or "", eval_commit or "")


def _tree(repo: Repo, name: str, commit: str, rev: str, role: str) -> str:
    try:
        return repo.dataset_tree(name, commit).oid
    except DatagitError as exc:
        raise InvalidInputError(
            f"[harness] {role} = {name!r}: no dataset {name!r} at {rev}",
            hint=exc.hint or "fix the dataset name in [harness]",
        ) from None


def _torch_version() -> str:
    # Imported here: importlib.metadata costs ~40 ms at start-up, and every verb that
    # reaches this module (blame of an example among them) would pay it unused.
    import importlib.metadata

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
    train_view: DatasetView | None = None,
    eval_view: DatasetView | None = None,
) -> Run:
    """Train on the data at ``rev`` and evaluate, reusing a cached run when one matches.

    Hooks that name an ``artifact`` are satisfied by a cached run that already
    holds that artifact; otherwise they train, and their artifacts are added to
    the run (the plain run's files stay as they were when the weights match).
    Hooks without an artifact always train. ``run.cached`` says which happened.
    """
    cfg = config or load_config(repo, config_file, seed=seed)
    if config is not None and seed is not None:
        cfg = replace(cfg, seed=seed)
    p = plan(repo, rev, cfg, train_view=train_view, eval_view=eval_view)
    runs = store(repo)
    keyed = [(h, h.artifact) for h in hooks if h.artifact]
    hit = None if no_cache else runs.get(p.key.id)
    if hit is None and not no_cache:
        from datagit.api.remotes import run_on_demand

        if run_on_demand(repo, p.key.id):  # a partial clone's run, fetched by id
            hit = runs.get(p.key.id)
    if (
        hit is not None
        and len(keyed) == len(hooks)
        and all(hit.artifact(key) is not None for _, key in keyed)
    ):
        hit.cached = True
        return hit
    from datagit.harness import train as harness_train
    from datagit.harness.runs import write_result

    train_view = train_view or repo.dataset(cfg.train, p.train_commit)
    eval_view = eval_view or repo.dataset(cfg.eval, p.eval_commit)
    result = harness_train.run(
        cfg, train_view, eval_view, search=repo.workdir, hooks=hooks, progress=progress
    )
    if hit is not None and hit.meta.get("weights_sha256") == result.weights_sha:
        run = hit  # the same run, trained again only to watch it: keep its files
    else:
        run = _save(runs, p, cfg, train_view, eval_view, result, write_result)
    for h, key in keyed:
        runs.add_artifact(run, key, h.save_artifact)
    return run


def _save(
    runs: RunStore,
    p: Plan,
    cfg: HarnessConfig,
    train_view: DatasetView,
    eval_view: DatasetView,
    result: Any,
    write_result: Callable[[Path, Any], None],
) -> Run:
    meta = {
        "key": {**p.key.__dict__},
        "train": _side(train_view, p.train_rev, p.train_commit, p.key.train_tree),
        "eval": _side(eval_view, p.eval_rev, p.eval_commit, p.key.eval_tree),
        "config": cfg.to_dict(),
        "classes": result.classes,
        "metrics": result.metrics,
        "device": result.device,
        "input_shape": list(result.input_shape),
        "epoch_losses": result.epoch_losses,
        "seconds": round(result.seconds, 3),
        "weights_sha256": result.weights_sha,
        "normalisation": result.normalisation,
    }
    return runs.save(p.key.id, meta, lambda folder: write_result(folder, result))


def uncommitted(repo: Repo, rev: str = "HEAD", cfg: HarnessConfig | None = None) -> list[str]:
    """The harness's datasets whose workspace differs from ``rev`` when ``rev`` is HEAD:
    a run of HEAD answers for the committed data, and the user should be told so."""
    head = repo.head()
    if head is None or repo.resolve(rev) != head:
        return []
    cfg = cfg or load_config(repo)
    status = repo.status()
    wanted = {cfg.train, cfg.eval}
    return sorted(d.name for d in status.datasets if d.name in wanted and (d.staged or d.unstaged))


WORKSPACE_REV = "workspace"  # how a run of the workspace names its revision


def workspace_commit(repo: Repo) -> str:
    """A commit of the workspace as it is (every dataset, content stored), on no branch:
    `eval --workspace` trains on it through the same run cache as any commit, so the
    same uncommitted data is never trained twice (the run is keyed by tree ids, which the
    same files give again even after `gc` dropped this unnamed commit)."""
    from datagit.api.undo import workspace_root
    from datagit.storage.git import Signature

    with repo.lock:
        root = workspace_root(repo)
        head = repo.head()
        who = Signature("datagit", "datagit@localhost", 0)
        return repo.git.create_commit(
            root, [head] if head else [], "the workspace, uncommitted\n", who, who
        )


def _side(view: DatasetView, rev: str, commit: str, tree: str) -> dict[str, Any]:
    # a whole dataset is named by the revision the user gave; a subset by its own name
    rev = rev if view.tree is not None else view.rev
    return {"dataset": view.name, "rev": rev, "commit": commit, "tree": tree, "examples": len(view)}


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
    """Drop runs whose train or eval data no branch, tag, HEAD or the stage still holds.

    A run on a record set no tree holds (a fold, a narrowing retrain: ``records:``)
    is live while the commit it was drawn from is reachable.
    """
    rs = store(repo)
    rs.remove_partial()
    live, commits = (set(), set()) if everything else _live(repo)
    kept = removed = 0
    for run in list(rs):
        if not everything and all(
            _side_live(run.meta, side, live, commits) for side in ("train", "eval")
        ):
            kept += 1
        else:
            rs.remove(run.id)
            removed += 1
    return RunsGcReport(kept, removed)


def _side_live(meta: dict[str, Any], side: str, live: set[str], commits: set[str]) -> bool:
    tree = meta.get("key", {}).get(f"{side}_tree", "")
    if str(tree).startswith("records:"):
        return meta.get(side, {}).get("commit") in commits
    return tree in live


def _live(repo: Repo) -> tuple[set[str], set[str]]:
    """(dataset trees, commits) that a branch, tag, HEAD, reflog or the stage reaches."""
    from datagit.api.maintenance import reachable_roots

    reached = list(repo.git.walk(reachable_roots(repo)))
    roots = [c.tree for c in reached]
    stage = repo.stage_tree()
    if stage:
        roots.append(stage)
    live: set[str] = set()
    for tree in set(roots):
        live.update(manifest.read_root(repo.git, tree)[1].values())
    return live, {c.id for c in reached}
