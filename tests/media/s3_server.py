"""A real S3 endpoint for tests: moto's threaded server on a free loopback port, spoken to through `minio`.

moto accepts any credentials and does not check presigned signatures, expiry or POST-policy conditions:
tests assert the URLs and policies we issue, and use moto only to see that the bytes arrive.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from moto.server import ThreadedMotoServer

ACCESS_KEY = "huanzhi-test-access"
SECRET_KEY = "huanzhi-test-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto server; `endpoint` is what the service reaches, `public_endpoint` the same port by name."""

    host: str
    port: int
    _server: ThreadedMotoServer = field(repr=False)
    running: bool = True

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def public_endpoint(self) -> str:
        # Another name for the same socket, so tests can tell which endpoint a URL was signed for.
        return f"localhost:{self.port}"

    def stop(self) -> None:
        if self.running:
            self._server.stop()
            self.running = False


def start_s3_server() -> S3Server:
    """Start moto on 127.0.0.1 on a free port (quiet: werkzeug logs every request otherwise)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3Server(host=host, port=port, _server=server)


@contextmanager
def running_s3_server() -> Iterator[S3Server]:
    """A moto server for the duration of a `with` block (a pytest fixture body, typically)."""
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


def unique_bucket(prefix: str = "media") -> str:
    """A fresh bucket name, so tests sharing one server never see each other's objects."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
