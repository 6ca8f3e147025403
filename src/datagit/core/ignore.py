"""``.datagitignore``: files inside a dataset's folder that are not examples.

gitignore syntax (the `pathspec` library's git flavour), one file at the
workspace root, patterns relative to it: ``README*``, ``.DS_Store`` (hidden
names are skipped anyway), ``train/**/notes.txt``. An ignored file is not an
example, so a README beside the class folders is no longer an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported when a workspace has rules: 30 ms off every command otherwise
    import pathspec

NAME = ".datagitignore"


@dataclass(frozen=True)
class Ignore:
    spec: pathspec.GitIgnoreSpec
    # Without negated patterns any match ignores, so the patterns' regexes joined into
    # one are the whole answer: 6× cheaper per file than asking the spec pattern by pattern.
    joined: re.Pattern[str] | None

    def __call__(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether workspace path ``rel_path`` (a folder when ``is_dir``) is ignored."""
        path = rel_path + "/" if is_dir else rel_path
        if self.joined is not None:
            return self.joined.match(path) is not None
        return bool(self.spec.match_file(path))


def _joined(spec: pathspec.GitIgnoreSpec) -> re.Pattern[str] | None:
    parts = []
    for p in spec.patterns:
        regex = getattr(p, "regex", None)
        if p.include is None:
            continue  # a blank line or a comment
        if p.include is False or regex is None:
            return None
        parts.append("(?:" + re.sub(r"\(\?P<[^>]+>", "(?:", regex.pattern) + ")")
    return re.compile("|".join(parts)) if parts else None


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
    found = None
    if any(line.strip() and not line.lstrip().startswith("#") for line in lines):
        import pathspec

        spec = pathspec.GitIgnoreSpec.from_lines(lines)
        found = Ignore(spec, _joined(spec))
    _cache[path] = (key, found)
    return found
