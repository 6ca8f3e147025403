"""`datagit restore`: discard changes to examples, or unstage them, without moving HEAD."""

from __future__ import annotations

import click

from datagit.api import undo
from datagit.cli._common import change_line, open_repo, user_paths


@click.command()
@click.argument("paths", nargs=-1, required=True, metavar="DATASET|PATH...")
@click.option("-S", "--staged", is_flag=True, help="Unstage: the stage takes HEAD's records.")
@click.option("-s", "--source", default=None, metavar="REV", help="Restore from REV.")
@click.pass_context
def restore(ctx: click.Context, paths: tuple[str, ...], staged: bool, source: str | None) -> None:
    """Put examples back as the stage has them (or REV), or unstage them with --staged.

    A path names the examples whose file lies under it, where they are now or
    where the stage has them: restoring a moved file moves it back. Files the
    stage never had are left alone, as git leaves untracked files.

    \b
    Examples:
      datagit restore train                   # discard every unstaged change in train
      datagit restore train/8/img_0042.png    # undo one re-label
      datagit restore --staged train          # unstage, keep the workspace as it is
      datagit restore --source v1 train/cat   # the cat folder as it was at v1
    """
    if staged and source:
        raise click.UsageError("--staged restores from HEAD; drop --source")
    repo = open_repo(ctx)
    done = undo.restore(repo, user_paths(ctx, repo, paths), staged=staged, source=source)
    n = sum(len(ch) for ch in done.values())
    for name, changes in done.items():
        for c in changes:
            click.echo("  " + change_line(name, c))
    where = "unstaged" if staged else "restored"
    click.echo(f"{n} example{'s' if n != 1 else ''} {where}")


COMMANDS = [restore]
