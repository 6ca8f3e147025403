"""``/api/...``: each page's JSON twin.

Where the CLI answers the same question, the route calls the same API
function and the same renderer (`datagit.api.render`) as the CLI's ``--json``,
so the two are the same text; tests/web/test_api_twins.py holds them to it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datagit.api import browse, harness, history, render, results
from datagit.errors import InvalidInputError
from datagit.web.app import check_rev, json_response

if TYPE_CHECKING:
    from datagit.web.app import Viewer


def int_param(request: Request, name: str, default: int | None) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"{name}={value[:40]!r} is not a whole number") from None


def routes(viewer: Viewer) -> list[Route]:
    def q(request: Request, name: str, default: str) -> str:
        return check_rev(request.query_params.get(name) or default)

    async def log(request: Request) -> Response:
        rev = q(request, "rev", "HEAD")
        n = int_param(request, "n", None)
        return json_response(render.log_json(viewer.repo.log(rev, limit=n)))

    async def show(request: Request) -> Response:
        repo = viewer.repo
        c = repo.commit_info(check_rev(request.path_params["rev"]))
        changes = repo.changes(c.parents[0] if c.parents else None, c.id)
        return json_response(render.show_json(c, changes))

    async def diff(request: Request) -> Response:
        a, b = q(request, "a", "HEAD~1"), q(request, "b", "HEAD")
        names = request.query_params.getlist("dataset") or None
        result = history.diff(viewer.repo, a, b, datasets=names)
        return json_response(render.diff_json(result))

    async def blame(request: Request) -> Response:
        repo = viewer.repo
        rev = q(request, "rev", "HEAD")
        spec = request.path_params["spec"]
        dataset, example_id = history.split_example(repo, spec, rev)
        if example_id is not None:
            return json_response(
                render.example_log_json(history.example_log(repo, dataset, example_id, rev))
            )
        rows = history.blame(repo, dataset, rev, label=request.query_params.get("label"))
        return json_response(render.dataset_blame_json(repo, rows))

    async def credit(request: Request) -> Response:
        rev = q(request, "rev", "HEAD")
        names = request.query_params.getlist("dataset") or None
        return json_response(render.credit_json(history.credit(viewer.repo, rev, datasets=names)))

    async def runs(request: Request) -> Response:
        return json_response(render.runs_json(harness.runs(viewer.repo)))

    async def run(request: Request) -> Response:
        return json_response(render.run_json(harness.show(viewer.repo, request.path_params["id"])))

    async def history_page(request: Request) -> Response:
        h = browse.history_rows(
            viewer.repo,
            dataset=request.query_params.get("dataset") or None,
            author=request.query_params.get("author") or None,
            annotator=request.query_params.get("annotator") or None,
            offset=int_param(request, "offset", 0) or 0,
            limit=int_param(request, "limit", 50) or 50,
        )
        return json_response(
            {
                "total": h.total,
                "commits": [
                    {
                        **render.commit_json(r.commit),
                        "refs": r.refs,
                        "lane": r.graph.lane,
                        "changes": r.changes,
                    }
                    for r in h.rows
                ],
            }
        )

    async def series(request: Request) -> Response:
        metric = request.query_params.get("metric") or "accuracy"
        return json_response([asdict(p) for p in results.series(viewer.repo, metric)])

    async def bisect(request: Request) -> Response:
        view = results.bisect_view(viewer.repo, request.query_params.get("metric") or "accuracy")
        return json_response(bisect_json(view))

    async def suspects(request: Request) -> Response:
        found = results.suspects(viewer.repo, request.query_params.get("run") or None)
        return json_response(None if found is None else asdict(found))

    return [
        Route("/api/log", log),
        Route("/api/show/{rev:path}", show),
        Route("/api/diff", diff),
        Route("/api/blame/{spec:path}", blame),
        Route("/api/credit", credit),
        Route("/api/runs", runs),
        Route("/api/runs/{id}", run),
        Route("/api/history", history_page),
        Route("/api/series", series),
        Route("/api/bisect", bisect),
        Route("/api/suspects", suspects),
    ]


def asdict(value: Any) -> Any:
    return dataclasses.asdict(value)


def bisect_json(view: results.BisectView | None) -> dict[str, Any]:
    """``{"bisecting": false}``, or the terms, tested steps, culprit and its changes."""
    if view is None:
        return {"bisecting": False}
    return {
        "bisecting": True,
        "terms": {"old": view.terms.old, "new": view.terms.new},
        "metric": view.metric,
        "steps": [asdict(s) for s in view.steps],
        "culprit": view.culprit,
        "culprit_changes": view.culprit_changes,
        "transitions": {
            k: [{"from": a, "to": b, "count": n} for a, b, n in v]
            for k, v in view.transitions.items()
        },
        "log": view.log,
    }
