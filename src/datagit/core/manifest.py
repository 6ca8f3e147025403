"""The manifest: a commit's records as a sharded Merkle tree of JSON Lines blobs.

Records are spread over shards by a hash of their id, with a fan-out that
grows with the dataset like a hash trie (``records/ab/c.jsonl`` at fan-out 3).
An unchanged shard keeps its blob id and an unchanged directory its tree id,
so a commit rewrites only touched shards and comparing two commits descends
only where ids differ.

Commit tree::

    datagit.toml
    datasets/<name>/meta.json        {"fanout": k, "count": n}
    datasets/<name>/records/...      shards, records sorted by id inside each
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import xxhash

from datagit.core import shardtree
from datagit.core.records import Record, decode_lines, encode_lines
from datagit.storage.git import BLOB, TREE, Entry, GitStore, hash_blob

CONFIG_FILE = "datagit.toml"
TARGET_PER_SHARD = 256
# From 4,096 shards on, twice the records per shard: 65,536 blobs would cost a full
# read of a 1.5M-record dataset 30% more, while 256 per shard below that makes a
# 1% change at 100k records rewrite a fifth of the data instead of all of it.
WIDE_FANOUT = 3


def _limit(k: int) -> int:
    return TARGET_PER_SHARD * 2 if k >= WIDE_FANOUT else TARGET_PER_SHARD


def shard_key(example_id: str) -> str:
    """The 16-hex-digit hash that places an id in a shard."""
    return xxhash.xxh3_64_hexdigest(example_id.encode())


def choose_fanout(count: int, previous: int | None = None) -> int:
    """Hex digits of shard prefix; keeps ``previous`` while it is within 4× of ideal.

    The hysteresis stops a dataset that hovers at a boundary from rewriting
    every shard on alternate commits.
    """
    if previous is not None:
        per = count / (16**previous)
        if (previous == 0 or per >= _limit(previous) / 16) and per <= _limit(previous) * 4:
            return previous
    k = 0
    while count / (16**k) > _limit(k):
        k += 1
    return k


def shard_path(prefix: str) -> tuple[str, ...]:
    """``"abc"`` → ``("ab", "c.jsonl")``; the empty prefix → ``("all.jsonl",)``."""
    if not prefix:
        return ("all.jsonl",)
    parts = [prefix[i : i + 2] for i in range(0, len(prefix), 2)]
    parts[-1] += ".jsonl"
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class ShardChange:
    """One shard whose blob differs between two dataset trees."""

    prefix: str
    old: str | None
    new: str | None


class DatasetTree:
    """Read access to one dataset's records in one commit (or the stage)."""

    def __init__(self, git: GitStore, oid: str) -> None:
        self.git = git
        self.oid = oid
        entries = git.tree_entries(oid)
        self.meta = orjson.loads(git.read_blob(entries["meta.json"].oid))
        self.fanout: int = self.meta["fanout"]
        self.count: int = self.meta["count"]
        self.records_tree: str = entries["records"].oid

    def shards(self) -> dict[str, str]:
        """Shard prefix → blob id."""
        out: dict[str, str] = {}
        self._collect(self.records_tree, "", out)
        return out

    def _collect(self, tree: str, prefix: str, out: dict[str, str]) -> None:
        for name, e in self.git.tree_entries(tree).items():
            if e.kind == TREE:
                self._collect(e.oid, prefix + name, out)
            else:
                key = name.removesuffix(".jsonl")
                out["" if key == "all" else prefix + key] = e.oid

    def records(self) -> Iterator[Record]:
        for blob in self.shards().values():
            yield from decode_lines(self.git.read_blob(blob))

    def by_id(self) -> dict[str, Record]:
        return {r.id: r for r in self.records()}

    def get(self, example_id: str) -> Record | None:
        prefix = shard_key(example_id)[: self.fanout]
        blob = self._find(prefix)
        if blob is None:
            return None
        for r in decode_lines(self.git.read_blob(blob)):
            if r.id == example_id:
                return r
        return None

    def get_many(self, ids: Iterable[str]) -> dict[str, Record]:
        """Records for ``ids`` (those present), decoding each touched shard once."""
        wanted: dict[str, set[str]] = {}
        for example_id in ids:
            wanted.setdefault(shard_key(example_id)[: self.fanout], set()).add(example_id)
        if not wanted:
            return {}
        shards = self.shards()
        out: dict[str, Record] = {}
        for prefix, group in wanted.items():
            blob = shards.get(prefix)
            if not blob:
                continue
            data = self.git.read_blob(blob)
            spans = find_lines(data, list(group))
            if spans is None:  # an id not there (or not where expected): parse it all
                out.update((r.id, r) for r in decode_lines(data) if r.id in group)
                continue
            for example_id, (start, end) in spans.items():
                out[example_id] = Record.from_dict(orjson.loads(data[start:end]))
        return out

    def _find(self, prefix: str) -> str | None:
        tree = self.records_tree
        *dirs, leaf = shard_path(prefix)
        for d in dirs:
            e = self.git.tree_entries(tree).get(d)
            if e is None:
                return None
            tree = e.oid
        e = self.git.tree_entries(tree).get(leaf)
        return e.oid if e else None


