"""`datagit push`: send a branch's content, then its history, to a remote."""

from __future__ import annotations

import click

from datagit.api import remotes
from datagit.cli._common import open_repo, short
from datagit.cli._progress import progress_bar


@click.command()
@click.argument("remote", default="origin")
@click.argument("branch", required=False)
@click.option(
    "-f", "--force", is_flag=True, help="Overwrite the remote branch even if not a fast-forward."
)
@click.pass_context
def push(ctx: click.Context, remote: str, branch: str | None, force: bool) -> None:
    """Upload the content REMOTE lacks, then move REMOTE's BRANCH (default: the current one).

    An interrupted push can simply be run again: objects that arrived are not sent twice,
    and the remote branch moves only once all content is there.

    \b
    Examples:
      datagit push
      datagit push origin relabel-cats
    """
    repo = open_repo(ctx)
    with progress_bar() as progress:
        r = remotes.push(repo, remote, branch, force=force, progress=progress)
    if r.old == r.new:
        click.echo(f"Everything up-to-date ({r.already_there} objects already on {remote})")
        return
    click.echo(
        f"{remote}/{r.branch}: {short(r.old)} → {short(r.new)} "
        f"({r.uploaded} objects uploaded, {r.already_there} already there)"
    )


COMMANDS = [push]
