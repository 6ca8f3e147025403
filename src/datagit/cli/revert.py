"""`datagit revert`: a new commit that undoes one commit's record changes."""

from __future__ import annotations

import click

from datagit.api import undo
from datagit.cli._common import open_repo, short


@click.command()
@click.argument("rev")
@click.pass_context
def revert(ctx: click.Context, rev: str) -> None:
    """Commit the undoing of REV: its re-labels re-labelled back, its additions removed,
    its removals restored. Refused (changing nothing) when a later commit changed one
    of those examples again, or the workspace has uncommitted changes.

    \b
    Example:
      datagit revert HEAD~2    # the everyday fix for a bad re-label
    """
    repo = open_repo(ctx)
    c = undo.revert(repo, rev)
    branch = repo.branch() or "detached HEAD"
    click.echo(f"[{branch} {short(c.id)}] {c.summary}")


COMMANDS = [revert]
