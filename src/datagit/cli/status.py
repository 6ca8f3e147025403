"""`datagit status`: what is staged, what is not, example by example.

``-s``/``--porcelain`` print one stable line per example for scripts (documented
in docs/core.md): ``XY DATASET/ID``, X the stage against HEAD, Y the workspace
against the stage, a rename as ``DATASET/OLD -> DATASET/NEW``.
"""

from __future__ import annotations

import click

from datagit.api import render
from datagit.api.repo import Repo
from datagit.api.status import Status
from datagit.api.tracking import Tracking, tracking
from datagit.cli._common import advise, change_line, echo_json, label, open_repo, short
from datagit.cli._term import use_colour
from datagit.core.changes import Change
from datagit.core.diff import build

LIMIT = 20
CODES = {"added": "A", "removed": "D", "modified": "M", "relabeled": "L", "renamed": "R"}


@click.command()
@click.option("--json", "as_json", is_flag=True)
@click.option("-v", "--verbose", is_flag=True, help="List every changed example.")
@click.option("-s", "--short", "short_", is_flag=True, help="One line per example: XY PATH.")
@click.option("--porcelain", is_flag=True, help="Like --short, stable for scripts.")
@click.option("-b", "--branch", "show_branch", is_flag=True, help="With -s: a '## branch' line.")
@click.pass_context
def status(
    ctx: click.Context,
    as_json: bool,
    verbose: bool,
    short_: bool,
    porcelain: bool,
    show_branch: bool,
) -> None:
    """Show new, removed, re-labelled, renamed and modified examples, staged and not.

    \b
    Examples:
      datagit status
      datagit status -sb
      datagit status --porcelain | grep '^ L'
    """
    repo = open_repo(ctx)
    use_colour(ctx, repo)
    st = repo.status()
    track = tracking(repo)
    if as_json:
        echo_json(render.status_json(st, track))
        return
    if short_ or porcelain:
        if show_branch:
            click.echo(_branch_line(st, track))
        for line in porcelain_lines(st):
            click.echo(line)
        return
    _long(repo, st, track, verbose)


def _entries(name: str, changes: list[Change]) -> dict[str, tuple[str, str]]:
    """Example id (the new id of a rename) → (one-letter code, the path as shown)."""
    d = build(name, changes)
    paired = {r.old.id for r in d.renamed} | {r.new.id for r in d.renamed}
    out = {c.id: (CODES[c.kind], f"{name}/{c.id}") for c in changes if c.id not in paired}
    for r in d.renamed:
        out[r.new.id] = ("R", f"{name}/{r.old.id} -> {name}/{r.new.id}")
    return out


def porcelain_lines(st: Status) -> list[str]:
    """``XY PATH`` lines, sorted by path; see docs/core.md for the codes."""
    rows: dict[str, list[str]] = {}
    if st.config_staged or st.config_unstaged:
        x, y = "M" if st.config_staged else " ", "M" if st.config_unstaged else " "
        rows["datagit.toml"] = [x, y, "datagit.toml"]
    for d in st.datasets:
        for side, changes in ((0, d.staged), (1, d.unstaged)):
            for example_id, (code, shown) in _entries(d.name, changes).items():
                row = rows.setdefault(f"{d.name}/{example_id}", [" ", " ", shown])
                row[side] = code
                if code == "R":
                    row[2] = shown
    for c in st.conflicts:
        rows[c] = ["U", "U", c]
    return [f"{x}{y} {shown}" for _, (x, y, shown) in sorted(rows.items())]


def _branch_line(st: Status, track: Tracking | None) -> str:
    line = f"## {st.branch}" if st.branch else "## HEAD (no branch)"
    if st.head is None:
        line = f"## No commits yet on {st.branch}"
    if track is not None:
        line += f"...{track.upstream}"
        if track.ahead is None:
            line += " [gone]"
        elif track.ahead or track.behind:
            parts = [f"ahead {track.ahead}"] if track.ahead else []
            parts += [f"behind {track.behind}"] if track.behind else []
            line += f" [{', '.join(parts)}]"
    return line


def _tracking_text(track: Tracking) -> str:
    up = f"'{track.upstream}'"
    if track.ahead is None:
        return f"Your branch is based on {up}, but the upstream is gone."
    a, b = track.ahead, track.behind or 0
    if a and b:
        return (
            f"Your branch and {up} have diverged,\n"
            f"and have {a} and {b} different commits each, respectively."
        )
    if a:
        return f"Your branch is ahead of {up} by {a} commit{'s' if a > 1 else ''}."
    if b:
        return f"Your branch is behind {up} by {b} commit{'s' if b > 1 else ''}."
    return f"Your branch is up to date with {up}."


def _lines(name: str, changes: list[Change]) -> list[str]:
    """The long format's lines: a rename as one line, everything else as `change_line`."""
    d = build(name, changes)
    paired = {r.old.id for r in d.renamed} | {r.new.id for r in d.renamed}
    keyed = [(c.id, change_line(name, c)) for c in changes if c.id not in paired]
    for r in d.renamed:
        text = f"{'renamed':<10} {name}/{r.old.id} → {name}/{r.new.id}"
        if r.old.label != r.new.label:
            text += f"  {label(r.old.label)} → {label(r.new.label)}"
        keyed.append((r.new.id, text))
    return [text for _, text in sorted(keyed)]


def _long(repo: Repo, st: Status, track: Tracking | None, verbose: bool) -> None:
    click.echo(f"On branch {st.branch}" if st.branch else f"HEAD detached at {short(st.head)}")
    if track is not None:
        click.echo(_tracking_text(track))
    if st.head is None:
        click.echo("No commits yet")
    for d in st.datasets:
        if d.missing:
            kind = "folder" if d.missing.endswith("/") else "table"
            click.echo(
                f"note: dataset {d.name}: {kind} {d.missing} does not exist (an empty dataset)"
            )
    if st.conflicts:
        click.echo(f"\nUnresolved merge conflicts ({len(st.conflicts)}):")
        for c in st.conflicts[: LIMIT if not verbose else None]:
            click.echo(f"  conflict   {c}")
    for title, attr, flag in (
        ("Changes to be committed", "staged", st.config_staged),
        ("Changes not staged", "unstaged", st.config_unstaged),
    ):
        rows = [line for d in st.datasets for line in _lines(d.name, getattr(d, attr))]
        if not rows and not flag:
            continue
        click.echo(f"\n{title}:")
        if flag:
            click.echo("  modified   datagit.toml")
        for d in st.datasets:
            ch = getattr(d, attr)
            if ch:
                summary = ", ".join(f"{v} {k}" for k, v in build(d.name, ch).summary().items() if v)
                click.echo(f"  {d.name}: {summary}")
        shown = rows if verbose else rows[:LIMIT]
        for line in shown:
            click.echo("    " + line)
        if len(rows) > len(shown):
            click.echo(f"    … and {len(rows) - len(shown)} more (use -v)")
    if st.clean:
        click.echo("nothing to commit, workspace clean")
    advise(repo)


COMMANDS = [status]
