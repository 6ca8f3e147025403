"""The API layer: `Repo` and the verbs the CLI and users' Python call."""

from datagit.api.repo import STAGED, WORKSPACE, DatasetStatus, Repo, Status

__all__ = ["STAGED", "WORKSPACE", "DatasetStatus", "Repo", "Status"]
