"""Records: the JSON Lines form is the on-disk format; ids that could escape are refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datagit.core.records import Record, decode_lines, encode_lines, validate_id
from datagit.errors import InvalidInputError

labels = st.one_of(
    st.none(), st.text(max_size=8), st.integers(-5, 5), st.booleans(), st.lists(st.integers(0, 3))
)
records = st.builds(
    Record,
    id=st.text(min_size=1, max_size=12),
    label=labels,
    content=st.text("0123456789abcdef", min_size=32, max_size=32),
    size=st.integers(0, 10**9),
    annotator=st.one_of(st.none(), st.text(max_size=6)),
    source=st.one_of(st.none(), st.text(max_size=10)),
    text=st.one_of(st.none(), st.text(max_size=20)),
    fields=st.one_of(
        st.none(),
        st.dictionaries(st.text(max_size=4), st.integers(-(2**63), 2**63 - 1), min_size=1),
    ),
)


@given(st.lists(records, max_size=20))
def test_encode_decode_round_trip(recs: list[Record]) -> None:
    assert decode_lines(encode_lines(recs)) == recs


@given(records)
def test_dict_round_trip(rec: Record) -> None:
    assert Record.from_dict(rec.to_dict()) == rec


def test_one_line_per_record_and_optional_keys_left_out() -> None:
    rec = Record("a.png", "cat", "0" * 32, 4)
    data = encode_lines([rec, Record("b\u00e9.png", 3, "1" * 32, 5, annotator="bob")])
    assert data.count(b"\n") == 2
    assert rec.to_dict() == {"id": "a.png", "label": "cat", "content": "0" * 32, "size": 4}
    assert encode_lines([]) == b"" and decode_lines(b"") == []


def test_same_example_ignores_source_only() -> None:
    a = Record("x", "cat", "0" * 32, 1, source="train/cat/x")
    assert a.same_example(Record("x", "cat", "0" * 32, 1, source="elsewhere/x"))
    assert not a.same_example(a.with_annotator("bob"))


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("../etc/passwd", "'..'"),
        ("a/../b", "'..'"),
        ("..", "'..'"),
        ("/abs/path", "absolute"),
        ("C:/win", "absolute"),
        ("C:", "absolute"),
        ("a\0b", "NUL"),
        ("a\nb", "newline"),
        ("a\rb", "newline"),
        ("a\\b", "backslash"),
    ],
)
def test_validate_id_refuses(bad: str, why: str) -> None:
    with pytest.raises(InvalidInputError, match=why) as exc:
        validate_id(bad, "train.csv line 7")
    assert str(exc.value).startswith("train.csv line 7: id ")
    assert "\n" not in str(exc.value).replace(repr(bad), "")


@pytest.mark.parametrize(
    "ok", ["a.png", "sub/dir/a.png", "..hidden", "a..b", "ü/ñ.png", "42", "a:b.png", "x y.png"]
)
def test_validate_id_accepts(ok: str) -> None:
    assert validate_id(ok, "here") == ok
