"""`datagit checkout` and `datagit switch`: move the workspace to another revision."""

from __future__ import annotations

import click

from datagit.api import workspace
from datagit.api.repo import Repo
from datagit.cli._common import open_repo, short


@click.command()
@click.argument("rev")
@click.option("-f", "--force", is_flag=True, help="Discard uncommitted changes.")
@click.pass_context
def checkout(ctx: click.Context, rev: str, force: bool) -> None:
    """Make the workspace match REV (a branch attaches HEAD; anything else detaches it).

    \b
    Examples:
      datagit checkout HEAD~2
      datagit checkout v1.0
    """
    repo = open_repo(ctx)
    detached = repo.head() if repo.branch() is None else None
    info = workspace.checkout(repo, rev, force=force)
    warn_left_behind(repo, detached)
    branch = repo.branch()
    if branch:
        click.echo(f"Switched to branch '{branch}'")
    else:
        click.echo(f"HEAD is now at {short(info.id)} {info.summary}")


@click.command()
@click.argument("branch")
@click.option("-c", "--create", is_flag=True, help="Create BRANCH at HEAD first.")
@click.option("-f", "--force", is_flag=True, help="Discard uncommitted changes.")
@click.pass_context
def switch(ctx: click.Context, branch: str, create: bool, force: bool) -> None:
    """Switch to BRANCH.

    \b
    Example:
      datagit switch -c relabel-cats
    """
    repo = open_repo(ctx)
    detached = repo.head() if repo.branch() is None else None
    workspace.switch(repo, branch, create=create, force=force)
    warn_left_behind(repo, detached)
    click.echo(f"Switched to {'a new ' if create else ''}branch '{branch}'")


def warn_left_behind(repo: Repo, detached: str | None) -> None:
    """git's warning when a detached HEAD's own commits are no longer on any branch."""
    lost = workspace.left_behind(repo, detached)
    if not lost:
        return
    n = len(lost)
    click.echo(
        f"Warning: you are leaving {n} commit{'s' if n > 1 else ''} behind, "
        "not connected to any of your branches:",
        err=True,
    )
    for c in lost[:5]:
        click.echo(f"  {short(c.id)} {c.summary}", err=True)
    if n > 5:
        click.echo(f"  ... and {n - 5} more.", err=True)
    click.echo(
        f"If you want to keep them, create a branch now: datagit branch NAME {short(lost[0].id)}",
        err=True,
    )


COMMANDS = [checkout, switch]
