"""`datagit diff`: added, removed, re-labelled, changed and renamed examples, per dataset."""

from __future__ import annotations

import click

from datagit.api import history, render
from datagit.cli._common import PathspecCommand, echo_json, label, open_repo, pathspec, short
from datagit.core.diff import DatasetDiff, Filter
from datagit.core.records import Record, is_machine


@click.command(cls=PathspecCommand)
@click.argument("a", required=False)
@click.argument("b", required=False)
@click.option("--cached", "--staged", "cached", is_flag=True, help="Compare the stage with A.")
@click.option("--stat", is_flag=True, help="Only counts and the label transition table.")
@click.option("--name-status", is_flag=True, help="One `A|D|M|L|R<TAB>dataset/id` line each.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (see docs/history.md).")
@click.option("--label", "label_", default=None, help="Only examples with label L on either side.")
@click.option("--id", "id_glob", default=None, metavar="GLOB", help="Only ids matching GLOB.")
@click.option("--annotator", default=None, help="Only examples annotated by NAME on either side.")
@click.option("--limit", type=int, default=50, show_default=True, help="Examples listed (0: all).")
@click.option("--exit-code", is_flag=True, help="Exit 1 when there are changes, 0 when none.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; implies --exit-code.")
@click.pass_context
def diff(
    ctx: click.Context,
    a: str | None,
    b: str | None,
    cached: bool,
    stat: bool,
    name_status: bool,
    as_json: bool,
    label_: str | None,
    id_glob: str | None,
    annotator: str | None,
    limit: int,
    exit_code: bool,
    quiet: bool,
) -> None:
    """Show what changed between two states, example by example.

    No revision: HEAD vs the workspace; one: REV vs the workspace; two (or
    A..B): A vs B; --cached: A (default HEAD) vs the stage.

    \b
    Examples:
      datagit diff                        # uncommitted changes
      datagit diff v1 v2 --stat -- train  # label transition table
      datagit diff HEAD~1 HEAD --label cat --json
      datagit diff --quiet || echo "uncommitted changes"

    With --exit-code or --quiet the exit status says whether anything differs
    (1) or not (0), as git's does; an error also prints `error:` on stderr.
    """
    repo = open_repo(ctx)
    keep = Filter(label_, id_glob, annotator)
    spec = pathspec(ctx)
    result = history.diff(repo, a, b, cached=cached, datasets=spec or None, keep=keep)
    if quiet or exit_code:
        if not quiet:
            _render(result, as_json, name_status, stat, limit)
        ctx.exit(1 if any(result.datasets) else 0)
    _render(result, as_json, name_status, stat, limit)


def _render(result: history.Diff, as_json: bool, name_status: bool, stat: bool, limit: int) -> None:
    if as_json:
        echo_json(render.diff_json(result))
        return
    for d in result.datasets:
        if not d:
            continue
        if name_status:
            for code, text in _rows(d):
                click.echo(f"{code}\t{text}")
            continue
        click.echo(f"{d.name}: " + ", ".join(f"{v} {k}" for k, v in d.summary().items() if v))
        machine = d.machine_labelled()
        if machine:
            models = sorted({str(r.annotator) for r in machine})
            click.echo(f"  {len(machine)} labels set by a model ({', '.join(models)})")
        _echo_transitions(d)
        if stat:
            continue
        rows = _rows(d)
        for code, text in rows[: limit or None]:
            click.echo(f"  {code}  {text}")
        if limit and len(rows) > limit:
            click.echo(f"  … and {len(rows) - limit} more (use --limit 0)")
    if not any(result.datasets):
        click.echo(f"no changes between {short(result.old)} and {short(result.new)}")


def _echo_transitions(d: DatasetDiff) -> None:
    table = d.transitions()
    if table:
        width = max(len(f"{a} → {b}") for a, b, _ in table)
        click.echo("  label transitions:")
        for a, b, n in table[:20]:
            click.echo(f"    {f'{a} → {b}':<{width}}  {n}")
    deltas = d.label_deltas()
    if deltas:
        click.echo("  label counts: " + ", ".join(f"{k} {v:+d}" for k, v in deltas.items()))


def _rows(d: DatasetDiff) -> list[tuple[str, str]]:
    """(letter, text) by id: A added, D removed, L re-labelled, M changed, R renamed."""
    rows: list[tuple[str, str, str]] = []
    for r in d.added:
        rows.append((r.id, "A", f"{d.name}/{r.id}  ({label(r.label)})" + _machine(r)))
    for r in d.removed:
        rows.append((r.id, "D", f"{d.name}/{r.id}  ({label(r.label)})"))
    for c in d.relabeled:
        assert c.old and c.new
        text = f"{d.name}/{c.id}  {label(c.old.label)} → {label(c.new.label)}"
        rows.append((c.id, "L", text + _machine(c.new)))
    for c in d.modified:
        assert c.old and c.new
        extra = f"  {label(c.old.label)} → {label(c.new.label)}" if c.label_changed else ""
        rows.append((c.id, "M", f"{d.name}/{c.id}{extra}"))
    for x in d.renamed:
        extra = ""
        if x.old.label != x.new.label:
            extra = f"  {label(x.old.label)} → {label(x.new.label)}"
        rows.append((x.new.id, "R", f"{d.name}/{x.old.id} → {d.name}/{x.new.id}{extra}"))
    rows.sort()
    return [(code, text) for _, code, text in rows]


def _machine(r: Record) -> str:
    return f"  [{r.annotator}]" if is_machine(r.annotator) else ""


COMMANDS = [diff]
