"""The API layer: `Repo` and the verbs the CLI and users' Python call."""

from datagit.api.repo import STAGED, WORKSPACE, Repo
from datagit.api.status import DatasetStatus, Status

__all__ = ["STAGED", "WORKSPACE", "DatasetStatus", "Repo", "Status"]
