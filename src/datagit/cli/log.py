"""`datagit log`: the commit history, optionally of one dataset."""

from __future__ import annotations

import click

from datagit.api import history, logs, render
from datagit.api.repo import Repo
from datagit.cli._common import (
    PathspecCommand,
    echo_json,
    open_repo,
    pathspec,
    short,
    when,
)
from datagit.cli.blame import change_text, event_line
from datagit.errors import InvalidInputError


@click.command(cls=PathspecCommand)
@click.argument("revs", nargs=-1)
@click.option("-n", "--max-count", "limit", type=int, default=None)
@click.option("--oneline", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@click.option("--graph", is_flag=True, help="Draw the branches and merges beside the commits.")
@click.option("--all", "all_refs", is_flag=True, help="Every branch, tag and remote branch.")
@click.option("--author", default=None, metavar="RE", help="Only commits by a matching author.")
@click.option(
    "--example", default=None, metavar="ID", help="Only commits that changed this example."
)
@click.pass_context
def log(
    ctx: click.Context,
    revs: tuple[str, ...],
    limit: int | None,
    oneline: bool,
    as_json: bool,
    graph: bool,
    all_refs: bool,
    author: str | None,
    example: str | None,
) -> None:
    """Show commits reachable from REVS (default HEAD), newest first.

    REVS are read as git reads them: A..B is what B has and A has not, ^A
    leaves out what A reaches.

    \b
    Examples:
      datagit log --oneline -n 5
      datagit log -- train          # only commits that changed dataset train
      datagit log -- train/img_0042.png   # only commits that changed that example
      datagit log --example img_0042.png -- train
      datagit log --graph --oneline --all
      datagit log main..feature --author Bob
    """
    repo = open_repo(ctx)
    spec = pathspec(ctx)
    dataset = spec[0] if spec else None
    if example is not None or (dataset is not None and "/" in dataset):
        _example_log(repo, revs[0] if revs else "HEAD", dataset, example, limit, oneline, as_json)
        return
    if dataset is not None:
        repo.dataset_config(dataset) if dataset in repo.config.datasets else None
    commits = list(
        logs.select(
            repo, list(revs), all_refs=all_refs, author=author, dataset=dataset, limit=limit
        )
    )
    if as_json:
        echo_json(render.log_json(commits))
        return
    rows = logs.graph(commits) if graph else [logs.GraphRow(c, "", []) for c in commits]
    for row in rows:
        c = row.commit
        mark = row.lanes + " " if graph else ""
        pad = mark.replace("*", "|")
        if oneline:
            click.echo(f"{mark}{short(c.id)} {c.summary}")
            for line in row.after:
                click.echo(line)
            continue
        click.echo(f"{mark}commit {c.id}")
        mark = pad
        if len(c.parents) > 1:
            click.echo(mark + "Merge: " + " ".join(short(p) for p in c.parents))
        click.echo(f"{mark}Author: {c.author.name} <{c.author.email}>")
        click.echo(f"{mark}Date:   {when(c.author)}")
        click.echo(mark.rstrip())
        for line in c.message.rstrip().splitlines():
            click.echo(f"{mark}    {line}")
        click.echo(mark.rstrip())
        for line in row.after:
            click.echo(line)


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
        echo_json(render.example_log_json(events))
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
