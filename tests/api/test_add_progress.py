"""`add` reports progress per file (one `datagit.progress` protocol), quiet off a terminal."""

from __future__ import annotations

import subprocess
import sys

import pytest

from datagit import Repo
from datagit.progress import Event


def _phase(events: list[Event], phase: str) -> list[Event]:
    return [e for e in events if e.phase == phase]


@pytest.mark.parametrize("forked", [False, True])
def test_adding_an_image_folder_counts_every_file(
    digits_repo: Repo, monkeypatch: pytest.MonkeyPatch, forked: bool
) -> None:
    if forked:  # the helper process takes half the files: they are counted all the same
        monkeypatch.setenv("DATAGIT_PARALLEL_MIN", "50")
    events: list[Event] = []
    digits_repo.add(None, progress=events.append)
    adding = _phase(events, "adding train")
    assert adding[0] == Event("adding train", 0, 300, "files")
    assert adding[-1].finished and adding[-1].done == 300
    dones = [e.done for e in adding]
    assert dones == sorted(dones) and len(set(dones)) > 100  # per file, not per dataset
    assert all(e.unit == "files" and e.total == 300 for e in adding)


def test_adding_paths_counts_the_files_they_name(digits_repo: Repo) -> None:
    label = sorted(p.name for p in (digits_repo.workdir / "train").iterdir())[0]
    n = len(list((digits_repo.workdir / "train" / label).iterdir()))
    events: list[Event] = []
    digits_repo.add([str(digits_repo.workdir / "train" / label)], progress=events.append)
    adding = _phase(events, "adding train")
    assert adding[0].total == n and adding[-1].finished and adding[-1].done == n


def test_an_unchanged_dataset_reports_no_file_phase(digits_repo: Repo) -> None:
    digits_repo.commit("digits", all=True)
    events: list[Event] = []
    digits_repo.add(None, progress=events.append)  # the snapshot answers: nothing is read
    assert _phase(events, "adding train") == []


def test_add_is_silent_when_stderr_is_not_a_terminal(digits_repo: Repo) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "datagit", "add", "train"],
        cwd=digits_repo.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert r.stderr == ""
