"""`storage.libgit`: the CLI imports pygit2 without parsing the CA bundle, hands it
over before a remote is reached, and leaves a library user's process as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import json, os, ssl, sys
if sys.argv[1] == "cli":
    from datagit import process
    process.own()
from datagit.storage import git  # the first import of pygit2
from datagit.storage.libgit import pygit2, tls_ready
out = {"at_import": pygit2.settings.ssl_cert_file, "env": os.environ.get("SSL_CERT_FILE")}
tls_ready()
out["after"] = pygit2.settings.ssl_cert_file
out["default"] = ssl.get_default_verify_paths().cafile
print(json.dumps(out))
"""


def _probe(mode: str, env: dict[str, str]) -> dict[str, str | None]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_cli_defers_the_ca_bundle_until_a_remote_needs_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    got = _probe("cli", env)
    if got["default"] is None:
        pytest.skip("no CA file on this machine: nothing to defer or hand over")
    assert got["at_import"] is None and got["env"] is None  # nothing leaked to children
    assert got["after"] == got["default"]


def test_a_users_ssl_cert_file_is_restored_and_honoured(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ssl

    bundle = ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().openssl_cafile
    if not bundle or not os.path.isfile(bundle):
        pytest.skip("no CA bundle on this machine to copy")
    mine = tmp_path / "my-ca.pem"
    mine.write_bytes(Path(bundle).read_bytes())
    got = _probe("cli", {**os.environ, "SSL_CERT_FILE": str(mine)})
    assert got["env"] == str(mine)
    assert got["at_import"] is None and got["after"] == str(mine)


def test_a_library_user_gets_pygit2_as_it_is() -> None:
    got = _probe("library", dict(os.environ))
    assert got["at_import"] == got["default"]
