"""Three-way record merge: disjoint changes equal applying both; overlaps are conflicts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagit.core.manifest import DatasetTree, read_root, write_dataset, write_root
from datagit.core.merge import OURS, THEIRS, merge_trees, resolve
from datagit.core.records import Record
from datagit.storage.git import GitStore

CONFIG = b'[datasets.train]\nlayout = "imagefolder"\npath = "train"\n'
_GIT: GitStore | None = None


def git() -> GitStore:
    global _GIT
    if _GIT is None:
        _GIT = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    return _GIT


def rec(i: str, label: str, content: int, annotator: str | None = None) -> Record:
    return Record(i, label, f"{content:032x}", 1, annotator)


def root(records: dict[str, Record]) -> str:
    g = git()
    return write_root(g, CONFIG, {"train": write_dataset(g, records.values())})


def records_of(tree: str) -> dict[str, tuple[str, str]]:
    ds = read_root(git(), tree)[1]["train"]
    return {r.id: (r.label, r.content) for r in DatasetTree(git(), ds).records()}


def edit(state: dict[str, Record], ops: list[tuple[int, int, str]], prefix: str) -> dict:
    out = dict(state)
    for k, op, label in ops:
        i = f"{prefix}{k:03d}"
        if op == 0 and i in out:
            out[i] = rec(i, label, int(out[i].content, 16))
        elif op == 1 and i in out:
            del out[i]
        else:
            out[i] = rec(i, label, 1000 + k)
    return out


ops = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 2), st.sampled_from(["cat", "dog", "emu"])),
    max_size=25,
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ours_ops=ops, theirs_ops=ops)
def test_disjoint_changes_merge_to_both_applied(ours_ops: list, theirs_ops: list) -> None:
    # ids starting "a" only ours touches, "b" only theirs: disjoint by construction
    base = {f"{p}{k:03d}": rec(f"{p}{k:03d}", "cat", k) for p in "ab" for k in range(0, 40, 3)}
    ours, theirs = edit(base, ours_ops, "a"), edit(base, theirs_ops, "b")
    both = edit(edit(base, ours_ops, "a"), theirs_ops, "b")
    result = merge_trees(git(), root(base), root(ours), root(theirs))
    assert result.conflicts == []
    assert records_of(result.tree) == {i: (r.label, r.content) for i, r in both.items()}
    # symmetric up to ours/theirs
    other = merge_trees(git(), root(base), root(theirs), root(ours))
    assert records_of(other.tree) == records_of(result.tree)


def test_conflicts_carry_both_sides_and_resolve_either_way() -> None:
    base = {"x": rec("x", "cat", 1), "y": rec("y", "cat", 2), "z": rec("z", "cat", 3)}
    ours = {**base, "x": rec("x", "dog", 1, "al"), "z": rec("z", "emu", 3, "al")}
    ours["y"] = rec("y", "owl", 2)
    theirs = {"x": rec("x", "emu", 1, "bo"), "z": rec("z", "emu", 3, "bo")}  # y removed
    result = merge_trees(git(), root(base), root(ours), root(theirs))
    got = {c.id: (c.ours and c.ours.label, c.theirs and c.theirs.label) for c in result.conflicts}
    assert got == {"x": ("dog", "emu"), "y": ("owl", None)}  # z: same change on both sides
    assert result.conflicts[0].ours.annotator == "al"
    assert result.conflicts[0].theirs.annotator == "bo"
    assert records_of(result.tree)["x"] == ("dog", f"{1:032x}")  # ours kept meanwhile
    for side, want in ((OURS, {"x": "dog", "y": "owl"}), (THEIRS, {"x": "emu"})):
        picks: dict = {"train": {c.id: c.pick(side) for c in result.conflicts}}
        final = records_of(resolve(git(), result.tree, picks))
        assert {i: lab for i, (lab, _) in final.items() if i in "xy"} == want


def test_dataset_added_on_one_side_is_taken() -> None:
    g = git()
    base = root({"x": rec("x", "cat", 1)})
    ours = root({"x": rec("x", "dog", 1)})
    cfg = CONFIG + b'\n[datasets.val]\nlayout = "imagefolder"\npath = "val"\n'
    theirs = write_root(
        g,
        cfg,
        {
            "train": write_dataset(g, [rec("x", "cat", 1)]),
            "val": write_dataset(g, [rec("v", "cat", 5)]),
        },
    )
    result = merge_trees(g, base, ours, theirs)
    config, datasets = read_root(g, result.tree)
    assert set(datasets) == {"train", "val"}
    assert b"[datasets.val]" in config


def test_a_conflict_brought_in_by_an_earlier_merge_names_who_made_it() -> None:
    """Regression (#14): the conflict named the earlier merge's author, not the person."""
    from datagit.core.merge import with_authors
    from datagit.storage.git import Signature

    g = git()

    def commit(records: dict[str, Record], parents: list[str], who: str, n: int) -> str:
        s = Signature(who, f"{who}@example.com", 1_700_000_000 + n)
        return g.create_commit(root(records), parents, f"{who} {n}\n", s, s)

    base_state = {"x": rec("x", "cat", 1), "y": rec("y", "cat", 2)}
    base = commit(base_state, [], "ada", 0)
    bob = commit({**base_state, "x": rec("x", "dog", 1)}, [base], "bob", 1)
    main = commit({**base_state, "y": rec("y", "owl", 2)}, [base], "ada", 2)
    merged = {"x": rec("x", "dog", 1), "y": rec("y", "owl", 2)}
    merge = commit(merged, [main, bob], "mallory", 3)
    carol = commit({**base_state, "x": rec("x", "emu", 1)}, [base], "carol", 4)
    result = merge_trees(g, g.commit(base).tree, g.commit(merge).tree, g.commit(carol).tree)
    (c,) = with_authors(g, result.conflicts, merge, carol)
    assert (c.id, c.ours_author, c.ours_commit) == ("x", "bob", bob)
    assert (c.theirs_author, c.theirs_commit) == ("carol", carol)
