"""`datagit suggest`: the unlabelled examples most worth a human's time."""

from __future__ import annotations

import click

from datagit.api import engine
from datagit.cli._common import echo_json, label, open_repo


@click.command()
@click.argument("pool")
@click.option("--budget", type=int, required=True, help="How many examples to suggest.")
@click.option(
    "--strategy",
    default="entropy",
    show_default=True,
    help="Uncertainty measure: entropy, margin or least-confidence.",
)
@click.option("--rev", default="HEAD", show_default=True, help="The revision to train on.")
@click.option("--no-diversity", is_flag=True, help="Plain top-K, without spreading the batch.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def suggest(
    ctx: click.Context,
    pool: str,
    budget: int,
    strategy: str,
    rev: str,
    no_diversity: bool,
    as_json: bool,
) -> None:
    """Rank POOL's unlabelled examples by the [harness] model's uncertainty.

    The batch spreads over the class pairs the model hesitates between, so the
    budget is not spent on one confusion. The run id it prints predicts the
    whole pool: `datagit label --from-run RUN POOL` writes those predictions.

    \b
    Example:
      datagit suggest pool --budget 50
      datagit suggest pool --budget 20 --strategy margin --json
    """
    repo = open_repo(ctx)
    report = engine.suggest(
        repo, pool, budget=budget, strategy=strategy, rev=rev, diverse=not no_diversity
    )
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(
        f"{pool}: {len(report.suggestions)} of {report.unlabelled} unlabelled examples "
        f"({report.strategy}; run {report.run})"
    )
    for s in report.suggestions:
        click.echo(f"{s.uncertainty:.3f}  {s.id}  model: {label(s.predicted)} ({s.confidence:.2f})")


COMMANDS = [suggest]
