"""`datagit push`: send a branch's (or tags') content, then its history, to a remote."""

from __future__ import annotations

import click

from datagit.api import remotes
from datagit.cli._common import open_repo, short
from datagit.cli._progress import progress_bar


@click.command()
@click.argument("remote", default="origin")
@click.argument("name", required=False, metavar="[BRANCH|TAG]")
@click.option(
    "-f", "--force", is_flag=True, help="Overwrite the remote branch even if not a fast-forward."
)
@click.option("--tags", is_flag=True, help="Push every tag (and the content they need).")
@click.pass_context
def push(ctx: click.Context, remote: str, name: str | None, force: bool, tags: bool) -> None:
    """Upload the content REMOTE lacks, then move REMOTE's BRANCH (default: the current one).

    NAME may be a tag, as with git: the tag and its content are sent. --tags sends
    every tag; a tag the remote holds at another commit is refused unless --force.
    An interrupted push can simply be run again: objects that arrived are not sent twice,
    and the remote branch moves only once all content is there.

    \b
    Examples:
      datagit push
      datagit push origin relabel-cats
      datagit push origin v1.0
      datagit push --tags
    """
    repo = open_repo(ctx)
    is_tag = (
        name is not None
        and repo.git.ref(f"refs/heads/{name}") is None
        and repo.git.ref(f"refs/tags/{name}") is not None
    )
    with progress_bar() as progress:
        if is_tag or tags:
            t = remotes.push_tags(
                repo, remote, None if tags else [name or ""], force=force, progress=progress
            )
            for tag, oid in t.pushed.items():
                click.echo(f"{remote}: tag {tag} → {short(oid)}")
            if t.already_there and not t.pushed:
                click.echo(f"Everything up-to-date ({len(t.already_there)} tags already there)")
            if not t.pushed and not t.already_there:
                click.echo("No tags to push")
            if t.uploaded:
                click.echo(f"{t.uploaded} objects uploaded")
            if is_tag or name is None:
                return
        r = remotes.push(repo, remote, name, force=force, progress=progress)
    if r.runs:
        click.echo(f"{r.runs} runs shared (their metrics, outputs and weights)")
    if r.old == r.new:
        click.echo(f"Everything up-to-date ({r.already_there} objects already on {remote})")
        return
    click.echo(
        f"{remote}/{r.branch}: {short(r.old)} → {short(r.new)} "
        f"({r.uploaded} objects uploaded, {r.already_there} already there)"
    )


COMMANDS = [push]
