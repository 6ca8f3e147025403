"""`datagit check`: duplicate examples within datasets and leakage across them."""

from __future__ import annotations

import click

from datagit.api import check as checks
from datagit.cli._common import echo_json, open_repo
from datagit.cli._progress import progress_bar


@click.command()
@click.argument("datasets", nargs=-1, metavar="[DATASET]...")
@click.option("--rev", default="HEAD", show_default=True, help="The commit to check.")
@click.option("--near", is_flag=True, help="Also find near-duplicate images (perceptual hash).")
@click.option(
    "--distance", type=int, default=4, show_default=True, help="--near: most bits that may differ."
)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def check(
    ctx: click.Context,
    datasets: tuple[str, ...],
    rev: str,
    near: bool,
    distance: int,
    as_json: bool,
) -> None:
    """Find examples with the same bytes: within a dataset, and across datasets (leakage).

    Exits 1 when an example of one dataset also appears in another (e.g. an
    eval image that is also in train). `[check] leakage = "error"` in
    datagit.toml makes `commit` refuse such a change.

    \b
    Examples:
      datagit check                  # every dataset at HEAD
      datagit check train eval --json
      datagit check --near --distance 6
    """
    repo = open_repo(ctx)
    with progress_bar(enabled=not as_json) as progress:
        report = checks.check(
            repo, list(datasets) or None, rev, near=near, distance=distance, progress=progress
        )
    if as_json:
        echo_json(
            {
                "rev": rev,
                "datasets": list(report.datasets),
                "examples": report.examples,
                "duplicates": [_group(g) for g in report.within],
                "leaks": [_group(g) for g in report.leaks],
                "near": [_group(g) for g in report.near] if near else None,
            }
        )
    else:
        for title, groups in (
            ("leak", report.leaks),
            ("duplicate", report.within),
            ("near", report.near),
        ):
            for g in groups:
                click.echo(f"{title:<9} {checks.describe(g)}")
        summary = (
            f"checked {report.examples} examples in {len(report.datasets)} datasets: "
            f"{len(report.leaks)} leaks, {len(report.within)} duplicate groups"
        )
        if near:
            summary += f", {len(report.near)} near-duplicate groups"
        click.echo(summary)
    if report.leaks:
        ctx.exit(1)


def _group(g: checks.Group) -> dict[str, object]:
    return {
        "content": g.content,
        "datasets": g.datasets,
        "labels_disagree": g.labels_disagree,
        "examples": [{"dataset": m.dataset, "id": m.id, "label": m.label} for m in g.members],
    }


COMMANDS = [check]
