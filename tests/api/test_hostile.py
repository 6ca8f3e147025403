"""A repository's contents are untrusted: crafted commits delivered by clone, fetch,
pull, merge and local checkout are refused with a one-line error, before any ref
moves, and nothing is written outside a dataset's folder or into `.datagit`."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import digits_pngs, write_tree

from datagit import DatagitError, Repo
from datagit.api import history, mergestate, remotes, workspace
from datagit.core import manifest
from datagit.core.config import Config, DatasetConfig
from datagit.core.records import Record
from datagit.storage.git import Signature

Mutation = Callable[[Config, dict[str, list[Record]]], None]


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def craft(repo: Repo, mutate: Mutation, ref: str = "refs/heads/main") -> str:
    """A commit on top of ``ref`` whose config and records ``mutate`` rewrote, written
    with the storage layer (no datagit check runs), and ``ref`` moved to it."""
    parent = repo.git.ref(ref)
    assert parent is not None
    cfg_bytes, trees = manifest.read_root(repo.git, repo.git.commit(parent).tree)
    config = Config.parse(cfg_bytes)
    records = {n: list(manifest.DatasetTree(repo.git, t).records()) for n, t in trees.items()}
    mutate(config, records)
    raw = dict(config.extra)
    raw["datasets"] = {n: d.to_toml() for n, d in config.datasets.items()}
    import tomli_w

    datasets = {n: manifest.write_dataset(repo.git, recs) for n, recs in records.items()}
    tree = manifest.write_root(repo.git, tomli_w.dumps(raw).encode(), datasets)
    sig = Signature("Mallory", "m@example.com", 1_700_000_000)
    oid = repo.git.create_commit(tree, [parent], "innocent", sig, sig)
    repo.git.update_ref(ref, oid)
    return oid


def _one(records: dict[str, list[Record]]) -> Record:
    return records["train"][0]


def _relabel(label: object, example_id: str | None = None) -> Mutation:
    def mutate(config: Config, records: dict[str, list[Record]]) -> None:
        first = _one(records)
        records["train"].append(replace(first, id=example_id or first.id, label=label))
        if example_id is None:
            records["train"].remove(first)

    return mutate


def _table(path: str, source: str | None) -> Mutation:
    def mutate(config: Config, records: dict[str, list[Record]]) -> None:
        config.datasets["t"] = DatasetConfig("t", "table", path, file="file")
        first = _one(records)
        records["t"] = [Record("r1", "cat", first.content, first.size, source=source)]

    return mutate


def _dataset_at(path: str) -> Mutation:
    def mutate(config: Config, records: dict[str, list[Record]]) -> None:
        config.datasets["evil"] = DatasetConfig("evil", "imagefolder", path)
        records["evil"] = [replace(_one(records), id="HEAD", label="x")]

    return mutate


def _content(key: str) -> Mutation:
    def mutate(config: Config, records: dict[str, list[Record]]) -> None:
        records["train"].append(replace(_one(records), id="new.png", content=key))

    return mutate


CASES: dict[str, Mutation] = {
    "label ../.datagit, id config": _relabel("../.datagit", "config"),
    "label ../.datagit/refs/heads, id main": _relabel("../.datagit/refs/heads", "main"),
    "id ../../x": _relabel("cat", "../../x"),
    "absolute id": _relabel("cat", "/tmp/x"),
    "id with NUL": _relabel("cat", "a\0b"),
    "id with a control char": _relabel("cat", "a\x1bb"),
    "label .git": _relabel(".git", "config"),
    "label .DataGit (case)": _relabel(".DataGit", "config"),
    "label full-width .datagit (NFKC)": _relabel("\uff0edatagit", "config"),
    "id through .GIT": _relabel("cat", "sub/.GIT/config"),
    "id through a zero-width .datagit": _relabel("cat", "a/.data\u200cgit/HEAD"),
    "label with a slash": _relabel("a/b", "x.png"),
    "empty label": _relabel("", "x.png"),
    "non-string label": _relabel({"a": 1}, "x.png"),
    "hidden id": _relabel("cat", ".x.png"),
    "table source .datagit/HEAD": _table("t.csv", ".datagit/HEAD"),
    "table source ../outside": _table("sub/t.csv", "sub/../../x"),
    "table source outside its folder": _table("sub/t.csv", "other/x.png"),
    "table dataset at .datagit/HEAD": _table(".datagit/HEAD", None),
    "imagefolder dataset at .datagit": _dataset_at(".datagit"),
    "dataset at .": _dataset_at("."),
    "dataset inside another": _dataset_at("train/1"),
    "content address as a path": _content("../../../../etc/passwd"),
}


def _state(repo: Repo) -> dict[str, bytes]:
    """Every workspace file outside the datasets, and .datagit's config, HEAD and refs."""
    out = {}
    for p in sorted(repo.workdir.rglob("*")):
        rel = p.relative_to(repo.workdir).as_posix()
        if p.is_file() and not rel.startswith((".datagit/", "train/")):
            out[rel] = p.read_bytes()
    meta = repo.workdir / ".datagit"
    for name in ("config", "HEAD", "packed-refs", "STAGE"):
        if (meta / name).exists():
            out[f".datagit/{name}"] = (meta / name).read_bytes()
    for p in sorted((meta / "refs").rglob("*")):
        if p.is_file() and "datagit/fetching" not in p.as_posix():
            out[p.relative_to(meta).as_posix()] = p.read_bytes()
    return out


