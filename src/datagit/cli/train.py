"""`datagit train` and `datagit eval`: a model trained on the data at a commit, cached."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from datagit.api import harness
from datagit.cli._common import echo_json, open_repo, short
from datagit.cli._progress import progress_bar

_options = [
    click.argument("rev", default="HEAD"),
    click.option("--config", "config_file", metavar="FILE", help="Read [harness] from FILE."),
    click.option("--seed", type=int, default=None, help="Override the configured seed."),
    click.option("--no-cache", is_flag=True, help="Train again even if a cached run matches."),
    click.option("--json", "as_json", is_flag=True, help="Print the run as JSON."),
]


def _shared(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_options):
        fn = option(fn)
    return fn


@click.command()
@_shared
@click.pass_context
def train(
    ctx: click.Context,
    rev: str,
    config_file: str | None,
    seed: int | None,
    no_cache: bool,
    as_json: bool,
) -> None:
    """Train the [harness] model on the data at REV and evaluate it (cached by data + config).

    \b
    Example:
      datagit train HEAD~1
      datagit train --seed 3 --no-cache
    """
    _run(ctx, rev, config_file, seed, no_cache, as_json, per_class=False)


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
    per_class: bool,
) -> None:
    """Print the eval metrics of the model trained on REV, training first if not cached.

    \b
    Example:
      datagit eval
      datagit eval v1 --json
    """
    _run(ctx, rev, config_file, seed, no_cache, as_json, per_class)


def _run(
    ctx: click.Context,
    rev: str,
    config_file: str | None,
    seed: int | None,
    no_cache: bool,
    as_json: bool,
    per_class: bool,
) -> None:
    repo = open_repo(ctx)
    with progress_bar(enabled=not as_json) as progress:
        run = harness.train(
            repo, rev, config_file=config_file, seed=seed, no_cache=no_cache, progress=progress
        )
    if as_json:
        echo_json({**run.meta, "cached": run.cached})
        return
    render(run, rev, per_class)


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


COMMANDS = [train, eval_]
