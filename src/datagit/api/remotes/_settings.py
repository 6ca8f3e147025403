"""Where a remote is: its URLs and fsspec options in ``.datagit/config``, and branch upstreams.

Settings live in git's own config file of the repository (never committed):
``remote.NAME.url`` (the git URL), ``remote.NAME.fetch`` (the usual refspec),
``remote.NAME.datagit-content`` (the fsspec content URL) and
``remote.NAME.datagit-option`` (one ``KEY=VALUE`` per value, a git multivar
like ``remote.NAME.pushOption``: the content remote's storage options).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from datagit.api.remotes import _shared
from datagit.api.remotes._options import (
    OptionValue,
    check_key,
    option_text,
    split_option,
    storage_options,
)
from datagit.errors import InvalidInputError, RemoteError
from datagit.storage.gitremote import is_local, local_path
from datagit.storage.remote import ContentRemote

if TYPE_CHECKING:
    from datagit.api.repo import Repo

DEFAULT_CONTENT_DIR = "datagit-content"
_OPTION = "datagit-option"  # remote.NAME.datagit-option = KEY=VALUE (several)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class RemoteConfig:
    """One remote: git URL, content URL and the content URL's fsspec options (as text)."""

    name: str
    url: str
    content: str | None
    options: Mapping[str, str] = field(default_factory=dict)


def add_remote(
    repo: Repo,
    name: str,
    url: str,
    content: str | None = None,
    options: Mapping[str, OptionValue] | None = None,
    *,
    share: bool = False,
) -> RemoteConfig:
    """Register a remote; a local git path gets ``<path>/datagit-content`` for content.

    ``options`` are fsspec storage options for the content URL (``endpoint_url``,
    ``anon``, ``client_kwargs.region_name`` …); all are checked before anything
    is written. With ``share`` (and a content URL) the content URL and its
    non-secret options are also written to datagit.toml as ``[remotes.NAME]``,
    to be committed, so clones of the history find the bytes (see ``_shared``).
    """
    if not _NAME.match(name):
        raise InvalidInputError(
            f"{name!r} is not a valid remote name", hint="use letters, digits, '-' and '_'"
        )
    if repo.git.config_get(f"remote.{name}.url") is not None:
        raise InvalidInputError(
            f"remote {name!r} already exists",
            hint=f"remove it first with `datagit remote remove {name}`",
        )
    texts = {k: option_text(k, v, name) for k, v in (options or {}).items()}
    storage_options(texts, name)  # refuse `a` beside `a.b` now, not at the first push
    url = _absolute(url)
    content = _absolute(content) if content else None
    with repo.lock:
        for key in repo.git.config_items(f"remote.{name}."):
            repo.git.config_delete(key)  # left by an add killed before it set the url
        for key, text in sorted(texts.items()):
            repo.git.config_replace(f"remote.{name}.{_OPTION}", _matching(key), f"{key}={text}")
        repo.git.config_set(f"remote.{name}.fetch", f"+refs/heads/*:refs/remotes/{name}/*")
        if content:
            repo.git.config_set(f"remote.{name}.datagit-content", content)
        repo.git.config_set(f"remote.{name}.url", url)  # last: the remote exists once it is set
        if share and content:
            _shared.share_remote(repo, name, url, content, texts)
    return get_remote(repo, name)


def adopt_shared(repo: Repo, name: str, commits: list[str]) -> _shared.SharedRemote | None:
    """Take remote ``name``'s content URL from fetched history when none is configured here.

    Explicit settings win: a ``--content`` given to clone or `remote add`. The
    adopted URL and options are written to ``.datagit/config``, so later pulls
    and pushes use them without looking again.
    """
    if repo.git.config_get(f"remote.{name}.datagit-content") is not None:
        return None
    url = repo.git.config_get(f"remote.{name}.url") or ""
    entry = _shared.find_shared(repo, commits, name, url)
    if entry is None:
        return None
    with repo.lock:
        for key, text in sorted(entry.options.items()):
            if key not in _stored_options(repo, name):
                repo.git.config_replace(f"remote.{name}.{_OPTION}", _matching(key), f"{key}={text}")
        repo.git.config_set(f"remote.{name}.datagit-content", entry.content)
    return entry


