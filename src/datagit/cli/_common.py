"""Helpers every command shares: opening the repo, short ids, dates, JSON output."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from datagit.api import render
from datagit.api.repo import Repo
from datagit.cli._term import paint
from datagit.core.changes import Change
from datagit.storage.git import Signature


def open_repo(ctx: click.Context) -> Repo:
    return Repo.open(ctx.find_root().obj["directory"])


def advise(repo: Repo) -> None:
    """Print the filesystem-monitor hint on stderr when a big scan earned it."""
    if repo.snapshots.full_scanned:
        from datagit.api import monitor

        hint = monitor.advice(repo)
        if hint:
            click.echo(hint, err=True)


def short(oid: str | None) -> str:
    return oid[:10] if oid else "-"


def when(sig: Signature) -> str:
    tz = dt.timezone(dt.timedelta(minutes=sig.offset))
    return dt.datetime.fromtimestamp(sig.time, tz).strftime("%Y-%m-%d %H:%M:%S %z")


iso = render.iso  # kept here for the verbs that format dates
commit_json = render.commit_json


def echo_json(value: Any) -> None:
    click.echo(render.text(value))


def label(value: Any) -> str:
    if value is None:
        return "(unlabelled)"  # a file outside any class folder, an empty label cell
    import json  # lazily, as in render

    return value if isinstance(value, str) else json.dumps(value)


def change_line(dataset: str, c: Change) -> str:
    """One line per changed example: ``relabeled  train/001.png  cat → dog``."""
    text = f"{paint(f'{c.kind:<10}', c.kind)} {dataset}/{c.id}"
    if c.kind == "relabeled":
        assert c.old and c.new
        text += f"  {label(c.old.label)} → {label(c.new.label)}"
    elif c.kind == "modified" and c.old and c.new and c.old.label != c.new.label:
        text += f"  {label(c.old.label)} → {label(c.new.label)}"
    elif c.kind == "added" and c.new:
        text += f"  ({label(c.new.label)})"
    return text


def is_tty() -> bool:
    return sys.stdout.isatty()


class PathspecCommand(click.Command):
    """A command that takes git-style ``-- dataset[/id]`` after its other arguments.

    Click would fold the words after ``--`` into the positional arguments; this
    keeps them apart in ``ctx.meta["pathspec"]`` so ``log HEAD~3 -- train``
    reads as git's does.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta["pathspec"] = args[cut + 1 :]
            args = args[:cut]
        else:
            ctx.meta["pathspec"] = []
        return super().parse_args(ctx, args)


def pathspec(ctx: click.Context) -> list[str]:
    return list(ctx.meta.get("pathspec", []))


def user_paths(ctx: click.Context, repo: Repo, paths: tuple[str, ...] | list[str]) -> list[str]:
    """Paths relative to -C PATH (as in git); dataset names pass through."""
    import os

    base = ctx.find_root().obj["directory"]
    names = repo.config.datasets
    return [p if p in names else os.path.join(base, p) for p in paths]
