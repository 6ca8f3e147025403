"""The viewer's pages, read as HTML: what each shows for a real small history."""

from __future__ import annotations

import re
from pathlib import Path

from web_helpers import client

from datagit import Repo
from datagit.api import bisect

Hist = tuple[Path, dict[str, str]]


def cards(html: str) -> list[str]:
    return re.findall(r'<figure class="card[^"]*" data-id="([^"]+)"', html)


def test_history_shows_graph_refs_people_and_counts(hist: Hist) -> None:
    root, ids = hist
    html = client(root).get("/").text
    for oid in (ids["first"], ids["relabel"], ids["nines"], ids["drop"], ids["merge"]):
        assert f'data-commit="{oid}"' in html
    assert "HEAD -&gt; main" in html and "tag: v1" in html and ">nines<" in html
    assert html.count('class="ref merge"') == 1
    assert "Bob Babbage" in html and ">bob<" in html  # author and annotator
    row = html[html.index(f'data-commit="{ids["relabel"]}"') :].split("</tr>")[0]
    assert '<span class="k-relabeled" title="relabeled">r12</span>' in row
    assert row.count("<line") >= 1 and "<circle" in row
    merge_row = html[html.index(f'data-commit="{ids["merge"]}"') :].split("</tr>")[0]
    assert 'class="dot lane0 merge"' in merge_row  # a merge commit draws a hollow dot


def test_history_filters(hist: Hist) -> None:
    root, ids = hist
    c = client(root)
    bob = c.get("/?author=Bob+Babbage").text
    assert f'data-commit="{ids["relabel"]}"' in bob and f'data-commit="{ids["drop"]}"' in bob
    assert f'data-commit="{ids["first"]}"' not in bob
    ann = c.get("/?annotator=ada").text
    assert f'data-commit="{ids["nines"]}"' in ann and f'data-commit="{ids["relabel"]}"' not in ann
    ds = c.get("/?dataset=eval").text
    assert f'data-commit="{ids["first"]}"' in ds and f'data-commit="{ids["relabel"]}"' not in ds
    assert "match these filters" in c.get("/?author=Nobody").text


def test_commit_page_transition_table_and_cell(hist: Hist) -> None:
    root, ids = hist
    c = client(root)
    html = c.get(f"/commit/{ids['relabel']}").text
    assert "Re-label ambiguous 3s as 8s" in html and "Bob Babbage" in html
    cell = re.search(r'<a class="cell" data-from="3" data-to="8" href="([^"]+)">12</a>', html)
    assert cell, "the 3 → 8 cell links to its examples"
    moved = c.get(f"/commit/{ids['relabel']}" + cell.group(1).replace("&amp;", "&")).text
    assert "3 → 8" in moved and len(cards(moved)) == 12
    assert moved.count('<span class="old-label">3</span>') == 12
    assert moved.count('<span class="new-label">8</span>') == 12
    assert 'class="cell chosen"' in moved


def test_diff_kinds_and_pagination(hist: Hist) -> None:
    root, ids = hist
    c = client(root)
    first = c.get(f"/diff?a={ids['first']}&b={ids['merge']}").text
    assert "12 relabeled" in first and "5 added" in first and "1 removed" in first
    added = c.get(f"/diff?a={ids['first']}&b={ids['merge']}&dataset=train&kind=added").text
    assert len(cards(added)) == 5 and all(i.startswith("9/") or "extra" in i for i in cards(added))
    root_commit = c.get(f"/commit/{ids['first']}?dataset=train").text  # 240 added: 4 pages
    assert len(cards(root_commit)) == 60 and "page 1 of 4" in root_commit
    page3 = c.get(f"/commit/{ids['first']}?dataset=train&page=3").text
    assert "page 3 of 4" in page3 and not set(cards(page3)) & set(cards(root_commit))
    assert "page 4 of 4" in c.get(f"/commit/{ids['first']}?dataset=train&page=99").text


def test_example_page_bytes_blame_and_predictions(hist: Hist) -> None:
    root, _ = hist
    repo = Repo.open(root)
    rec = repo.record("eval", "d0000.png")
    html = client(root).get("/example/eval/d0000.png").text
    assert f'src="/content/{rec.content}"' in html
    assert "Add digits" in html and "Ada Lovelace" in html
    assert html.count('<a href="/runs/') == 2  # both runs evaluated it
    moved = client(root).get("/example/train/d0003.png").text
    assert "3 → 8" in moved and "Re-label ambiguous 3s as 8s" in moved
    assert '<dd class="label">8</dd>' in moved


