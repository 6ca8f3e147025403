""".datagitignore: the joined-regex fast path answers as pathspec's git flavour does."""

from __future__ import annotations

from pathlib import Path

import pathspec
from hypothesis import given, settings
from hypothesis import strategies as st

from datagit.core import ignore

PATTERNS = ["README*", "*.txt", "train/**/scratch/", "/top.md", "docs/", "a?c.png", "[xy]*.jpg"]
parts = st.sampled_from(
    [
        "train",
        "0",
        "scratch",
        "README.md",
        "n.txt",
        "abc.png",
        "x1.jpg",
        "top.md",
        "docs",
        "img.png",
    ]
)


@settings(max_examples=200, deadline=None)
@given(path=st.lists(parts, min_size=1, max_size=4), is_dir=st.booleans())
def test_the_joined_regex_agrees_with_pathspec(path: list[str], is_dir: bool) -> None:
    spec = pathspec.GitIgnoreSpec.from_lines(PATTERNS)
    fast = ignore.Ignore(spec, ignore._joined(spec))
    assert fast.joined is not None
    rel = "/".join(path)
    assert fast(rel, is_dir) == bool(spec.match_file(rel + "/" if is_dir else rel))


def test_negation_comments_and_reloading(tmp_path: Path) -> None:
    assert ignore.load(tmp_path) is None
    (tmp_path / ".datagitignore").write_text("# only a comment\n\n")
    assert ignore.load(tmp_path) is None
    (tmp_path / ".datagitignore").write_text("*.txt\n!keep.txt\n")
    rules = ignore.load(tmp_path)
    assert rules is not None and rules.joined is None  # a negation: ask the spec
    assert rules("a/n.txt") and not rules("a/keep.txt") and not rules("a/x.png")
