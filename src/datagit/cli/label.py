"""`datagit label --from-run`: a model's predictions as the labels of unlabelled examples."""

from __future__ import annotations

import click

from datagit.api import relabel as relabel_api
from datagit.cli._common import echo_json, label, open_repo


@click.command("label")
@click.argument("pool")
@click.option("--from-run", "run_id", required=True, metavar="RUN", help="The run to take.")
@click.option(
    "--min-confidence",
    type=float,
    default=0.0,
    show_default=True,
    help="Only predictions at least this confident; the rest stay unlabelled.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the staged labels as JSON.")
@click.pass_context
def label_(
    ctx: click.Context, pool: str, run_id: str, min_confidence: float, as_json: bool
) -> None:
    """Stage RUN's predictions as the labels of POOL's unlabelled examples.

    Image files move into their class folders, table cells are filled; the
    labels are staged with annotator `model:<run id>`, so diff, blame and
    credit always tell them from human labels.

    \b
    Example:
      datagit suggest pool --budget 20      # prints the run id
      datagit label pool --from-run 3f2a9c --min-confidence 0.95
      datagit commit -m "pre-labels from the model"
    """
    repo = open_repo(ctx)
    report = relabel_api.label_from_run(repo, run_id, pool, min_confidence=min_confidence)
    if as_json:
        echo_json(report.to_dict())
        return
    for e in report.labelled:
        click.echo(f"labelled  {e.dataset}/{e.id}  {label(e.new)}")
    click.echo(
        f"{len(report.labelled)} labels staged as {report.annotator}; "
        f"{report.left_unlabelled} left unlabelled"
    )


COMMANDS = [label_]
