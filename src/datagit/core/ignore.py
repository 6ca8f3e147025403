"""``.datagitignore``: files inside a dataset's folder that are not examples.

gitignore syntax (the `pathspec` library's git flavour), one file at the
workspace root, patterns relative to it: ``README*``, ``.DS_Store`` (hidden
names are skipped anyway), ``train/**/notes.txt``. An ignored file is not an
example, so a README beside the class folders is no longer an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pathspec

NAME = ".datagitignore"


@dataclass(frozen=True)
class Ignore:
    spec: pathspec.GitIgnoreSpec

    def __call__(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether workspace path ``rel_path`` (a folder when ``is_dir``) is ignored."""
        return self.spec.match_file(rel_path + "/" if is_dir else rel_path)


_cache: dict[str, tuple[tuple[int, int, int], Ignore | None]] = {}


def load(workdir: str | os.PathLike[str]) -> Ignore | None:
    """The workspace's ignore rules (None without a ``.datagitignore``), re-read only
    when the file changes: every listing asks, so this costs one stat."""
    path = os.path.join(os.fspath(workdir), NAME)
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _cache.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    found = (
        Ignore(pathspec.GitIgnoreSpec.from_lines(lines))
        if any(line.strip() and not line.lstrip().startswith("#") for line in lines)
        else None
    )
    _cache[path] = (key, found)
    return found
