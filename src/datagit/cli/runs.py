"""`datagit runs`: list, show and garbage-collect cached harness runs."""

from __future__ import annotations

import click

from datagit.api import harness, render
from datagit.cli._common import echo_json, open_repo, short


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs(ctx: click.Context, as_json: bool) -> None:
    """List cached harness runs, newest first.

    \b
    Examples:
      datagit runs
      datagit runs show 3f2a9c
      datagit runs gc
    """
    if ctx.invoked_subcommand is not None:
        return
    all_runs = harness.runs(open_repo(ctx))
    if as_json:
        echo_json(render.runs_json(all_runs))
        return
    for r in all_runs:
        m = r.meta
        acc = m.get("metrics", {}).get("accuracy")
        click.echo(
            f"{r.id}  train {m['train']['dataset']}@{short(m['train']['commit'])}  "
            f"eval {m['eval']['dataset']}@{short(m['eval']['commit'])}  "
            f"seed {m['key']['seed']}  {m['config']['model']}"
            + (f"  accuracy {acc:.4f}" if isinstance(acc, float) else "")
        )


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--examples", type=int, default=10, show_default=True, help="Worst eval examples to list."
)
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool, examples: int) -> None:
    """Show one run: its key, data, config, metrics and the eval examples it got most wrong.

    \b
    Example:
      datagit runs show 3f2a9c --examples 20
    """
    run = harness.show(open_repo(ctx), run_id)
    if as_json:
        echo_json(render.run_json(run))
        return
    outputs = run.outputs()
    worst = sorted(
        (o for o in outputs if o["loss"] is not None), key=lambda o: o["loss"], reverse=True
    )[:examples]
    from datagit.cli.train import render as render_run

    render_run(run, run.meta["train"]["rev"], per_class=True)
    key = run.meta["key"]
    click.echo(
        f"  key    train tree {short(key['train_tree'])}  eval tree {short(key['eval_tree'])}"
    )
    click.echo(f"         config {short(key['config'])}  seed {key['seed']}")
    click.echo(f"  weights {run.weights_path}  sha256 {short(run.meta['weights_sha256'])}")
    if worst:
        click.echo("  highest-loss eval examples:")
        for o in worst:
            click.echo(
                f"    {o['loss']:8.4f}  {o['id']}  label {o['label']}  predicted {o['pred']}"
            )


@runs.command("gc")
@click.option("--all", "everything", is_flag=True, help="Remove every cached run.")
@click.pass_context
def gc(ctx: click.Context, everything: bool) -> None:
    """Remove runs whose data no branch, tag or HEAD holds any more (all with --all).

    \b
    Example:
      datagit runs gc
    """
    report = harness.gc(open_repo(ctx), everything=everything)
    click.echo(f"kept {report.kept} runs, removed {report.removed}")


COMMANDS = [runs]
