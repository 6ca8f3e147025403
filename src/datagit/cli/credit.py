"""`datagit credit`: the contributor-labour ledger, per commit author and per annotator."""

from __future__ import annotations

import datetime as dt

import click

from datagit.api import history, render
from datagit.cli._common import PathspecCommand, echo_json, open_repo, pathspec
from datagit.core.credit import Contribution
from datagit.errors import InvalidInputError

COLUMNS = (
    ("commits", "commits"),
    ("examples_added", "added"),
    ("labels_set", "labels"),
    ("labels_standing", "standing"),
    ("labels_overturned", "overturned"),
    ("content_bytes", "bytes"),
)


def _date(value: str | None, option: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        d = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(
            f"{option} {value!r} is not a date", hint="use ISO form: 2026-01-31 or 2026-01-31T12:00"
        ) from None
    return d if d.tzinfo else d.replace(tzinfo=dt.UTC)


@click.command(cls=PathspecCommand)
@click.argument("rev", default="HEAD")
@click.option("--since", default=None, metavar="DATE", help="Only commits on or after DATE.")
@click.option("--until", default=None, metavar="DATE", help="Only commits on or before DATE.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (see docs/history.md).")
@click.pass_context
def credit(
    ctx: click.Context, rev: str, since: str | None, until: str | None, as_json: bool
) -> None:
    """Who did the labelling: examples added, labels set, still standing at REV, overturned.

    \b
    Examples:
      datagit credit
      datagit credit v2.0 --since 2026-01-01 -- train
    """
    repo = open_repo(ctx)
    ledger = history.credit(
        repo,
        rev,
        datasets=pathspec(ctx) or None,
        since=_date(since, "--since"),
        until=_date(until, "--until"),
    )
    if as_json:
        echo_json(render.credit_json(ledger))
        return
    data = ledger.to_dict()
    for title, key in (("Authors", "authors"), ("Annotators", "annotators")):
        rows = [Contribution(**r) for r in data[key]]
        if not rows:
            continue
        click.echo(f"{title}:")
        width = max(len(r.name) for r in rows)
        header = "  ".join(f"{h:>10}" for _, h in COLUMNS)
        click.echo(f"  {'name':<{width}}  {header}")
        for r in rows:
            cells = "  ".join(f"{getattr(r, attr):>10}" for attr, _ in COLUMNS)
            click.echo(f"  {r.name:<{width}}  {cells}")


COMMANDS = [credit]
