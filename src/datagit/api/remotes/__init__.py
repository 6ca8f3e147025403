"""Remotes: push, fetch, pull and clone metadata (git) and content (object store).

Order of operations keeps both sides consistent:

- push uploads the content the remote lacks *before* it moves the remote's
  git ref, so a killed push leaves the remote at its old commit with some
  extra objects, and the next push sends only the rest;
- fetch lands git objects under a private namespace, downloads and verifies
  the content, and only then moves the remote-tracking refs, so an
  unreachable or corrupt remote changes nothing the user sees.

The work is split by concern into private modules, re-exported here:
``_settings`` (where a remote is), ``_shared`` (the content URL committed in
datagit.toml, so a clone of the history alone finds the bytes), ``_options``
(the content URL's fsspec storage options), ``_transfer`` (push, fetch, check,
content on demand) and ``_clone`` (pull and clone).
"""

from datagit.api.remotes._clone import PullResult, clone, default_directory, pull
from datagit.api.remotes._options import (
    MASK,
    OptionValue,
    check_key,
    is_secret,
    masked,
    option_text,
    parse_options,
    split_option,
    storage_options,
)
from datagit.api.remotes._runs import fetch_run, fetch_runs, push_runs
from datagit.api.remotes._settings import (
    DEFAULT_CONTENT_DIR,
    RemoteConfig,
    add_remote,
    adopt_shared,
    content_remote,
    get_remote,
    is_partial,
    list_remotes,
    promisor,
    remove_remote,
    set_remote_option,
    set_upstream,
    unset_remote_option,
    upstream,
)
from datagit.api.remotes._shared import (
    SHARED_TABLE,
    SharedRemote,
    find_shared,
    restate_shared,
    share_remote,
    shared_entries,
    write_toml,
)
from datagit.api.remotes._transfer import (
    FetchResult,
    PushResult,
    TagPushResult,
    TransferProgress,
    check_remote,
    download,
    fetch,
    fetch_content,
    fetch_on_demand,
    needed_content,
    push,
    push_tags,
    run_on_demand,
)

__all__ = [
    "DEFAULT_CONTENT_DIR",
    "MASK",
    "SHARED_TABLE",
    "FetchResult",
    "OptionValue",
    "PullResult",
    "PushResult",
    "RemoteConfig",
    "SharedRemote",
    "TagPushResult",
    "TransferProgress",
    "add_remote",
    "adopt_shared",
    "check_key",
    "check_remote",
    "clone",
    "content_remote",
    "default_directory",
    "download",
    "fetch",
    "fetch_content",
    "fetch_on_demand",
    "fetch_run",
    "fetch_runs",
    "find_shared",
    "get_remote",
    "is_partial",
    "is_secret",
    "list_remotes",
    "masked",
    "needed_content",
    "option_text",
    "parse_options",
    "promisor",
    "pull",
    "push",
    "push_runs",
    "push_tags",
    "remove_remote",
    "restate_shared",
    "run_on_demand",
    "set_remote_option",
    "set_upstream",
    "share_remote",
    "shared_entries",
    "split_option",
    "storage_options",
    "unset_remote_option",
    "upstream",
    "write_toml",
]
