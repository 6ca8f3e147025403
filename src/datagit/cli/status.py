"""`datagit status`: what is staged, what is not, example by example."""

from __future__ import annotations

import click

from datagit.cli._common import advise, change_line, echo_json, open_repo, short
from datagit.cli._term import use_colour
from datagit.core.changes import counts

LIMIT = 20


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", is_flag=True, help="List every changed example.")
@click.pass_context
def status(ctx: click.Context, as_json: bool, verbose: bool) -> None:
    """Show new, removed, re-labelled and modified examples, staged and not.

    \b
    Example:
      datagit status
    """
    repo = open_repo(ctx)
    use_colour(ctx, repo)
    st = repo.status()
    if as_json:
        echo_json(
            {
                "branch": st.branch,
                "head": st.head,
                "clean": st.clean,
                "conflicts": st.conflicts,
                "config": {"staged": st.config_staged, "unstaged": st.config_unstaged},
                "datasets": {
                    d.name: {
                        "staged": counts(d.staged),
                        "unstaged": counts(d.unstaged),
                        "staged_ids": [c.id for c in d.staged],
                        "unstaged_ids": [c.id for c in d.unstaged],
                        "missing": d.missing,
                    }
                    for d in st.datasets
                },
            }
        )
        return
    click.echo(f"On branch {st.branch}" if st.branch else f"HEAD detached at {short(st.head)}")
    if st.head is None:
        click.echo("No commits yet")
    for d in st.datasets:
        if d.missing:
            kind = "folder" if d.missing.endswith("/") else "table"
            click.echo(
                f"note: dataset {d.name}: {kind} {d.missing} does not exist (an empty dataset)"
            )
    if st.conflicts:
        click.echo(f"\nUnresolved merge conflicts ({len(st.conflicts)}):")
        for c in st.conflicts[: LIMIT if not verbose else None]:
            click.echo(f"  conflict   {c}")
    for title, attr, flag in (
        ("Changes to be committed", "staged", st.config_staged),
        ("Changes not staged", "unstaged", st.config_unstaged),
    ):
        rows = [(d.name, c) for d in st.datasets for c in getattr(d, attr)]
        if not rows and not flag:
            continue
        click.echo(f"\n{title}:")
        if flag:
            click.echo("  modified   datagit.toml")
        for d in st.datasets:
            ch = getattr(d, attr)
            if ch:
                summary = ", ".join(f"{v} {k}" for k, v in counts(ch).items() if v)
                click.echo(f"  {d.name}: {summary}")
        shown = rows if verbose else rows[:LIMIT]
        for name, c in shown:
            click.echo("    " + change_line(name, c))
        if len(rows) > len(shown):
            click.echo(f"    … and {len(rows) - len(shown)} more (use -v)")
    if st.clean:
        click.echo("nothing to commit, workspace clean")
    advise(repo)


COMMANDS = [status]
