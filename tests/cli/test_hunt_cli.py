"""`datagit bisect run --harness`, `narrow`, `report`, `verify` as a user types them."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from testkit import Cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "digits"))
from history import regression_history


def _state(root: Path) -> tuple[dict[str, bytes], bytes]:
    """Every ref and bisect file, and the workspace's datagit.toml: what must not change."""
    dot = root / ".datagit"
    files = {
        str(p.relative_to(dot)): p.read_bytes()
        for p in [
            *dot.glob("BISECT_*"),
            *dot.glob("HUNT"),
            *dot.glob("HEAD"),
            *dot.rglob("refs/**/*"),
        ]
        if p.is_file()
    }
    return files, (root / "datagit.toml").read_bytes()


def test_the_whole_hunt_from_the_command_line(
    tmp_path: Path, run_cli: Callable[[Path], Cli]
) -> None:
    h = regression_history(tmp_path / "ws", commits=4, culprit=3, base=500, fraction=0.7)
    cli = run_cli(h.root)
    cli("bisect", "start", "HEAD", "HEAD~4")
    out = cli("bisect", "run", "--harness", "--drop", "0.015").output
    assert "bad endpoint" in out and "good endpoint" in out and "± 0.0000" in out
    assert "(1 seed, trained)" in out and f"{h.culprit} is the first bad commit" in out
    assert "3 → 8" in out
    report = tmp_path / "hunt.md"
    cli("bisect", "report", "--md", "-o", str(report))
    assert "First bad commit" in report.read_text()
    assert "verified" in cli("bisect", "verify", str(report)).output
    cli("bisect", "reset")
    again = (
        cli("bisect", "start", "HEAD", "HEAD~4").output
        and cli("bisect", "run", "--harness", "--drop", "0.015").output
    )
    assert "(1 seed, cached)" in again and "trained)" not in again.replace("0 trained", "")
    narrowed = json.loads(cli("bisect", "narrow", "--max-retrains", "4", "--json").output)
    assert narrowed["culprit"] == h.culprit and narrowed["harmful"]
    eights = [e for e in narrowed["harmful"] if e["new_label"] == "8"]
    assert len(eights) >= 0.8 * len(narrowed["harmful"])
    assert eights[0]["author"] == "Bob Babbage"
    _the_viewer_shows_the_hunt(h.root, h.culprit, eights[0]["id"], cli)


def _the_viewer_shows_the_hunt(root: Path, culprit: str, example: str, cli: Cli) -> None:
    """After `bisect reset`, the viewer's bisect page shows the hunt's timeline, culprit and
    narrowed examples, and its report twin is `bisect report --json`."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient
    from datagit.web import create_app

    c = TestClient(create_app(str(root), hosts=["testserver"]))
    page = c.get("/bisect").text
    assert 'id="hunt-rule"' in page and 'id="narrowed"' in page
    assert culprit[:10] in page and example in page
    assert c.get("/api/bisect").json()["culprit"] == culprit
    assert c.get("/api/bisect/report").json() == json.loads(
        cli("bisect", "report", "--json").output
    )


def test_bad_input_is_one_line_exit_nonzero_and_changes_nothing(
    tmp_path: Path, run_cli: Callable[[Path], Cli]
) -> None:
    h = regression_history(tmp_path / "ws", commits=2, culprit=2, base=300, fraction=0.7)
    cli = run_cli(h.root)
    r = cli("bisect", "narrow", ok=False)
    assert r.exit_code != 0 and "error: no first bad commit to narrow" in r.output
    cli("bisect", "start", "HEAD", "HEAD~2")
    before = _state(h.root)
    cases = [
        (["--metric", "recall"], "unknown metric 'recall'"),
        (["--threshold", "0"], "is not bad"),
        (["--executor", "ray", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
        (["--jobs", "0"], "--jobs must be at least 1"),
    ]
    for args, message in cases:
        r = cli("bisect", "run", "--harness", *args, ok=False)
        errors = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert r.exit_code != 0 and len(errors) == 1 and message in errors[0], r.output
        assert _state(h.root) == before
    r = cli("bisect", "run", "--harness", "echo", "hi", ok=False)
    assert r.exit_code != 0 and "takes no COMMAND" in r.output
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps({"format": "datagit-bisect-report/1", "sha256": "0" * 64}))
    r = cli("bisect", "verify", str(edited), ok=False)
    assert r.exit_code != 0 and "was edited" in r.output
