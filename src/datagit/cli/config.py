"""`datagit config`: repository settings (author identity and more)."""

from __future__ import annotations

import click

from datagit.cli._common import open_repo
from datagit.errors import InvalidInputError


@click.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.option("--unset", is_flag=True)
@click.option("-l", "--list", "list_", is_flag=True)
@click.pass_context
def config(
    ctx: click.Context, key: str | None, value: str | None, unset: bool, list_: bool
) -> None:
    """Get or set a repository setting, e.g. user.name and user.email.

    \b
    Examples:
      datagit config user.name "Ada Lovelace"
      datagit config user.email ada@example.com
      datagit config user.name
    """
    repo = open_repo(ctx)
    if list_ or key is None:
        for k, v in sorted(repo.git.config_entries("")):
            click.echo(f"{k}={v}")
        return
    if "." not in key:
        raise InvalidInputError(f"config key {key!r} needs a section", hint="e.g. user.name")
    if unset:
        repo.git.config_delete(key)
    elif value is None:
        got = repo.git.config_get(key)
        if got is None:
            ctx.exit(1)
        click.echo(got)
    else:
        repo.git.config_set(key, value)


COMMANDS = [config]
