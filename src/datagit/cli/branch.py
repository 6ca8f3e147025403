"""`datagit branch` and `datagit tag`: name commits."""

from __future__ import annotations

import click

from datagit.api import branches
from datagit.cli._common import echo_json, open_repo, short


@click.command()
@click.argument("name", required=False)
@click.argument("start", required=False, default="HEAD")
@click.option("-d", "--delete", is_flag=True, help="Delete a merged branch.")
@click.option("-D", "force_delete", is_flag=True, help="Delete a branch even if unmerged.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def branch(
    ctx: click.Context,
    name: str | None,
    start: str,
    delete: bool,
    force_delete: bool,
    as_json: bool,
) -> None:
    """List branches, create NAME at START, or delete NAME.

    \b
    Examples:
      datagit branch                 # list
      datagit branch fix-labels      # create at HEAD
      datagit branch -d fix-labels
    """
    repo = open_repo(ctx)
    if name is None:
        current = repo.branch()
        names = branches.list_branches(repo)
        if as_json:
            echo_json(
                [
                    {"name": n, "current": n == current, "commit": repo.git.ref(f"refs/heads/{n}")}
                    for n in names
                ]
            )
            return
        for n in names:
            click.echo(f"{'*' if n == current else ' '} {n}")
        return
    with repo.lock:
        if delete or force_delete:
            branches.delete_branch(repo, name, force=force_delete)
            click.echo(f"Deleted branch {name}")
        else:
            oid = branches.create_branch(repo, name, start)
            click.echo(f"Created branch {name} at {short(oid)}")


@click.command()
@click.argument("name", required=False)
@click.argument("rev", required=False, default="HEAD")
@click.option("-m", "--message", default=None, help="Make an annotated tag.")
@click.option("-d", "--delete", is_flag=True)
@click.pass_context
def tag(ctx: click.Context, name: str | None, rev: str, message: str | None, delete: bool) -> None:
    """List tags, tag REV as NAME, or delete NAME.

    \b
    Example:
      datagit tag v1.0 -m "first release of the training set"
    """
    repo = open_repo(ctx)
    if name is None:
        for n, oid in branches.list_tags(repo).items():
            click.echo(f"{n}\t{short(oid)}")
        return
    with repo.lock:
        if delete:
            branches.delete_tag(repo, name)
            click.echo(f"Deleted tag {name}")
        else:
            oid = branches.create_tag(repo, name, rev, message)
            click.echo(f"Tagged {short(oid)} as {name}")


COMMANDS = [branch, tag]