def changed_shards(git: GitStore, old: str | None, new: str | None) -> list[ShardChange] | None:
    """Shards that differ between two dataset trees, descending only where ids differ.

    Returns None when the fan-outs differ (the caller compares full record sets).
    """
    if old == new:
        return []
    if old is None or new is None:
        present = DatasetTree(git, old or new)  # type: ignore[arg-type]
        return [
            ShardChange(p, None if old is None else b, b if old is None else None)
            for p, b in present.shards().items()
        ]
    a, b = DatasetTree(git, old), DatasetTree(git, new)
    if a.fanout != b.fanout:
        return None
    out: list[ShardChange] = []
    _compare(git, a.records_tree, b.records_tree, "", out)
    return out


def _compare(
    git: GitStore, ta: str | None, tb: str | None, prefix: str, out: list[ShardChange]
) -> None:
    ea = git.tree_entries(ta) if ta else {}
    eb = git.tree_entries(tb) if tb else {}
    for name in sorted(set(ea) | set(eb)):
        a, b = ea.get(name), eb.get(name)
        if a is not None and b is not None and a.oid == b.oid:
            continue
        if (a and a.kind == TREE) or (b and b.kind == TREE):
            _compare(git, a.oid if a else None, b.oid if b else None, prefix + name, out)
        else:
            key = name.removesuffix(".jsonl")
            out.append(
                ShardChange(
                    "" if key == "all" else prefix + key, a.oid if a else None, b.oid if b else None
                )
            )


def write_dataset(git: GitStore, records: Iterable[Record], base: str | None = None) -> str:
    """Write a dataset tree for ``records``, reusing every shard ``base`` already has."""
    recs = list(records)
    base_tree = DatasetTree(git, base) if base else None
    fanout = choose_fanout(len(recs), base_tree.fanout if base_tree else None)
    groups: dict[str, list[Record]] = {}
    for r in recs:
        groups.setdefault(shard_key(r.id)[:fanout], []).append(r)
    base_shards = base_tree.shards() if base_tree and base_tree.fanout == fanout else {}
    shard_blobs: dict[str, str] = {}
    for prefix, group in groups.items():
        group.sort(key=lambda r: r.id)
        data = encode_lines(group)
        oid = hash_blob(data)
        if base_shards.get(prefix) != oid:
            git.write_blob(data)
        shard_blobs[prefix] = oid
    return write_tree_for(git, shard_blobs, fanout, len(recs))


class EncodedRecords(Protocol):
    """Records already encoded as their shard lines (`parquetlines.EncodedRows`)."""

    def keys(self) -> Any:
        """Each id's `shard_key` as an integer (numpy uint64), in the order rows are held."""
        ...

    @property
    def order(self) -> Any:
        """The permutation that sorts the ids (numpy)."""
        ...

    def bodies(self, order: Any, spans: list[tuple[int, int]]) -> Iterator[bytes | memoryview]:
        """The lines at positions ``order`` (each ending in a newline), cut into spans."""
        ...


def write_encoded(git: GitStore, rows: EncodedRecords) -> str:
    """`write_dataset` for records already encoded as lines (a bulk-read table): grouped
    into shards by one vectorised pass, the bytes cut out by whoever holds the lines,
    no `Record` made."""
    import numpy as np

    keys = rows.keys()
    count = len(keys)
    fanout = choose_fanout(count)
    if not count:
        return write_dataset(git, [])
    prefix = keys >> np.uint64(64 - 4 * fanout) if fanout else np.zeros(count, np.uint64)
    by_id = np.asarray(rows.order)
    # Stable, to keep id order within a shard; as 16-bit keys numpy sorts by radix, O(n).
    ranks = prefix[by_id].astype(np.uint16) if fanout <= 4 else prefix[by_id]
    order = by_id[np.argsort(ranks, kind="stable")]
    ordered = prefix[order]
    cuts = [0, *(np.flatnonzero(np.diff(ordered)) + 1).tolist(), count]
    spans = list(itertools.pairwise(cuts))
    names = [format(int(ordered[a]), f"0{fanout}x") if fanout else "" for a, _ in spans]
    shard_blobs = {
        name: git.write_blob(body)
        for name, body in zip(names, rows.bodies(order, spans), strict=True)
    }
    return write_tree_for(git, shard_blobs, fanout, count)


