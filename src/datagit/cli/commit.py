"""`datagit commit`: record the stage as a commit."""

from __future__ import annotations

import re

import click

from datagit.cli._common import advise, open_repo, short
from datagit.errors import InvalidInputError
from datagit.storage.git import Signature


@click.command()
@click.option("-m", "--message", required=True, help="What changed and why.")
@click.option("-a", "--all", "all_", is_flag=True, help="Stage every dataset first.")
@click.option("--annotator", default=None, help="Who set the labels this commit changes.")
@click.option("--author", default=None, metavar='"NAME <EMAIL>"', help="Override the author.")
@click.option("--allow-empty", is_flag=True)
@click.pass_context
def commit(
    ctx: click.Context,
    message: str,
    all_: bool,
    annotator: str | None,
    author: str | None,
    allow_empty: bool,
) -> None:
    """Record staged changes as a new commit.

    \b
    Example:
      datagit commit -a -m "relabel blurry cats" --annotator alice
    """
    repo = open_repo(ctx)
    sig = None
    if author:
        m = re.fullmatch(r"\s*(.+?)\s*<([^>]+)>\s*", author)
        if not m:
            raise InvalidInputError(f"--author {author!r} is not 'Name <email>'")
        me = repo.identity()
        sig = Signature(m.group(1), m.group(2), me.time, me.offset)
    info = repo.commit(message, all=all_, annotator=annotator, author=sig, allow_empty=allow_empty)
    where = repo.branch() or "detached HEAD"
    click.echo(f"[{where} {short(info.id)}] {info.summary}")
    if not info.parents:  # a root commit added everything: the manifests know the counts
        for name in sorted(repo.datasets_at(info.id)):
            count = repo.dataset_tree(name, info.id).count
            if count:
                click.echo(f" {name}: {count} added")
        return
    changes = repo.changes(info.parents[0], info.id)
    for name, ch in changes.items():
        if ch:
            kinds: dict[str, int] = {}
            for c in ch:
                kinds[c.kind] = kinds.get(c.kind, 0) + 1
            click.echo(f" {name}: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    advise(repo)


COMMANDS = [commit]
