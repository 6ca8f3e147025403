"""`datagit blame`: who set an example's label, in which commit, and who annotated it."""

from __future__ import annotations

from typing import Any

import click

from datagit.api import attribution, history, render
from datagit.api.repo import Repo
from datagit.cli._common import echo_json, label, open_repo, short, when
from datagit.cli._term import page
from datagit.core.blame import ExampleEvent
from datagit.errors import InvalidInputError


@click.command()
@click.argument("target", required=False)
@click.option("-r", "--rev", default="HEAD", show_default=True, help="Blame as of this revision.")
@click.option("--label", "label_", default=None, help="Only examples labelled L (dataset blame).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (see docs/history.md).")
@click.option("--region", default=None, metavar="PARAM[ROWS, COLS]", help="A weight region.")
@click.option("--class", "cls", default=None, metavar="C", help="The output row of class C.")
@click.option("--run", "run_id", default=None, metavar="ID", help="Blame this run's ledger.")
@click.option("--by", type=click.Choice(attribution.BY), default="example", show_default=True)
@click.option("--top", type=int, default=20, show_default=True, help="Rows to show (0: all).")
@click.option("--negative", is_flag=True, help="Most negative first (moved against the change).")
@click.option("--eval-examples", default=None, metavar="IDS", help="Rank by their loss (a,b,…).")
@click.option(
    "--regressed", default=None, metavar="A..B", help="Eval examples right at A, wrong at B."
)
@click.option("--counterfactual", is_flag=True, help="Curvature-corrected influence estimate.")
@click.option(
    "--projection-dim", type=int, default=2048, show_default=True, metavar="K",
    help="--counterfactual on a hidden layer: gradients projected to K dimensions.",
)  # fmt: skip
@click.option(
    "--ensemble", type=int, default=1, show_default=True, metavar="K",
    help="--counterfactual of eval examples' loss: mean over runs with K seeds.",
)  # fmt: skip
@click.option("--config", "config_file", default=None, metavar="FILE", help="[harness] from FILE.")
@click.pass_context
def blame(
    ctx: click.Context,
    target: str | None,
    rev: str,
    label_: str | None,
    as_json: bool,
    **region: Any,
) -> None:
    """Blame DATASET/ID (its whole history) or DATASET (one line per example); or, with
    --region/--class, the training examples that moved a weight region (docs/ledger.md).

    \b
    Examples:
      datagit blame train/img_0042.png
      datagit blame train --label cat
      datagit blame train --rev v1.0 --json
      datagit blame --class 8 --top 30
      datagit blame --region 'output.weight[3, :]' --by author
      datagit blame --class 8 --regressed v1..v2 --by commit
      datagit blame --class 8 --regressed v1..v2 --counterfactual --ensemble 5
    """
    repo = open_repo(ctx)
    if region["region"] is not None or region["cls"] is not None:
        _region(repo, rev, as_json, **region)
        return
    if target is None:
        raise InvalidInputError(
            "blame needs DATASET/ID, DATASET, --region or --class",
            hint="e.g. `datagit blame train/img_0042.png` or `datagit blame --class 8`",
        )
    page(ctx, repo)
    dataset, example_id = history.split_example(repo, target, rev)
    if example_id is not None:
        events = history.example_log(repo, dataset, example_id, rev)
        if as_json:
            echo_json(render.example_log_json(events))
            return
        for e in events:
            click.echo(event_line(e))
        if not events:
            click.echo(f"{target}: no commit reachable from {rev} touched it")
        return
    rows = history.blame(repo, dataset, rev, label=label_)
    if as_json:
        echo_json(render.dataset_blame_json(repo, rows))
        return
    infos = _infos(repo, {b.commit for b in rows} | {b.added_in for b in rows})
    for b in rows:
        c = infos[b.commit]
        click.echo(
            f"{short(b.commit)} {when(c.author)[:10]} {c.author.name:<16.16} "
            f"{(b.annotator or '-'):<12.12} added {short(b.added_in)}  "
            f"{b.id}\t{label(b.label)}"
        )


def _region(repo: Repo, rev: str, as_json: bool, **o: Any) -> None:
    ids = (
        [i.strip() for i in o["eval_examples"].split(",") if i.strip()]
        if o["eval_examples"]
        else None
    )
    answer = attribution.blame_region(
        repo, o["region"], rev=rev, run_id=o["run_id"], config_file=o["config_file"],
        cls=o["cls"], by=o["by"], top=o["top"], negative=o["negative"], eval_examples=ids,
        regressed=o["regressed"], counterfactual=o["counterfactual"],
        projection_dim=o["projection_dim"], ensemble=o["ensemble"],
    )  # fmt: skip
    if as_json:
        echo_json(answer.to_dict())
        return
    unit = {"path": "projection on Δθ", "loss": "Δ loss (1st order)"}.get(answer.method, "estimate")
    click.echo(
        f"{answer.region}  ({answer.size} weights, run {answer.run}, "
        f"{answer.examples} examples, {answer.method}"
        + (f", {answer.estimator})" if answer.estimator else ")")
    )
    parts = f"total {answer.total:.6g}  ‖Δθ_R‖ {answer.delta_norm:.6g}"
    if answer.init is not None:
        parts += f"  init {answer.init:.3g}  rounding {answer.rounding:.3g}"
    click.echo(f"  {parts}")
    click.echo(f"  {unit:>20}  {'‖c‖':>10}  {answer.by}")
    for r in answer.rows:
        extra = (
            f"  {label(r.label)}  {short(r.commit)} {r.author or ''}"
            if answer.by == "example"
            else f"  ({r.examples} examples{', ' + r.author if r.author else ''})"
        )
        key = short(r.key) if answer.by == "commit" else r.key
        click.echo(f"  {r.score:>20.6g}  {r.norm:>10.4g}  {key}{extra}")


def _infos(repo: Repo, ids: set[str]) -> dict[str, Any]:
    return {i: repo.git.commit(i) for i in ids}


def event_line(e: ExampleEvent) -> str:
    """``<commit> <date> <author> [annotator] <kind> old → new``."""
    c = e.commit
    who = f"{c.author.name}" + (f" [{e.annotator}]" if e.annotator else "")
    return f"{short(c.id)} {when(c.author)} {who}  {change_text(e)}  {c.summary}"


def change_text(e: ExampleEvent) -> str:
    """``relabeled cat → dog`` / ``added (cat)`` / ``removed (was cat)``."""
    what = e.kind
    if e.kind == "renamed" and e.old is not None:
        what += f" from {e.old.id}"
    if e.old is not None and e.new is not None and e.old.label != e.new.label:
        what += f" {label(e.old.label)} → {label(e.new.label)}"
    elif e.new is not None and e.old is None:
        what += f" ({label(e.new.label)})"
    elif e.old is not None and e.new is None:
        what += f" (was {label(e.old.label)})"
    if e.old is not None and e.new is not None and e.old.content != e.new.content:
        what += f" content {e.old.content[:8]} → {e.new.content[:8]}"
    return what


event_json = render.event_json


COMMANDS = [blame]