def set_remote_option(repo: Repo, name: str, key: str, value: OptionValue) -> RemoteConfig:
    """Set one fsspec storage option of remote ``name`` (replacing its old value); a
    shared remote's ``[remotes.NAME]`` in datagit.toml follows (secrets never do)."""
    cfg = get_remote(repo, name)
    text = option_text(key, value, name)
    after = {**cfg.options, key: text}
    storage_options(after, name)
    with repo.lock:
        toml = _shared.restate_shared(repo, name, after)  # checked before any write
        repo.git.config_replace(f"remote.{name}.{_OPTION}", _matching(key), f"{key}={text}")
        if toml is not None:
            _shared.write_toml(repo, toml)
    return get_remote(repo, name)


def unset_remote_option(repo: Repo, name: str, key: str) -> RemoteConfig:
    """Remove option ``key`` of remote ``name``, and the options nested under it (``key.*``)."""
    cfg = get_remote(repo, name)
    check_key(key, name)
    if not any(k == key or k.startswith(key + ".") for k in cfg.options):
        raise InvalidInputError(
            f"remote {name!r} has no option {key!r}",
            hint=f"its options: {', '.join(sorted(cfg.options)) or '(none)'}",
        )
    after = {k: v for k, v in cfg.options.items() if k != key and not k.startswith(key + ".")}
    with repo.lock:
        toml = _shared.restate_shared(repo, name, after)
        repo.git.config_remove(f"remote.{name}.{_OPTION}", _matching(key, nested=True))
        if toml is not None:
            _shared.write_toml(repo, toml)
    return get_remote(repo, name)


def _matching(key: str, *, nested: bool = False) -> str:
    """A POSIX ERE for the stored ``KEY=VALUE`` values of ``key`` (and ``key.*``)."""
    return "^" + key.replace(".", "\\.") + ("(\\.[^=]*)?" if nested else "") + "="


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
    return RemoteConfig(name, url, content, _stored_options(repo, name))


def _stored_options(repo: Repo, name: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for n, entry in enumerate(repo.git.config_get_all(f"remote.{name}.{_OPTION}"), 1):
        try:
            key, value = split_option(entry, name)
        except InvalidInputError:
            raise InvalidInputError(
                f".datagit/config: value {n} of remote.{name}.{_OPTION} is not KEY=VALUE",
                hint=f"fix or drop it: `git --git-dir .datagit config --unset-all "
                f"remote.{name}.{_OPTION}`, then set options with `datagit remote modify`",
            ) from None
        options[key] = value  # a key set twice by hand: the last wins, as in git
    return options


def list_remotes(repo: Repo) -> dict[str, RemoteConfig]:
    names = sorted(
        {k.split(".")[1] for k in repo.git.config_items("remote.") if k.endswith(".url")}
    )
    return {n: get_remote(repo, n) for n in names}


def remove_remote(repo: Repo, name: str) -> None:
    """Forget a remote and its remote-tracking refs (nothing on the remote is touched),
    and its ``[remotes.NAME]`` entry in datagit.toml, if it shared one (commit that)."""
    if repo.git.config_get(f"remote.{name}.url") is None:
        get_remote(repo, name)  # raises the usual "no remote named" error
    with repo.lock:
        toml = _shared.restate_shared(repo, name, None)
        for key in repo.git.config_items(f"remote.{name}."):
            repo.git.config_delete(key)
        for ref in repo.git.refs(f"refs/remotes/{name}/"):
            repo.git.delete_ref(ref)
        if toml is not None:
            _shared.write_toml(repo, toml)


def content_remote(repo: Repo, cfg: RemoteConfig) -> ContentRemote:
    if not cfg.content:
        raise RemoteError(
            f"remote {cfg.name!r} has no content URL",
            hint=f"set one with `datagit remote add {cfg.name} {cfg.url} --content s3://bucket/prefix`"
            " (after `datagit remote remove`)",
        )
    return ContentRemote(cfg.content, **storage_options(cfg.options, cfg.name))


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
