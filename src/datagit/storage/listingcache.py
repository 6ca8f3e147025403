"""An image-folder dataset tree's workspace listing, kept so a checkout of it need not parse it.

Checking a 100,000-example tree out from nothing (a dataset that did not exist
at the other commit, `checkout HEAD~1` then back) read 4,096 shards and matched
every line (0.25–0.35 s of a 2 s hard-linked checkout). A tree id names its
records for ever, so the listing planned from it (folder → file names and
addresses, every path already checked) is kept per dataset, for the last tree
read whole: ``cache/listing-<dataset>.marshal``.

The file starts with a magic and an xxh3-64 of the rest (I6); a damaged, older
or foreign one is ignored, which only means "parse the shards again". What it
holds is re-checked on load by the caller (`core.trust.listing_problem`), so the
cache can never name a path the shards would not have allowed.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import xxhash

_MAGIC = b"DGLS1\0\0\n"
Listing = dict[str, tuple[list[str], list[str]]]  # folder → (file names, their addresses)
Raw = list[tuple[str, str, str]]  # (folder, names joined by NUL, addresses back to back)


class ListingCache:
    """Per dataset, the listing of one dataset tree under one dataset path (see module doc)."""

    def __init__(self, folder: Path, *, readonly: bool = False) -> None:
        self.folder = folder
        self.readonly = readonly

    def _path(self, dataset: str) -> Path:
        return self.folder / f"listing-{dataset}.marshal"

    def load(self, dataset: str, tree: str, root: str) -> Raw | None:
        """The raw listing saved for ``tree`` under dataset path ``root``, or None."""
        try:
            raw = self._path(dataset).read_bytes()
        except OSError:
            return None
        head = len(_MAGIC) + 8
        digest = raw[len(_MAGIC) : head]
        if not raw.startswith(_MAGIC) or xxhash.xxh3_64_digest(raw[head:]) != digest:
            return None
        try:
            got = marshal.loads(raw[head:])
        except (EOFError, ValueError, TypeError):
            return None
        if not (isinstance(got, tuple) and len(got) == 3 and got[0] == tree and got[1] == root):
            return None
        groups = got[2]
        if not isinstance(groups, list) or not all(_well_formed(g) for g in groups):
            return None
        return groups  # type: ignore[no-any-return]

    def save(self, dataset: str, tree: str, root: str, listing: Listing) -> None:
        """Keep ``listing`` (already checked) as ``tree``'s, replacing the dataset's last."""
        if self.readonly:
            return
        groups = [(f, "\0".join(names), "".join(keys)) for f, (names, keys) in listing.items()]
        body = marshal.dumps((tree, root, groups))
        self.folder.mkdir(exist_ok=True)
        path = self._path(dataset)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(_MAGIC + xxhash.xxh3_64_digest(body) + body)
        os.replace(tmp, path)


def _well_formed(group: object) -> bool:
    return (
        isinstance(group, tuple)
        and len(group) == 3
        and all(type(x) is str for x in group)
        and len(group[2]) == 32 * (group[1].count("\0") + 1)
    )


def unpack(raw: Raw) -> Listing:
    """A loaded raw listing as folder → (names, addresses): one split and one slicing per
    folder, no per-file work beyond making the strings."""
    out: Listing = {}
    for folder, names, keys in raw:
        out[folder] = (names.split("\0"), [keys[i : i + 32] for i in range(0, len(keys), 32)])
    return out