def _train_files(repo: Repo) -> dict[str, bytes]:
    return {
        p.relative_to(repo.workdir).as_posix(): p.read_bytes()
        for p in sorted((repo.workdir / "train").rglob("*"))
        if p.is_file()
    }


def _refused(exc: pytest.ExceptionInfo[DatagitError]) -> None:
    assert "\n" not in str(exc.value), str(exc.value)


@pytest.fixture
def small(tmp_repo: Repo) -> Repo:
    """tmp_repo with 20 real digits images written (not yet committed): clones stay quick."""
    files = {f"train/{t}/img_{i:04d}.png": png for i, (png, t) in enumerate(digits_pngs(20))}
    write_tree(tmp_repo.workdir, files)
    return tmp_repo


@pytest.fixture
def attacker(small: Repo, tmp_path: Path) -> tuple[Repo, str]:
    small.commit("digits", all=True)
    url = _bare(tmp_path / "origin.git")
    remotes.add_remote(small, "origin", url)
    remotes.push(small, "origin")
    return small, url


def _publish(attacker: Repo, url: str, mutate: Mutation) -> str:
    """The crafted commit lands on the remote by plain git: its content is the digits'."""
    oid = craft(attacker, mutate)
    git_dir = str(attacker.workdir / ".datagit")
    subprocess.run(["git", "--git-dir", git_dir, "push", "-q", "-f", url, "main"], check=True)
    return oid


@pytest.mark.parametrize("case", sorted(CASES))
def test_clone_of_a_crafted_commit_is_refused_and_leaves_nothing(
    attacker: tuple[Repo, str], tmp_path: Path, case: str
) -> None:
    repo, url = attacker
    _publish(repo, url, CASES[case])
    target = tmp_path / "victim"
    with pytest.raises(DatagitError) as exc:
        remotes.clone(url, target)
    _refused(exc)
    assert not target.exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_fetch_and_pull_of_a_crafted_commit_move_no_ref(
    attacker: tuple[Repo, str], tmp_path: Path, case: str
) -> None:
    repo, url = attacker
    victim = remotes.clone(url, tmp_path / "victim")
    before, files = _state(victim), _train_files(victim)
    _publish(repo, url, CASES[case])
    for op in (lambda: remotes.fetch(victim, "origin"), lambda: remotes.pull(victim)):
        with pytest.raises(DatagitError) as exc:
            op()
        _refused(exc)
        assert _state(victim) == before
        assert _train_files(victim) == files
    assert victim.status().clean


@pytest.mark.parametrize(
    "case",
    [
        "label ../.datagit, id config",
        "label ../.datagit/refs/heads, id main",
        "id ../../x",
        "label .DataGit (case)",
        "table source .datagit/HEAD",
        "table dataset at .datagit/HEAD",
        "dataset inside another",
        "content address as a path",
    ],
)
def test_local_checkout_and_merge_of_a_crafted_branch_are_refused(small: Repo, case: str) -> None:
    repo = small
    repo.commit("digits", all=True)
    main = repo.head()
    assert main is not None
    repo.git.update_ref("refs/heads/evil", main)
    craft(repo, CASES[case], "refs/heads/evil")
    attempts: list[Callable[[], object]] = [
        lambda: workspace.checkout(repo, "evil"),
        lambda: workspace.checkout(repo, "evil", force=True),
        lambda: history.merge(repo, "evil"),
    ]
    # a diverged merge (not a fast-forward) goes through the three-way path
    (repo.workdir / "train" / "0" / "extra.png").write_bytes(b"x")
    repo.commit("extra", all=True)
    before, files = _state(repo), _train_files(repo)
    for attempt in attempts:
        with pytest.raises(DatagitError) as exc:
            attempt()
        _refused(exc)
        assert _state(repo) == before
        assert _train_files(repo) == files
    assert repo.status().clean
    assert mergestate.read_merge_state(repo) is None


def test_fast_forward_merge_of_a_crafted_branch_is_refused(small: Repo) -> None:
    repo = small
    repo.commit("digits", all=True)
    main = repo.head()
    assert main is not None
    repo.git.update_ref("refs/heads/evil", main)
    craft(repo, CASES["label ../.datagit, id config"], "refs/heads/evil")
    before = _state(repo)
    with pytest.raises(DatagitError, match=r"\.\./\.datagit"):
        history.merge(repo, "evil")
    assert _state(repo) == before and repo.head() == main


