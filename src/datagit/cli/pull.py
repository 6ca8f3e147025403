"""`datagit fetch` and `datagit pull`: bring a remote's history and content here."""

from __future__ import annotations

import click

from datagit.api import remotes
from datagit.cli._common import open_repo, short
from datagit.cli._progress import progress_bar


@click.command()
@click.argument("remote", default="origin")
@click.pass_context
def fetch(ctx: click.Context, remote: str) -> None:
    """Download REMOTE's branches and tags and their content (verified), without merging.

    \b
    Example:
      datagit fetch origin && datagit log origin/main --oneline
    """
    repo = open_repo(ctx)
    with progress_bar() as progress:
        r = remotes.fetch(repo, remote, progress=progress)
    note_adopted(r)
    for ref, (old, new) in r.updated.items():
        click.echo(f"{ref.removeprefix('refs/remotes/')}: {short(old)} → {short(new)}")
    click.echo(f"{r.downloaded} objects downloaded")
    if r.runs:
        click.echo(f"{r.runs} runs received")


@click.command()
@click.argument("remote", required=False)
@click.argument("branch", required=False)
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    metavar="NAME",
    help="In a partial clone, download this dataset's content (repeatable).",
)
@click.option("--rev", default=None, help="In a partial clone, download the content REV needs.")
@click.pass_context
def pull(
    ctx: click.Context,
    remote: str | None,
    branch: str | None,
    datasets: tuple[str, ...],
    rev: str | None,
) -> None:
    """Fetch, then merge the current branch's upstream into it (fast-forward when possible).

    \b
    Examples:
      datagit pull
      datagit pull origin main
      datagit pull --dataset eval          # partial clone: fetch one dataset's bytes
    """
    repo = open_repo(ctx)
    with progress_bar() as progress:
        r = remotes.pull(
            repo, remote, branch, datasets=list(datasets) or None, rev=rev, progress=progress
        )
    note_adopted(r.fetch)
    if r.kind == "up-to-date":
        click.echo("Already up to date.")
    elif r.kind == "conflicts":
        for key in r.conflicts:
            click.echo(f"conflict: {key}")
        click.echo(
            f"{len(r.conflicts)} conflicts; resolve with `datagit merge --ours/--theirs` "
            "or `datagit resolve`, then `datagit commit`",
            err=True,
        )
        ctx.exit(1)
    elif r.kind == "merged":
        click.echo(f"Merged: {short(r.old)} + remote → {short(r.new)}")
    else:
        click.echo(f"Fast-forward {short(r.old)} → {short(r.new)}")
    if r.fetch.downloaded:
        click.echo(f"{r.fetch.downloaded} objects downloaded")
    if r.fetch.runs:
        click.echo(f"{r.fetch.runs} runs received")


def note_adopted(r: remotes.FetchResult) -> None:
    """Say where the bytes came from when the history named the content URL."""
    if r.adopted is not None:
        click.echo(
            f"remote {r.remote}: content URL {r.adopted.content} taken from datagit.toml "
            f"[remotes.{r.adopted.name}]",
            err=True,
        )


COMMANDS = [fetch, pull]
