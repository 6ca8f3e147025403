"""`datagit rm` and `datagit mv`: remove or move examples, staging the change."""

from __future__ import annotations

import click

from datagit.api import examples
from datagit.cli._common import label, open_repo, user_paths


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="DATASET/ID|PATH...")
@click.option("--cached", is_flag=True, help="Unstage and untrack only; keep the files.")
@click.option("-r", "recursive", is_flag=True, help="Allow a folder or a whole dataset.")
@click.option("-f", "--force", is_flag=True, help="Even when the file has unstaged changes.")
@click.pass_context
def rm(
    ctx: click.Context, specs: tuple[str, ...], cached: bool, recursive: bool, force: bool
) -> None:
    """Remove examples from the workspace and the stage (a table's rows as DATASET/ID).

    \b
    Examples:
      datagit rm train/cat/0042.png
      datagit rm reviews/r17
      datagit rm -r train/cat          # every example labelled cat
      datagit rm --cached train/0042.png
    """
    repo = open_repo(ctx)
    for name, example_id in examples.rm(
        repo, user_paths(ctx, repo, specs), cached=cached, recursive=recursive, force=force
    ):
        click.echo(f"rm '{name}/{example_id}'")


@click.command()
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@click.pass_context
def mv(ctx: click.Context, src: str, dst: str) -> None:
    """Move one example: to another class folder (re-label) or name (new id); staged.

    \b
    Examples:
      datagit mv train/cat/0042.png train/dog/      # re-label cat → dog
      datagit mv train/cat/0042.png train/cat/a.png # new id, same label
      datagit mv reviews/r17 reviews/r17b           # a table row's id
    """
    repo = open_repo(ctx)
    src_p, dst_p = user_paths(ctx, repo, [src, dst])
    name, old, new = examples.mv(repo, src_p, dst_p)
    what = f"{name}/{old.id} → {name}/{new.id}"
    if old.label != new.label:
        what += f"  {label(old.label)} → {label(new.label)}"
    click.echo(f"renamed {what}" if old.id != new.id else f"relabeled {what}")


COMMANDS = [rm, mv]
