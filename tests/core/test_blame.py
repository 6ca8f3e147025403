"""blame agrees with a brute-force replay of history, and follows merges like git blame."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagit.core.blame import blame_dataset, example_history
from datagit.core.manifest import write_dataset, write_root
from datagit.core.records import Record
from datagit.storage.git import GitStore, Signature

CONFIG = b'[datasets.train]\nlayout = "imagefolder"\npath = "train"\n'


def new_git() -> GitStore:
    return GitStore.init(Path(tempfile.mkdtemp()) / "g")


def commit(git: GitStore, records: dict[str, Record], parents: list[str], n: int) -> str:
    tree = write_root(git, CONFIG, {"train": write_dataset(git, records.values())})
    who = Signature(f"author{n % 3}", "a@example.com", 1_700_000_000 + n)
    return git.create_commit(tree, parents, f"step {n}\n", who, who)


def rec(i: str, label: str, content: int, annotator: str | None = None) -> Record:
    return Record(i, label, f"{content:032x}", 1, annotator)


# a step: for each of a few ids, an operation (0 relabel, 1 new content, 2 remove/re-add)
steps = st.lists(
    st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 2), st.sampled_from(["cat", "dog", "emu"])),
        max_size=6,
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=steps)
def test_blame_matches_brute_force_replay(history: list[list[tuple[int, int, str]]]) -> None:
    git = new_git()
    state = {f"{i:03d}": rec(f"{i:03d}", "cat", i) for i in range(0, 30, 2)}
    label_at: dict[str, str] = {}
    added_at: dict[str, str] = {}
    head = commit(git, state, [], 0)
    for i in state:
        label_at[i] = added_at[i] = head
    for n, ops in enumerate(history, start=1):
        new = dict(state)
        touched_label, touched_add = set(), set()
        for k, op, label in ops:
            i = f"{k:03d}"
            old = new.get(i)
            if op == 2 and old is not None:
                del new[i]
                continue
            content = (int(old.content, 16) if old else k) + (op == 1) * 100
            new[i] = rec(i, label, content)
        parent_state = state
        for i, r in new.items():
            before = parent_state.get(i)
            if before is None:
                touched_add.add(i)
                touched_label.add(i)
            elif before.label != r.label:
                touched_label.add(i)
        head = commit(git, new, [head], n)
        for i in touched_label:
            label_at[i] = head
        for i in touched_add:
            added_at[i] = head
        state = new
    blamed = blame_dataset(git, head, "train")
    assert set(blamed) == set(state)
    for i, b in blamed.items():
        assert (b.commit, b.added_in, b.label) == (label_at[i], added_at[i], state[i].label), i


def test_blame_across_a_merge_credits_the_branch_commits() -> None:
    git = new_git()
    base = {"x": rec("x", "cat", 1), "y": rec("y", "cat", 2), "z": rec("z", "cat", 3)}
    root = commit(git, base, [], 0)
    left = commit(git, {**base, "x": rec("x", "dog", 1, "al")}, [root], 1)
    right = commit(git, {**base, "y": rec("y", "emu", 2, "bo")}, [root], 2)
    merged_state = {**base, "x": rec("x", "dog", 1, "al"), "y": rec("y", "emu", 2, "bo")}
    merged_state["z"] = rec("z", "owl", 3)  # decided in the merge itself
    merge = commit(git, merged_state, [left, right], 3)
    b = blame_dataset(git, merge, "train")
    assert (b["x"].commit, b["x"].annotator) == (left, "al")
    assert (b["y"].commit, b["y"].annotator) == (right, "bo")
    assert b["z"].commit == merge
    assert {v.added_in for v in b.values()} == {root}
    # the per-example history lists the branch commit, not the merge that brought it in
    assert [e.commit.id for e in example_history(git, merge, "train", "y")] == [right, root]
    assert [e.kind for e in example_history(git, merge, "train", "z")] == ["relabeled", "added"]


def test_example_history_shows_each_change_with_old_and_new() -> None:
    git = new_git()
    a = commit(git, {"x": rec("x", "cat", 1)}, [], 0)
    b = commit(git, {"x": rec("x", "dog", 1), "w": rec("w", "cat", 9)}, [a], 1)
    c = commit(git, {"x": rec("x", "dog", 5), "w": rec("w", "emu", 9)}, [b], 2)
    d = commit(git, {"w": rec("w", "emu", 9)}, [c], 3)
    events = list(example_history(git, d, "train", "x"))
    assert [(e.commit.id, e.kind) for e in events] == [
        (d, "removed"),
        (c, "modified"),
        (b, "relabeled"),
        (a, "added"),
    ]
    assert (events[2].old.label, events[2].new.label) == ("cat", "dog")
