"""Whether datagit owns this process, and so may change process-wide settings.

Some settings make a bulk read faster but belong to the whole process: glibc's
malloc thresholds, and environment variables that numpy's OpenBLAS and Arrow's
allocator read when they load. The `datagit` command owns its process and sets
them; a library user's notebook or training script does not hand its process
over by importing datagit, so there they are left alone (see
`datagit.core.parquet`). Like `errors` and `progress`, this imports nothing and
sits under every layer.
"""

from __future__ import annotations

_owned = False


def own() -> None:
    """Called by the CLI's entry point before any command runs."""
    global _owned
    _owned = True


def owned() -> bool:
    return _owned
