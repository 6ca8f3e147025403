"""`datagit init`: create a repository."""

from __future__ import annotations

import os

import click

from datagit.api.repo import Repo


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.pass_context
def init(ctx: click.Context, directory: str) -> None:
    """Create an empty datagit repository in DIRECTORY (default: here).

    \b
    Example:
      datagit init my-dataset && cd my-dataset
    """
    # Like git, DIRECTORY is relative to -C PATH, not to the process's folder.
    repo = Repo.init(os.path.join(ctx.find_root().obj["directory"], directory))
    click.echo(f"Initialized empty datagit repository in {repo.dotdir}")


COMMANDS = [init]