def test_runs_page_chart_and_compare(hist: Hist) -> None:
    root, ids = hist
    c = client(root)
    html = c.get("/runs").text
    assert 'id="metric-chart"' in html and ids["first"][:10] in html
    assert ids["run_first"][:10] in html and ids["run_relabel"][:10] in html
    cmp = c.get(f"/runs/compare?a={ids['run_first']}&b={ids['run_relabel']}").text
    assert "Wrong in a, right in b" in cmp and "accuracy" in cmp
    one = c.get(f"/runs/{ids['run_relabel']}").text
    assert "Highest-loss eval examples" in one and "/thumb/" in one


def test_contributors_page(hist: Hist) -> None:
    root, _ = hist
    html = client(root).get("/contributors").text
    assert "Ada Lovelace" in html and "Bob Babbage" in html
    assert 'aria-label="labels_set per authors"' in html and "<rect" in html


def test_suspects_gallery_from_the_newest_run(hist: Hist) -> None:
    root, ids = hist
    html = client(root).get("/suspects").text
    assert "eval loss of run" in html
    found = client(root).get("/api/suspects").json()
    assert found["run"] in (ids["run_first"], ids["run_relabel"])
    scores = [s["score"] for s in found["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(s["label"] != s["suggested"] for s in found["items"])


def test_pages_without_runs_or_bisect_say_so(tmp_repo: Repo, cli) -> None:  # type: ignore[no-untyped-def]
    c = client(tmp_repo.workdir)
    assert "No commits" in c.get("/").text
    assert 'id="no-bisect"' in c.get("/bisect").text
    assert c.get("/api/bisect").json() == {"bisecting": False}
    assert 'id="no-suspects"' in c.get("/suspects").text
    assert c.get("/api/suspects").json() is None
    assert "No runs yet" in c.get("/runs").text


def test_bisect_timeline_and_culprit(tmp_path: Path, digits_repo: Repo) -> None:
    import shutil

    repo = digits_repo
    good = repo.commit("digits", all=True).id
    for p in sorted((repo.workdir / "train" / "3").iterdir())[:6]:
        (repo.workdir / "train" / "8").mkdir(exist_ok=True)
        shutil.move(p, repo.workdir / "train" / "8" / p.name)
    bad = repo.commit("break the threes", all=True).id
    later = repo.commit("nothing much", allow_empty=True).id
    bisect.start(repo, later, [good])
    step = bisect.mark(repo, "bad", [bad])
    assert step is not None and step.first_bad == bad
    c = client(repo.workdir)
    html = c.get("/bisect").text
    assert "First bad commit" in html and f'<a href="/commit/{bad}"><code>{bad[:10]}' in html
    assert "3 → 8" in html
    state = c.get("/api/bisect").json()
    assert [s["verdict"] for s in state["steps"]] == ["bad", "good", "bad"]
    assert state["culprit"] == bad and state["culprit_changes"]["train"]["relabeled"] == 6


def test_history_pages_fifty_commits_at_a_time(tmp_repo: Repo) -> None:
    for i in range(53):
        tmp_repo.commit(f"step {i}", allow_empty=True)
    c = client(tmp_repo.workdir)
    first = c.get("/").text
    assert first.count('<tr class="commit"') == 50 and "page 1 of 2" in first
    assert "step 52" in first and "step 2<" not in first
    last = c.get("/?page=9").text  # past the end: the last page
    assert last.count('<tr class="commit"') == 3 and "step 0" in last and "page 2 of 2" in last
    assert c.get("/?page=x").status_code == 404


def test_contributors_show_a_value_column_when_credit_has_one() -> None:
    """#11's `credit --value` adds a number per contributor: a column and a bar chart."""
    from starlette.requests import Request

    from datagit.web.app import fixed, templates

    assert (fixed(0.12345), fixed(None), fixed(3)) == ("0.1235", "-", "3.0000")
    assert fixed({"accuracy": 0.5}) == '{"accuracy": 0.5}'  # not a number: as the CLI's label
    ledger = {
        "authors": [
            {"name": "Ada", "labels_set": 5, "value": 0.031},
            {"name": "Bob", "labels_set": 2, "value": -0.012},
        ],
        "annotators": [{"name": "ann", "labels_set": 1, "value": {"accuracy": 0.5}}],
    }
    request = Request({"type": "http", "query_string": b"", "headers": []})
    html = (
        templates()
        .get_template("contributors.html")
        .render(request=request, repo_name="ws", ledger=ledger, rev="HEAD")
    )
    assert "<th>value</th>" in html and "0.0310" in html
    assert 'aria-label="value per authors"' in html and 'class="bar neg"' in html
    assert 'aria-label="value per annotators"' not in html  # not numbers: no chart
