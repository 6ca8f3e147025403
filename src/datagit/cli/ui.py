"""`datagit ui`: serve the read-only web viewer of this repository on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import threading
import webbrowser

import click

from datagit.api.repo import Repo
from datagit.errors import DatagitError


@click.command()
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8470, show_default=True)
@click.option(
    "--host",
    default=None,
    metavar="HOST",
    help="Listen on HOST instead of 127.0.0.1 (anyone who can reach it can read the data).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the history in a browser.")
@click.pass_context
def ui(ctx: click.Context, port: int, host: str | None, open_browser: bool) -> None:
    """Browse history, diffs with thumbnails, blame, runs, credit and bisect in a browser.

    Read-only: it takes no lock and writes nothing to the repository.

    \b
    Examples:
      datagit ui --open
      datagit ui --port 9000
    """
    missing = [m for m in ("starlette", "uvicorn", "jinja2") if importlib.util.find_spec(m) is None]
    if missing:
        raise DatagitError(
            f"datagit ui needs {', '.join(missing)}",
            hint="install the viewer's extra: pip install 'datagit[ui]'",
        )
    import uvicorn

    from datagit.web import create_app

    repo = Repo.open(ctx.find_root().obj["directory"], readonly=True)
    bind = host or "127.0.0.1"
    if host is not None and host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: serving on {host}: anyone who can reach this machine on port {port} "
            "can read this repository's data",
            err=True,
        )
    app = create_app(str(repo.workdir), hosts=[host] if host else None)
    repo.close()
    config = uvicorn.Config(app, host=bind, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    url = f"http://{'127.0.0.1' if bind in ('0.0.0.0', '::') else bind}:{port}/"
    click.echo(f"datagit ui: {url}  (Ctrl-C to stop)", err=True)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, [url]).start()
    server.run()


COMMANDS = [ui]
