"""`datagit show`: one commit and the examples it changed."""

from __future__ import annotations

import click

from datagit.api import render
from datagit.cli._common import change_line, echo_json, open_repo, when
from datagit.cli.diff import _echo_transitions as echo_transitions
from datagit.cli.diff import _rows as rows
from datagit.core.changes import counts
from datagit.core.diff import build


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--limit", type=int, default=50, show_default=True, help="Examples listed per dataset (0: all)."
)
@click.option("--stat", is_flag=True, help="Only counts and the label transition table.")
@click.option("--name-status", is_flag=True, help="One `A|D|M|L|R<TAB>dataset/id` line each.")
@click.pass_context
def show(
    ctx: click.Context, rev: str, as_json: bool, limit: int, stat: bool, name_status: bool
) -> None:
    """Show commit REV, its author and annotator, and its changes against its first parent.

    \b
    Examples:
      datagit show HEAD~1
      datagit show --stat v1
      datagit show --name-status HEAD | grep '^L'
    """
    repo = open_repo(ctx)
    c = repo.commit_info(rev)
    changes = repo.changes(c.parents[0] if c.parents else None, c.id)
    if as_json:
        echo_json(render.show_json(c, changes))
        return
    click.echo(f"commit {c.id}")
    click.echo(f"Author: {c.author.name} <{c.author.email}>")
    click.echo(f"Date:   {when(c.author)}\n")
    for line in c.message.rstrip().splitlines():
        click.echo(f"    {line}")
    click.echo()
    if stat or name_status:
        for name, ch in changes.items():
            d = build(name, ch)
            if not d:
                continue
            if name_status:
                for code, text in rows(d):
                    click.echo(f"{code}\t{text}")
                continue
            click.echo(f"{name}: " + ", ".join(f"{v} {k}" for k, v in d.summary().items() if v))
            echo_transitions(d)
        return
    for name, ch in changes.items():
        if not ch:
            continue
        summary = ", ".join(f"{v} {k}" for k, v in counts(ch).items() if v)
        click.echo(f"{name}: {summary}")
        for x in ch[: limit or None]:
            click.echo("  " + change_line(name, x))
        if limit and len(ch) > limit:
            click.echo(f"  … and {len(ch) - limit} more (use --limit 0)")


COMMANDS = [show]
