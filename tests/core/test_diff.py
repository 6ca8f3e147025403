"""diff: applying diff(A, B) to A gives B; only differing lines are parsed; renames pair up."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datagit.core.changes import compare_trees
from datagit.core.diff import Filter, ShardLines, apply, build, changes_between, label_key
from datagit.core.manifest import DatasetTree, write_dataset
from datagit.core.records import Record
from datagit.storage.git import GitStore

LABELS = ["cat", "dog", "bird", 3, None, ["a", 1]]
_GIT: GitStore | None = None


def git() -> GitStore:
    """One bare repository for all examples: trees are content-addressed, so sharing is safe."""
    global _GIT
    if _GIT is None:
        _GIT = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    return _GIT


def rec(i: int | str, label: object, content: int, annotator: str | None = None) -> Record:
    return Record(str(i), label, f"{content:032x}", content, annotator)


def view(records: dict[str, Record]) -> dict[str, tuple]:
    return {i: (label_key(r.label), r.content, r.fields) for i, r in records.items()}


record_maps = st.dictionaries(
    st.integers(0, 400).map(lambda i: f"img_{i:04d}.png"),
    st.tuples(st.sampled_from(LABELS), st.integers(0, 40), st.sampled_from([None, "al", "bo"])),
    max_size=120,
).map(lambda d: {i: rec(i, lab, c, a) for i, (lab, c, a) in d.items()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=record_maps, b=record_maps)
def test_diff_applied_to_a_gives_b(a: dict[str, Record], b: dict[str, Record]) -> None:
    g = git()
    ta, tb = write_dataset(g, a.values()), write_dataset(g, b.values())
    d = build("train", changes_between(g, ta, tb))
    assert view(apply(a, d)) == view(b)
    # the line-level diff agrees with the lead's whole-shard compare
    assert [(c.id, c.kind) for c in changes_between(g, ta, tb)] == [
        (c.id, c.kind) for c in compare_trees(g, ta, tb)
    ]


@settings(max_examples=30, deadline=None)
@given(base=record_maps, data=st.data())
def test_small_edits_of_a_shared_base(base: dict[str, Record], data: st.DataObject) -> None:
    """Edits of a common base: relabels show as relabels with the right transition counts."""
    g = git()
    ids = sorted(base)
    flip = data.draw(st.lists(st.sampled_from(ids), unique=True) if ids else st.just([]))
    new = dict(base)
    for i in flip:
        new[i] = rec(i, "zebra", int(base[i].content, 16))
    d = build(
        "t", changes_between(g, write_dataset(g, base.values()), write_dataset(g, new.values()))
    )
    moved = [i for i in flip if base[i].label != "zebra"]
    assert sorted(c.id for c in d.relabeled) == sorted(moved)
    assert sum(n for _, to, n in d.transitions()) == len(moved)
    assert d.label_deltas().get("zebra", 0) == len(moved)


def test_rename_is_same_content_under_new_id() -> None:
    g = git()
    a = {"x.png": rec("x.png", "cat", 7), "y.png": rec("y.png", "dog", 8)}
    b = {"z.png": rec("z.png", "cat", 7), "y.png": rec("y.png", "dog", 8)}
    d = build("t", changes_between(g, write_dataset(g, a.values()), write_dataset(g, b.values())))
    assert [(r.old.id, r.new.id) for r in d.renamed] == [("x.png", "z.png")]
    assert not d.added and not d.removed
    assert d.summary()["renamed"] == 1


def test_fanout_change_falls_back_and_stays_correct() -> None:
    g = git()
    a = {f"{i}": rec(i, "cat", i) for i in range(100)}
    b = {f"{i}": rec(i, "dog" if i % 7 == 0 else "cat", i) for i in range(700)}
    ta, tb = write_dataset(g, a.values()), write_dataset(g, b.values())
    assert DatasetTree(g, ta).fanout != DatasetTree(g, tb).fanout
    d = build("t", changes_between(g, ta, tb))
    assert view(apply(a, d)) == view(b)


def test_one_relabel_reads_one_shard_pair() -> None:
    g = git()
    a = {f"{i}": rec(i, "cat", i) for i in range(5000)}
    ta = write_dataset(g, a.values())
    b = dict(a)
    b["42"] = rec(42, "dog", 42)
    tb = write_dataset(g, b.values(), base=ta)
    lines = ShardLines(g)
    changes = changes_between(g, ta, tb, lines)
    assert [(c.id, c.kind) for c in changes] == [("42", "relabeled")]
    assert len(lines._cache) == 2  # one old shard and one new, out of 16 per side


def test_filters_by_label_id_and_annotator() -> None:
    g = git()
    a = {"a1": rec("a1", "cat", 1), "b2": rec("b2", "cat", 2), "c3": rec("c3", "dog", 3)}
    b = {
        "a1": rec("a1", "dog", 1, "al"),
        "b2": rec("b2", "bird", 2, "bo"),
        "c3": rec("c3", "dog", 3),
        "d4": rec("d4", "cat", 4, "al"),
    }
    d = build("t", changes_between(g, write_dataset(g, a.values()), write_dataset(g, b.values())))
    assert [c.id for c in d.filtered(Filter(label="bird")).relabeled] == ["b2"]
    assert [r.id for r in d.filtered(Filter(id_glob="d*")).added] == ["d4"]
    only_al = d.filtered(Filter(annotator="al"))
    assert [c.id for c in only_al.relabeled] == ["a1"] and [r.id for r in only_al.added] == ["d4"]
    assert d.transitions() == [("cat", "bird", 1), ("cat", "dog", 1)]
