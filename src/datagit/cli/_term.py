"""The terminal, as git treats it: colour, a pager for long output, an editor for messages.

Each is on only where a person is looking: colour and the pager need stdout to
be a terminal (a pipe or a file gets plain text, all of it), ``NO_COLOR``
(https://no-color.org) or ``color.ui = never`` turns colour off and
``color.ui = always`` on; ``--no-pager``, ``core.pager = cat`` or an empty
pager turns paging off. The editor is chosen as git chooses it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

import click

from datagit.api.repo import Repo
from datagit.errors import DatagitError, InvalidInputError

COLOURS = {
    "added": "green",
    "removed": "red",
    "relabeled": "yellow",
    "modified": "cyan",
    "renamed": "blue",
    "commit": "yellow",
}


# -- colour ---------------------------------------------------------------------------------
def colour_enabled(repo: Repo | None = None) -> bool:
    """Whether stdout gets ANSI colour: a terminal, no ``NO_COLOR``, not ``color.ui = never``."""
    setting = (repo.git.config_get("color.ui") if repo else None) or "auto"
    if setting in ("never", "false"):
        return False
    if setting == "always":
        return True
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def use_colour(ctx: click.Context, repo: Repo) -> None:
    """Decide colour for this command; click strips what `paint` adds when it is off."""
    ctx.find_root().color = colour_enabled(repo)


def paint(text: str, kind: str) -> str:
    """``text`` in the colour of ``kind`` (a change kind, or "commit"); plain when off."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or not ctx.find_root().color or kind not in COLOURS:
        return text
    return click.style(text, fg=COLOURS[kind])


# -- pager ----------------------------------------------------------------------------------
def pager_command(repo: Repo | None) -> str | None:
    """The pager to run (git's order: DATAGIT_PAGER, core.pager, PAGER, less), or None for none."""
    for value in (
        os.environ.get("DATAGIT_PAGER"),
        repo.git.config_get("core.pager") if repo else None,
        os.environ.get("PAGER"),
    ):
        if value is not None:
            return None if value.strip() in ("", "cat") else value
    return "less"


def page(ctx: click.Context, repo: Repo) -> None:
    """Send the rest of this command's stdout through the pager, when a person reads it.

    The pager gets ``LESS=FRX`` unless LESS is set (as git does): short output
    is printed and less exits at once, colour passes through, the screen is
    not cleared. Quitting the pager early ends the command quietly.
    """
    use_colour(ctx, repo)
    root = ctx.find_root()
    if (root.obj or {}).get("no_pager") or not sys.stdout.isatty():
        return
    command = pager_command(repo)
    if command is None:
        return
    import subprocess  # only when paging: `status` should not pay for the import

    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX"), "LV": os.environ.get("LV", "-c")}
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.PIPE, env=env)
    except OSError:
        return  # no pager to be had: print straight to the terminal, as git does
    assert proc.stdin is not None
    saved = sys.stdout
    sys.stdout = io.TextIOWrapper(proc.stdin, encoding=saved.encoding or "utf-8", errors="replace")

    def finish() -> None:
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            sys.stdout.flush()
        with contextlib.suppress(BrokenPipeError, OSError):
            sys.stdout.close()
        sys.stdout = saved
        proc.wait()

    ctx.call_on_close(finish)


# -- editor ---------------------------------------------------------------------------------
_TEMPLATE = """
# Please enter the commit message for your changes. Lines starting
# with '#' will be ignored, and an empty message aborts the commit.
"""


def editor_command(repo: Repo) -> str:
    """git's choice: GIT_EDITOR, core.editor, VISUAL, EDITOR, then vi (not on a dumb terminal)."""
    for value in (
        os.environ.get("GIT_EDITOR"),
        repo.git.config_get("core.editor"),
        os.environ.get("VISUAL") if os.environ.get("TERM") != "dumb" else None,
        os.environ.get("EDITOR"),
    ):
        if value:
            return value
    if os.environ.get("TERM") == "dumb":
        raise InvalidInputError(
            "terminal is dumb, but EDITOR unset: cannot ask for a commit message",
            hint='pass one with -m "what changed", or set EDITOR',
        )
    return "vi"


def edit_message(repo: Repo, intro: str = "") -> str:
    """Open the editor on ``.datagit/COMMIT_EDITMSG`` and return the message without comments.

    Raises when the editor fails or the message is empty, so nothing is committed.
    """
    path = repo.dotdir / "COMMIT_EDITMSG"
    comments = "".join(f"# {line}\n" if line else "#\n" for line in intro.splitlines())
    path.write_text(_TEMPLATE + comments)
    command = editor_command(repo)
    done = _run_editor(command, path)
    if done != 0:
        raise DatagitError(
            f"there was a problem with the editor {command!r} (exit status {done})",
            hint='pass the message with -m "what changed" instead',
        )
    text = "\n".join(
        line for line in path.read_text().splitlines() if not line.startswith("#")
    ).strip()
    if not text:
        raise InvalidInputError(
            "aborting commit due to empty commit message",
            hint="write a message in the editor, or pass one with -m",
        )
    return text + "\n"


def _run_editor(command: str, path: Path) -> int:
    """Run through the shell, as git does, so ``EDITOR="code --wait"`` works."""
    import subprocess

    return subprocess.call(["/bin/sh", "-c", f'{command} "$@"', command, str(path)])
