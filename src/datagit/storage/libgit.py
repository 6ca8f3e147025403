"""pygit2, imported by the `datagit` command without loading the system's CA bundle.

`import pygit2` hands libgit2 the CA file Python's `ssl` would use, and OpenSSL
parses all of it there and then: 7–20 ms of every command, each of which (but
one) only reads and writes a local repository. When the CLI owns the process
(`datagit.process`, I8), the file is hidden from that one call (libgit2 keeps
the CA folder, which OpenSSL reads lazily) and handed over by `tls_ready`
before the first network transfer, so an ``https://`` git remote verifies its
server exactly as before. A library user's process gets pygit2 as it is.

Every storage module imports pygit2 through here (`storage.git` first), so the
choice is made once, at the first import.
"""

from __future__ import annotations

import os
import ssl
import sys

from datagit import process

_deferred = False

if (
    "pygit2" not in sys.modules
    and process.owned()
    and ssl.get_default_verify_paths().capath  # libgit2 needs a CA file or folder
):
    _given = os.environ.get("SSL_CERT_FILE")  # the user's choice: honoured by `tls_ready`
    os.environ["SSL_CERT_FILE"] = os.path.join(os.sep, "nonexistent", "datagit-ca")
    try:
        import pygit2
    finally:
        if _given is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = _given
    _deferred = True
else:
    import pygit2

__all__ = ["pygit2", "tls_ready"]


def tls_ready() -> None:
    """Give libgit2 the CA bundle the import skipped (a remote is about to be reached)."""
    global _deferred
    if _deferred:
        paths = ssl.get_default_verify_paths()
        pygit2.settings.set_ssl_cert_locations(paths.cafile, paths.capath)
        _deferred = False
