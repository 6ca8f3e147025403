"""The one rule for every path a repository names: ids, labels, sources, dataset paths.

A commit is untrusted input (it may come from anyone's clone), so the same rule
guards what the user types (`add`, `resolve --label`, `dataset add`) and what a
commit says (fetch, clone, pull, checkout, merge, import-dvc): every path stays
inside its dataset's folder and never names `.datagit` or `.git`, under any
case, Unicode-normalisation or Windows-alias variant, as git's
``verify_path``/``is_ntfs_dotgit``/``is_hfs_dotgit`` do for git's own trees.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from datagit.errors import InvalidInputError

RESERVED = (".datagit", ".git")  # metadata folders no path may name
_SHORT_NAMES = ("datagi~", "git~")  # their 8.3 aliases on Windows filesystems

# The common case in one regex pass: ASCII printable, no backslash, colon or tilde,
# components that are non-empty and start with no dot. Anything else takes the
# careful path below (which accepts many more names: this is only a shortcut).
_C = r"A-Za-z0-9_\-+=,@#%&()\[\]{}' !$;^`|"
PLAIN_PATTERN = rf"^[{_C}][{_C}.]*(?:/[{_C}][{_C}.]*)*$"  # also for pyarrow (RE2) in bulk
_PLAIN = re.compile(PLAIN_PATTERN[1:-1])


def is_reserved(component: str) -> bool:
    """Whether a path component would be read as `.datagit` or `.git` by some filesystem.

    Case-insensitive filesystems (`.DataGit`), NFC/NFKC-normalising ones
    (`．git`, full-width dot), HFS+ (which ignores zero-width characters) and
    NTFS (trailing dots and spaces, `GIT~1`) all count.
    """
    name = "".join(c for c in component if unicodedata.category(c) != "Cf")
    name = unicodedata.normalize("NFKC", name).casefold()
    name = unicodedata.normalize("NFKC", name).rstrip(" .")
    if name in RESERVED:
        return True
    return any(name.startswith(s) and name[len(s) :].isdigit() for s in _SHORT_NAMES)


def path_problem(path: str) -> str | None:
    """Why ``path`` is not a safe relative path, or None when it is."""
    if _PLAIN.fullmatch(path):
        return None
    if not path:
        return "is empty"
    for c in path:
        if c == "\0":
            return "contains a NUL byte"
        if c in "\n\r":
            return "contains a newline"
        if c < " " or "\x7f" <= c <= "\x9f":
            return f"contains the control character {c!r}"
    if "\\" in path:
        return "contains a backslash"
    if path.startswith("/") or (len(path) > 1 and path[0].isalpha() and path[1:3] in (":", ":/")):
        return "is an absolute path"  # "C:" or "C:/…" is a drive; "a:b.png" is a plain name
    for part in path.split("/"):
        if part == "..":
            return "contains '..'"
        if part in ("", "."):
            return "has an empty or '.' component"
        if is_reserved(part):
            return f"names {part!r}, which is reserved for repository metadata"
    return None


def check_path(path: str, where: str, what: str = "path") -> str:
    """``path`` when it is a safe relative path; otherwise a one-line error naming it."""
    problem = path_problem(path)
    if problem is None:
        return path
    raise InvalidInputError(
        f"{where}: {what} {path!r} {problem}",
        hint=f"fix the {what} so it is a plain relative path",
    )


def check_id(example_id: object, where: str) -> str:
    """An example id: a safe relative path (it is one, in an image folder)."""
    if not isinstance(example_id, str):
        raise InvalidInputError(
            f"{where}: id {example_id!r} is not a string", hint="ids are strings"
        )
    return check_path(example_id, where, "id")


def check_label_folder(label: object, where: str) -> str:
    """An image-folder label: one visible folder name (the class folder)."""
    if not isinstance(label, str):
        raise InvalidInputError(
            f"{where}: label {label!r} cannot be a class folder name",
            hint="an image-folder label is a folder name: a non-empty string",
        )
    check_path(label, where, "label")
    if "/" in label or label.startswith("."):
        raise InvalidInputError(
            f"{where}: label {label!r} is not a single visible folder name",
            hint="use a label without '/' that does not start with '.'",
        )
    return label


def check_folder_id(example_id: object, where: str) -> str:
    """An image-folder id: a safe path whose components are visible file names.

    The folder walk skips dot-files, so an id with a hidden component would be
    written by checkout and then never seen again.
    """
    check_id(example_id, where)
    assert isinstance(example_id, str)
    if example_id.startswith(".") or "/." in example_id:
        raise InvalidInputError(
            f"{where}: id {example_id!r} has a hidden ('.'-prefixed) component",
            hint="rename the file so no part of its path starts with '.'",
        )
    return example_id


def inside(path: str, folder: str) -> bool:
    """Whether workspace path ``path`` lies strictly inside ``folder`` ("" or "." = the root)."""
    if folder in ("", "."):
        return True
    return path.startswith(folder + "/")


def check_dataset_paths(paths: Iterable[tuple[str, str]], where: str) -> None:
    """Refuse dataset paths (name, path) that overlap: no dataset inside another.

    Two table files in one folder are fine; a table inside an image folder, or an
    image folder inside another, would let one dataset's checkout write the
    other's files.
    """
    items = sorted(paths, key=lambda np: np[1])
    for i, (name, path) in enumerate(items):
        for other, opath in items[i + 1 :]:
            if opath == path or opath.startswith(path + "/"):
                raise InvalidInputError(
                    f"{where}: dataset {other!r} at {opath!r} is inside dataset {name!r} "
                    f"at {path!r}",
                    hint="give each dataset its own folder or file",
                )
