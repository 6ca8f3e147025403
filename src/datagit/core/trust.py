"""What a commit says is untrusted: check its records' paths before anything acts on them.

A commit may come from anyone (a clone, a fetch, a colleague's branch). Its
``datagit.toml`` is checked by `Config.parse`; every record is checked here with
the rule of `datagit.core.paths`: its workspace path stays inside its dataset's
folder and never names ``.datagit`` or ``.git``; its content address is a
content address (the store turns it into a file name). Fetch and clone check
every commit they bring before any ref moves (as git's ``transfer.fsckObjects``);
checkout checks every path it plans, whatever the commit's origin.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable

import orjson

from datagit.core.config import _NAME, Config, DatasetConfig
from datagit.core.manifest import DatasetTree, read_root
from datagit.core.paths import (
    _C,
    _PLAIN,
    PLAIN_PATTERN,
    check_folder_id,
    check_id,
    check_label_folder,
    check_path,
    inside,
)
from datagit.core.records import Record, decode_lines
from datagit.errors import DatagitError, InvalidInputError
from datagit.storage.git import GitStore

_ADDRESS = re.compile(r"[0-9a-f]{32}")
# A manifest line as datagit writes it for an image-folder example (`Record.to_dict`'s
# key order), with a plain id (`paths._PLAIN`) and strings without escapes, so what
# the pattern captures is what JSON decodes; any other line is decoded and checked
# one by one. Each match is one whole line: no part of the pattern can cross one.
_STR = r'"[^"\\\x00-\x1f]*"'
_ROW = re.compile(
    rf'^\{{"id":"({PLAIN_PATTERN[1:-1]})","label":"([^"\\\x00-\x1f]*)",'
    rf'"content":"([0-9a-f]{{32}})","size":(?:0|[1-9][0-9]*)(?:,"annotator":{_STR})?\}}$',
    re.MULTILINE,
)
SAFE_HINT = (
    "datagit never writes such a record: the commit was crafted or made by other "
    "software, and is refused"
)


def record_path(cfg: DatasetConfig, rec: Record, where: str = "") -> str | None:
    """The workspace path of ``rec``'s bytes under ``cfg``'s layout, once checked.

    Raises `InvalidInputError` for a record whose id, label, source or content
    address could make a checkout write outside its dataset's folder.
    """
    where = where or f"dataset {cfg.name}"
    check_id(rec.id, where)
    if not isinstance(rec.content, str) or not _ADDRESS.fullmatch(rec.content):
        raise InvalidInputError(
            f"{where}: id {rec.id!r} has content {rec.content!r}, not a content address",
            hint=SAFE_HINT,
        )
    if cfg.layout == "imagefolder":
        check_folder_id(rec.id, where)
        if rec.label is None:  # unlabelled: a file directly in the dataset folder
            if "/" in rec.id:
                raise InvalidInputError(
                    f"{where}: unlabelled id {rec.id!r} is not a plain file name",
                    hint="an unlabelled example sits directly in the dataset folder",
                )
            return f"{cfg.path}/{rec.id}"
        check_label_folder(rec.label, f"{where}: id {rec.id!r}")
        return f"{cfg.path}/{rec.label}/{rec.id}"
    if rec.source is None:
        return None
    if not isinstance(rec.source, str):
        raise InvalidInputError(f"{where}: id {rec.id!r} has a source that is not a path")
    check_path(rec.source, f"{where}: id {rec.id!r}", "source")
    folder = posixpath.dirname(cfg.path)
    if not inside(rec.source, folder) or rec.source == cfg.path:
        raise InvalidInputError(
            f"{where}: id {rec.id!r} has source {rec.source!r}, outside the folder of {cfg.path}",
            hint="a table's files live in the table's folder or below it",
        )
    return rec.source


def folder_paths(cfg: DatasetConfig, rows: Iterable[dict]) -> dict[str, str]:
    """Workspace path → content address of decoded image-folder record rows, each checked
    as `record_path` checks it: in one regex per id and address, and once per label.

    The common case (a plain ASCII id, a hex address, a label already seen) costs a
    few hundred nanoseconds; anything else goes through `record_path` itself.
    """
    out: dict[str, str] = {}
    labels: set[str] = set()
    root = cfg.path + "/"
    plain, address = _PLAIN.fullmatch, _ADDRESS.fullmatch
    for d in rows:
        i, label, key = d.get("id"), d.get("label"), d.get("content")
        if type(i) is str and type(label) is str and type(key) is str and plain(i) and address(key):
            if label not in labels:
                check_label_folder(label, f"dataset {cfg.name}: id {i!r}")
                labels.add(label)
            out[f"{root}{label}/{i}"] = key
            continue
        try:
            rec = Record.from_dict(d)
        except (KeyError, TypeError, AttributeError):
            raise InvalidInputError(
                f"dataset {cfg.name}: a record without an id or content: {str(d)[:80]}",
                hint=SAFE_HINT,
            ) from None
        path = record_path(cfg, rec)
        if path:
            out[path] = rec.content
    return out


def folder_paths_of_lines(cfg: DatasetConfig, chunks: Iterable[bytes]) -> dict[str, str]:
    """`folder_paths` of manifest lines (JSON Lines chunks, each line ending in a
    newline), reading the lines datagit writes by one pattern instead of decoding them:
    100,000 rows cost one regex pass per chunk instead of a JSON decode plus two regex
    matches each. Lines the pattern does not know are decoded and checked as before."""
    out: dict[str, str] = {}
    labels: set[str] = set()
    root = cfg.path + "/"
    rest: list[bytes] = []
    for data in chunks:
        try:
            text = data.decode()
        except UnicodeDecodeError:  # JSON refuses it too: the same error as before
            rest += data.rstrip(b"\n").split(b"\n")
            continue
        found = _ROW.findall(text)
        for i, label, key in found:
            if label not in labels:
                check_label_folder(label, f"dataset {cfg.name}: id {i!r}")
                labels.add(label)
            out[f"{root}{label}/{i}"] = key
        if len(found) != text.count("\n"):
            misses = (line for line in text.split("\n")[:-1] if not _ROW.fullmatch(line))
            rest += (line.encode() for line in misses)
    if rest:
        out.update(folder_paths(cfg, _json_rows(rest)))
    return out


_NAMES = re.compile(rf"[{_C}][{_C}.]*(?:\0[{_C}][{_C}.]*)*")
_HEX = re.compile(r"[0-9a-f]*")


def listing_ok(cfg: DatasetConfig, raw: Iterable[tuple[str, str, str]]) -> bool:
    """Whether a kept listing (folder, names joined by NUL, addresses back to back) names
    only paths `folder_paths` would allow, by the narrow rule of plain names: each folder
    plain and inside the dataset's, each name a plain file name, each address hex (its
    length is the store's check). One regex pass per folder; anything else is re-parsed."""
    root = cfg.path + "/"
    for folder, names, keys in raw:
        if not (folder == cfg.path or folder.startswith(root)) or not _PLAIN.fullmatch(folder):
            return False
        if not _NAMES.fullmatch(names) or not _HEX.fullmatch(keys):
            return False
    return True


