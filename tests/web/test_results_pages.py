"""The suspects and contributors pages show what `suspects` and `credit --value` found."""

from __future__ import annotations

import json
from pathlib import Path

from harness_helpers import make_repo
from testkit import Cli
from web_helpers import client


def test_suspects_and_credit_value_pages_show_the_engine_and_ledger_answers(
    tmp_path: Path,
) -> None:
    make_repo(tmp_path).close()
    cli = Cli(tmp_path)
    found = json.loads(cli("suspects", "train", "--folds", "3", "--json").stdout)
    value = json.loads(cli("credit", "--value", "--json").stdout)
    c = client(tmp_path)

    assert c.get("/api/suspects").json() == found  # the twin of `suspects --json`
    html = c.get("/suspects").text
    assert "`datagit suspects` on train@" in html and "3-fold" in html
    assert html.count('class="card suspect"') == min(60, len(found["suspects"]))

    page = c.get("/contributors").text
    assert 'id="credit-value"' in page and value["run"][:10] in page
    assert "<th>value</th>" in page and "<th>share</th>" in page
    assert "/api/credit" in page  # the counts' twin stays `credit --json`
