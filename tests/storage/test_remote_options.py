"""Per-remote fsspec options against a real S3 server (moto on 127.0.0.1).

The server's endpoint reaches s3fs only through the remote's options: the
environment has credentials but no ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from datagit import RemoteError, Repo
from datagit.api import remotes
from datagit.api.maintenance import fsck


def _bare(path: Path) -> str:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    return str(path)


def _pngs(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in (root / "train").rglob("*.png"))


@pytest.fixture
def s3_no_env(s3, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The `s3` bucket, with the endpoint taken out of the environment."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return s3


@pytest.fixture
def small_repo(digits_repo: Repo) -> Repo:
    for png in sorted((digits_repo.workdir / "train").rglob("*.png"))[40:]:
        png.unlink()  # 40 real digits keep the S3 traffic short
    digits_repo.commit("forty digits", all=True)
    return digits_repo


def test_push_check_clone_fetch_with_the_endpoint_only_in_options(  # type: ignore[no-untyped-def]
    small_repo: Repo, s3_no_env, tmp_path: Path
) -> None:
    s3 = s3_no_env
    repo = small_repo
    git_url = _bare(tmp_path / "origin.git")
    options = {"endpoint_url": s3.server.endpoint, "anon": False}
    remotes.add_remote(repo, "origin", git_url, content=s3.url, options=options)

    s3.reset()
    pushed = remotes.push(repo, "origin")
    assert pushed.uploaded == len(remotes.needed_content(repo, [repo.head()])) > 0
    assert s3.counts()["PUT"] == pushed.uploaded  # it went to the moto server
    assert remotes.check_remote(repo, "origin") == []

    copy = remotes.clone(git_url, tmp_path / "copy", content=s3.url, options=options)
    assert copy.git.config_get_all("remote.origin.datagit-option")
    assert _pngs(copy.workdir) == _pngs(repo.workdir)
    assert fsck(copy).ok

    (repo.workdir / "train" / "3" / "extra.png").write_bytes(b"one more example")
    repo.commit("one more", all=True)
    remotes.push(repo, "origin")
    fetched = remotes.fetch(copy, "origin")
    assert fetched.downloaded == 1
    assert "refs/remotes/origin/main" in fetched.updated

    partial = remotes.clone(
        git_url, tmp_path / "partial", content=s3.url, options=options, no_content=True
    )
    reopened = Repo.open(partial.workdir)  # content on demand reads the stored options
    rec = next(r for r in reopened.records("train") if r.id == "extra.png")
    assert reopened.read(rec) == b"one more example"


def test_endpoint_nested_under_client_kwargs(small_repo: Repo, s3_no_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    git_url = _bare(tmp_path / "origin.git")
    remotes.add_remote(
        small_repo,
        "origin",
        git_url,
        content=s3_no_env.url,
        options={"client_kwargs.endpoint_url": s3_no_env.server.endpoint},
    )
    assert remotes.push(small_repo, "origin").uploaded > 0
    assert remotes.check_remote(small_repo, "origin", verify=False) == []


def test_credentials_as_options(  # type: ignore[no-untyped-def]
    small_repo: Repo, s3_no_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    git_url = _bare(tmp_path / "origin.git")
    options = {"endpoint_url": s3_no_env.server.endpoint, "key": "testing", "secret": "testing"}
    remotes.add_remote(small_repo, "origin", git_url, content=s3_no_env.url, options=options)
    assert remotes.push(small_repo, "origin").uploaded > 0
    cfg = remotes.get_remote(small_repo, "origin")
    assert remotes.masked(cfg.options) == {
        "endpoint_url": s3_no_env.server.endpoint,
        "key": "****",
        "secret": "****",
    }


def test_a_profile_named_as_an_option(  # type: ignore[no-untyped-def]
    small_repo: Repo, s3_no_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text("[team]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    git_url = _bare(tmp_path / "origin.git")
    options = {"endpoint_url": s3_no_env.server.endpoint, "profile": "team"}
    remotes.add_remote(small_repo, "origin", git_url, content=s3_no_env.url, options=options)
    assert remotes.push(small_repo, "origin").uploaded > 0


def test_a_mistyped_option_is_one_clear_error_and_moves_nothing(  # type: ignore[no-untyped-def]
    small_repo: Repo, s3_no_env, tmp_path: Path
) -> None:
    git_url = _bare(tmp_path / "origin.git")
    remotes.add_remote(
        small_repo,
        "origin",
        git_url,
        content=s3_no_env.url,
        options={"endpont_url": s3_no_env.server.endpoint},
    )
    refs = small_repo.git.refs()
    with pytest.raises(RemoteError, match="endpont_url") as err:
        remotes.push(small_repo, "origin")
    assert "\n" not in err.value.message
    assert err.value.hint and "remote list -v" in err.value.hint
    assert small_repo.git.refs() == refs


def test_the_cli_end_to_end(  # type: ignore[no-untyped-def]
    small_repo: Repo, s3_no_env, tmp_path: Path, run_cli: Callable
) -> None:
    s3 = s3_no_env
    git_url = _bare(tmp_path / "origin.git")
    endpoint = f"endpoint_url={s3.server.endpoint}"
    cli = run_cli(small_repo.workdir)
    cli("remote", "add", "origin", git_url, "--content", s3.url, "--option", endpoint,
        "-o", "anon=false", "-o", "secret=testing")  # fmt: skip
    listed = cli("remote", "list", "-v").output
    assert f"  {endpoint}\n" in listed and "  anon=false\n" in listed
    assert "  secret=****\n" in listed and "testing" not in listed
    cli("remote", "modify", "origin", "--unset", "secret")
    assert "secret" not in cli("remote", "-v").output
    assert "uploaded" in cli("push").output
    assert "remote origin: ok" in cli("remote", "check", "origin").output

    out = run_cli(tmp_path)("clone", git_url, "copy", "--content", s3.url, "-o", endpoint).output
    assert "Cloned into" in out
    copy = run_cli(tmp_path / "copy")
    rows = json.loads(copy("remote", "list", "-v", "--json").output)
    assert rows[0]["options"] == {"endpoint_url": s3.server.endpoint}

    (small_repo.workdir / "train" / "5" / "new.png").write_bytes(b"new example bytes")
    cli("commit", "-a", "-m", "new")
    cli("push")
    assert "1 objects downloaded" in copy("fetch").output

    copy("remote", "modify", "origin", "endpoint_url", "http://127.0.0.1:9")
    r = copy("remote", "check", ok=False)
    assert r.exit_code != 0
    assert r.stderr.splitlines()[0].startswith("error: content remote s3://")
    assert "http://127.0.0.1:9/" in r.stderr.splitlines()[0]  # the option is what it used
    assert r.stderr.splitlines()[1].startswith("hint: ")
