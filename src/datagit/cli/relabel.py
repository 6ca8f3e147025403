"""`datagit relabel`: change labels without moving files by hand."""

from __future__ import annotations

from pathlib import Path

import click

from datagit.api import relabel as relabel_api
from datagit.cli._common import echo_json, label, open_repo
from datagit.errors import InvalidInputError


@click.command()
@click.argument("pairs", nargs=-1)
@click.option(
    "--from",
    "from_file",
    metavar="FILE",
    help="Take suggested labels from a `datagit suspects --json` file (its flagged examples).",
)
@click.option("--annotator", help="Who set these labels (recorded on each example).")
@click.option("--json", "as_json", is_flag=True, help="Print the staged edits as JSON.")
@click.pass_context
def relabel(
    ctx: click.Context,
    pairs: tuple[str, ...],
    from_file: str | None,
    annotator: str | None,
    as_json: bool,
) -> None:
    """Stage new labels: DATASET/ID LABEL [DATASET/ID LABEL ...].

    Image files move between class folders, table cells are rewritten; then
    the change is staged with --annotator. Commit it as usual.

    \b
    Example:
      datagit relabel train/img_0003.png 3 --annotator alice
      datagit relabel --from suspects.json --annotator alice
    """
    repo = open_repo(ctx)
    edits = _pairs(pairs)
    if from_file is not None:
        try:
            data = Path(from_file).read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"cannot read {from_file}: {exc.strerror or exc}") from None
        edits += relabel_api.from_suspects(data, from_file)
    done = relabel_api.relabel(repo, edits, annotator=annotator)
    if as_json:
        echo_json([e.to_dict() for e in done])
        return
    for e in done:
        click.echo(f"relabeled  {e.dataset}/{e.id}  {label(e.old)} → {label(e.new)}")
    click.echo(f"{len(done)} labels staged" + (f" as {annotator}" if annotator else ""))


def _pairs(words: tuple[str, ...]) -> list[tuple[str, str, str]]:
    if len(words) % 2:
        raise InvalidInputError(f"{words[-1]!r} has no label", hint="give DATASET/ID LABEL pairs")
    out = []
    for spec, new in zip(words[::2], words[1::2], strict=True):
        name, sep, example_id = spec.partition("/")
        if not sep or not example_id:
            raise InvalidInputError(
                f"{spec!r} is not DATASET/ID", hint="e.g. datagit relabel train/img_0003.png 3"
            )
        out.append((name, example_id, new))
    return out


COMMANDS = [relabel]
