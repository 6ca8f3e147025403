"""`datagit train` and `datagit eval`: a model trained on the data at a commit, cached."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any

import click

from datagit.api import attribution, harness
from datagit.cli._common import echo_json, open_repo, short
from datagit.errors import InvalidInputError

_options = [
    click.argument("rev", default="HEAD"),
    click.option("--config", "config_file", metavar="FILE", help="Read [harness] from FILE."),
    click.option("--seed", type=int, default=None, help="Override the configured seed."),
    click.option("--no-cache", is_flag=True, help="Train again even if a cached run matches."),
    click.option("--json", "as_json", is_flag=True, help="Print the run as JSON."),
    click.option(
        "--workspace",
        is_flag=True,
        help="Use the workspace as it is, uncommitted changes included (instead of REV).",
    ),
]


def _shared(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_options):
        fn = option(fn)
    return fn


@click.command()
@_shared
@click.option(
    "--ledger",
    multiple=True,
    is_flag=False,
    flag_value="output",
    metavar="[LAYER]",
    help="Record the attribution ledger of LAYER (repeatable; alone: the output layer).",
)
@click.pass_context
def train(
    ctx: click.Context,
    rev: str,
    config_file: str | None,
    seed: int | None,
    no_cache: bool,
    as_json: bool,
    workspace: bool,
    ledger: tuple[str, ...],
) -> None:
    """Train the [harness] model on the data at REV and evaluate it (cached by data + config).

    \b
    Example:
      datagit train HEAD~1
      datagit train --seed 3 --no-cache
      datagit train --workspace
      datagit train HEAD --ledger              # ledger of the output layer (see docs/ledger.md)
    """
    _run(
        ctx, rev, config_file, seed, no_cache, as_json, workspace, per_class=False,
        ledger=ledger or None,
    )  # fmt: skip


@click.command("eval")
@_shared
@click.option("--per-class", is_flag=True, help="Also list accuracy per class.")
@click.pass_context
def eval_(
    ctx: click.Context,
    rev: str,
    config_file: str | None,
    seed: int | None,
    no_cache: bool,
    as_json: bool,
    workspace: bool,
    per_class: bool,
) -> None:
    """Print the eval metrics of the model trained on REV, training first if not cached.

    \b
    Example:
      datagit eval
      datagit eval v1 --json
      datagit eval --workspace

    On HEAD with uncommitted changes to the train or eval data it says so: the
    answer is for the committed data; --workspace evaluates the workspace.
    """
    _run(ctx, rev, config_file, seed, no_cache, as_json, workspace, per_class)


def _run(
    ctx: click.Context,
    rev: str,
    config_file: str | None,
    seed: int | None,
    no_cache: bool,
    as_json: bool,
    workspace: bool,
    per_class: bool,
    ledger: tuple[str, ...] | None = None,
) -> None:
    repo = open_repo(ctx)
    if workspace and rev != "HEAD":
        raise InvalidInputError(
            f"--workspace and a revision ({rev}) both name the data",
            hint="drop one: --workspace uses the files as they are now",
        )
    cfg = harness.load_config(repo, config_file, seed=seed)
    dirty = [] if workspace else harness.uncommitted(repo, rev, cfg)
    if dirty:
        click.echo(
            f"warning: {', '.join(dirty)} {'has' if len(dirty) == 1 else 'have'} uncommitted "
            f"changes; this is the model of the committed data at {rev} "
            "(pass --workspace to use the workspace)",
            err=True,
        )
    target = harness.workspace_commit(repo) if workspace else rev
    bar = _ProgressBar(enabled=not as_json)
    hook = attribution.ledger_hook(
        cfg,
        ledger,
        attribution.train_size(repo, target, cfg) if ledger or cfg.ledger is not None else 0,
    )
    try:
        run = harness.train(
            repo, target, config=cfg, no_cache=no_cache, progress=bar, hooks=[hook] if hook else []
        )
    finally:
        bar.close()
    info = attribution.ledger_info(run, hook.key) if hook else None
    if as_json:
        extra = {"ledger": info} if info else {}
        echo_json(
            {
                **run.meta,
                "cached": run.cached,
                "uncommitted": dirty,
                "workspace": workspace,
                **extra,
            }
        )
        return
    render(run, "workspace" if workspace else rev, per_class)
    if info:
        mb = info["memory_bytes"] / 2**20
        click.echo(
            f"  ledger     {info['key']}  {', '.join(info['params'])}: {info['size']} weights × "
            f"{info['examples']} examples, {info['dtype']}, buffers {mb:.1f} MiB, "
            f"{info['seconds']:.2f} s"
        )


def render(run: harness.Run, rev: str, per_class: bool) -> None:
    m, tr, ev = run.meta, run.meta["train"], run.meta["eval"]
    how = "cached" if run.cached else f"trained in {m.get('seconds', 0):.1f} s on {m['device']}"
    click.echo(f"run {run.id}  ({how})")
    click.echo(f"  train  {tr['dataset']}@{short(tr['commit'])}  {tr['examples']} examples")
    click.echo(f"  eval   {ev['dataset']}@{short(ev['commit'])}  {ev['examples']} examples")
    for name, value in run.metrics.items():
        if isinstance(value, float):
            click.echo(f"  {name:<10} {'nan' if math.isnan(value) else f'{value:.4f}'}")
    if per_class and "per_class_accuracy" in run.metrics:
        for label, acc in run.metrics["per_class_accuracy"].items():
            click.echo(f"    {label:<12} {acc:.4f}")


class _ProgressBar:
    """One bar per epoch on a terminal; one line per epoch otherwise (on stderr)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.progress: Any = None
        self.task: Any = None
        self.epoch = 0

    def __call__(self, p: Any) -> None:
        if not self.enabled:
            return
        if not self.tty:
            if p.batch == p.batches:
                click.echo(f"epoch {p.epoch}/{p.epochs}  loss {p.mean_loss:.4f}", err=True)
            return
        if self.progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                console=Console(stderr=True),
            )
            self.progress.start()
        if p.epoch != self.epoch:
            self.epoch = p.epoch
            self.task = self.progress.add_task(
                f"epoch {p.epoch}/{p.epochs}", total=p.batches, loss=p.loss
            )
        self.progress.update(self.task, completed=p.batch, loss=p.mean_loss)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


COMMANDS = [train, eval_]
