"""Every /api route the CLI also answers returns exactly what the CLI's --json prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from testkit import Cli
from web_helpers import client

from datagit import Repo
from datagit.api import render

TWINS = [
    (["log", "--json"], "/api/log"),
    (["log", "--json", "-n", "2", "v1"], "/api/log?rev=v1&n=2"),
    (["show", "--json", "HEAD"], "/api/show/HEAD"),
    (["show", "--json", "{relabel}"], "/api/show/{relabel}"),
    (["diff", "--json", "{first}", "{merge}"], "/api/diff?a={first}&b={merge}"),
    (["diff", "--json", "v1", "HEAD", "--", "train"], "/api/diff?a=v1&b=HEAD&dataset=train"),
    (["blame", "--json", "train/d0003.png"], "/api/blame/train/d0003.png"),
    (["blame", "--json", "train", "--rev", "{relabel}"], "/api/blame/train?rev={relabel}"),
    (["blame", "--json", "train", "--label", "8"], "/api/blame/train?label=8"),
    (["credit", "--json"], "/api/credit"),
    (["credit", "--json", "v1"], "/api/credit?rev=v1"),
    (["runs", "--json"], "/api/runs"),
    (["runs", "show", "--json", "{run_relabel}"], "/api/runs/{run_relabel}"),
]


@pytest.mark.parametrize(("args", "url"), TWINS, ids=[" ".join(a[:2]) + u for a, u in TWINS])
def test_api_is_the_cli_json(hist: tuple[Path, dict[str, str]], args: list[str], url: str) -> None:
    root, ids = hist
    args = [a.format(**ids) for a in args]
    printed = Cli(root)(*args).output
    answer = client(root).get(url.format(**ids))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert printed == answer.text + "\n"
    assert answer.json()  # a real answer, not an empty list


def test_blame_json_names_the_relabel(hist: tuple[Path, dict[str, str]]) -> None:
    root, ids = hist
    events = client(root).get("/api/blame/train/d0003.png").json()
    assert events[0]["commit"] == ids["relabel"]
    assert (events[0]["old"]["label"], events[0]["new"]["label"]) == ("3", "8")
    assert events[0]["author"] == "Bob Babbage" and events[0]["annotator"] == "bob"


def test_status_json_is_the_renderer(tmp_repo: Repo, cli: Cli) -> None:
    """status reads the workspace, so the viewer has no twin; the CLI prints the renderer."""
    (tmp_repo.workdir / "train" / "cat").mkdir()
    (tmp_repo.workdir / "train" / "cat" / "a.png").write_bytes(b"a")
    expected = render.text(render.status_json(tmp_repo.status()))
    assert cli("status", "--json").output == expected + "\n"
