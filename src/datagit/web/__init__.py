"""The local web viewer (`datagit ui`): a sibling of the CLI that reads through the API.

Needs the ``ui`` extra (starlette, uvicorn, jinja2); `create_app` is the ASGI app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette


def create_app(path: str = ".", *, hosts: list[str] | None = None) -> Starlette:
    """The viewer for the repository at ``path`` (see `datagit.web.app.create_app`)."""
    from datagit.web.app import create_app as make

    return make(path, hosts=hosts)


__all__ = ["create_app"]