def test_resolve_refuses_a_label_that_leaves_the_dataset(digits_repo: Repo) -> None:
    repo = digits_repo
    repo.commit("digits", all=True)
    workspace.switch(repo, "other", create=True)
    src = repo.workdir / "train" / "0" / "img_0000.png"
    os.replace(src, repo.workdir / "train" / "1" / "img_0000.png")
    repo.commit("relabel to 1", all=True)
    workspace.switch(repo, "main")
    (repo.workdir / "train" / "2").mkdir(exist_ok=True)
    os.replace(src, repo.workdir / "train" / "2" / "img_0000.png")
    repo.commit("relabel to 2", all=True)
    outcome = history.merge(repo, "other")
    assert outcome.kind == "conflicts"
    stage = repo.stage_tree()
    with pytest.raises(DatagitError, match="label") as exc:
        history.resolve(repo, label="../.datagit/refs/heads", has_label=True)
    _refused(exc)
    assert repo.stage_tree() == stage
    assert not (repo.workdir / ".datagit" / "refs" / "heads" / "img_0000.png").exists()


def test_dataset_add_refuses_metadata_root_and_nested_paths(tmp_repo: Repo) -> None:
    for path in (".datagit", ".datagit/refs", ".", ".GIT", "train/1", "a/../b", "/abs"):
        before = (tmp_repo.workdir / "datagit.toml").read_bytes()
        with pytest.raises(DatagitError) as exc:
            tmp_repo.add_dataset(DatasetConfig("x", "imagefolder", path))
        _refused(exc)
        assert (tmp_repo.workdir / "datagit.toml").read_bytes() == before


def test_a_symlink_into_datagit_is_refused_as_content(digits_repo: Repo) -> None:
    link = digits_repo.workdir / "train" / "0" / "secrets.png"
    link.symlink_to(digits_repo.workdir / ".datagit" / "config")
    with pytest.raises(DatagitError, match=r"symlink into \.datagit") as exc:
        digits_repo.add()
    _refused(exc)
    assert digits_repo.stage_tree() is None
    link.unlink()
    folder = digits_repo.workdir / "train" / "meta"
    folder.symlink_to(digits_repo.workdir / ".datagit")
    with pytest.raises(DatagitError, match=r"symlink into \.datagit"):
        digits_repo.status()


# -- property: every path-like id and label is refused or round-trips ---------------------
_PIECES = st.sampled_from(
    [
        "a",
        "B",
        "é",
        ".",
        "..",
        "/",
        "\\",
        "\0",
        "\n",
        "\x7f",
        " ",
        ":",
        "~1",
        "git",
        "datagit",
        "\uff0e",
        "\u200c",
        "GIT",
        ".png",
        "-",
        "İ",
        "ß",
        "\u0130",
        "ﬁ",
    ]
)
_NAMES = st.lists(_PIECES, min_size=1, max_size=6).map("".join)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(label=_NAMES, example_id=_NAMES)
def test_path_like_ids_and_labels_are_refused_or_round_trip(
    attacker: tuple[Repo, str],
    tmp_path_factory: pytest.TempPathFactory,
    label: str,
    example_id: str,
) -> None:
    repo, url = attacker
    base = repo.git.ref("refs/heads/main")
    assert base is not None
    data = _train_files(repo)
    # the probe record reuses a stored image's bytes
    first = next(iter(manifest.DatasetTree(repo.git, repo.datasets_at("HEAD")["train"]).records()))

    def mutate(config: Config, records: dict[str, list[Record]]) -> None:
        records["train"] = [r for r in records["train"] if r.id != example_id]
        records["train"].append(replace(first, id=example_id, label=label))

    repo.git.update_ref("refs/heads/probe", base)
    craft(repo, mutate, "refs/heads/probe")
    before = _state(repo)
    try:
        workspace.checkout(repo, "probe")
    except DatagitError as exc:
        assert "\n" not in str(exc)
        assert _state(repo) == before and _train_files(repo) == data
        return
    try:
        path = repo.workdir / "train" / label / example_id
        assert path.is_file() and path.read_bytes() == repo.read(first)
        assert (repo.workdir / "train").resolve() in path.resolve().parents
        assert repo.status().clean  # the workspace reads back as the same records
        subprocess.run(
            ["git", "--git-dir", str(repo.workdir / ".datagit"), "push", "-q", "-f", url, "probe"],
            check=True,
        )
        clone = remotes.clone(url, tmp_path_factory.mktemp("c") / "v", branch="probe")
        cloned = clone.workdir / "train" / label / example_id
        assert cloned.read_bytes() == path.read_bytes()
        assert clone.status().clean
        clone.close()
    finally:
        workspace.checkout(repo, "main", force=True)
        repo.git.delete_ref("refs/heads/probe")
    assert _train_files(repo) == data
