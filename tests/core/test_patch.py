"""Per-commit patches agree with comparing trees, for every pair of commits of a real history."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from testkit import digits_pngs, write_tree

from datagit import Repo
from datagit.core import patch
from datagit.core.diff import changes_between
from datagit.core.records import Record


def _key(changes: list) -> list[tuple]:
    return [(c.id, c.kind, c.old and c.old.to_dict(), c.new and c.new.to_dict()) for c in changes]


def test_composed_patches_equal_tree_diffs(tmp_repo: Repo) -> None:
    rng = random.Random(7)
    pngs = digits_pngs(80)
    root = tmp_repo.workdir / "train"
    write_tree(
        tmp_repo.workdir, {f"train/{t}/img_{i:03d}.png": p for i, (p, t) in enumerate(pngs[:40])}
    )
    commits = [tmp_repo.commit("base", all=True, annotator="ada").id]
    extra = 40
    for step in range(10):
        files = sorted(p for p in root.rglob("*.png"))
        for f in rng.sample(files, 3):  # re-label
            dest = root / str(rng.randrange(10)) / f.name
            dest.parent.mkdir(exist_ok=True)
            f.rename(dest)
        rng.choice(files).unlink(missing_ok=True)  # remove
        victim = rng.choice(sorted(root.rglob("*.png")))
        victim.write_bytes(pngs[rng.randrange(80)][0] + b"x")  # modify
        png, label = pngs[extra % 80]
        write_tree(tmp_repo.workdir, {f"train/{label}/new_{extra:03d}.png": png})  # add
        extra += 1
        annotator = rng.choice([None, "bob", "cy"])
        commits.append(tmp_repo.commit(f"step {step}", all=True, annotator=annotator).id)
    git = tmp_repo.git
    trees = {c: tmp_repo.datasets_at(c)["train"] for c in commits}
    for i, a in enumerate(commits):
        for b in commits[i:]:
            for old, new in ((a, b), (b, a)):
                via = patch.changes_between_commits(git, old, new, "train")
                assert via is not None, "a linear history always has patches"
                assert _key(via) == _key(changes_between(git, trees[old], trees[new]))


def test_root_commit_and_bulk_changes_fall_back(tmp_repo: Repo) -> None:
    pngs = digits_pngs(30)
    write_tree(tmp_repo.workdir, {f"train/{t}/a{i}.png": p for i, (p, t) in enumerate(pngs[:10])})
    first = tmp_repo.commit("root", all=True).id
    assert patch.commit_changes(tmp_repo.git, tmp_repo.git.commit(first), "train") is None
    write_tree(tmp_repo.workdir, {f"train/{t}/b{i}.png": p for i, (p, t) in enumerate(pngs[10:])})
    second = tmp_repo.commit("small", all=True)
    got = patch.commit_changes(tmp_repo.git, second, "train")
    assert got is not None and len(got) == 20


records = st.builds(
    Record,
    st.sampled_from(["a", "b", "c", "d"]),
    st.sampled_from(["cat", "dog"]),
    st.sampled_from(["h1", "h2"]),
    st.just(1),
)
states = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), records)


@settings(max_examples=200, deadline=None)
@given(states, states, states)
def test_compose_is_the_change_from_first_to_last(s0: dict, s1: dict, s2: dict) -> None:
    s0 = {k: Record(k, r.label, r.content, r.size) for k, r in s0.items()}
    s1 = {k: Record(k, r.label, r.content, r.size) for k, r in s1.items()}
    s2 = {k: Record(k, r.label, r.content, r.size) for k, r in s2.items()}

    def pairs(x: dict, y: dict) -> patch.Pairs:
        return {
            k: (x.get(k), y.get(k))
            for k in x.keys() | y.keys()
            if (x.get(k) and x[k].to_dict()) != (y.get(k) and y[k].to_dict())
        }

    composed = patch.compose(pairs(s0, s1), pairs(s1, s2))
    assert _key(patch.to_changes(composed)) == _key(patch.to_changes(pairs(s0, s2)))
    assert patch.decode(patch.encode(composed)).keys() == composed.keys()
