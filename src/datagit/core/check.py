"""Data checks: examples that share bytes within a dataset or across datasets (leakage).

Records already carry their content address, so exact duplicates are a group-by
on ``content`` — no example byte is read. Near-duplicate images need the bytes:
a 64-bit difference hash (dHash) per image, grouped by the pigeonhole rule (two
hashes within ``d`` bits agree exactly on at least one of ``d + 1`` bands), so
the search stays linear instead of comparing every pair.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from datagit.core.records import Label

LEAKAGE_MODES = ("off", "warn", "error")  # [check] leakage = … in datagit.toml


@dataclass(frozen=True)
class Member:
    """One example in a duplicate group."""

    dataset: str
    id: str
    label: Label


@dataclass(frozen=True)
class Group:
    """Examples whose bytes are the same (``content``) or look the same (near, by dHash)."""

    content: str  # the shared content address; for a near group, the first member's
    members: tuple[Member, ...]

    @property
    def datasets(self) -> list[str]:
        return sorted({m.dataset for m in self.members})

    @property
    def labels_disagree(self) -> bool:
        return len({repr(m.label) for m in self.members}) > 1


@dataclass(frozen=True)
class Report:
    """What `datagit check` found: duplicates inside one dataset, leaks across datasets."""

    datasets: tuple[str, ...]
    examples: int
    within: tuple[Group, ...]  # every member in one dataset
    leaks: tuple[Group, ...]  # members in two or more datasets
    near: tuple[Group, ...] = ()  # near-duplicate images (not exact), any datasets

    @property
    def clean(self) -> bool:
        return not (self.within or self.leaks or self.near)


def exact_duplicates(
    datasets: Mapping[str, Iterable[tuple[str, Label, str]]],
) -> tuple[int, list[Group], list[Group]]:
    """(examples seen, within-dataset groups, cross-dataset groups) from (id, label, content).

    Groups are sorted by content address, members by (dataset, id): the output
    is the same for the same data, whatever order shards were read in.
    """
    first: dict[str, Member] = {}
    many: dict[str, list[Member]] = {}
    n = 0
    for name, rows in datasets.items():
        for example_id, label, content in rows:
            n += 1
            m = Member(name, example_id, label)
            seen = first.setdefault(content, m)
            if seen is not m:
                many.setdefault(content, [seen]).append(m)
    within: list[Group] = []
    leaks: list[Group] = []
    for content in sorted(many):
        members = tuple(sorted(many[content], key=lambda m: (m.dataset, m.id)))
        group = Group(content, members)
        (leaks if len(group.datasets) > 1 else within).append(group)
    return n, within, leaks


def dhash(data: bytes) -> int | None:
    """A 64-bit difference hash of an image (None when the bytes are not an image Pillow reads).

    Grey, 9×8, then one bit per horizontal neighbour pair: robust to scaling,
    re-encoding and small brightness changes, cheap enough for every example.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            small = img.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
            px = small.tobytes()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return bits


def near_duplicates(hashes: Iterable[tuple[Member, str, int]], distance: int) -> list[Group]:
    """Groups of images whose dHashes differ in at most ``distance`` bits, excluding exact copies.

    ``hashes`` holds (member, content address, dHash). Members with the same
    content are already reported as exact duplicates; a near group is kept only
    when it holds at least two different contents.
    """
    if not 0 <= distance <= 16:
        raise ValueError("distance must be between 0 and 16 bits")
    items = list(hashes)
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # Identical hashes join at once; bands then compare distinct hash values only,
    # so a thousand blank images are one value, not a million comparisons.
    by_hash: dict[int, int] = {}
    for i, (_, _, h) in enumerate(items):
        j = by_hash.setdefault(h, i)
        if j != i:
            parent[find(i)] = find(j)
    values = list(by_hash.items())
    bands = distance + 1
    width = 64 // bands
    for band in range(bands):
        shift = band * width
        mask = (1 << (width if band < bands - 1 else 64 - shift)) - 1
        buckets: dict[int, list[tuple[int, int]]] = {}
        for h, i in values:
            bucket = buckets.setdefault((h >> shift) & mask, [])
            for other, j in bucket:
                if (h ^ other).bit_count() <= distance:
                    parent[find(i)] = find(j)
            bucket.append((h, i))
    groups: dict[int, list[int]] = {}
    for i in range(len(items)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for idx in groups.values():
        if len({items[i][1] for i in idx}) < 2:
            continue
        members = tuple(sorted((items[i][0] for i in idx), key=lambda m: (m.dataset, m.id)))
        first = min(idx, key=lambda i: (items[i][0].dataset, items[i][0].id))
        out.append(Group(items[first][1], members))
    return sorted(out, key=lambda g: (g.members[0].dataset, g.members[0].id))
