"""`datagit fsmonitor start|stop|status`: the filesystem monitor (Linux, inotify)."""

from __future__ import annotations

import click

from datagit.cli._common import open_repo


@click.group("fsmonitor")
def fsmonitor() -> None:
    """Watch the workspace so status and commit look only at what changed.

    \b
    Like git's core.fsmonitor: with 100,000 files, a scan otherwise costs
    100,000 stat calls. `start` enables it for this repository (it is then
    restarted on demand, e.g. after a reboot); `stop` disables it.

    \b
    Examples:
      datagit fsmonitor start
      datagit fsmonitor status
      datagit fsmonitor stop
    """


@fsmonitor.command("start")
@click.pass_context
def start(ctx: click.Context) -> None:
    """Enable and start the monitor for this repository."""
    from datagit.api import monitor

    info = monitor.start(open_repo(ctx))
    click.echo(f"fsmonitor running (pid {info.get('pid')}, {info.get('watches')} folders watched)")


@fsmonitor.command("stop")
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the monitor and disable it for this repository."""
    from datagit.api import monitor

    was = monitor.stop(open_repo(ctx))
    click.echo("fsmonitor stopped" if was else "fsmonitor was not running; disabled")


@fsmonitor.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Whether the monitor is enabled and running."""
    from datagit.api import monitor

    repo = open_repo(ctx)
    info = monitor.status(repo)
    state = "enabled" if monitor.enabled(repo) else "disabled"
    if info is None:
        click.echo(f"fsmonitor {state}, not running")
        ctx.exit(0 if state == "disabled" else 1)
        return
    click.echo(
        f"fsmonitor {state}, running: pid {info['pid']}, {info['watches']} folders watched, "
        f"{info['tracked']} paths changed, up {info['uptime_s']} s"
    )


COMMANDS = [fsmonitor]
