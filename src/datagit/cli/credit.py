"""`datagit credit`: the contributor-labour ledger, per commit author and per annotator."""

from __future__ import annotations

import datetime as dt

import click

from datagit.api import history, render, value_credit
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
@click.option("--value", is_flag=True, help="Each one's share of the eval loss improvement.")
@click.option("--config", "config_file", default=None, metavar="FILE", help="[harness] from FILE.")
@click.pass_context
def credit(
    ctx: click.Context,
    rev: str,
    since: str | None,
    until: str | None,
    as_json: bool,
    value: bool,
    config_file: str | None,
) -> None:
    """Who did the labelling: examples added, labels set, still standing at REV, overturned;
    with --value, what their examples were worth to the model (docs/ledger.md).

    \b
    Examples:
      datagit credit
      datagit credit v2.0 --since 2026-01-01 -- train
      datagit credit --value
    """
    repo = open_repo(ctx)
    if value:
        _value(value_credit.credit_value(repo, rev, config_file=config_file), as_json)
        return
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
    for title, key in (
        ("Authors", "authors"),
        ("Annotators", "annotators"),
        ("Machine labels (label --from-run)", "machines"),
    ):
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


def _value(answer: value_credit.ValueCredit, as_json: bool) -> None:
    if as_json:
        echo_json(answer.to_dict())
        return
    click.echo(
        f"eval loss {answer.eval_loss_init:.4f} → {answer.eval_loss_final:.4f} "
        f"(improvement {answer.improvement:.4f}; run {answer.run}, ledger of "
        f"{', '.join(answer.params)})"
    )
    for title, rows in (("Authors", answer.authors), ("Annotators", answer.annotators)):
        click.echo(f"{title}:")
        width = max([len(r["name"]) for r in rows] + [4])
        click.echo(f"  {'name':<{width}}  {'value':>10}  {'share':>7}  {'examples':>8}  "
                   f"{'labels':>7}  {'standing':>8}")  # fmt: skip
        for r in rows:
            click.echo(
                f"  {r['name']:<{width}}  {r['value']:>10.4f}  {r['share']:>7.1%}  "
                f"{r['examples']:>8}  {r.get('labels_set', 0):>7}  {r.get('labels_standing', 0):>8}"
            )
    click.echo(
        f"init weights {answer.init:.4f}  rounding {answer.rounding:.2g}  "
        f"layers not recorded {answer.unrecorded:.4f}  residual {answer.residual:.2g} (quadrature)"
    )


COMMANDS = [credit]
