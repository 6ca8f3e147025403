"""One error family for datagit: a one-line message, a hint, and an exit code.

The CLI root catches `DatagitError`, prints ``error: …`` and ``hint: …`` on
stderr and exits with `exit_code`; nothing else in the package prints.
"""

from __future__ import annotations


class DatagitError(Exception):
    """Base of every error datagit raises on purpose.

    `message` names what went wrong and where (file, line, id, revision);
    `hint` says what the user can do about it.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class NotARepositoryError(DatagitError):
    """Raised when a command runs outside a datagit workspace."""

    exit_code = 128


class RevisionNotFoundError(DatagitError, KeyError):
    """An unknown branch, tag, commit id or revision expression."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class InvalidInputError(DatagitError, ValueError):
    """Bad data in the workspace or the config: a bad id, a malformed row."""


class CorruptObjectError(DatagitError):
    """Stored bytes do not match their content address."""


class LockedError(DatagitError):
    """Another datagit process holds the repository's write lock."""


class ConflictError(DatagitError):
    """A merge or checkout cannot proceed because of conflicting changes."""


class RemoteError(DatagitError):
    """A remote is unknown, unreachable, or refused the operation."""


class ReadOnlyError(DatagitError, PermissionError):
    """A write was asked of a repository opened read-only (a viewer, a worker process)."""
