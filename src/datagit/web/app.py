"""The viewer's ASGI application: routes, safety headers, errors, the read-only repository.

Every route only reads: the repository is opened with ``readonly=True`` (no
lock, no monitor, no stat-cache writes), example bytes come from the content
store by address (never from a path built out of a URL), and workspace
pseudo-revisions are refused because reading the workspace would write stat
caches. Handlers are ``async`` and run on the event loop one at a time, so the
repository object (libgit2 underneath) is never used from two threads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datagit.api import render
from datagit.api.repo import Repo
from datagit.errors import DatagitError, InvalidInputError, RevisionNotFoundError

HERE = Path(__file__).parent
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
# Pages load scripts, styles and images from this server only: the viewer works
# offline, and a label or id that smuggles markup in can run nothing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SafetyHeaders:
    """Adds nosniff, a strict content security policy and no-referrer to every answer,
    and ``Server-Timing: app;dur=MS`` (the server's own time, which benchmarks read)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = time.perf_counter()

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers += [
                    (b"server-timing", f"app;dur={ms:.2f}".encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", CSP.encode()),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_headers)


class Viewer:
    """What every handler shares: the repository (reopened when it changed) and templates."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = Repo.open(path, readonly=True)
        self.templates = templates()

    def reopen(self) -> Repo:
        """A fresh handle, after a commit elsewhere added content this one has not indexed."""
        self.repo.close()
        self.repo = Repo.open(self.path, readonly=True)
        return self.repo

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        html = self.templates.get_template(name).render(request=request, repo=self.repo, **context)
        return HTMLResponse(html, status_code=status)


def templates() -> Environment:
    """The pages' Jinja2 templates, autoescaped, with the viewer's filters."""
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["short"] = lambda oid: (oid or "-")[:10]
    env.filters["label"] = label_text
    env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n
    env.filters["date"] = lambda sig: render.iso(sig)[:16].replace("T", " ")
    env.filters["fixed"] = fixed
    return env


def label_text(value: Any) -> str:
    """A label as the CLI prints it: strings bare, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def fixed(value: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals; '-' for none; anything else as a label."""
    if value is None:
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return label_text(value)


def json_response(value: Any) -> Response:
    """The same text ``--json`` prints (without its trailing newline)."""
    return Response(render.text(value), media_type="application/json")


def check_rev(rev: str) -> str:
    """Revisions only: the workspace and stage pseudo-revisions would read (and cache) files."""
    if not rev or rev.startswith(":") or "\x00" in rev or "\n" in rev:
        raise InvalidInputError(
            f"{rev!r} is not a revision the viewer reads",
            hint="name a commit, branch or tag (the viewer shows history, not the workspace)",
        )
    return rev


def error_status(exc: DatagitError) -> int:
    return 404 if isinstance(exc, InvalidInputError | RevisionNotFoundError) else 500


def create_app(path: str | Path = ".", *, hosts: list[str] | None = None) -> Starlette:
    """The viewer for the repository at ``path``; ``hosts``: Host headers it answers to
    (a DNS-rebinding page on another name cannot read it through the browser)."""
    from datagit.web import api_routes, media, pages

    viewer = Viewer(Path(path))

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DatagitError)
        status = error_status(exc)
        if request.url.path.startswith("/api/"):
            body = render.text({"error": exc.message, "hint": exc.hint})
            return Response(body, status_code=status, media_type="application/json")
        return viewer.page(request, "error.html", status, error=exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        err = InvalidInputError(f"nothing here: {request.url.path}", hint="start from the history")
        return await on_error(request, err)

    routes = [
        *pages.routes(viewer),
        *api_routes.routes(viewer),
        *media.routes(viewer),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SafetyHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=[*LOCAL_HOSTS, *(hosts or [])]),
        ],
        exception_handlers={DatagitError: on_error, 404: not_found},
    )


Routes = list[Route]