def patch_dataset(
    git: GitStore, base: str | None, upserts: Mapping[str, Record], deletes: Iterable[str] = ()
) -> str:
    """Apply a few changes to ``base``, parsing only the shards they touch."""
    deletes = set(deletes)
    if base is None:
        return write_dataset(git, upserts.values())
    tree = DatasetTree(git, base)
    shards = tree.shards()
    touched: dict[str, dict[str, Record]] = {}
    for example_id in [*upserts, *deletes]:
        prefix = shard_key(example_id)[: tree.fanout]
        if prefix not in touched:
            blob = shards.get(prefix)
            old = decode_lines(git.read_blob(blob)) if blob else []
            touched[prefix] = {r.id: r for r in old}
    count = tree.count
    for example_id, rec in upserts.items():
        group = touched[shard_key(example_id)[: tree.fanout]]
        count += example_id not in group
        group[example_id] = rec
    for example_id in deletes:
        group = touched[shard_key(example_id)[: tree.fanout]]
        if group.pop(example_id, None) is not None:
            count -= 1
    if choose_fanout(count, tree.fanout) != tree.fanout:
        merged = tree.by_id()
        merged.update(upserts)
        for d in deletes:
            merged.pop(d, None)
        return write_dataset(git, merged.values(), base)
    for prefix, group in touched.items():
        if group:
            shards[prefix] = git.write_blob(
                encode_lines(sorted(group.values(), key=lambda r: r.id))
            )
        else:
            shards.pop(prefix, None)
    return write_tree_for(git, shards, tree.fanout, count)


def find_lines(data: bytes, ids: list[str]) -> dict[str, tuple[int, int]] | None:
    """Where each id's line is in a shard, found by its bytes without parsing the shard;
    None when one is not there (an addition: the shard is parsed to place it in order).

    Every shard line starts ``{"id":<id as orjson writes it>,`` (`Record.to_dict`).
    """
    spans: dict[str, tuple[int, int]] = {}
    for example_id in ids:
        needle = b'{"id":' + _json_string(example_id) + b","
        at = data.find(needle)
        while at > 0 and data[at - 1] != 0x0A:  # the same bytes inside a field's value
            at = data.find(needle, at + 1)
        if at < 0:
            return None
        end = data.find(b"\n", at)
        spans[example_id] = (at, len(data) if end < 0 else end)
    return spans


def _json_string(text: str) -> bytes:
    """``text`` as orjson writes a JSON string; quoted directly when nothing needs escaping
    (one orjson call costs microseconds, and a 1% change of a million rows makes 10,000)."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return b'"' + text.encode() + b'"'
    return orjson.dumps(text)


def write_tree_for(git: GitStore, shard_blobs: Mapping[str, str], fanout: int, count: int) -> str:
    records = shardtree.write(git, shard_blobs)
    meta = git.write_blob(orjson.dumps({"fanout": fanout, "count": count}))
    return git.write_tree({"meta.json": Entry(meta, BLOB), "records": Entry(records, TREE)})


def empty_dataset(git: GitStore) -> str:
    return write_dataset(git, [])


# -- the root tree -----------------------------------------------------------
def read_root(git: GitStore, tree: str) -> tuple[bytes, dict[str, str]]:
    """(datagit.toml bytes, dataset name → dataset tree id) of a commit tree."""
    entries = git.tree_entries(tree)
    config = git.read_blob(entries[CONFIG_FILE].oid) if CONFIG_FILE in entries else b""
    datasets: dict[str, str] = {}
    if "datasets" in entries:
        for name, e in git.tree_entries(entries["datasets"].oid).items():
            datasets[name] = e.oid
    return config, datasets


def write_root(
    git: GitStore,
    config: bytes,
    datasets: Mapping[str, str],
    patches: Mapping[str, str] | None = None,
) -> str:
    """A commit tree; ``patches`` (file name → blob, see core.patch) add a ``changes/`` folder."""
    ds = git.write_tree({n: Entry(o, TREE) for n, o in datasets.items()})
    entries = {CONFIG_FILE: Entry(git.write_blob(config), BLOB), "datasets": Entry(ds, TREE)}
    if patches is not None:
        entries["changes"] = Entry(
            git.write_tree({n: Entry(o, BLOB) for n, o in patches.items()}), TREE
        )
    return git.write_tree(entries)
