"""The viewer in a real browser: Playwright driving Debian's chromium, offline.

Clicks history → a commit's diff → a label-transition cell → an example → its blame,
checks what is on screen (thumbnails decoded, no script or policy errors), and keeps
a screenshot of each page under test-output/ui/ (or $DATAGIT_TEST_OUTPUT) for review.
Never runs `playwright install`: the browser is the system's (`.ci/run` installs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
OUT = Path(os.environ.get("DATAGIT_TEST_OUTPUT", Path(__file__).parents[2] / "test-output")) / "ui"

Hist = tuple[Path, dict[str, str]]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed: `apt-get install chromium` (.ci/run does it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs the dev extra")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(hist: Hist) -> Iterator[str]:
    """The viewer under uvicorn on a free 127.0.0.1 port, in a thread."""
    import uvicorn

    from datagit.web import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(str(hist[0])), log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not srv.started:
        if not thread.is_alive():
            raise RuntimeError("the viewer did not start")
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join()
    sock.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    p.errors = []  # type: ignore[attr-defined]
    p.on("console", lambda m: m.type == "error" and p.errors.append(m.text))
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    p.on("response", lambda r: r.status >= 400 and p.errors.append(f"{r.status} {r.url}"))
    yield p
    ctx.close()


def shot(page: Any, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)


def images_decoded(page: Any, selector: str) -> list[int]:
    """naturalWidth of every matching image once loaded (0: broken)."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector
    )
    return page.eval_on_selector_all(selector, "els => els.map(i => i.naturalWidth)")


def test_history_to_diff_to_cell_to_example_to_blame(page: Any, server: str, hist: Hist) -> None:
    _, ids = hist
    page.goto(server + "/")
    assert page.locator("h1").inner_text() == "History"
    assert page.locator("tr.commit").count() == 5
    assert page.locator("span.ref.tag").inner_text() == "tag: v1"
    assert page.locator("circle.merge").count() == 1
    shot(page, "1-history")

    page.click(f'tr[data-commit="{ids["relabel"]}"] td.oid a')
    page.wait_for_url(f"**/commit/{ids['relabel']}")
    assert "Re-label ambiguous 3s as 8s" in page.locator("p.summary").inner_text()
    assert page.locator('a.cell[data-from="3"][data-to="8"]').inner_text() == "12"
    shot(page, "2-commit")

    page.click('a.cell[data-from="3"][data-to="8"]')
    page.wait_for_selector("a.cell.chosen")
    assert page.locator("figure.card").count() == 12
    assert page.locator("figure.card .old-label").all_inner_texts() == ["3"] * 12
    assert page.locator("figure.card .new-label").all_inner_texts() == ["8"] * 12
    widths = images_decoded(page, "figure.card img.thumb")
    assert len(widths) == 12 and all(w == 128 for w in widths)
    page.locator("section.items").scroll_into_view_if_needed()
    shot(page, "3-transition-cell")

    first = page.locator("figure.card a.example-link").first
    example_id = first.inner_text()
    first.click()
    page.wait_for_url("**/example/train/**")
    assert page.locator(".example-id").inner_text() == example_id
    assert images_decoded(page, "img.full") == [8]
    assert page.locator("dd.label").inner_text() == "8"
    shot(page, "4-example")

    blame = page.locator("#blame tr.event")
    assert blame.count() == 2
    assert blame.nth(0).locator("td.label-change").inner_text() == "3 → 8"
    assert blame.nth(0).locator("td.author").inner_text() == "Bob Babbage"
    assert blame.nth(0).locator("td.annotator").inner_text() == "bob"
    assert blame.nth(1).locator("td.kind").inner_text() == "added"
    assert page.errors == []  # no failed request, script error or policy violation


def test_runs_chart_contributors_bisect_and_suspects(page: Any, server: str) -> None:
    page.goto(server + "/runs")
    page.wait_for_selector("#metric-chart[data-drawn]")
    assert page.locator("#metric-chart canvas").count() >= 1
    assert page.locator("#metric-chart").get_attribute("data-drawn") == "2"  # two commits
    shot(page, "5-runs")

    page.click("text=Compare a and b")
    page.wait_for_url("**/runs/compare**")
    assert page.locator("section.verdicts").count() == 2
    shot(page, "6-compare")

    page.click("#nav-contributors")
    assert page.locator("#credit-authors td.name").all_inner_texts() == [
        "Ada Lovelace",
        "Bob Babbage",
    ]
    assert page.locator("#credit-authors rect.bar").count() >= 2
    shot(page, "7-contributors")

    page.click("#nav-bisect")
    assert "No bisect yet" in page.locator("#no-bisect").inner_text()
    page.click("#nav-suspects")
    assert page.locator("figure.suspect").count() >= 1
    assert all(w > 0 for w in images_decoded(page, "figure.suspect img.thumb"))
    shot(page, "8-suspects")
    assert page.errors == []
