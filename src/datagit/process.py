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

import gc

_owned = False


def own() -> None:
    """Called by the CLI's entry point before any command runs.

    Cyclic garbage collection is held off while the command's modules load:
    importing them makes ~100,000 objects, none of them garbage, and the
    collections their allocation triggers walked them all again and again
    (~15 ms of a 0.5 s commit). `settle` turns it back on.
    """
    global _owned
    _owned = True
    gc.disable()


def settle() -> None:
    """The command's modules are loaded: keep what exists out of every future
    collection (`gc.freeze`) and collect as usual from here on."""
    if _owned and not gc.isenabled():
        gc.freeze()
        gc.enable()


def owned() -> bool:
    return _owned
