"""Remotes: push, fetch, pull and clone metadata (git) and content (object store).

Order of operations keeps both sides consistent:

- push uploads the content the remote lacks *before* it moves the remote's
  git ref, so a killed push leaves the remote at its old commit with some
  extra objects, and the next push sends only the rest;
- fetch lands git objects under a private namespace, downloads and verifies
  the content, and only then moves the remote-tracking refs, so an
  unreachable or corrupt remote changes nothing the user sees.

The work is split by concern into private modules, re-exported here:
``_settings`` (where a remote is), ``_transfer`` (push, fetch, check,
content on demand) and ``_clone`` (pull and clone).
"""

from datagit.api.remotes._clone import PullResult, clone, default_directory, pull
from datagit.api.remotes._settings import (
    DEFAULT_CONTENT_DIR,
    RemoteConfig,
    add_remote,
    content_remote,
    get_remote,
    is_partial,
    list_remotes,
    promisor,
    remove_remote,
    set_upstream,
    upstream,
)
from datagit.api.remotes._transfer import (
    FetchResult,
    PushResult,
    TransferProgress,
    check_remote,
    download,
    fetch,
    fetch_content,
    fetch_on_demand,
    needed_content,
    push,
)

__all__ = [
    "DEFAULT_CONTENT_DIR",
    "FetchResult",
    "PullResult",
    "PushResult",
    "RemoteConfig",
    "TransferProgress",
    "add_remote",
    "check_remote",
    "clone",
    "content_remote",
    "default_directory",
    "download",
    "fetch",
    "fetch_content",
    "fetch_on_demand",
    "get_remote",
    "is_partial",
    "list_remotes",
    "needed_content",
    "promisor",
    "pull",
    "push",
    "remove_remote",
    "set_upstream",
    "upstream",
]
