"""`datagit commit`: record the stage as a commit."""

from __future__ import annotations

import re

import click

from datagit.api import check as checks
from datagit.api.repo import Repo
from datagit.cli._common import advise, open_repo, short
from datagit.cli._progress import progress_bar
from datagit.cli._term import edit_message
from datagit.errors import InvalidInputError
from datagit.storage.git import Signature


@click.command()
@click.option("-m", "--message", default=None, help="What changed and why (else: an editor).")
@click.option("-a", "--all", "all_", is_flag=True, help="Stage every dataset first.")
@click.option("--annotator", default=None, help="Who set the labels this commit changes.")
@click.option("--author", default=None, metavar='"NAME <EMAIL>"', help="Override the author.")
@click.option("--allow-empty", is_flag=True)
@click.pass_context
def commit(
    ctx: click.Context,
    message: str | None,
    all_: bool,
    annotator: str | None,
    author: str | None,
    allow_empty: bool,
) -> None:
    """Record staged changes as a new commit.

    Without -m, the message is asked for in an editor (GIT_EDITOR, core.editor,
    VISUAL, EDITOR, else vi, as git chooses); an empty message aborts.

    \b
    Examples:
      datagit commit -a -m "relabel blurry cats" --annotator alice
      datagit commit -a                 # write the message in $EDITOR
    """
    repo = open_repo(ctx)
    sig = None
    if author:
        m = re.fullmatch(r"\s*(.+?)\s*<([^>]+)>\s*", author)
        if not m:
            raise InvalidInputError(f"--author {author!r} is not 'Name <email>'")
        me = repo.identity()
        sig = Signature(m.group(1), m.group(2), me.time, me.offset)
    if message is None:
        message = edit_message(repo, f"On branch {repo.branch() or '(detached HEAD)'}")
    with progress_bar() as progress:
        info = repo.commit(
            message,
            all=all_,
            annotator=annotator,
            author=sig,
            allow_empty=allow_empty,
            progress=progress,
        )
    where = repo.branch() or "detached HEAD"
    click.echo(f"[{where} {short(info.id)}] {info.summary}")
    if not info.parents:  # a root commit added everything: the manifests know the counts
        for name in sorted(repo.datasets_at(info.id)):
            count = repo.dataset_tree(name, info.id).count
            if count:
                click.echo(f" {name}: {count} added")
        warn_leaks(repo, info.id)
        return
    changes = repo.changes(info.parents[0], info.id)
    for name, ch in changes.items():
        if ch:
            kinds: dict[str, int] = {}
            for c in ch:
                kinds[c.kind] = kinds.get(c.kind, 0) + 1
            click.echo(f" {name}: " + ", ".join(f"{v} {k}" for k, v in kinds.items()))
    warn_leaks(repo, info.id)
    advise(repo)


def warn_leaks(repo: Repo, commit: str) -> None:
    """Under ``[check] leakage = "warn"``, say after the commit which examples leak."""
    cfg = repo.config_at(commit)
    if checks.leakage_policy(cfg)[0] != "warn":
        return
    leaks = checks.leaks_for_commit(repo, cfg, repo.datasets_at(commit))
    for group in leaks[:10]:
        click.echo(f"warning: leak {checks.describe(group)}", err=True)
    if leaks:
        click.echo(
            f"warning: {len(leaks)} examples leak across datasets; `datagit check` lists them",
            err=True,
        )


COMMANDS = [commit]
