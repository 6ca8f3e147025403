"""The S3 server fixtures of tests/storage, for the api tests that share data through S3.

Loaded from the file rather than imported by name: every tests folder's
conftest module is called ``conftest``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "storage_s3_fixtures", Path(__file__).parent.parent / "storage" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_s3 = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _s3  # dataclasses look their module up while it loads
_spec.loader.exec_module(_s3)

s3_server = _s3.s3_server
s3 = _s3.s3
