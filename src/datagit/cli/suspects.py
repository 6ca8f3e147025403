"""`datagit suspects`: the examples the model says are probably mislabelled."""

from __future__ import annotations

import click

from datagit.api import engine
from datagit.cli._common import echo_json, label, open_repo, short


@click.command()
@click.argument("dataset", required=False)
@click.option("--rev", default="HEAD", show_default=True, help="The revision to examine.")
@click.option("--top", type=int, default=None, help="Show K examples (default: the flagged ones).")
@click.option("--folds", type=int, default=5, show_default=True, help="Cross-validation folds.")
@click.option("--since", metavar="REV", help="Only examples changed since REV.")
@click.option(
    "--history",
    default=",".join(engine.rank_core.DEFAULT_FEATURES),
    show_default=True,
    help="History features to rank with: commit, annotator, relabelled, metric ('' for none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def suspects(
    ctx: click.Context,
    dataset: str | None,
    rev: str,
    top: int | None,
    folds: int,
    since: str | None,
    history: str,
    as_json: bool,
) -> None:
    """Rank DATASET's examples (default: [harness] train) by how likely their label is wrong.

    Out-of-sample probabilities from --folds cached harness runs, confident
    learning (cleanlab), then history: labels set in a commit the model
    disagrees with far more than elsewhere rank higher.

    \b
    Example:
      datagit suspects --top 20
      datagit suspects train --since v1 --json > suspects.json
      datagit relabel --from suspects.json --annotator alice
    """
    repo = open_repo(ctx)
    features = [f for f in history.split(",") if f.strip()]

    def progress(done: int, k: int, cached: bool) -> None:
        if not as_json:
            click.echo(f"fold {done}/{k} {'cached' if cached else 'trained'}", err=True)

    report = engine.suspects(
        repo, dataset, rev, folds=folds, top=top, since=since, features=features, progress=progress
    )
    if as_json:
        echo_json(report.to_dict())
        return
    click.echo(
        f"{report.dataset} at {short(report.commit)}: {report.issues} suspected of "
        f"{report.examples} labelled examples ({report.trained}/{report.folds} folds trained)"
    )
    for s in report.suspects:
        mark = "!" if s.issue else " "
        click.echo(
            f"{mark} {s.score:.3f}  {s.id}  {label(s.label)} → {label(s.suggested)}"
            f"  {s.annotator or '-'}  {short(s.commit)}"
        )


COMMANDS = [suspects]
