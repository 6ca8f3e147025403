"""`datagit add`: stage datasets or paths."""

from __future__ import annotations

import os

import click

from datagit.cli._common import open_repo
from datagit.cli._progress import progress_bar
from datagit.core.changes import counts


@click.command()
@click.argument("paths", nargs=-1)
@click.pass_context
def add(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Stage changes in datasets (by name) or in paths inside them; no args: everything.

    \b
    Examples:
      datagit add                 # every dataset
      datagit add train           # one dataset
      datagit add train/cat       # one class folder
    """
    repo = open_repo(ctx)
    # Paths are relative to -C PATH (as in git); dataset names pass through.
    base = ctx.find_root().obj["directory"]
    names = repo.config.datasets
    with progress_bar() as progress:
        changes = repo.add(
            [p if p in names else os.path.join(base, p) for p in paths] or None, progress=progress
        )
    for name, ch in changes.items():
        c = counts(ch)
        if any(c.values()):
            click.echo(f"{name}: " + ", ".join(f"{v} {k}" for k, v in c.items() if v))


COMMANDS = [add]
