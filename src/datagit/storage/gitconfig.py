"""Git config and the committer's identity: the repository's settings, with git's own
fallbacks (the global config, ``GIT_AUTHOR_*``).

`GitConfig` is a base of `GitStore`, as `GitRefs` is: settings are read through the
store every layer already holds (``store.config_get("user.name")``).
"""

from __future__ import annotations

import contextlib
import os

from datagit.errors import InvalidInputError
from datagit.storage.libgit import pygit2


class GitConfig:
    """The config of the repository a `GitStore` opened; multivars kept in file order."""

    _repo: pygit2.Repository

    def config_get(self, key: str) -> str | None:
        """A value from this repository's git config, falling back to global git config."""
        try:
            return str(self._repo.config[key])
        except (KeyError, pygit2.GitError):
            return None

    def config_set(self, key: str, value: str) -> None:
        try:
            self._repo.config[key] = value
        except pygit2.InvalidSpecError as exc:
            raise InvalidInputError(
                f"cannot set config {key!r}: {exc}",
                hint="a key is section.name, the name made of letters, digits and '-'",
            ) from None
        except pygit2.GitError as exc:  # the key holds several values (a multivar)
            raise InvalidInputError(
                f"cannot set config {key!r}: {exc}",
                hint="remote options change with `datagit remote modify`; "
                f"or drop every value first: `datagit config --unset {key}`",
            ) from None

    def config_delete(self, key: str) -> None:
        """Remove every value of ``key`` (a multivar too), as `git config --unset-all` does."""
        with contextlib.suppress(KeyError, pygit2.GitError):
            self._repo.config.delete_multivar(key, ".*")

    def config_get_all(self, key: str) -> list[str]:
        """Every value of a key that may hold several (git's multivar), in file order."""
        try:
            return [str(v) for v in self._repo.config.get_multivar(key)]
        except (KeyError, pygit2.GitError):
            return []

    def config_replace(self, key: str, pattern: str, value: str) -> None:
        """Replace the values of multivar ``key`` matching ``pattern`` (POSIX ERE), else add one."""
        self._repo.config.set_multivar(key, pattern, value)

    def config_remove(self, key: str, pattern: str) -> None:
        """Remove the values of a multivar ``key`` that match ``pattern`` (a POSIX ERE)."""
        with contextlib.suppress(KeyError, pygit2.GitError):
            self._repo.config.delete_multivar(key, pattern)

    def config_items(self, prefix: str) -> dict[str, str]:
        """Keys under ``prefix`` with one value each (a multivar's last, as `git config` gets)."""
        return dict(self.config_entries(prefix))

    def config_entries(self, prefix: str) -> list[tuple[str, str]]:
        """Every (key, value) under ``prefix`` in file order, each value of a multivar too."""
        cfg = self._repo.config.snapshot()
        return [(e.name, e.value or "") for e in cfg if e.name.startswith(prefix)]


def global_git_identity() -> tuple[str | None, str | None]:
    """user.name / user.email from git's global config, if any."""
    try:
        cfg = pygit2.Config.get_global_config()
    except (OSError, pygit2.GitError):
        return None, None
    out: list[str | None] = []
    for key in ("user.name", "user.email"):
        try:
            out.append(str(cfg[key]))
        except (KeyError, pygit2.GitError):
            out.append(None)
    return out[0], out[1]


def env_identity() -> tuple[str | None, str | None]:
    """GIT_AUTHOR_NAME / GIT_AUTHOR_EMAIL, as git honours them."""
    return os.environ.get("GIT_AUTHOR_NAME"), os.environ.get("GIT_AUTHOR_EMAIL")
