"""`remote modify` and `remote remove` keep datagit.toml's [remotes.NAME] in step (#14)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from datagit import Repo
from datagit.core.config import Config


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def _shared(repo: Repo) -> dict:
    return Config.load(repo.workdir / "datagit.toml").extra.get("remotes", {})


def _state(repo: Repo) -> tuple[bytes, bytes]:
    return (repo.workdir / "datagit.toml").read_bytes(), (repo.dotdir / "config").read_bytes()


@pytest.fixture
def cli(digits_repo: Repo, tmp_path: Path, run_cli: Callable) -> Callable:  # type: ignore[type-arg]
    """origin shares its content URL (one option); mine is --local."""
    run = run_cli(digits_repo.workdir)
    url = _bare(tmp_path / "o.git")
    run("remote", "add", "origin", url, "--content", str(tmp_path / "bytes"),
        "-o", "auto_mkdir=true")  # fmt: skip
    run("remote", "add", "mine", url, "--content", str(tmp_path / "mine"), "--local")
    return run  # type: ignore[no-any-return]


def test_modify_and_unset_follow_into_datagit_toml_without_secrets(
    cli: Callable,
    digits_repo: Repo,  # type: ignore[type-arg]
) -> None:
    assert _shared(digits_repo)["origin"]["options"] == {"auto_mkdir": "true"}
    cli("remote", "modify", "origin", "endpoint_url", "http://127.0.0.1:9000")
    assert _shared(digits_repo)["origin"]["options"] == {
        "auto_mkdir": "true",
        "endpoint_url": "http://127.0.0.1:9000",
    }
    cli("remote", "modify", "origin", "secret_access_key", "s3cr3t")
    assert "s3cr3t" not in (digits_repo.workdir / "datagit.toml").read_text()
    assert "secret_access_key" not in _shared(digits_repo)["origin"]["options"]
    cli("remote", "modify", "origin", "--unset", "auto_mkdir")
    cli("remote", "modify", "origin", "--unset", "endpoint_url")
    assert "options" not in _shared(digits_repo)["origin"]  # the URL is still shared
    assert _shared(digits_repo)["origin"]["content"].endswith("bytes")
    cli("remote", "modify", "mine", "anon", "true")  # --local: nothing to keep in step
    assert list(_shared(digits_repo)) == ["origin"]


def test_remove_drops_the_shared_entry_and_leaves_others(
    cli: Callable,
    digits_repo: Repo,  # type: ignore[type-arg]
) -> None:
    cli("remote", "remove", "mine")
    assert list(_shared(digits_repo)) == ["origin"]
    cli("remote", "remove", "origin")
    assert "remotes" not in Config.load(digits_repo.workdir / "datagit.toml").extra
    assert digits_repo.git.config_get("remote.origin.url") is None
    assert cli("status").exit_code == 0


def test_bad_modify_and_remove_change_neither_file(
    cli: Callable,
    digits_repo: Repo,  # type: ignore[type-arg]
) -> None:
    before = _state(digits_repo)
    for args, says in (
        (("remote", "modify", "nosuch", "anon", "true"), "no remote named 'nosuch'"),
        (("remote", "remove", "nosuch"), "no remote named 'nosuch'"),
        (("remote", "modify", "origin", "--unset", "nosuch"), "has no option 'nosuch'"),
        (("remote", "modify", "origin", "anon"), "needs a VALUE"),
    ):
        r = cli(*args, ok=False)
        assert r.exit_code != 0 and says in r.stderr, (args, r.stderr)
        assert r.stderr.startswith("error: ") and len(r.stderr.splitlines()) <= 2
        assert _state(digits_repo) == before
    toml = digits_repo.workdir / "datagit.toml"
    toml.write_text(toml.read_text() + "\n[remotes\n")  # broken by hand
    broken = _state(digits_repo)
    for args in (("remote", "modify", "origin", "anon", "true"), ("remote", "remove", "origin")):
        r = cli(*args, ok=False)
        assert r.exit_code != 0 and "datagit.toml" in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) <= 2 and _state(digits_repo) == broken
