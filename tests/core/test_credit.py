"""credit: labels set, still standing and overturned, per author and per annotator."""

from __future__ import annotations

import tempfile
from pathlib import Path

from datagit.core.credit import credit
from datagit.core.manifest import write_dataset, write_root
from datagit.core.records import Record
from datagit.storage.git import GitStore, Signature

CONFIG = b'[datasets.train]\nlayout = "imagefolder"\npath = "train"\n'


def rec(i: str, label: str, annotator: str | None, size: int = 10) -> Record:
    return Record(i, label, f"{hash(i) & 0xFFFF:032x}", size, annotator)


def test_ledger_counts_each_contributor() -> None:
    git = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    t = 1_700_000_000

    def commit(records: list[Record], parents: list[str], author: str, n: int) -> str:
        tree = write_root(git, CONFIG, {"train": write_dataset(git, records)})
        sig = Signature(author, f"{author}@example.com", t + n * 100)
        return git.create_commit(tree, parents, f"c{n}\n", sig, sig)

    c1 = commit(
        [rec("a", "cat", "ann"), rec("b", "cat", "ann"), rec("c", "dog", "ann")], [], "ada", 1
    )
    c2 = commit(
        [rec("a", "dog", "ben"), rec("b", "cat", "ann"), rec("c", "dog", "ann")], [c1], "bo", 2
    )
    c3 = commit(
        [rec("a", "dog", "ben"), rec("b", "cat", "ann"), rec("d", "emu", None, 5)], [c2], "ada", 3
    )
    ledger = credit(git, c3, ["train"])
    ada, bo = ledger.authors["ada"], ledger.authors["bo"]
    assert (ada.commits, ada.examples_added, ada.labels_set) == (2, 4, 4)
    assert (ada.labels_standing, ada.labels_overturned, ada.content_bytes) == (2, 1, 35)
    assert (bo.labels_set, bo.labels_standing, bo.labels_overturned) == (1, 1, 0)
    ann, ben = ledger.annotators["ann"], ledger.annotators["ben"]
    assert (ann.labels_set, ann.labels_standing, ann.labels_overturned) == (3, 1, 1)
    assert (ben.labels_set, ben.labels_standing) == (1, 1)
    # an annotator's commits are those their work landed in (they were always 0)
    assert (ann.commits, ben.commits) == (1, 1)
    # a window admits only c2: bo's work, and the standing labels it set
    only_c2 = credit(git, c3, ["train"], lambda c: c.id == c2)
    assert set(only_c2.authors) == {"bo"} and only_c2.authors["bo"].labels_standing == 1
    assert ledger.to_dict()["authors"][0]["name"] == "ada"


def test_a_commit_touching_two_datasets_counts_once() -> None:
    """Regression (#14): a commit adding to train and eval was two commits in the ledger."""
    git = GitStore.init(Path(tempfile.mkdtemp()) / "g")
    config = CONFIG + b'[datasets.eval]\nlayout = "imagefolder"\npath = "eval"\n'
    sig = Signature("ada", "ada@example.com", 1_700_000_000)
    tree = write_root(
        git,
        config,
        {
            "train": write_dataset(git, [rec("a", "cat", None)]),
            "eval": write_dataset(git, [rec("b", "dog", None)]),
        },
    )
    c1 = git.create_commit(tree, [], "both\n", sig, sig)
    ledger = credit(git, c1, ["train", "eval"])
    assert ledger.authors["ada"].commits == 1
    assert ledger.authors["ada"].examples_added == 2
