"""Duplicate groups from records, and the perceptual hash that finds near-duplicate images."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from testkit import digits_pngs

from datagit.core.check import Member, dhash, exact_duplicates, near_duplicates


def test_exact_duplicates_split_within_and_across_datasets() -> None:
    n, within, leaks = exact_duplicates(
        {
            "train": [("a", "3", "c1"), ("b", "8", "c1"), ("c", "1", "c2"), ("d", "1", "c3")],
            "eval": [("x", "1", "c2"), ("y", "5", "c4")],
        }
    )
    assert n == 6
    assert [(g.content, [(m.dataset, m.id) for m in g.members]) for g in within] == [
        ("c1", [("train", "a"), ("train", "b")])
    ]
    assert within[0].labels_disagree
    assert [(g.content, g.datasets) for g in leaks] == [("c2", ["eval", "train"])]
    assert not leaks[0].labels_disagree


def test_no_duplicates_gives_empty_groups() -> None:
    assert exact_duplicates({"train": [("a", "1", "c1")], "eval": []}) == (1, [], [])


def enlarged(png: bytes) -> bytes:
    """A real digit at 64×64, the size a photo-like image would have."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).resize((64, 64), Image.Resampling.BILINEAR).save(buf, "PNG")
    return buf.getvalue()


def reencoded(png: bytes) -> bytes:
    """The same picture saved again as JPEG: other bytes, same look."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("L").save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_dhash_of_a_reencoded_copy_is_within_two_bits() -> None:
    for png, _ in digits_pngs(10):
        big = enlarged(png)
        a, b = dhash(big), dhash(reencoded(big))
        assert a is not None and b is not None
        assert (a ^ b).bit_count() <= 2


def test_dhash_of_bytes_that_are_not_an_image_is_none() -> None:
    assert dhash(b"not an image at all") is None


def test_near_duplicates_group_by_hamming_distance_and_skip_exact_copies() -> None:
    a, b, c, d = (Member("train", i, "1") for i in "abcd")
    e = Member("eval", "e", "1")
    hashes = [
        (a, "ca", 0b1111_0000),
        (b, "cb", 0b1111_0001),  # one bit from a
        (c, "cc", 0xFFFF_FFFF_0000_0000),  # far from everything
        (d, "ca", 0b1111_0000),  # same content as a: exact, not near, on its own
        (e, "ce", 0b1111_0011),  # two bits from a, one from b
    ]
    groups = near_duplicates(hashes, distance=1)  # e joins through b: groups are transitive
    assert [[(m.dataset, m.id) for m in g.members] for g in groups] == [
        [("eval", "e"), ("train", "a"), ("train", "b"), ("train", "d")]
    ]
    assert groups[0].datasets == ["eval", "train"]
    assert near_duplicates(hashes, distance=0) == []  # only identical hashes: a and d, same bytes
    with pytest.raises(ValueError):
        near_duplicates(hashes, distance=17)
