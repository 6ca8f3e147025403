"""The lazy verb table matches the verb modules, and `status` loads only its own."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import datagit.cli as pkg
from datagit.cli.main import VERBS, cli


def test_every_module_command_is_in_verbs_and_back() -> None:
    found: dict[str, str] = {}
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_") or mod.name == "main":
            continue
        module = importlib.import_module(f"datagit.cli.{mod.name}")
        for command in getattr(module, "COMMANDS", []):
            found[command.name] = mod.name
    assert found == VERBS


def test_group_lists_and_finds_every_verb() -> None:
    assert sorted(cli.commands) == sorted(VERBS)
    assert cli.commands.get("status").name == "status"  # type: ignore[union-attr]
    assert "nope" not in cli.commands and cli.commands.get("nope") is None


def test_status_imports_only_its_own_verb(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys\n"
        "from datagit.cli import cli\n"
        "try:\n    cli(['-C', sys.argv[1], 'init'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('datagit.cli.')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout
    assert "datagit.cli.init" in out and "datagit.cli.status" not in out
    assert "datagit.cli.train" not in out and "datagit.cli.remote" not in out


def test_help_lists_every_verb_as_click_would() -> None:
    """`SUMMARIES` stays in step with the docstrings at any terminal width."""
    import click

    from datagit.cli._summaries import SUMMARIES

    assert sorted(SUMMARIES) == sorted(VERBS), "add the verb's first docstring line to SUMMARIES"
    for width in (50, 80, 200):
        ctx = click.Context(cli, info_name="datagit", terminal_width=width)
        ours, clicks = ctx.make_formatter(), ctx.make_formatter()
        cli.format_commands(ctx, ours)
        click.Group.format_commands(cli, ctx, clicks)
        assert ours.getvalue() == clicks.getvalue()


def test_help_imports_no_verb_module() -> None:
    code = (
        "import sys\n"
        "from datagit.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('datagit.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "status" in out.stdout and "Commands:" in out.stdout
    assert "datagit.cli.status" not in out.stdout and "datagit.api" not in out.stdout
