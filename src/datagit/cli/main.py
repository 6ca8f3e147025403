"""The root command: options every verb shares, error rendering, verb discovery.

Verbs are discovered from this package: every module other than the private
ones exposes ``COMMANDS``, so adding a verb is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from datagit.errors import DatagitError


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


@click.group(cls=DatagitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", default=".", metavar="PATH", help="Run as if started in PATH.")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(package_name="datagit")
@click.pass_context
def cli(ctx: click.Context, directory: str, debug: bool) -> None:
    """datagit: version control for datasets, with label-aware diff, blame and bisect.

    \b
    Quick start:
      datagit init
      datagit dataset add train --layout imagefolder --path train
      datagit commit -a -m "first images"
      datagit log --oneline
    """
    ctx.obj = {"directory": directory, "debug": debug}


def _register() -> None:
    import datagit.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("_") or mod.name == "main":
            continue
        module = importlib.import_module(f"datagit.cli.{mod.name}")
        for command in getattr(module, "COMMANDS", []):
            cli.add_command(command)


_register()


def main() -> None:
    try:
        cli(prog_name="datagit")
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(1)
