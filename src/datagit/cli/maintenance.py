"""`datagit fsck` and `datagit gc`."""

from __future__ import annotations

import dataclasses

import click

from datagit.api import maintenance
from datagit.cli._common import echo_json, open_repo
from datagit.cli._progress import progress_bar
from datagit.errors import CorruptObjectError
from datagit.storage.gitgc import RepackReport


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
    with progress_bar() as progress:
        report = maintenance.fsck(repo, progress)
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
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def gc(ctx: click.Context, as_json: bool) -> None:
    """Drop content no commit, branch, tag or the stage refers to; repack git objects.

    Git objects (commits, trees, record shards) reachable from a ref, a
    reflog, the stage or a merge in progress are rewritten into one pack;
    the per-commit packs and loose objects they replace are deleted.

    \b
    Example:
      datagit gc
    """
    repo = open_repo(ctx)
    with progress_bar() as progress:
        report = maintenance.gc(repo, progress)
    git = report.git
    if as_json:
        echo_json(
            {
                "kept": report.kept,
                "removed": report.removed,
                "git": None if git is None else dataclasses.asdict(git),
            }
        )
        return
    click.echo(f"kept {report.kept} objects, removed {report.removed}")
    if git is not None:
        click.echo(git_line(git))


def git_line(git: RepackReport) -> str:
    """``git objects: 2,345 in 1 pack (was 812 packs, 40 loose; 3 unreachable dropped)``."""
    now = f"git objects: {git.objects:,} in {git.packs} pack{'' if git.packs == 1 else 's'}"
    if not git.rewritten:
        return f"{now} (already packed)"
    was = f"was {git.packs_before:,} pack{'' if git.packs_before == 1 else 's'}"
    if git.loose_before:
        was += f", {git.loose_before:,} loose"
    dropped = f"; {git.dropped:,} unreachable dropped" if git.dropped else ""
    return f"{now} ({was}{dropped})"


COMMANDS = [fsck, gc]
