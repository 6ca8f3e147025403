"""The merge in progress, in ``.datagit/MERGE_STATE``: the commit being merged in and
the conflicts left to resolve.

Written by `merge` (history.py), read by `status`, `commit` and `undo`, cleared
by a commit or an abort. Its own module so that reading it loads nothing of the
add or commit paths.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import orjson

from datagit.errors import CorruptObjectError

if TYPE_CHECKING:
    from datagit.api.repo import Repo

MERGE_STATE = "MERGE_STATE"


def read_merge_state(repo: Repo) -> dict | None:
    path = repo.dotdir / MERGE_STATE
    if not path.exists():
        return None
    try:
        state = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        state = None
    if not isinstance(state, dict) or not isinstance(state.get("theirs"), str):
        raise CorruptObjectError(
            f"the merge in progress cannot be read: {path} is damaged",
            hint=f"delete {path} and run `datagit checkout -f HEAD` to drop the merge, "
            "then merge again",
        )
    if _merge_committed(repo, state):  # a kill between moving the ref and deleting this
        if not repo.readonly:
            clear_merge_state(repo)
        return None
    return state


def _merge_committed(repo: Repo, state: dict) -> bool:
    """Whether HEAD is this merge's own commit (parents: the HEAD it began at, then
    theirs): the merge is done, and a commit now would make it a second time."""
    head, began = repo.head(), state.get("orig_head")
    if head is None or head == began or not isinstance(began, str):
        return False
    return repo.git.commit(head).parents == (began, state["theirs"])


def write_merge_state(repo: Repo, state: dict) -> None:
    tmp = repo.dotdir / (MERGE_STATE + ".tmp")
    tmp.write_bytes(orjson.dumps(state))
    os.replace(tmp, repo.dotdir / MERGE_STATE)


def clear_merge_state(repo: Repo) -> None:
    (repo.dotdir / MERGE_STATE).unlink(missing_ok=True)


def conflicts(repo: Repo) -> list[str]:
    state = read_merge_state(repo)
    return list(state.get("conflicts", [])) if state else []
