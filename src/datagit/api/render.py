"""One JSON rendering of each answer, shared by the CLI's ``--json`` and the viewer's ``/api``.

The schemas are documented in docs/history.md and docs/harness.md. Keeping
them here, beside the API that computes the answers, is what makes
``datagit diff --json`` and ``GET /api/diff`` the same bytes rather than two
copies that drift apart; `text` is the one serialisation both write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from datagit.core.changes import Change, counts
from datagit.core.diff import build

if TYPE_CHECKING:
    from datagit.api.history import Diff
    from datagit.api.repo import Repo
    from datagit.api.status import Status
    from datagit.api.tracking import Tracking
    from datagit.core.blame import ExampleBlame, ExampleEvent
    from datagit.core.credit import Ledger
    from datagit.harness.runs import Run
    from datagit.storage.git import CommitInfo, Signature


def text(value: Any) -> str:
    """The JSON text both the CLI and the viewer send: indented, UTF-8 kept as it is."""
    import json  # only for --json: plain `status` never loads it

    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def iso(sig: Signature) -> str:
    """A signature's time in ISO 8601 with the author's own UTC offset."""
    tz = dt.timezone(dt.timedelta(minutes=sig.offset))
    return dt.datetime.fromtimestamp(sig.time, tz).isoformat()


def commit_json(c: CommitInfo) -> dict[str, Any]:
    """A commit: ids, author, committer, annotator trailer and message."""
    return {
        "id": c.id,
        "parents": list(c.parents),
        "author": {"name": c.author.name, "email": c.author.email, "date": iso(c.author)},
        "committer": {
            "name": c.committer.name,
            "email": c.committer.email,
            "date": iso(c.committer),
        },
        "annotator": c.trailer("Annotator"),
        "message": c.message,
    }


def log_json(commits: Iterable[CommitInfo]) -> list[dict[str, Any]]:
    """``datagit log --json``."""
    return [commit_json(c) for c in commits]


def show_json(c: CommitInfo, changes: dict[str, list[Change]]) -> dict[str, Any]:
    """``datagit show --json``: the commit and its changes against its first parent."""
    out = commit_json(c)
    out["datasets"] = {
        n: {
            "summary": counts(ch),
            "changes": [
                {
                    "id": x.id,
                    "kind": x.kind,
                    "from": x.old.label if x.old else None,
                    "to": x.new.label if x.new else None,
                }
                for x in ch
            ],
        }
        for n, ch in changes.items()
    }
    return out


def diff_json(result: Diff) -> dict[str, Any]:
    """``datagit diff --json`` (docs/history.md)."""
    return {
        "old": result.old,
        "new": result.new,
        "datasets": {
            d.name: {
                "summary": d.summary(),
                "added": [r.id for r in d.added],
                "removed": [r.id for r in d.removed],
                "modified": [c.id for c in d.modified],
                "relabeled": [
                    {"id": c.id, "from": c.old.label, "to": c.new.label}  # type: ignore[union-attr]
                    for c in d.relabeled
                ],
                "renamed": [{"from": x.old.id, "to": x.new.id} for x in d.renamed],
                "transitions": [{"from": a, "to": b, "count": n} for a, b, n in d.transitions()],
                "label_deltas": d.label_deltas(),
                "machine_labelled": [
                    {"id": r.id, "label": r.label, "annotator": r.annotator}
                    for r in d.machine_labelled()
                ],
            }
            for d in result.datasets
        },
    }


def event_json(e: ExampleEvent) -> dict[str, Any]:
    """One commit in an example's history (``blame DATASET/ID --json``, ``log --example``)."""
    return {
        "commit": e.commit.id,
        "author": e.commit.author.name,
        "email": e.commit.author.email,
        "date": iso(e.commit.author),
        "annotator": e.annotator,
        "kind": e.kind,
        "old": e.old.to_dict() if e.old else None,
        "new": e.new.to_dict() if e.new else None,
        "message": e.commit.summary,
    }


def example_log_json(events: Iterable[ExampleEvent]) -> list[dict[str, Any]]:
    """``datagit blame DATASET/ID --json``."""
    return [event_json(e) for e in events]


def dataset_blame_json(repo: Repo, rows: list[ExampleBlame]) -> list[dict[str, Any]]:
    """``datagit blame DATASET --json``: one object per example."""
    infos = {i: repo.git.commit(i) for i in {b.commit for b in rows} | {b.added_in for b in rows}}
    return [
        {
            "id": b.id,
            "label": b.label,
            "commit": b.commit,
            "author": infos[b.commit].author.name,
            "date": iso(infos[b.commit].author),
            "annotator": b.annotator,
            "added_in": b.added_in,
        }
        for b in rows
    ]


def credit_json(ledger: Ledger) -> dict[str, Any]:
    """``datagit credit --json``: authors and annotators, ranked."""
    return ledger.to_dict()


def status_json(st: Status, track: Tracking | None = None) -> dict[str, Any]:
    """``datagit status --json``; ``track`` is the branch's upstream, when it has one."""
    upstream = (
        None
        if track is None
        else {"name": track.upstream, "ahead": track.ahead, "behind": track.behind}
    )
    return {
        "branch": st.branch,
        "head": st.head,
        "clean": st.clean,
        "upstream": upstream,
        "conflicts": st.conflicts,
        "config": {"staged": st.config_staged, "unstaged": st.config_unstaged},
        "datasets": {
            d.name: {
                "staged": build(d.name, d.staged).summary(),
                "unstaged": build(d.name, d.unstaged).summary(),
                "staged_ids": [c.id for c in d.staged],
                "unstaged_ids": [c.id for c in d.unstaged],
                "missing": d.missing,
            }
            for d in st.datasets
        },
    }


def runs_json(runs: Iterable[Run]) -> list[dict[str, Any]]:
    """``datagit runs --json``: each cached run's ``run.json``, newest first."""
    return [{**r.meta} for r in runs]


def run_json(run: Run) -> dict[str, Any]:
    """``datagit runs show ID --json``: ``run.json`` plus every eval example's output."""
    return {**run.meta, "outputs": run.outputs()}
