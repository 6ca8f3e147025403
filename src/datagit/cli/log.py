"""`datagit log`: the commit history, optionally of one dataset."""

from __future__ import annotations

import click

from datagit.api import history
from datagit.api.repo import Repo
from datagit.cli._common import (
    PathspecCommand,
    commit_json,
    echo_json,
    open_repo,
    pathspec,
    short,
    when,
)
from datagit.cli._term import page
from datagit.cli.blame import change_text, event_json, event_line
from datagit.errors import InvalidInputError


@click.command(cls=PathspecCommand)
@click.argument("rev", default="HEAD")
@click.option("-n", "--max-count", "limit", type=int, default=None)
@click.option("--oneline", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--example", default=None, metavar="ID", help="Only commits that changed this example."
)
@click.pass_context
def log(
    ctx: click.Context,
    rev: str,
    limit: int | None,
    oneline: bool,
    as_json: bool,
    example: str | None,
) -> None:
    """Show commits reachable from REV, newest first.

    \b
    Examples:
      datagit log --oneline -n 5
      datagit log -- train          # only commits that changed dataset train
      datagit log -- train/img_0042.png   # only commits that changed that example
      datagit log --example img_0042.png -- train
    """
    repo = open_repo(ctx)
    page(ctx, repo)
    spec = pathspec(ctx)
    dataset = spec[0] if spec else None
    if example is not None or (dataset is not None and "/" in dataset):
        _example_log(repo, rev, dataset, example, limit, oneline, as_json)
        return
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


def _example_log(
    repo: Repo,
    rev: str,
    dataset: str | None,
    example: str | None,
    limit: int | None,
    oneline: bool,
    as_json: bool,
) -> None:
    """``log -- dataset/ID`` and ``log --example ID``: the commits that touched one example."""
    if example is not None and dataset is None:
        names = sorted(repo.config.datasets)
        spec = example if "/" in example and example.split("/")[0] in names else None
        if spec is None and len(names) == 1:
            spec = f"{names[0]}/{example}"
        if spec is None:
            raise InvalidInputError(
                f"--example {example!r}: which dataset?",
                hint=f"add `-- DATASET` (datasets: {', '.join(names) or 'none'})",
            )
    else:
        spec = f"{dataset}/{example}" if example is not None else str(dataset)
    name, example_id = history.split_example(repo, spec, rev)
    if example_id is None:
        raise InvalidInputError(f"--example needs an id inside dataset {name!r}")
    events = history.example_log(repo, name, example_id, rev)[:limit]
    if as_json:
        echo_json([event_json(e) for e in events])
        return
    for e in events:
        if oneline:
            click.echo(event_line(e))
            continue
        c = e.commit
        click.echo(f"commit {c.id}")
        click.echo(f"Author: {c.author.name} <{c.author.email}>")
        click.echo(f"Date:   {when(c.author)}")
        click.echo()
        for line in c.message.rstrip().splitlines():
            click.echo(f"    {line}")
        click.echo()
        annotator = f" [annotator {e.annotator}]" if e.annotator else ""
        click.echo(f"    {name}/{example_id}: {change_text(e)}{annotator}")
        click.echo()


COMMANDS = [log]
