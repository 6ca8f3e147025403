"""`datagit clone`: a new workspace from a remote, with history and (optionally) content."""

from __future__ import annotations

import click

from datagit.api import remotes
from datagit.cli._common import short
from datagit.cli._progress import progress_bar
from datagit.cli.remote import note_secrets, option_flag, resolve_url


@click.command()
@click.argument("url")
@click.argument("directory", required=False)
@click.option(
    "--content", metavar="URL", help="Content object store, when not URL/datagit-content."
)
@click.option("--no-content", is_flag=True, help="Partial clone: history only, bytes on demand.")
@option_flag
@click.option("-b", "--branch", default=None, help="Check out BRANCH instead of the remote's HEAD.")
@click.pass_context
def clone(
    ctx: click.Context,
    url: str,
    directory: str | None,
    content: str | None,
    options: tuple[str, ...],
    no_content: bool,
    branch: str | None,
) -> None:
    """Clone URL into DIRECTORY (new or empty) and check out its default branch.

    \b
    Examples:
      datagit clone /srv/datasets/cats.git cats
      datagit clone git@host:team/cats.git --content s3://team-data/cats
      datagit clone /srv/datasets/cats.git --no-content   # fetch bytes when read
      datagit clone ../cats.git --content s3://cats/v1 -o endpoint_url=http://127.0.0.1:9000
    """
    url = resolve_url(ctx, url)
    directory = resolve_url(ctx, directory or remotes.default_directory(url))
    content = resolve_url(ctx, content) if content else None
    parsed = remotes.parse_options(options, "origin")
    with progress_bar() as progress:
        repo = remotes.clone(
            url,
            directory,
            content=content,
            options=parsed,
            no_content=no_content,
            branch=branch,
            progress=progress,
        )
    note_secrets("origin", parsed)
    head = repo.head()
    what = "history only" if no_content else f"{len(list(repo.store.keys()))} objects"
    click.echo(f"Cloned into {repo.workdir} ({what}); HEAD at {short(head)} on {repo.branch()}")
    click.echo(f"content: {remotes.get_remote(repo, 'origin').content or '(none)'}")
    repo.close()


COMMANDS = [clone]
