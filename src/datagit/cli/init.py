"""`datagit init`: create a repository."""

from __future__ import annotations

import click

from datagit.api.repo import Repo


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
def init(directory: str) -> None:
    """Create an empty datagit repository in DIRECTORY (default: here).

    \b
    Example:
      datagit init my-dataset && cd my-dataset
    """
    repo = Repo.init(directory)
    click.echo(f"Initialized empty datagit repository in {repo.dotdir}")


COMMANDS = [init]
