"""Where the bytes are, committed with the history: ``[remotes.NAME]`` in datagit.toml.

A remote's git URL says where the history is; its content URL (an S3 bucket, a
shared folder) is not derivable from it. So `remote add --content` also writes
the content URL and its non-secret options into datagit.toml, which is
committed like any other change, and a clone or fetch that has no content URL
of its own adopts the entry from the history it just fetched — as `git
submodule init` copies ``.gitmodules`` into ``.git/config``. A teammate then
needs one URL, not two. Secret-looking options (keys, tokens, passwords) are
never written there: they stay in ``.datagit/config`` or, better, the
environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from datagit.api.remotes._options import is_secret
from datagit.core import manifest
from datagit.core.config import Config
from datagit.errors import InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo

SHARED_TABLE = "remotes"


@dataclass(frozen=True)
class SharedRemote:
    """One ``[remotes.NAME]`` entry: the git URL it describes, its content URL, options."""

    name: str
    url: str | None
    content: str
    options: Mapping[str, str] = field(default_factory=dict)


def share_remote(
    repo: Repo, name: str, url: str, content: str, options: Mapping[str, str]
) -> tuple[SharedRemote, list[str]]:
    """Write ``[remotes.NAME]`` into the workspace's datagit.toml (to be committed).

    Returns the entry and the option keys left out because they look secret.
    """
    left_out = sorted(k for k in options if is_secret(k))
    kept = {k: v for k, v in sorted(options.items()) if not is_secret(k)}
    path = repo.workdir / "datagit.toml"
    cfg = Config.load(path)
    table: Any = cfg.extra.setdefault(SHARED_TABLE, {})
    if not isinstance(table, dict):
        raise InvalidInputError(
            f"datagit.toml: [{SHARED_TABLE}] must be a table",
            hint="fix or remove it, then try again",
        )
    entry: dict[str, Any] = {"url": url, "content": content}
    if kept:
        entry["options"] = kept
    table[name] = entry
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(cfg.dumps())
    tmp.replace(path)
    return SharedRemote(name, url, content, kept), left_out


def restate_shared(repo: Repo, name: str, options: Mapping[str, str] | None) -> bytes | None:
    """datagit.toml with ``[remotes.NAME]`` brought in step with the remote's settings:
    its options become ``options``' non-secret ones, or (None) the entry goes. None
    when datagit.toml has no such entry (a remote added with ``--local``, or never
    shared): nothing to keep in step. Computed, not written: callers check first,
    then change ``.datagit/config``, then `write_toml`."""
    path = repo.workdir / "datagit.toml"
    if not path.exists():
        return None
    cfg = Config.load(path)
    table: Any = cfg.extra.get(SHARED_TABLE)
    if not isinstance(table, dict) or not isinstance(table.get(name), dict):
        return None
    if options is None:
        del table[name]
        if not table:
            del cfg.extra[SHARED_TABLE]
    else:
        kept = {k: v for k, v in sorted(options.items()) if not is_secret(k)}
        entry = table[name]
        entry.pop("options", None)
        if kept:
            entry["options"] = kept
    return cfg.dumps()


def write_toml(repo: Repo, data: bytes) -> None:
    path = repo.workdir / "datagit.toml"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def shared_entries(cfg_bytes: bytes, where: str) -> dict[str, SharedRemote]:
    """The ``[remotes.*]`` entries of one datagit.toml (malformed ones are named, not skipped)."""
    table: Any = Config.parse(cfg_bytes, where).extra.get(SHARED_TABLE, {})
    if not isinstance(table, dict):
        raise InvalidInputError(f"{where}: [{SHARED_TABLE}] must be a table")
    out = {}
    for name, entry in table.items():
        content = entry.get("content") if isinstance(entry, dict) else None
        options = entry.get("options", {}) if isinstance(entry, dict) else None
        if not isinstance(content, str) or not isinstance(options, dict):
            raise InvalidInputError(
                f"{where}: [{SHARED_TABLE}.{name}] needs content = URL (and options a table)",
                hint=f'for example: [{SHARED_TABLE}.{name}] content = "s3://bucket/prefix"',
            )
        url = entry.get("url")
        out[name] = SharedRemote(
            name,
            url if isinstance(url, str) else None,
            content,
            {k: str(v) for k, v in options.items() if not is_secret(k)},
        )
    return out


def find_shared(repo: Repo, commits: Iterable[str], name: str, url: str) -> SharedRemote | None:
    """The entry for remote ``name`` at ``url`` in the first of ``commits`` that has one.

    An entry naming the same git URL wins, then one of the same name, then the
    only entry there is; a teammate's "origin" is often this clone's "origin".
    """
    for commit in commits:
        cfg_bytes = manifest.read_root(repo.git, repo.git.commit(commit).tree)[0]
        if not cfg_bytes:
            continue
        found = shared_entries(cfg_bytes, f"datagit.toml at {commit[:10]}")
        by_url = [e for e in found.values() if e.url and _same(e.url, url)]
        if by_url:
            return by_url[0]
        if name in found:
            return found[name]
        if len(found) == 1:
            return next(iter(found.values()))
    return None


def _same(a: str, b: str) -> bool:
    return a.rstrip("/").removesuffix(".git") == b.rstrip("/").removesuffix(".git")
