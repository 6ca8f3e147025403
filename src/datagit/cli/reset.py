"""`datagit reset`: move the branch, and by mode the stage and the workspace, to a commit."""

from __future__ import annotations

import click

from datagit.api import undo
from datagit.cli._common import open_repo, short


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--soft", "mode", flag_value="soft", help="Move the branch only; keep the stage.")
@click.option("--mixed", "mode", flag_value="mixed", default=True, help="Also reset the stage.")
@click.option("--hard", "mode", flag_value="hard", help="Also reset the workspace (discards).")
@click.pass_context
def reset(ctx: click.Context, rev: str, mode: str) -> None:
    """Point the current branch at REV (default HEAD) without detaching, as git's reset.

    --soft keeps the stage and the workspace (what the undone commits changed is
    staged); --mixed (the default) resets the stage; --hard resets the stage and
    the workspace, discarding uncommitted changes.

    \b
    Examples:
      datagit reset --hard          # discard every uncommitted change
      datagit reset HEAD~1          # undo the last commit, keep its changes unstaged
      datagit reset --soft HEAD~2   # squash: the last two commits' changes staged
    """
    repo = open_repo(ctx)
    result = undo.reset(repo, rev, mode=mode)
    if mode == "hard":
        click.echo(f"HEAD is now at {short(result.new.id)} {result.new.summary}")
    elif result.old != result.new.id:
        click.echo(f"HEAD was {short(result.old)}, now {short(result.new.id)} {result.new.summary}")
    else:
        click.echo("Unstaged changes after reset" if mode == "mixed" else "Nothing moved")


COMMANDS = [reset]
