"""`datagit remote`: name the places a repository's history and content are shared."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

import click

from datagit.api import remotes
from datagit.cli._common import echo_json, open_repo
from datagit.errors import InvalidInputError

option_flag = click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="An fsspec storage option for the content URL (repeatable), e.g. "
    "endpoint_url=http://127.0.0.1:9000, anon=true, client_kwargs.region_name=eu-west-1.",
)


def resolve_url(ctx: click.Context, url: str) -> str:
    """A relative local path is relative to ``-C``'s folder, like every other path."""
    if "://" in url or os.path.isabs(url) or re.match(r"^[\w.-]+@[\w.-]+:", url):
        return url
    return os.path.join(ctx.find_root().obj["directory"], url)


def note_secrets(name: str, keys: Iterable[str]) -> None:
    """Say where a credential given as an option ends up (it is allowed, never printed)."""
    for key in keys:
        if remotes.is_secret(key):
            click.echo(
                f"note: remote {name}: option {key} is kept in plain text in .datagit/config "
                "(never committed); the environment or a profile keeps it out of the repository",
                err=True,
            )


@click.group(invoke_without_command=True)
@click.option("-v", "--verbose", is_flag=True, help="With no subcommand: list with options.")
@click.pass_context
def remote(ctx: click.Context, verbose: bool) -> None:
    """List remotes, or add, modify, remove and check them.

    \b
    Examples:
      datagit remote add origin /srv/datasets/cats.git
      datagit remote add origin git@host:team/cats.git --content s3://bucket/cats \\
          --option endpoint_url=http://minio.local:9000
      datagit remote modify origin profile team-data
      datagit remote -v
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_cmd, verbose=verbose)


@remote.command("add")
@click.argument("name")
@click.argument("url")
@click.option(
    "--content",
    metavar="URL",
    help="Object store for example bytes (s3://bucket/prefix, a directory, …). "
    "Default for a local git path: PATH/datagit-content.",
)
@option_flag
@click.option(
    "--local",
    is_flag=True,
    help="Keep the content URL in .datagit/config only (not in datagit.toml for clones).",
)
@click.pass_context
def add_cmd(
    ctx: click.Context,
    name: str,
    url: str,
    content: str | None,
    options: tuple[str, ...],
    local: bool,
) -> None:
    """Add remote NAME: git URL for history, --content URL for example bytes.

    Each --option KEY=VALUE is passed to the content URL's fsspec backend:
    true/false become booleans, whole numbers integers, dotted keys nested
    dicts. Credentials are better left to the environment or a profile.

    A --content URL is also written to datagit.toml as [remotes.NAME] (secret
    options left out): commit it, and a clone of the git URL alone finds the
    bytes. --local keeps it out of the history.

    \b
    Examples:
      datagit remote add origin ../shared/cats.git --content s3://team-data/cats
      datagit remote add minio ../shared/cats.git --content s3://cats/v1 \\
          --option endpoint_url=http://127.0.0.1:9000 --option anon=false
    """
    repo = open_repo(ctx)
    content = resolve_url(ctx, content) if content else None
    parsed = remotes.parse_options(options, name)
    cfg = remotes.add_remote(repo, name, resolve_url(ctx, url), content, parsed, share=not local)
    note_secrets(name, parsed)
    extra = f", {len(cfg.options)} options" if cfg.options else ""
    click.echo(f"Added remote {cfg.name}: {cfg.url} (content: {cfg.content or 'none'}{extra})")
    if content and not local:
        click.echo(
            f"datagit.toml now names the content URL as [remotes.{name}]: commit it so clones "
            "find the bytes (secret options are never written there)"
        )


@remote.command("modify")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove option KEY (and KEY.* nested under it).")
@click.pass_context
def modify_cmd(ctx: click.Context, name: str, key: str, value: str | None, unset: bool) -> None:
    """Set option KEY of remote NAME's content URL to VALUE, or --unset it.

    Options are fsspec storage options, as given to `remote add --option`.

    \b
    Examples:
      datagit remote modify origin endpoint_url http://127.0.0.1:9000
      datagit remote modify origin client_kwargs.region_name eu-west-1
      datagit remote modify origin --unset endpoint_url
    """
    repo = open_repo(ctx)
    if unset and value is not None:
        raise InvalidInputError(
            f"remote modify {name} --unset {key}: takes no VALUE (got {value!r})",
            hint=f"datagit remote modify {name} --unset {key}",
        )
    if unset:
        remotes.unset_remote_option(repo, name, key)
        click.echo(f"remote {name}: unset {key}")
        return
    if value is None:
        raise InvalidInputError(
            f"remote modify {name} {key}: needs a VALUE",
            hint=f"datagit remote modify {name} {key} VALUE, or --unset {key} to remove it",
        )
    cfg = remotes.set_remote_option(repo, name, key, value)
    note_secrets(name, [key])
    click.echo(f"remote {name}: {key}={remotes.masked(cfg.options)[key]}")


@remote.command("list")
@click.option("-v", "--verbose", is_flag=True, help="Also show options (secrets masked).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(ctx: click.Context, verbose: bool = False, as_json: bool = False) -> None:
    """List remotes with their git and content URLs; -v adds their options.

    Values of secret-looking options (key, secret, token, password …) show as ****.

    \b
    Examples:
      datagit remote list -v
      datagit remote list --json
    """
    found = remotes.list_remotes(open_repo(ctx))
    if as_json:
        rows: list[dict[str, object]] = []
        for c in found.values():
            row: dict[str, object] = {"name": c.name, "url": c.url, "content": c.content}
            if verbose:
                row["options"] = remotes.masked(c.options)
            rows.append(row)
        echo_json(rows)
        return
    for c in found.values():
        click.echo(f"{c.name}\t{c.url}\t{c.content or '-'}")
        if verbose:
            for key, value in remotes.masked(c.options).items():
                click.echo(f"  {key}={value}")


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
