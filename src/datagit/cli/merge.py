"""`datagit merge` and `datagit resolve`: three-way record merges and their conflicts."""

from __future__ import annotations

from typing import Any

import click

from datagit.api import history
from datagit.cli._common import echo_json, label, open_repo, short
from datagit.core.merge import OURS, THEIRS, Conflict
from datagit.core.records import Record
from datagit.errors import InvalidInputError


@click.command()
@click.argument("rev", required=False)
@click.option("--ours", "side", flag_value=OURS, help="Resolve every conflict with our value.")
@click.option("--theirs", "side", flag_value=THEIRS, help="Resolve every conflict with theirs.")
@click.option("--abort", is_flag=True, help="Give up the merge in progress.")
@click.option("--list", "list_", is_flag=True, help="List the unresolved conflicts.")
@click.option("-m", "--message", default=None, help="Message of the merge commit.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def merge(
    ctx: click.Context,
    rev: str | None,
    side: str | None,
    abort: bool,
    list_: bool,
    message: str | None,
    as_json: bool,
) -> None:
    """Merge REV into HEAD, example by example (three-way, against the merge base).

    Disjoint changes combine; the same example changed differently on both
    sides is a conflict, resolved with --ours/--theirs, `datagit resolve`, or
    by editing the workspace and running `datagit resolve`; then `commit`.

    \b
    Examples:
      datagit merge relabel-cats
      datagit merge --list
      datagit merge --theirs && datagit commit -m "take the relabels"
      datagit merge --abort
    """
    repo = open_repo(ctx)
    if abort:
        theirs = history.merge_abort(repo)
        click.echo(f"Merge of {short(theirs)} aborted; workspace and stage are back at HEAD")
        return
    if rev is None:
        if side is not None:
            done = history.resolve(repo, side=side)
            click.echo(f"Resolved {len(done)} conflicts with {side}; now `datagit commit`")
            return
        _, conflicts = history.merge_state(repo)
        _show_conflicts(conflicts, as_json)
        return
    if list_:
        raise InvalidInputError("--list takes no revision")
    out = history.merge(repo, rev, strategy=side, message=message)
    if as_json:
        echo_json(
            {
                "result": out.kind,
                "theirs": out.theirs,
                "commit": out.commit.id if out.commit else None,
                "taken": out.taken,
                "conflicts": [conflict_json(c) for c in out.conflicts],
            }
        )
        if out.kind == "conflicts":
            ctx.exit(1)
        return
    if out.kind == "up-to-date":
        click.echo("Already up to date.")
    elif out.kind == "fast-forward":
        click.echo(f"Fast-forward to {short(out.theirs)}")
    elif out.kind == "merged":
        taken = ", ".join(f"{n}: {k} examples" for n, k in out.taken.items()) or "nothing"
        click.echo(f"Merge made: {short(out.commit.id if out.commit else None)} (took {taken})")
    else:
        click.echo(f"Automatic merge failed: {len(out.conflicts)} conflicts")
        _show_conflicts(out.conflicts, False)
        click.echo(
            "resolve with `datagit merge --ours|--theirs`, "
            "`datagit resolve DATASET/ID --label L`, then `datagit commit`"
        )
        ctx.exit(1)


def _value(r: Record | None) -> str:
    if r is None:
        return "(removed)"
    who = f" by {r.annotator}" if r.annotator else ""
    return f"{label(r.label)} [{r.content[:8]}]{who}"


def _show_conflicts(conflicts: list[Conflict], as_json: bool) -> None:
    if as_json:
        echo_json([conflict_json(c) for c in conflicts])
        return
    for c in conflicts:
        ours = _value(c.ours) + _origin(c.ours_commit, c.ours_author)
        theirs = _value(c.theirs) + _origin(c.theirs_commit, c.theirs_author)
        click.echo(f"  conflict  {c.key}  ours: {ours}  theirs: {theirs}")


def _origin(commit: str | None, author: str | None) -> str:
    return f" ({author}, {short(commit)})" if commit else ""


def conflict_json(c: Conflict) -> dict[str, Any]:
    return {"key": c.key, **c.to_dict()}


@click.command()
@click.argument("example", required=False, metavar="[DATASET/ID]")
@click.option("--label", "label_", default=None, help="Set this label.")
@click.option("--ours", "side", flag_value=OURS, help="Take our value.")
@click.option("--theirs", "side", flag_value=THEIRS, help="Take their value.")
@click.pass_context
def resolve(ctx: click.Context, example: str | None, label_: str | None, side: str | None) -> None:
    """Resolve one merge conflict (or all): by label, by side, or as the workspace has it.

    \b
    Examples:
      datagit resolve train/img_0007.png --label 7
      datagit resolve train/img_0007.png --theirs
      datagit resolve        # every conflict, as you edited the workspace
    """
    repo = open_repo(ctx)
    if label_ is not None and side is not None:
        raise InvalidInputError("use either --label or --ours/--theirs, not both")
    if label_ is not None and example is None:
        raise InvalidInputError("--label needs DATASET/ID", hint="resolve one example at a time")
    done = history.resolve(repo, example, side=side, label=label_, has_label=label_ is not None)
    for c in done:
        click.echo(f"resolved  {c.key}")
    _, left = history.merge_state(repo)
    click.echo(f"{len(left)} conflicts left" + ("" if left else "; now `datagit commit`"))


COMMANDS = [merge, resolve]
