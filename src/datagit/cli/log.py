"""`datagit log`: the commit history, optionally of one dataset."""

from __future__ import annotations

import click

from datagit.cli._common import (
    PathspecCommand,
    commit_json,
    echo_json,
    open_repo,
    pathspec,
    short,
    when,
)


@click.command(cls=PathspecCommand)
@click.argument("rev", default="HEAD")
@click.option("-n", "--max-count", "limit", type=int, default=None)
@click.option("--oneline", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def log(ctx: click.Context, rev: str, limit: int | None, oneline: bool, as_json: bool) -> None:
    """Show commits reachable from REV, newest first.

    \b
    Examples:
      datagit log --oneline -n 5
      datagit log -- train          # only commits that changed dataset train
    """
    repo = open_repo(ctx)
    spec = pathspec(ctx)
    dataset = spec[0] if spec else None
    if dataset is not None:
        repo.dataset_config(dataset) if dataset in repo.config.datasets else None
    commits = list(repo.log(rev, limit=limit, dataset=dataset))
    if as_json:
        echo_json([commit_json(c) for c in commits])
        return
    for c in commits:
        if oneline:
            click.echo(f"{short(c.id)} {c.summary}")
            continue
        click.echo(f"commit {c.id}")
        if len(c.parents) > 1:
            click.echo("Merge: " + " ".join(short(p) for p in c.parents))
        click.echo(f"Author: {c.author.name} <{c.author.email}>")
        click.echo(f"Date:   {when(c.author)}")
        click.echo()
        for line in c.message.rstrip().splitlines():
            click.echo(f"    {line}")
        click.echo()


COMMANDS = [log]
