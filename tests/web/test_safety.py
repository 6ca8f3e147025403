"""The viewer reads only, serves nothing outside the repository, and never serves HTML
made of example bytes."""

from __future__ import annotations

import gc
import io
from pathlib import Path

import pytest
from PIL import Image
from testkit import digits_pngs, write_tree
from web_helpers import client, repo_state

from datagit import Repo
from datagit.core.config import DatasetConfig

Hist = tuple[Path, dict[str, str]]
EVIL = b"<html><script>alert(document.domain)</script></html>"


@pytest.fixture
def evil_repo(tmp_repo: Repo) -> Repo:
    """An image that is really HTML, a table row holding markup, and a workspace symlink."""
    write_tree(
        tmp_repo.workdir,
        {
            "train/3/ok.png": digits_pngs(1)[0][0],
            "train/3/evil.png": EVIL,
            "notes.csv": 'id,label,text\nn1,<b>bold</b>,"<script>alert(1)</script>"\n',
        },
    )
    tmp_repo.add_dataset(
        DatasetConfig(
            name="notes", layout="table", path="notes.csv", id="id", label="label", content="text"
        )
    )
    tmp_repo.commit("odd examples", all=True)
    (tmp_repo.workdir / "train" / "3" / "link.png").symlink_to("/etc/passwd")
    return tmp_repo


TRAVERSALS = [
    "/static/../datagit.toml",
    "/static/%2e%2e/%2e%2e/datagit.toml",
    "/static/..%2f..%2fdatagit.toml",
    "/static/%2E%2E%2F%2E%2E%2F.datagit/HEAD",
    "/static//etc/passwd",
    "/static/%2Fetc%2Fpasswd",
    "/content/..%2f..%2fdatagit.toml",
    "/content/%2Fetc%2Fpasswd",
    "/content/00000000000000000000000000000000",
    "/thumb/..%2F..%2F.datagit%2FHEAD",
    "/example/train/..%2f..%2fdatagit.toml",
    "/example/train/../../datagit.toml",
    "/example/train//etc/passwd",
    "/example/train/%2Fetc%2Fpasswd",
    "/example/train/3/link.png",
    "/example/train/link.png",
    "/api/blame/train/..%2F..%2Fdatagit.toml",
    "/api/blame/%2Fetc%2Fpasswd",
    "/commit/..%2F..%2Fdatagit.toml",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_no_path_outside_the_repository(evil_repo: Repo, url: str) -> None:
    answer = client(evil_repo.workdir).get(url)
    if url.startswith("/api/blame/train/"):  # as `datagit blame --json`: no commit touched it
        assert answer.json() == []
    else:
        assert answer.status_code in (400, 404), answer.text[:200]
    assert "root:" not in answer.text and "[datasets" not in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_symlinked_static_file_is_not_followed(tmp_path: Path) -> None:
    """StaticFiles would serve a symlink inside its folder; ours ships none and refuses one."""
    from datagit.web import app

    assert not [p for p in (app.HERE / "static").rglob("*") if p.is_symlink()]


def test_example_bytes_are_never_html(evil_repo: Repo) -> None:
    c = client(evil_repo.workdir)
    evil = evil_repo.record("train", "evil.png")
    answer = c.get(f"/content/{evil.content}")
    assert answer.status_code == 200 and answer.content == EVIL
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith("attachment")
    assert answer.headers["x-content-type-options"] == "nosniff"
    as_text = c.get(f"/content/{evil.content}?as=text")
    assert as_text.headers["content-type"] == "text/plain; charset=utf-8"
    assert c.get(f"/thumb/{evil.content}").status_code == 404  # not an image: no preview
    page = c.get("/example/train/evil.png").text
    assert "<script>alert" not in page
    row = c.get("/example/notes/n1").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row and "<script>alert(1)" not in row
    assert "&lt;b&gt;bold&lt;/b&gt;" in row


def test_content_types_and_headers(evil_repo: Repo) -> None:
    c = client(evil_repo.workdir)
    ok = evil_repo.record("train", "ok.png")
    png = c.get(f"/content/{ok.content}")
    assert png.headers["content-type"] == "image/png" and png.content == evil_repo.read(ok)
    thumb = c.get(f"/thumb/{ok.content}?size=128")
    assert thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (128, 128)  # 8×8 grown by 16
    assert c.get(f"/thumb/{ok.content}?size=7").status_code == 404
    page = c.get("/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert c.get("/static/charts.js").headers["content-type"].startswith("text/javascript")
    assert c.get("/api/log").headers["content-type"] == "application/json"


def test_foreign_host_header_is_refused(evil_repo: Repo) -> None:
    """A DNS-rebinding page names its own host; the viewer answers only to local names."""
    c = client(evil_repo.workdir)
    assert c.get("/", headers={"host": "attacker.example"}).status_code == 400
    assert c.get("/", headers={"host": "127.0.0.1:8470"}).status_code == 200


def test_workspace_pseudo_revisions_are_refused(evil_repo: Repo) -> None:
    c = client(evil_repo.workdir)
    answer = c.get("/api/diff?a=HEAD&b=:workspace")
    assert answer.status_code == 404
    assert answer.json()["error"] == "':workspace' is not a revision the viewer reads"
    assert c.get("/api/show/nope").json()["error"].startswith("unknown revision")
    html = c.get("/commit/nope")
    assert html.status_code == 404 and "error: unknown revision" in html.text


def test_reading_every_page_writes_nothing(hist: Hist) -> None:
    root, ids = hist
    # Another test on this session's shared history may have left a writable Repo to
    # the garbage collector; its sqlite close would checkpoint the WAL mid-test.
    gc.collect()
    before = repo_state(root)
    workspace = sorted(p for p in root.rglob("*") if ".datagit" not in p.parts)
    c = client(root)
    for url in (
        "/",
        "/?dataset=train",
        f"/commit/{ids['relabel']}",
        f"/diff?a=v1&b={ids['merge']}",
        "/example/train/d0003.png",
        "/runs",
        f"/runs/{ids['run_first']}",
        "/contributors",
        "/bisect",
        "/suspects",
        "/api/log",
        "/api/credit",
        "/api/blame/train",
        "/api/history",
    ):
        assert c.get(url).status_code == 200, url
    assert repo_state(root) == before
    assert sorted(p for p in root.rglob("*") if ".datagit" not in p.parts) == workspace


def test_viewer_reads_while_a_writer_holds_the_lock(hist: Hist) -> None:
    root, _ = hist
    writer = Repo.open(root)
    with writer.lock:
        assert client(root).get("/").status_code == 200
    writer.close()
