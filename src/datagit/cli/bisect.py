"""`datagit bisect`: find the data commit that broke something, with git's commands and codes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from datagit.api import bisect as api
from datagit.api import history
from datagit.api.repo import Repo
from datagit.cli import _hunt
from datagit.cli._common import open_repo, short, when
from datagit.core.bisect import Step
from datagit.errors import InvalidInputError

# everything after COMMAND belongs to it, its options included
RUN_SETTINGS = {"ignore_unknown_options": True, "allow_interspersed_args": False}


class BisectGroup(click.Group):
    """Also accepts the custom terms chosen at ``start`` (``bisect fast``, ``bisect slow``)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or not cmd_name.isidentifier():
            return found
        return _mark_command(cmd_name)


@click.group(cls=BisectGroup)
def bisect() -> None:
    """Binary-search history for the commit that turned good into bad.

    \b
    Examples:
      datagit bisect start HEAD v1.0
      datagit bisect run python check_accuracy.py
      datagit bisect good            # or bad / skip, for the checked-out commit
      datagit bisect reset
    """


def _show(repo: Repo, step: Step | None) -> None:
    """git's step messages, and the first bad commit with its diff summary."""
    if step is None:
        t = api.terms(repo)
        click.echo(f"status: waiting for both {t.old} and {t.new} commits")
    elif step.commit is not None:
        click.echo(
            f"Bisecting: {step.left} revision{'s' if step.left != 1 else ''} left to test "
            f"after this (roughly {step.steps} step{'s' if step.steps != 1 else ''})"
        )
        c = repo.git.commit(step.commit)
        click.echo(f"[{c.id}] {c.summary}")
    elif step.first_bad is not None:
        _first_bad(repo, step.first_bad)
    else:
        click.echo("There are only 'skip'ped commits left to test.")
        click.echo(f"The first {api.terms(repo).new} commit could be any of:")
        for oid in step.only_skipped:
            click.echo(oid)
        click.echo("We cannot bisect more!")


def _first_bad(repo: Repo, oid: str) -> None:
    c = repo.git.commit(oid)
    click.echo(f"{oid} is the first {api.terms(repo).new} commit")
    click.echo(f"commit {c.id}\nAuthor: {c.author.name} <{c.author.email}>")
    click.echo(f"Date:   {when(c.author)}\n")
    for line in c.message.rstrip().splitlines():
        click.echo(f"    {line}")
    click.echo()
    d = history.diff(repo, c.parents[0] if c.parents else None, c.id) if c.parents else None
    for ds in d.datasets if d else []:
        if not ds:
            continue
        click.echo(f" {ds.name}: " + ", ".join(f"{v} {k}" for k, v in ds.summary().items() if v))
        for a, b, n in ds.transitions()[:10]:
            click.echo(f"   {a} → {b}  {n}")


@bisect.command()
@click.argument("bad", required=False)
@click.argument("good", nargs=-1)
@click.option("--term-old", "--term-good", "term_old", default="good", show_default=True)
@click.option("--term-new", "--term-bad", "term_new", default="bad", show_default=True)
@click.pass_context
def start(
    ctx: click.Context, bad: str | None, good: tuple[str, ...], term_old: str, term_new: str
) -> None:
    """Start bisecting between BAD and GOOD commits (both optional here).

    \b
    Example:
      datagit bisect start HEAD HEAD~40 --term-old fast --term-new slow
    """
    repo = open_repo(ctx)
    _show(repo, api.start(repo, bad, good, term_old=term_old, term_new=term_new))


def _mark_command(word: str) -> click.Command:
    @click.command(word)
    @click.argument("revs", nargs=-1)
    @click.pass_context
    def mark(ctx: click.Context, revs: tuple[str, ...]) -> None:
        """Mark REVS (default: the checked-out commit)."""
        repo = open_repo(ctx)
        _show(repo, api.mark(repo, word, revs))

    mark.help = f"Mark REVS (default: the checked-out commit) as {word}."
    return mark


for _word in ("good", "bad", "old", "new", "skip"):
    bisect.add_command(_mark_command(_word))


@bisect.command(context_settings=RUN_SETTINGS)
@click.option("--harness", is_flag=True, help="Judge each commit by training (no COMMAND).")
@click.option(
    "--metric",
    default="accuracy",
    show_default=True,
    help="accuracy, macro_f1, loss or per_class_accuracy.<label>.",
)
@click.option("--threshold", type=float, help="Good when the metric is on the good side of X.")
@click.option("--drop", type=float, help="Bad when D worse than the good endpoint.")
@click.option("--seeds", type=int, default=1, show_default=True, help="Seeds per commit.")
@click.option("--max-seeds", type=int, help="Seeds for a commit inside the noise band.")
@click.option(
    "--jobs", "-j", type=int, default=1, show_default=True, help="Commits evaluated at once."
)
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--address", help="A Ray cluster to join (with --executor ray).")
@click.option("--config", "config_file", help="A harness config file judging every commit.")
@click.option("--config-rev", help="Judge every commit by [harness] at this revision.")
@click.argument("command", nargs=-1, required=False, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, command: tuple[str, ...], harness: bool, **opts: Any) -> None:
    """Run COMMAND on each candidate (exit 0 good, 125 skip, 1-127 bad, else
    stop), or with --harness train and judge each commit by a metric.

    \b
    Examples:
      datagit bisect run python eval.py --min-accuracy 0.9
      datagit bisect run --harness --drop 0.02 --seeds 3 --jobs 2
    """
    repo = open_repo(ctx)
    if harness:
        if command:
            raise InvalidInputError(
                "bisect run --harness takes no COMMAND", hint="drop the command or --harness"
            )
        outcome = _hunt.run_harness(repo, **opts)
        _show(repo, Step(first_bad=outcome.first_bad, only_skipped=tuple(outcome.only_skipped)))
        return
    if not command:
        raise InvalidInputError(
            "bisect run needs a command", hint="e.g. `bisect run ./test.sh`, or use --harness"
        )
    t = api.terms(repo)
    names = {"old": t.old, "new": t.new, "skip": "skip"}

    def report(commit: str, code: int, verdict: str, step: Step | None) -> None:
        click.echo(f"running {short(commit)}: exit {code} → {names.get(verdict, verdict)}")
        _show(repo, step)

    api.run(repo, list(command), report)


@bisect.command("log")
@click.pass_context
def log_(ctx: click.Context) -> None:
    """Print the bisect log (replayable with `bisect replay`)."""
    click.echo(api.log(open_repo(ctx)), nl=False)


@bisect.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def replay(ctx: click.Context, file: Path) -> None:
    """Replay a saved bisect log."""
    repo = open_repo(ctx)
    _show(repo, api.replay(repo, file))


@bisect.command()
@click.argument("rev", required=False)
@click.pass_context
def reset(ctx: click.Context, rev: str | None) -> None:
    """End bisecting and go back to where it started (or to REV)."""
    target = api.reset(open_repo(ctx), rev)
    click.echo(f"Bisect reset; back at {target if len(target) < 40 else short(target)}")


@bisect.command("terms")
@click.pass_context
def terms_(ctx: click.Context) -> None:
    """Show the two terms in use."""
    t = api.terms(open_repo(ctx))
    click.echo(f"old: {t.old}\nnew: {t.new}")


for _command in _hunt.SUBCOMMANDS:
    bisect.add_command(_command)

COMMANDS = [bisect]
