"""The one path rule: ids, labels, sources and dataset paths."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datagit.core.paths import (
    check_dataset_paths,
    check_folder_id,
    check_label_folder,
    is_reserved,
    path_problem,
)
from datagit.errors import InvalidInputError


@pytest.mark.parametrize(
    "name",
    [
        ".datagit",
        ".git",
        ".DataGit",
        ".GIT",
        "\uff0egit",
        ".data\u200cgit",
        ".git.",
        ".git  ",
        "GIT~1",
        "datagi~1",
        ".ＤＡＴＡＧＩＴ",
    ],
)
def test_every_variant_of_the_metadata_folders_is_reserved(name: str) -> None:
    assert is_reserved(name)
    assert path_problem(f"a/{name}/b") is not None


@pytest.mark.parametrize("name", ["git", "datagit", ".gitignore", "a.git", "GIT~X", ".datagit2"])
def test_near_misses_are_plain_names(name: str) -> None:
    assert not is_reserved(name)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "is empty"),
        ("a/../b", "contains '..'"),
        ("..", "contains '..'"),
        ("a//b", "empty or '.'"),
        ("./a", "empty or '.'"),
        ("a/", "empty or '.'"),
        ("/etc/passwd", "absolute"),
        ("C:/x", "absolute"),
        ("a\0b", "NUL"),
        ("a\nb", "newline"),
        ("a\tb", "control character"),
        ("a\x85b", "control character"),
        ("a\\b", "backslash"),
    ],
)
def test_unsafe_paths_are_named_with_their_problem(path: str, problem: str) -> None:
    assert problem in (path_problem(path) or "")


@pytest.mark.parametrize("path", ["a.png", "sub/dir/img 1.png", "é/ß.png", "a:b.png", ".hidden"])
def test_plain_paths_pass(path: str) -> None:
    assert path_problem(path) is None


@given(st.text(alphabet="ab./\\\0~GIT ．\u200c:", max_size=12))
def test_an_accepted_path_stays_below_its_folder_and_names_no_metadata(path: str) -> None:
    if path_problem(path) is not None:
        return
    assert posixpath.normpath(path) == path
    assert not posixpath.isabs(path)
    assert not any(is_reserved(part) for part in path.split("/"))
    assert posixpath.normpath(posixpath.join("root", path)).startswith("root/")


def test_labels_are_one_visible_folder_and_folder_ids_have_no_hidden_part() -> None:
    assert check_label_folder("cat", "w") == "cat"
    for bad in ("a/b", ".x", "", None, 3, "..", ".git"):
        with pytest.raises(InvalidInputError, match="w: label"):
            check_label_folder(bad, "w")
    assert check_folder_id("sub/a.png", "w") == "sub/a.png"
    with pytest.raises(InvalidInputError, match="hidden"):
        check_folder_id("sub/.a.png", "w")


def test_datasets_may_not_nest() -> None:
    check_dataset_paths([("a", "t1.csv"), ("b", "t2.csv"), ("c", "train"), ("d", "trains")], "w")
    for pair in ([("a", "train"), ("b", "train/1")], [("a", "x"), ("b", "x")]):
        with pytest.raises(InvalidInputError, match="inside dataset"):
            check_dataset_paths(pair, "w")
