"""`bisect run --harness`, `bisect narrow`, `bisect report`, `bisect verify`: the metric hunt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from datagit.api import hunt, hunt_report, narrow
from datagit.api.repo import Repo
from datagit.cli._common import echo_json, open_repo, short


def _verdict(word: str, repo: Repo) -> str:
    from datagit.api import bisect as api

    t = api.terms(repo)
    return {"old": t.old, "new": t.new}.get(word, word)


def run_harness(repo: Repo, **opts: Any) -> hunt.Outcome:
    """Run the hunt, printing each tested commit as it is judged."""

    def progress(t: hunt.Tested) -> None:
        s = t.summary
        where = (
            "cached"
            if not t.trained
            else "trained"
            if not t.cached
            else (f"{t.trained} trained, {t.cached} cached")
        )
        label = t.role if t.role != "test" else f"round {t.round}"
        click.echo(
            f"{label:>13}  {short(t.commit)}  {opts.get('metric', 'accuracy')} "
            f"{s.mean:.4f} ± {s.spread:.4f}  ({s.n} seed{'s' if s.n != 1 else ''}, {where})"
            f"  → {_verdict(t.verdict, repo)}"
        )

    outcome = hunt.run(repo, progress=progress, **opts)
    click.echo(
        f"{outcome.runs} runs ({outcome.trained} trained, {outcome.runs - outcome.trained} "
        f"from the run cache) in {outcome.rounds} round{'s' if outcome.rounds != 1 else ''}"
    )
    return outcome


@click.command("narrow")
@click.option("--commit", "commit", help="Narrow this commit (default: the hunt's first bad).")
@click.option("--max-retrains", type=int, default=20, show_default=True)
@click.option("--config", "config_file", help="Harness config (default: the hunt's).")
@click.option("--config-rev", help="Judge by [harness] at this revision.")
@click.option("--apply", is_flag=True, help="Stage the fix: harmful changes reverted.")
@click.option("--limit", type=int, help="Print at most N examples (all are kept).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def narrow_(
    ctx: click.Context,
    commit: str | None,
    max_retrains: int,
    config_file: str | None,
    config_rev: str | None,
    apply: bool,
    limit: int | None,
    as_json: bool,
) -> None:
    """Find which examples of the first bad commit cause the regression.

    Ranks the commit's changed examples by predicted harm (the parent's model:
    per-example loss and gradient alignment with the eval examples that
    regressed), then confirms by retraining on the parent's data plus parts of
    the change.

    \b
    Examples:
      datagit bisect narrow
      datagit bisect narrow --commit 3f2a9c1 --max-retrains 10 --json
      datagit bisect narrow --apply && datagit commit -m "Revert harmful re-labels"
    """
    repo = open_repo(ctx)
    result = narrow.narrow(
        repo,
        commit=commit,
        max_retrains=max_retrains,
        config_file=config_file,
        config_rev=config_rev,
    )
    applied = narrow.apply(repo, result) if apply else None
    if as_json:
        out = result.to_dict()
        if applied is not None:
            out["applied"] = applied
        echo_json(out)
        return
    r = result
    click.echo(
        f"{short(r.culprit)} changed {r.changes} examples of {r.dataset!r}; "
        f"{r.metric} {r.parent_value:.4f} (parent) → {r.bad_value:.4f}"
    )
    for t in r.trials:
        click.echo(
            f"  retrain without the top {t['reverted']:>3}: {r.metric} {t['value']:.4f}"
            f"  → {'recovered' if t['recovered'] else 'not recovered'}"
        )
    if r.reproduced is not None:
        click.echo(f"  retrain with only those on the parent: {r.metric} {r.reproduced:.4f}")
    click.echo(
        f"{len(r.harmful)} harmful example{'s' if len(r.harmful) != 1 else ''} "
        f"({r.retrains} retrains, {r.status}):"
    )
    for e in r.harmful[:limit]:
        click.echo(
            f"  {e['id']}  {e['old_label']} → {e['new_label']}  annotator {e['annotator'] or '-'}"
            f"  author {e['author']}  confidence {e['confidence']:.2f}"
        )
    if limit is not None and len(r.harmful) > limit:
        click.echo(f"  … and {len(r.harmful) - limit} more (--json lists them all)")
    if applied is not None:
        click.echo(
            f"staged the fix: {applied['reverted']} reverted, {len(applied['kept_changed'])} "
            "left (changed since); commit it with `datagit commit -m ...`"
        )


@click.command("report")
@click.option("--json", "fmt", flag_value="json", default=True, help="JSON (default).")
@click.option("--md", "fmt", flag_value="md", help="Markdown, with the JSON embedded.")
@click.option("--html", "fmt", flag_value="html", help="HTML, with the JSON embedded.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def report(ctx: click.Context, fmt: str, output: Path | None) -> None:
    """The auditor's report of the last hunt: question, runs, verdict, evidence hashes.

    \b
    Example:
      datagit bisect report --md -o hunt.md && datagit bisect verify hunt.md
    """
    repo = open_repo(ctx)
    text = hunt_report.render(hunt_report.report(repo), fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}")


@click.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def verify(ctx: click.Context, file: Path) -> None:
    """Check a saved report against the repository: unedited, and the same evidence.

    \b
    Example:
      datagit bisect verify hunt.json
    """
    repo = open_repo(ctx)
    v = hunt_report.verify(repo, file)
    click.echo(
        f"{file}: verified — {v.datasets} dataset states, {v.runs_checked} runs "
        f"({v.runs_absent} no longer cached) match; verdict "
        f"{short(v.first_bad) if v.first_bad else 'none'}"
    )


SUBCOMMANDS = [narrow_, report, verify]
