"""`datagit blame`: who set an example's label, in which commit, and who annotated it."""

from __future__ import annotations

from typing import Any

import click

from datagit.api import history, render
from datagit.api.repo import Repo
from datagit.cli._common import echo_json, label, open_repo, short, when
from datagit.core.blame import ExampleEvent


@click.command()
@click.argument("target")
@click.option("-r", "--rev", default="HEAD", show_default=True, help="Blame as of this revision.")
@click.option("--label", "label_", default=None, help="Only examples labelled L (dataset blame).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (see docs/history.md).")
@click.pass_context
def blame(ctx: click.Context, target: str, rev: str, label_: str | None, as_json: bool) -> None:
    """Blame DATASET/ID (its whole history) or DATASET (one line per example).

    \b
    Examples:
      datagit blame train/img_0042.png
      datagit blame train --label cat
      datagit blame train --rev v1.0 --json
    """
    repo = open_repo(ctx)
    dataset, example_id = history.split_example(repo, target, rev)
    if example_id is not None:
        events = history.example_log(repo, dataset, example_id, rev)
        if as_json:
            echo_json(render.example_log_json(events))
            return
        for e in events:
            click.echo(event_line(e))
        if not events:
            click.echo(f"{target}: no commit reachable from {rev} touched it")
        return
    rows = history.blame(repo, dataset, rev, label=label_)
    if as_json:
        echo_json(render.dataset_blame_json(repo, rows))
        return
    infos = _infos(repo, {b.commit for b in rows} | {b.added_in for b in rows})
    for b in rows:
        c = infos[b.commit]
        click.echo(
            f"{short(b.commit)} {when(c.author)[:10]} {c.author.name:<16.16} "
            f"{(b.annotator or '-'):<12.12} added {short(b.added_in)}  "
            f"{b.id}\t{label(b.label)}"
        )


def _infos(repo: Repo, ids: set[str]) -> dict[str, Any]:
    return {i: repo.git.commit(i) for i in ids}


def event_line(e: ExampleEvent) -> str:
    """``<commit> <date> <author> [annotator] <kind> old → new``."""
    c = e.commit
    who = f"{c.author.name}" + (f" [{e.annotator}]" if e.annotator else "")
    return f"{short(c.id)} {when(c.author)} {who}  {change_text(e)}  {c.summary}"


def change_text(e: ExampleEvent) -> str:
    """``relabeled cat → dog`` / ``added (cat)`` / ``removed (was cat)``."""
    what = e.kind
    if e.kind == "renamed" and e.old is not None:
        what += f" from {e.old.id}"
    if e.old is not None and e.new is not None and e.old.label != e.new.label:
        what += f" {label(e.old.label)} → {label(e.new.label)}"
    elif e.new is not None and e.old is None:
        what += f" ({label(e.new.label)})"
    elif e.old is not None and e.new is None:
        what += f" (was {label(e.old.label)})"
    if e.old is not None and e.new is not None and e.old.content != e.new.content:
        what += f" content {e.old.content[:8]} → {e.new.content[:8]}"
    return what


event_json = render.event_json


COMMANDS = [blame]
