"""datagit: version control for datasets — content-addressed, label-aware history.

>>> from datagit import Repo
>>> repo = Repo.open(".")
>>> for record in repo.records("train", rev="HEAD~1"):
...     data = repo.read(record)
"""

from typing import TYPE_CHECKING

from datagit.errors import (  # cheap, and what every caller catches
    ConflictError,
    CorruptObjectError,
    DatagitError,
    InvalidInputError,
    LockedError,
    NotARepositoryError,
    ReadOnlyError,
    RemoteError,
    RevisionNotFoundError,
)

if TYPE_CHECKING:
    from datagit.api.dataset import DatasetView
    from datagit.api.repo import STAGED, WORKSPACE, Repo
    from datagit.api.status import DatasetStatus, Status
    from datagit.core.changes import Change
    from datagit.core.config import Config, DatasetConfig
    from datagit.core.records import Record
    from datagit.storage.git import CommitInfo, Signature

# Every command-line run imports this package first; loading the whole API (and
# pygit2 through it) here would tax `datagit --version` and every lazily loaded
# verb alike, so names resolve on first use (PEP 562).
_LAZY = {
    "DatasetView": "datagit.api.dataset",
    "STAGED": "datagit.api.repo",
    "WORKSPACE": "datagit.api.repo",
    "DatasetStatus": "datagit.api.status",
    "Repo": "datagit.api.repo",
    "Status": "datagit.api.status",
    "Change": "datagit.core.changes",
    "Config": "datagit.core.config",
    "DatasetConfig": "datagit.core.config",
    "Record": "datagit.core.records",
    "CommitInfo": "datagit.storage.git",
    "Signature": "datagit.storage.git",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'datagit' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "STAGED",
    "WORKSPACE",
    "Change",
    "CommitInfo",
    "Config",
    "ConflictError",
    "CorruptObjectError",
    "DatagitError",
    "DatasetConfig",
    "DatasetStatus",
    "DatasetView",
    "InvalidInputError",
    "LockedError",
    "NotARepositoryError",
    "ReadOnlyError",
    "Record",
    "RemoteError",
    "Repo",
    "RevisionNotFoundError",
    "Signature",
    "Status",
    "__version__",
]
