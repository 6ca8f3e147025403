"""`datagit revert`: a new commit that undoes one commit's record changes."""

from __future__ import annotations

import click

from datagit.api import undo
from datagit.cli._common import open_repo, short


@click.command()
@click.argument("rev")
@click.option(
    "-m",
    "--mainline",
    type=int,
    metavar="PARENT",
    help="REV is a merge: undo its changes relative to this parent (1 = the branch "
    "merged into), as `git revert -m`.",
)
@click.pass_context
def revert(ctx: click.Context, rev: str, mainline: int | None) -> None:
    """Commit the undoing of REV: its re-labels re-labelled back, its additions removed,
    its removals restored. Refused (changing nothing) when a later commit changed one
    of those examples again, or the workspace has uncommitted changes. A merge needs
    -m PARENT: what it brought in relative to that parent is undone.

    \b
    Examples:
      datagit revert HEAD~2       # the everyday fix for a bad re-label
      datagit revert -m 1 HEAD    # undo a merge: drop what the merged branch brought
    """
    repo = open_repo(ctx)
    c = undo.revert(repo, rev, mainline)
    branch = repo.branch() or "detached HEAD"
    click.echo(f"[{branch} {short(c.id)}] {c.summary}")


COMMANDS = [revert]
