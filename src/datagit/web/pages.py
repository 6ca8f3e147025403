"""The viewer's HTML pages: history, a commit or diff, an example, runs, contributors,
bisect and suspects. Each handler asks the API one question and fills a template."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from datagit.api import browse, harness, history, render, results, value_credit
from datagit.errors import InvalidInputError
from datagit.web.api_routes import int_param
from datagit.web.app import check_rev

if TYPE_CHECKING:
    from datagit.web.app import Viewer

PAGE = 60  # examples per page of a diff
COMMITS = 50  # commits per page of history


class Pager:
    """Which slice of ``total`` items a page shows, and the links to its neighbours."""

    def __init__(self, request: Request, total: int, size: int) -> None:
        self.size = size
        self.total = total
        self.pages = max(1, -(-total // size))
        page = int_param(request, "page", 1) or 1
        self.page = min(max(page, 1), self.pages)
        self.start = (self.page - 1) * size
        self.stop = min(self.start + size, total)
        self._params = dict(request.query_params)

    def link(self, page: int) -> str:
        return "?" + urlencode({**self._params, "page": page})


def routes(viewer: Viewer) -> list[Route]:
    async def history_page(request: Request) -> Response:
        params = request.query_params
        filters = {k: params.get(k) or None for k in ("dataset", "author", "annotator")}
        page = max(int_param(request, "page", 1) or 1, 1)
        h = browse.history_rows(viewer.repo, **filters, offset=(page - 1) * COMMITS, limit=COMMITS)
        pager = Pager(request, h.total, COMMITS)
        if pager.page != page:  # past the last page: show the last one
            h = browse.history_rows(viewer.repo, **filters, offset=pager.start, limit=COMMITS)
        graph = not any(filters.values())  # a filtered history has gaps: no lines
        return viewer.page(
            request, "history.html", history=h, pager=pager, filters=filters, graph=graph
        )

    async def commit_page(request: Request) -> Response:
        repo = viewer.repo
        c = repo.commit_info(check_rev(request.path_params["rev"]))
        parent = c.parents[0] if c.parents else None
        return diff_page(request, parent, c.id, commit=c)

    async def compare_page(request: Request) -> Response:
        a = check_rev(request.query_params.get("a") or "HEAD~1")
        b = check_rev(request.query_params.get("b") or "HEAD")
        return diff_page(request, viewer.repo.resolve(a), viewer.repo.resolve(b))

    def diff_page(request: Request, a: str | None, b: str, commit: Any = None) -> Response:
        repo = viewer.repo
        params = request.query_params
        diffs = browse.diffs(repo, a, b)
        changed = [d for d in diffs if d]
        chosen = params.get("dataset") or (changed[0].name if changed else None)
        current = next((d for d in diffs if d.name == chosen), None)
        if chosen and current is None:
            raise InvalidInputError(
                f"no dataset named {chosen!r} in this diff",
                hint=f"datasets: {', '.join(d.name for d in diffs) or '(none)'}",
            )
        kind = params.get("kind") or None
        old_label, new_label = params.get("from"), params.get("to")
        items = (
            browse.diff_items(current, kind=kind, old_label=old_label, new_label=new_label)
            if current is not None
            else []
        )
        pager = Pager(request, len(items), PAGE)
        return viewer.page(
            request,
            "diff.html",
            commit=commit,
            a=a,
            b=b,
            diffs=diffs,
            current=current,
            tables={d.name: browse.transitions(d) for d in diffs},
            items=items[pager.start : pager.stop],
            pager=pager,
            kind=kind,
            old_label=old_label,
            new_label=new_label,
            kinds=browse.KINDS,
            refs=browse.ref_names(repo),
        )

    async def example_page(request: Request) -> Response:
        dataset = request.path_params["dataset"]
        example_id = request.path_params["id"]
        rev = check_rev(request.query_params.get("rev") or "HEAD")
        view = browse.example(viewer.repo, dataset, example_id, rev)
        return viewer.page(request, "example.html", ex=view, example_id=example_id)

    async def runs_page(request: Request) -> Response:
        all_runs = harness.runs(viewer.repo)
        names = results.metric_names(all_runs)
        metric = request.query_params.get("metric") or (names[0] if names else "accuracy")
        points = results.series(viewer.repo, metric, all_runs)
        chart = {
            "title": metric,
            "labels": [p.commit[:10] for p in points],
            "summaries": [p.summary for p in points],
            "series": [
                {"name": metric, "values": [p.value for p in points]},
                {"name": "lowest", "values": [p.value - p.spread for p in points], "dash": 1},
            ],
        }
        return viewer.page(
            request,
            "runs.html",
            runs=all_runs,
            metric=metric,
            metrics=names,
            points=points,
            chart=render.text(chart),
        )

    async def run_page(request: Request) -> Response:
        run = harness.show(viewer.repo, request.path_params["id"])
        outputs = run.outputs()
        worst = sorted((o for o in outputs if o.get("loss") is not None), key=lambda o: -o["loss"])[
            :PAGE
        ]
        tree = viewer.repo.dataset_tree(run.meta["eval"]["dataset"], run.meta["eval"]["commit"])
        contents = {o["id"]: _content(tree.get(o["id"])) for o in worst}
        return viewer.page(request, "run.html", run=run, worst=worst, contents=contents)

    async def compare_runs_page(request: Request) -> Response:
        a, b = request.query_params.get("a"), request.query_params.get("b")
        if not a or not b:
            raise InvalidInputError("compare needs two runs: ?a=RUN&b=RUN", hint="pick on /runs")
        cmp = results.compare(viewer.repo, a, b)
        tree = viewer.repo.dataset_tree(cmp.b.meta["eval"]["dataset"], cmp.b.meta["eval"]["commit"])
        contents = {v.id: _content(tree.get(v.id)) for v in (*cmp.fixed, *cmp.broken)}
        return viewer.page(request, "compare.html", cmp=cmp, contents=contents)

    async def contributors_page(request: Request) -> Response:
        rev = check_rev(request.query_params.get("rev") or "HEAD")
        ledger = render.credit_json(history.credit(viewer.repo, rev))
        value = value_credit.last_credit_value(viewer.repo, viewer.repo.resolve(rev))
        if value is not None:  # `credit --value` ran for this commit: its value beside the counts
            for key in ("authors", "annotators"):
                worth = {r["name"]: r for r in value[key]}
                for row in ledger[key]:
                    got = worth.get(row["name"], {})
                    row["value"] = float(got.get("value", 0.0))
                    row["share"] = float(got.get("share", 0.0))
        return viewer.page(request, "contributors.html", ledger=ledger, rev=rev, value=value)

    async def bisect_page(request: Request) -> Response:
        metric = request.query_params.get("metric") or "accuracy"
        view = results.bisect_view(viewer.repo, metric)
        chart = None
        if view is not None and any(s.value is not None for s in view.steps):
            steps = [s for s in view.steps if s.value is not None]
            chart = render.text(
                {
                    "title": metric,
                    "labels": [s.commit[:10] for s in steps],
                    "summaries": [f"{s.verdict}: {s.summary}" for s in steps],
                    "series": [{"name": metric, "values": [s.value for s in steps]}],
                }
            )
        return viewer.page(request, "bisect.html", view=view, chart=chart)

    async def suspects_page(request: Request) -> Response:
        found = results.suspects(viewer.repo, request.query_params.get("run") or None)
        return viewer.page(request, "suspects.html", found=found)

    return [
        Route("/", history_page),
        Route("/commit/{rev:path}", commit_page),
        Route("/diff", compare_page),
        Route("/example/{dataset}/{id:path}", example_page),
        Route("/runs", runs_page),
        Route("/runs/compare", compare_runs_page),
        Route("/runs/{id}", run_page),
        Route("/contributors", contributors_page),
        Route("/bisect", bisect_page),
        Route("/suspects", suspects_page),
    ]


def _content(record: Any) -> str | None:
    return record.content if record is not None and record.text is None else None
