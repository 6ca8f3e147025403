"""`datagit remote`: name the places a repository's history and content are shared."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from datagit.api import remotes
from datagit.cli._common import echo_json, open_repo


def resolve_url(ctx: click.Context, url: str) -> str:
    """A relative local path is relative to ``-C``'s folder, like every other path."""
    if "://" in url or os.path.isabs(url) or re.match(r"^[\w.-]+@[\w.-]+:", url):
        return url
    return os.path.join(ctx.find_root().obj["directory"], url)


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A transfer progress callback for the api: a bar on a terminal, silence otherwise."""
    if not sys.stderr.isatty():
        yield lambda phase, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        tasks: dict[str, int] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase}ing objects", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


@click.group(invoke_without_command=True)
@click.pass_context
def remote(ctx: click.Context) -> None:
    """List remotes, or add, remove and check them.

    \b
    Examples:
      datagit remote add origin /srv/datasets/cats.git
      datagit remote add origin git@host:team/cats.git --content s3://bucket/cats
      datagit remote list
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_cmd)


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--content",
    metavar="URL",
    help="Object store for example bytes (s3://bucket/prefix, a directory, …). "
    "Default for a local git path: PATH/datagit-content.",
)
@click.pass_context
def add_cmd(ctx: click.Context, name: str, url: str, content: str | None) -> None:
    """Add remote NAME: git URL for history, --content URL for example bytes.

    \b
    Example:
      datagit remote add origin ../shared/cats.git --content s3://team-data/cats
    """
    repo = open_repo(ctx)
    content = resolve_url(ctx, content) if content else None
    cfg = remotes.add_remote(repo, name, resolve_url(ctx, url), content)
    click.echo(f"Added remote {cfg.name}: {cfg.url} (content: {cfg.content or 'none'})")


@remote.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool = False) -> None:
    """List remotes with their git and content URLs.

    \b
    Example:
      datagit remote list --json
    """
    found = remotes.list_remotes(open_repo(ctx))
    if as_json:
        echo_json([{"name": c.name, "url": c.url, "content": c.content} for c in found.values()])
        return
    for c in found.values():
        click.echo(f"{c.name}\t{c.url}\t{c.content or '-'}")


@remote.command("remove")
@click.argument("name")
@click.pass_context
def remove_cmd(ctx: click.Context, name: str) -> None:
    """Forget remote NAME and its remote-tracking branches (the remote is untouched).

    \b
    Example:
      datagit remote remove origin
    """
    remotes.remove_remote(open_repo(ctx), name)
    click.echo(f"Removed remote {name}")


@remote.command("check")
@click.argument("name", default="origin")
@click.option("--no-verify", is_flag=True, help="Only list; do not download and hash objects.")
@click.pass_context
def check_cmd(ctx: click.Context, name: str, no_verify: bool) -> None:
    """Check that remote NAME holds intact content for every commit on its branches.

    \b
    Example:
      datagit remote check origin
    """
    problems = remotes.check_remote(open_repo(ctx), name, verify=not no_verify)
    for line in problems:
        click.echo(line)
    if problems:
        ctx.exit(1)
    click.echo(f"remote {name}: ok")


COMMANDS = [remote]
