"""`datagit import-dvc`: bring a DVC-tracked dataset and its history into datagit."""

from __future__ import annotations

import click

from datagit.api.dvc_import import import_dvc
from datagit.cli._common import open_repo, short
from datagit.cli._progress import progress_bar
from datagit.cli.remote import resolve_url


@click.command("import-dvc")
@click.argument("source", metavar="PATH_OR_URL")
@click.option("--rev", default=None, metavar="RANGE", help="Commits to import: A..B or REV.")
@click.option("--path", "path", default=None, metavar="DIR", help="The DVC-tracked directory.")
@click.option("--dataset", default=None, help="Dataset to import into (default: DIR's name).")
@click.pass_context
def import_dvc_cmd(
    ctx: click.Context, source: str, rev: str | None, path: str | None, dataset: str | None
) -> None:
    """Replay DIR's DVC history as datagit commits (author, date and message kept).

    DIR must hold class folders (DIR/<label>/<file>); it becomes an imagefolder
    dataset. Needs the dvc package: pip install 'datagit[dvc]'.

    \b
    Examples:
      datagit import-dvc ../old-project --path data/images
      datagit import-dvc ../old-project --path data/images --rev v1.0..main
    """
    repo = open_repo(ctx)
    with progress_bar() as progress:
        done = import_dvc(
            repo, resolve_url(ctx, source), rev=rev, path=path, dataset=dataset, progress=progress
        )
    for c in done:
        click.echo(f"{short(c.source)} → {short(c.commit)}  ({c.files} files)")
    click.echo(f"Imported {len(done)} commits")


COMMANDS = [import_dvc_cmd]
