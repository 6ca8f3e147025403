"""datagit: version control for datasets — content-addressed, label-aware history.

>>> from datagit import Repo
>>> repo = Repo.open(".")
>>> for record in repo.records("train", rev="HEAD~1"):
...     data = repo.read(record)
"""

from datagit.api.dataset import DatasetView
from datagit.api.repo import STAGED, WORKSPACE, DatasetStatus, Repo, Status
from datagit.core.changes import Change
from datagit.core.config import Config, DatasetConfig
from datagit.core.records import Record
from datagit.errors import (
    ConflictError,
    CorruptObjectError,
    DatagitError,
    InvalidInputError,
    LockedError,
    NotARepositoryError,
    RemoteError,
    RevisionNotFoundError,
)
from datagit.storage.git import CommitInfo, Signature

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
    "Record",
    "RemoteError",
    "Repo",
    "RevisionNotFoundError",
    "Signature",
    "Status",
    "__version__",
]
