"""The root command: options every verb shares, error rendering, verb loading.

Each verb module exposes ``COMMANDS``; `VERBS` maps a command name to its
module so that `datagit status` imports only the status module, not all 25
(a third of start-up time). `tests/cli/test_verbs.py` keeps `VERBS` in step
with the modules, so adding a verb is adding a file and a line here.
"""

from __future__ import annotations

import importlib
import sys

import click

from datagit import process
from datagit.cli._summaries import SUMMARIES
from datagit.errors import DatagitError

VERBS = {
    "add": "add",
    "bisect": "bisect",
    "blame": "blame",
    "branch": "branch",
    "cat": "ls",
    "check": "check",
    "checkout": "checkout",
    "clone": "clone",
    "commit": "commit",
    "config": "config",
    "credit": "credit",
    "dataset": "dataset",
    "diff": "diff",
    "eval": "train",
    "fetch": "pull",
    "fsck": "maintenance",
    "fsmonitor": "fsmonitor",
    "gc": "maintenance",
    "import-dvc": "import_dvc",
    "init": "init",
    "label": "label",
    "log": "log",
    "ls": "ls",
    "merge": "merge",
    "mv": "rm",
    "pull": "pull",
    "relabel": "relabel",
    "push": "push",
    "remote": "remote",
    "resolve": "merge",
    "reset": "reset",
    "restore": "restore",
    "revert": "revert",
    "rm": "rm",
    "runs": "runs",
    "show": "show",
    "stash": "stash",
    "status": "status",
    "suggest": "suggest",
    "suspects": "suspects",
    "switch": "checkout",
    "tag": "branch",
    "train": "train",
    "ui": "ui",
}


class LazyCommands(dict):  # type: ignore[type-arg]
    """The group's name → command table, importing a verb's module on first use."""

    def _load(self, name: str) -> None:
        module = VERBS.get(name)
        if module is not None and not dict.__contains__(self, name):
            for command in importlib.import_module(f"datagit.cli.{module}").COMMANDS:
                dict.__setitem__(self, command.name, command)

    def _load_all(self) -> None:
        for name in VERBS:
            self._load(name)

    def __getitem__(self, name: str) -> click.Command:
        self._load(name)
        return dict.__getitem__(self, name)  # type: ignore[no-any-return]

    def get(self, name: str, default: object = None) -> object:  # type: ignore[override]
        self._load(name)
        return dict.get(self, name, default)

    def __contains__(self, name: object) -> bool:
        return name in VERBS or dict.__contains__(self, name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._load_all()
        return dict.__len__(self)

    def keys(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.keys(self)

    def items(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.items(self)

    def values(self):  # type: ignore[no-untyped-def]
        self._load_all()
        return dict.values(self)


class DatagitGroup(click.Group):
    """Renders `DatagitError` as ``error:``/``hint:`` lines and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DatagitError as exc:
            if ctx.params.get("debug"):
                raise
            # One line even when a file name or id holds a newline: escape it.
            message = exc.message.replace("\r", "\\r").replace("\n", "\\n")
            click.echo(f"error: {message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        return None  # not reached: ctx.exit raises

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Load the verb's module, then let garbage collection resume (`process.settle`)."""
        try:
            return super().resolve_command(ctx, args)
        finally:
            process.settle()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Lists the verbs from `SUMMARIES`: `--help` then imports no verb module.

        Rows come out as click's own would: the first sentence of each docstring,
        shortened to fit the terminal. A verb missing from `SUMMARIES` is imported.
        """
        names = sorted(VERBS)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            text = SUMMARIES.get(name)
            if text is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                text = command.get_short_help_str(limit)
            elif len(text) > limit:
                import textwrap

                text = textwrap.shorten(text, limit, placeholder="...", break_on_hyphens=False)
            rows.append((name, text))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=DatagitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", default=".", metavar="PATH", help="Run as if started in PATH.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("--no-pager", is_flag=True, help="Print long output straight to the terminal.")
@click.version_option(package_name="datagit")
@click.pass_context
def cli(ctx: click.Context, directory: str, debug: bool, no_pager: bool) -> None:
    """datagit: version control for datasets, with label-aware diff, blame and bisect.

    \b
    Quick start:
      datagit init
      datagit dataset add train --layout imagefolder --path train
      datagit commit -a -m "first images"
      datagit log --oneline
    """
    ctx.obj = {"directory": directory, "debug": debug, "no_pager": no_pager}


cli.commands = LazyCommands()


def main() -> None:
    process.own()  # the command owns its process: process-wide tuning is ours to make
    try:
        cli(prog_name="datagit")
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