def _json_rows(lines: list[bytes]) -> list[dict]:
    return orjson.loads(b"[" + b",".join(lines) + b"]")  # type: ignore[no-any-return]


def check_records(cfg: DatasetConfig, records: Iterable[Record], where: str = "") -> None:
    """`record_path` for each record."""
    for rec in records:
        record_path(cfg, rec, where)


def check_tree(git: GitStore, tree: str, seen: set[str], where: str) -> None:
    """Check one commit tree: its config, its dataset names and every record.

    ``seen`` holds shard blobs (and configs) already checked, under the config
    that was in force then: an unchanged shard under an unchanged config is not
    read again, so checking a long history costs its distinct shards.
    """
    cfg_bytes, datasets = read_root(git, tree)
    config = Config.parse(cfg_bytes, f"{where}: datagit.toml")
    for name, ds_tree in datasets.items():
        if not _NAME.match(name):
            raise InvalidInputError(
                f"{where}: dataset name {name!r} is not allowed", hint=SAFE_HINT
            )
        cfg = config.datasets.get(name)
        if cfg is None:
            continue  # records of a dataset no config declares are never written anywhere
        layout_key = _layout_key(cfg)
        try:
            shards = DatasetTree(git, ds_tree).shards().values()
            for blob in shards:
                key = f"{layout_key}:{blob}"
                if key in seen:
                    continue
                records = decode_lines(git.read_blob(blob))
                check_records(cfg, records, f"{where}: dataset {name}")
                seen.add(key)
        except InvalidInputError as exc:
            raise InvalidInputError(exc.message, hint=SAFE_HINT) from None
        except DatagitError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(
                f"{where}: dataset {name}: malformed records ({type(exc).__name__}: {exc})",
                hint=SAFE_HINT,
            ) from None


def trusted_shards(git: GitStore, tree: str | None) -> set[str]:
    """The `check_tree` keys of a commit tree already trusted (HEAD's), read from trees only."""
    seen: set[str] = set()
    if tree is None:
        return seen
    cfg_bytes, datasets = read_root(git, tree)
    config = Config.parse(cfg_bytes)
    for name, ds_tree in datasets.items():
        cfg = config.datasets.get(name)
        if cfg is not None:
            key = _layout_key(cfg)
            seen.update(f"{key}:{b}" for b in DatasetTree(git, ds_tree).shards().values())
    return seen


def check_new(git: GitStore, base: str | None, tree: str, where: str) -> None:
    """`check_tree` of ``tree``, reading only shards that commit tree ``base`` lacks."""
    check_tree(git, tree, trusted_shards(git, base), where)


def check_history(git: GitStore, heads: Iterable[str], known: Iterable[str] = ()) -> None:
    """Check every commit reachable from ``heads`` but not from ``known``.

    Raises on the first bad one, naming the commit, before any caller moves a ref.
    """
    heads = sorted(set(heads))
    if not heads:
        return
    hidden = set(_reachable(git, [k for k in set(known) if git.has(k)]))
    seen: set[str] = set()
    for c in git.walk(heads):
        if c.id in hidden:
            continue
        check_tree(git, c.tree, seen, f"commit {c.id[:12]}")


def _reachable(git: GitStore, heads: list[str]) -> Iterable[str]:
    return (c.id for c in git.walk(heads)) if heads else ()


def _layout_key(cfg: DatasetConfig) -> str:
    """What a record's check depends on besides the record: layout and paths."""
    return f"{cfg.layout}:{cfg.path}"
