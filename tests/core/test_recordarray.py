"""RecordArray: records as one block of JSON Lines, decoded one at a time."""

from __future__ import annotations

import pytest

from datagit.core.recordarray import RecordArray
from datagit.core.records import Record, encode_lines

RECORDS = [
    Record("a.png", "cat", "0" * 32, 10, annotator="ada"),
    Record("b.png", None, "1" * 32, 11),
    Record("c", {"x": [1, 2]}, "2" * 32, 3, text="hé", fields={"n": 1.5}),
    Record("d/é.png", "dog", "3" * 32, 0, source="train/dog/d/é.png"),
]


def test_a_record_array_reads_back_what_it_was_given() -> None:
    arr = RecordArray(RECORDS)
    assert len(arr) == 4 and list(arr) == RECORDS
    assert arr[0] == RECORDS[0] and arr[-1] == RECORDS[-1] and arr[2].fields == {"n": 1.5}
    assert arr[1:3] == RECORDS[1:3] and arr[::-2] == RECORDS[::-2]
    assert arr.index(RECORDS[2]) == 2 and RECORDS[3] in arr
    assert arr.nbytes() < len(encode_lines(RECORDS)) + 8 * 5 + 1


def test_out_of_range_and_empty() -> None:
    arr = RecordArray(RECORDS)
    for i in (4, -5):
        with pytest.raises(IndexError):
            arr[i]
    empty = RecordArray([])
    assert len(empty) == 0 and list(empty) == [] and empty[:] == []
