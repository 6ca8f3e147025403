"""Branches and tags: refs a user names, checked as git checks ref names.

Creating, listing and deleting them moves no file; `workspace` does the checkouts
that follow a switch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from datagit.errors import DatagitError, InvalidInputError

if TYPE_CHECKING:
    from datagit.api.repo import Repo


def list_branches(repo: Repo) -> list[str]:
    return sorted(n.removeprefix("refs/heads/") for n in repo.git.refs("refs/heads/"))


def create_branch(repo: Repo, name: str, start: str = "HEAD") -> str:
    _check_ref_name(name, "branch")
    if repo.git.ref(f"refs/heads/{name}"):
        raise InvalidInputError(f"branch {name!r} already exists", hint="pick another name")
    head = repo.head() if start == "HEAD" else repo.resolve(start)
    if head is None:
        raise DatagitError(
            f"cannot create branch {name!r}: there are no commits yet",
            hint="make a first commit with `datagit commit -a -m ...`",
        )
    repo.git.update_ref(f"refs/heads/{name}", head)
    return head


def delete_branch(repo: Repo, name: str, *, force: bool = False) -> None:
    oid = repo.git.ref(f"refs/heads/{name}")
    if oid is None:
        raise InvalidInputError(f"no branch named {name!r}")
    if repo.branch() == name:
        raise DatagitError(
            f"cannot delete branch {name!r}: it is checked out",
            hint="switch to another branch first",
        )
    head = repo.head()
    if not force and head and not repo.git.is_ancestor(oid, head):
        raise DatagitError(
            f"branch {name!r} is not merged into HEAD",
            hint=f"merge it first, or use `datagit branch -D {name}`",
        )
    repo.git.delete_ref(f"refs/heads/{name}")


def list_tags(repo: Repo) -> dict[str, str]:
    return {n.removeprefix("refs/tags/"): o for n, o in sorted(repo.git.refs("refs/tags/").items())}


def create_tag(repo: Repo, name: str, rev: str = "HEAD", message: str | None = None) -> str:
    _check_ref_name(name, "tag")
    if repo.git.ref(f"refs/tags/{name}"):
        raise InvalidInputError(
            f"tag {name!r} already exists", hint="delete it first with `tag -d`"
        )
    oid = repo.resolve(rev)
    repo.git.create_tag(name, oid, message, repo.identity())
    return oid


def delete_tag(repo: Repo, name: str) -> None:
    if not repo.git.ref(f"refs/tags/{name}"):
        raise InvalidInputError(f"no tag named {name!r}")
    repo.git.delete_ref(f"refs/tags/{name}")


def _check_ref_name(name: str, what: str) -> None:
    bad = (
        not name
        or name.startswith(("-", "/", "."))
        or name.endswith(("/", ".lock", "."))
        or any(c in name for c in " ~^:?*[\\\0\n\t")
        or ".." in name
        or "@{" in name
    )
    if bad:
        raise InvalidInputError(
            f"{name!r} is not a valid {what} name",
            hint="use letters, digits, '-', '_', '.' and '/'",
        )
