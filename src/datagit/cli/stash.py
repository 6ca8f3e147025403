"""`datagit stash`: put uncommitted changes aside, list them, bring them back."""

from __future__ import annotations

import click

from datagit.api import stash as stash_api
from datagit.cli._common import open_repo


def _index(spec: str | None) -> int:
    """``stash@{2}`` or ``2`` → 2; nothing → 0."""
    if spec is None:
        return 0
    text = spec.removeprefix("stash@{").removesuffix("}")
    if not text.isdigit():
        raise click.BadParameter(f"{spec!r} is not a stash (use stash@{{N}} or N)")
    return int(text)


@click.group(invoke_without_command=True)
@click.option("-m", "--message", default=None, help="Describe the stash.")
@click.pass_context
def stash(ctx: click.Context, message: str | None) -> None:
    """Save the stage and workspace changes and return to HEAD (no subcommand: push).

    \b
    Examples:
      datagit stash -m "half-done relabel"
      datagit stash list
      datagit stash pop
      datagit stash drop stash@{1}
    """
    if ctx.invoked_subcommand is None:
        _push(ctx, message)


def _push(ctx: click.Context, message: str | None) -> None:
    repo = open_repo(ctx)
    st = stash_api.push(repo, message)
    click.echo(f"Saved working directory and stage: {st.commit.summary}")


@stash.command("push")
@click.option("-m", "--message", default=None, help="Describe the stash.")
@click.pass_context
def push(ctx: click.Context, message: str | None) -> None:
    """Save the changes and return to HEAD."""
    _push(ctx, message)


@stash.command("list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List stashes, newest first."""
    for st in stash_api.stashes(open_repo(ctx)):
        click.echo(f"{st.name}: {st.commit.summary}")


@stash.command("pop")
@click.argument("which", required=False, metavar="[stash@{N}]")
@click.pass_context
def pop(ctx: click.Context, which: str | None) -> None:
    """Apply a stash (default the newest) and drop it."""
    st = stash_api.apply(open_repo(ctx), _index(which), drop=True)
    click.echo(f"Dropped {st.name} ({st.commit.id[:10]})")


@stash.command("apply")
@click.argument("which", required=False, metavar="[stash@{N}]")
@click.pass_context
def apply(ctx: click.Context, which: str | None) -> None:
    """Apply a stash and keep it."""
    st = stash_api.apply(open_repo(ctx), _index(which))
    click.echo(f"Applied {st.name}")


@stash.command("drop")
@click.argument("which", required=False, metavar="[stash@{N}]")
@click.pass_context
def drop(ctx: click.Context, which: str | None) -> None:
    """Forget a stash."""
    st = stash_api.drop(open_repo(ctx), _index(which))
    click.echo(f"Dropped {st.name} ({st.commit.id[:10]})")


COMMANDS = [stash]
