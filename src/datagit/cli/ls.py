"""`datagit ls` and `datagit cat`: read examples at any revision."""

from __future__ import annotations

import sys

import click

from datagit.cli._common import echo_json, label, open_repo
from datagit.errors import InvalidInputError


@click.command("ls")
@click.argument("rev", default="HEAD")
@click.argument("dataset", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ls(ctx: click.Context, rev: str, dataset: str | None, as_json: bool) -> None:
    """List examples at REV: id, label, content address (and annotator).
    DATASET/ID lists one example, reading only the shard that holds it.

    \b
    Examples:
      datagit ls HEAD train
      datagit ls HEAD train/img_0001.png
      datagit ls v1.0 --json
    """
    repo = open_repo(ctx)
    names = [dataset] if dataset else sorted(repo.datasets_at(rev))
    rows = []
    if dataset and "/" in dataset:  # dataset names hold no '/': this is DATASET/ID
        name, example_id = dataset.split("/", 1)
        rows.append((name, repo.record(name, example_id, rev)))
        names = []
    for name in names:
        for r in sorted(repo.records(name, rev), key=lambda r: r.id):
            rows.append((name, r))
    if as_json:
        echo_json([{"dataset": n, **r.to_dict()} for n, r in rows])
        return
    for name, r in rows:
        prefix = "" if dataset and "/" not in dataset else f"{name}/"
        click.echo(f"{prefix}{r.id}\t{label(r.label)}\t{r.content}\t{r.annotator or ''}")


@click.command("cat")
@click.argument("spec", metavar="REV:DATASET/ID")
@click.pass_context
def cat(ctx: click.Context, spec: str) -> None:
    """Write the bytes of one example at a revision to stdout (verified).

    \b
    Example:
      datagit cat HEAD~1:train/img_0001.png > old.png
    """
    repo = open_repo(ctx)
    rev, sep, rest = spec.partition(":")  # as git: ids may hold ':', revisions do not
    if not sep or "/" not in rest:
        raise InvalidInputError(
            f"{spec!r} is not REV:DATASET/ID", hint="for example HEAD:train/img_0001.png"
        )
    dataset, example_id = rest.split("/", 1)
    record = repo.record(dataset, example_id, rev or "HEAD")
    data = repo.read(record)
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


COMMANDS = [ls, cat]
