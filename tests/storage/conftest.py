"""A real S3-compatible server (moto) on 127.0.0.1, with a count of the requests it served."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest


class CountingS3Server:
    """moto's S3 behind a WSGI wrapper that counts requests by (method, kind)."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        self.requests: Counter[str] = Counter()
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, self._counting(app), threaded=True, request_handler=Quiet
        )
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _counting(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            self.requests[_kind(environ)] += 1
            return app(environ, start_response)

        return wrapped

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


def _kind(environ: dict[str, Any]) -> str:
    """``LIST``, ``PUT``, ``GET``, ``HEAD``, … — listing is a GET with ``list-type``/no key."""
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "").strip("/")
    query = environ.get("QUERY_STRING", "")
    if method == "GET" and ("/" not in path or "list-type" in query):
        return "LIST"
    return method


@dataclass
class S3:
    """One empty bucket on the running server, and helpers to read its request counts."""

    server: CountingS3Server
    bucket: str
    marks: Counter[str] = field(default_factory=Counter)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/content"

    def reset(self) -> None:
        self.marks = Counter(self.server.requests)

    def counts(self) -> Counter[str]:
        """Requests since the last `reset`, by kind."""
        return self.server.requests - self.marks


@pytest.fixture(scope="session")
def s3_server() -> Iterator[CountingS3Server]:
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    server = CountingS3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: CountingS3Server, monkeypatch: pytest.MonkeyPatch) -> S3:
    """Dummy credentials and the local endpoint in the environment, and a fresh bucket."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    import boto3

    bucket = f"dg-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server.endpoint).create_bucket(Bucket=bucket)
    handle = S3(s3_server, bucket)
    handle.reset()
    return handle
