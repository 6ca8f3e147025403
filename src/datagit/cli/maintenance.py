"""`datagit fsck` and `datagit gc`."""

from __future__ import annotations

import click

from datagit.api import maintenance
from datagit.cli._common import echo_json, open_repo
from datagit.errors import CorruptObjectError


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def fsck(ctx: click.Context, as_json: bool) -> None:
    """Verify git objects and every stored byte against its address.

    \b
    Example:
      datagit fsck
    """
    repo = open_repo(ctx)
    report = maintenance.fsck(repo)
    if as_json:
        echo_json(
            {
                "ok": report.ok,
                "commits": report.commits,
                "objects": report.objects,
                "problems": report.problems,
                "missing": report.missing,
            }
        )
    else:
        for p in report.problems:
            click.echo(p)
        if report.missing and not report.problems:
            click.echo(f"{len(report.missing)} objects not fetched yet (partial clone)")
        click.echo(
            f"checked {report.commits} commits, {report.objects} content objects: "
            + ("ok" if report.ok else f"{len(report.problems)} problems")
        )
    if not report.ok:
        raise CorruptObjectError(
            f"fsck found {len(report.problems)} problems",
            hint="restore the named objects from a remote or backup",
        )


@click.command()
@click.pass_context
def gc(ctx: click.Context) -> None:
    """Drop content no commit, branch, tag or the stage refers to.

    \b
    Example:
      datagit gc
    """
    repo = open_repo(ctx)
    report = maintenance.gc(repo)
    click.echo(f"kept {report.kept} objects, removed {report.removed}")


COMMANDS = [fsck, gc]
