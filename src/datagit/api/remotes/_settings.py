"""Where a remote is: its git URL and content URL in ``.datagit/config``, and branch upstreams.

Settings live in git's own config file of the repository (never committed):
``remote.NAME.url`` (the git URL), ``remote.NAME.fetch`` (the usual refspec)
and ``remote.NAME.datagit-content`` (the fsspec content URL).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from datagit.errors import InvalidInputError, RemoteError
from datagit.storage.gitremote import is_local, local_path
from datagit.storage.remote import ContentRemote

if TYPE_CHECKING:
    from datagit.api.repo import Repo

DEFAULT_CONTENT_DIR = "datagit-content"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class RemoteConfig:
    name: str
    url: str
    content: str | None


def add_remote(repo: Repo, name: str, url: str, content: str | None = None) -> RemoteConfig:
    """Register a remote; a local git path gets ``<path>/datagit-content`` for content."""
    if not _NAME.match(name):
        raise InvalidInputError(
            f"{name!r} is not a valid remote name", hint="use letters, digits, '-' and '_'"
        )
    if repo.git.config_get(f"remote.{name}.url") is not None:
        raise InvalidInputError(
            f"remote {name!r} already exists",
            hint=f"remove it first with `datagit remote remove {name}`",
        )
    url = _absolute(url)
    content = _absolute(content) if content else None
    with repo.lock:
        repo.git.config_set(f"remote.{name}.url", url)
        repo.git.config_set(f"remote.{name}.fetch", f"+refs/heads/*:refs/remotes/{name}/*")
        if content:
            repo.git.config_set(f"remote.{name}.datagit-content", content)
    return get_remote(repo, name)


def _absolute(url: str) -> str:
    """Local paths are stored absolute so `-C` and later `cd` do not change their meaning."""
    if "://" in url or re.match(r"^[\w.-]+@[\w.-]+:", url):
        return url
    return os.path.abspath(os.path.expanduser(url))


def get_remote(repo: Repo, name: str) -> RemoteConfig:
    url = repo.git.config_get(f"remote.{name}.url")
    if url is None:
        names = ", ".join(list_remotes(repo)) or "none"
        raise RemoteError(
            f"no remote named {name!r}",
            hint=f"add one with `datagit remote add {name} URL` (remotes: {names})",
        )
    content = repo.git.config_get(f"remote.{name}.datagit-content")
    if content is None and is_local(url):
        content = os.path.join(local_path(url), DEFAULT_CONTENT_DIR)
    return RemoteConfig(name, url, content)


def list_remotes(repo: Repo) -> dict[str, RemoteConfig]:
    names = sorted(
        {k.split(".")[1] for k in repo.git.config_items("remote.") if k.endswith(".url")}
    )
    return {n: get_remote(repo, n) for n in names}


def remove_remote(repo: Repo, name: str) -> None:
    """Forget a remote and its remote-tracking refs (nothing on the remote is touched)."""
    get_remote(repo, name)
    with repo.lock:
        for key in repo.git.config_items(f"remote.{name}."):
            repo.git.config_delete(key)
        for ref in repo.git.refs(f"refs/remotes/{name}/"):
            repo.git.delete_ref(ref)


def content_remote(repo: Repo, cfg: RemoteConfig) -> ContentRemote:
    if not cfg.content:
        raise RemoteError(
            f"remote {cfg.name!r} has no content URL",
            hint=f"set one with `datagit remote add {cfg.name} {cfg.url} --content s3://bucket/prefix`"
            " (after `datagit remote remove`)",
        )
    return ContentRemote(cfg.content)


# -- partial clones and upstreams ------------------------------------------------------------
def is_partial(repo: Repo) -> bool:
    return repo.git.config_get("datagit.partial") == "true"


def promisor(repo: Repo) -> str:
    return repo.git.config_get("datagit.promisor") or "origin"


def upstream(repo: Repo, branch: str, remote: str | None) -> tuple[str, str]:
    """(remote, remote branch) that ``branch`` pulls from."""
    remote = remote or repo.git.config_get(f"branch.{branch}.remote") or "origin"
    merge = repo.git.config_get(f"branch.{branch}.merge") or f"refs/heads/{branch}"
    return remote, merge.removeprefix("refs/heads/")


def set_upstream(repo: Repo, branch: str, remote: str, *, only_if_unset: bool) -> None:
    if only_if_unset and repo.git.config_get(f"branch.{branch}.remote"):
        return
    repo.git.config_set(f"branch.{branch}.remote", remote)
    repo.git.config_set(f"branch.{branch}.merge", f"refs/heads/{branch}")
