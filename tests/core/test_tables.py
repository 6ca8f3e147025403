"""render_like: the target's records in the template file's style, whatever the edit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from datagit.core.config import DatasetConfig
from datagit.core.layouts import _csv_rows, _jsonl_rows, render_table
from datagit.core.records import Record
from datagit.core.tables import render_like

CSV = DatasetConfig(name="t", layout="table", path="t.csv", id="rid", label="y", content="text")
JSONL = DatasetConfig(name="t", layout="table", path="t.jsonl")


def rec(i: int, label: str, text: str = "x") -> Record:
    from datagit.storage.content import address

    return Record(str(i), label, address(text.encode()), len(text.encode()), text=text)


edits = st.dictionaries(st.integers(0, 12), st.sampled_from(["a", "b", "c"]), max_size=12)


@settings(max_examples=60, deadline=None)
@given(before=edits, after=edits, crlf=st.booleans())
def test_the_rendered_csv_holds_exactly_the_target(
    before: dict[int, str], after: dict[int, str], crlf: bool
) -> None:
    now = {str(i): rec(i, y) for i, y in before.items()}
    target = {str(i): rec(i, y) for i, y in after.items()}
    template = render_table(CSV, list(now.values()))
    if crlf:
        template = template.replace(b"\n", b"\r\n")
    out = render_like(CSV, target, now, template)
    rows = {r["rid"]: r["y"] for _, r in _csv_rows(CSV, out)}
    assert rows == {i: r.label for i, r in target.items()}
    if crlf and now and target:
        assert b"\n" not in out.replace(b"\r\n", b"")


def test_jsonl_and_a_file_that_cannot_be_followed() -> None:
    now = {"1": Record("1", 0, "0" * 32, 1, fields={"x": 1})}
    target = {"1": Record("1", 1, "0" * 32, 1, fields={"x": 1})}
    out = render_like(JSONL, target, now, b'{"x": 1, "id": 1, "label": 0}\n')
    assert out == b'{"x":1,"id":1,"label":1}\n'
    assert [r for _, r in _jsonl_rows(JSONL, out)] == [{"x": 1, "id": 1, "label": 1}]
    broken = render_like(JSONL, target, now, b"{not json\n")
    assert broken == render_table(JSONL, list(target.values()))
    assert render_like(JSONL, target, {}, None) == render_table(JSONL, list(target.values()))
