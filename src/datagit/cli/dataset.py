"""`datagit dataset add|remove|list`: declare datasets in datagit.toml."""

from __future__ import annotations

import click

from datagit.cli._common import echo_json, open_repo
from datagit.core.config import LAYOUTS, DatasetConfig


@click.group()
def dataset() -> None:
    """Declare and list the datasets this workspace versions.

    \b
    Examples:
      datagit dataset add train --layout imagefolder --path train
      datagit dataset list
      datagit dataset remove scratch
    """


@dataset.command("add")
@click.argument("name")
@click.option("--layout", type=click.Choice(LAYOUTS), required=True)
@click.option("--path", "path", required=True, help="Folder (imagefolder) or table file.")
@click.option("--id", "id_col", default="id", show_default=True, help="Table: id column.")
@click.option(
    "--label", "label_col", default="label", show_default=True, help="Table: label column."
)
@click.option("--annotator", default=None, help="Table: annotator column.")
@click.option("--content", default=None, help="Table: inline content column (text).")
@click.option("--file", "file_col", default=None, help="Table: column of file paths.")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None)
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    layout: str,
    path: str,
    id_col: str,
    label_col: str,
    annotator: str | None,
    content: str | None,
    file_col: str | None,
    fmt: str | None,
) -> None:
    """Declare dataset NAME.

    \b
    Examples:
      datagit dataset add train --layout imagefolder --path train
      datagit dataset add reviews --layout table --path reviews.csv \\
          --id review_id --label sentiment --content text --annotator rater
    """
    from datagit.core.config import Config

    repo = open_repo(ctx)
    cfg = DatasetConfig(
        name=name,
        layout=layout,
        path=path.rstrip("/"),
        id=id_col,
        label=label_col,
        annotator=annotator,
        content=content,
        file=file_col,
        format=fmt,
    )
    Config.parse(Config(datasets={name: cfg}).dumps())  # validate
    repo.add_dataset(cfg)
    click.echo(f"dataset {name}: {layout} at {cfg.path}")


@dataset.command("remove")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Undeclare dataset NAME; its files stay, the next commit drops its records.

    \b
    Example:
      datagit dataset remove scratch && datagit commit -a -m "drop scratch"
    """
    cfg = open_repo(ctx).remove_dataset(name)
    click.echo(f"dataset {name} removed from datagit.toml (its files in {cfg.path} are kept)")


@dataset.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List declared datasets.

    \b
    Example:
      datagit dataset list --json
    """
    repo = open_repo(ctx)
    datasets = repo.config.datasets
    if as_json:
        echo_json([{"name": n, **d.to_toml()} for n, d in sorted(datasets.items())])
        return
    for name, d in sorted(datasets.items()):
        click.echo(f"{name}\t{d.layout}\t{d.path}")


COMMANDS = [dataset]
