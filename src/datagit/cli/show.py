"""`datagit show`: one commit and the examples it changed."""

from __future__ import annotations

import click

from datagit.cli._common import change_line, commit_json, echo_json, open_repo, when
from datagit.cli._term import page
from datagit.core.changes import counts


@click.command()
@click.argument("rev", default="HEAD")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--limit", type=int, default=50, show_default=True, help="Examples listed per dataset (0: all)."
)
@click.pass_context
def show(ctx: click.Context, rev: str, as_json: bool, limit: int) -> None:
    """Show commit REV, its author and annotator, and its changes against its first parent.

    \b
    Example:
      datagit show HEAD~1
    """
    repo = open_repo(ctx)
    page(ctx, repo)
    c = repo.commit_info(rev)
    changes = repo.changes(c.parents[0] if c.parents else None, c.id)
    if as_json:
        out = commit_json(c)
        out["datasets"] = {
            n: {
                "summary": counts(ch),
                "changes": [
                    {
                        "id": x.id,
                        "kind": x.kind,
                        "from": x.old.label if x.old else None,
                        "to": x.new.label if x.new else None,
                    }
                    for x in ch
                ],
            }
            for n, ch in changes.items()
        }
        echo_json(out)
        return
    click.echo(f"commit {c.id}")
    click.echo(f"Author: {c.author.name} <{c.author.email}>")
    click.echo(f"Date:   {when(c.author)}\n")
    for line in c.message.rstrip().splitlines():
        click.echo(f"    {line}")
    click.echo()
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
