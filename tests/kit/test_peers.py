"""The kit's service-to-service client against a real HTTP server on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anyio.to_thread
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.kit import peers as peers_module
from services.kit.context import request_id_var
from services.kit.errors import (
    BadGateway,
    GatewayTimeout,
    ServiceUnavailable,
    install_problem_handlers,
)
from services.kit.media import media_request
from services.kit.peers import ClientCredentials, Peer, new_http_client
from services.kit.settings import DEV_SERVICE_SECRET
from tests.support.ports import closed_port

pytestmark = pytest.mark.asyncio

TIMEOUT = 0.3


@dataclass
class FakePeer:
    """A stand-in for the issuer (token endpoint) and for a peer service, recording what it received."""

    url: str = ""
    expires_in: int = 300
    token_forms: list[dict[str, str]] = field(default_factory=list)
    token_request_ids: list[str | None] = field(default_factory=list)
    peer_calls: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.expires_in = 300
        self.token_forms.clear()
        self.token_request_ids.clear()
        self.peer_calls = 0


def _fake_app(state: FakePeer) -> Starlette:
    async def token(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        state.token_forms.append(form)
        state.token_request_ids.append(request.headers.get("x-request-id"))
        if form.get("client_secret") != DEV_SERVICE_SECRET:
            return JSONResponse({"code": "invalid_credentials"}, status_code=401)
        return JSONResponse(
            {
                "access_token": f"tok-{len(state.token_forms)}",
                "token_type": "bearer",
                "expires_in": state.expires_in,
            }
        )

    async def echo(request: Request) -> Response:
        state.peer_calls += 1
        return JSONResponse(
            {
                "authorization": request.headers.get("authorization"),
                "x_request_id": request.headers.get("x-request-id"),
            }
        )

    async def boom(request: Request) -> Response:
        state.peer_calls += 1
        return JSONResponse({"code": "internal_error"}, status_code=500)

    async def missing(request: Request) -> Response:
        return JSONResponse({"code": "not_found"}, status_code=404)

    async def hang(request: Request) -> Response:
        # Longer than any client timeout here; released at teardown so the server can stop.
        await anyio.to_thread.run_sync(state.release.wait, 10)
        return JSONResponse({})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def picky(request: Request) -> Response:
        # Accepts only the second token the issuer handed out: the first "was signed by a retired key".
        state.peer_calls += 1
        if request.headers.get("authorization") != "Bearer tok-2":
            return JSONResponse({"code": "invalid_token"}, status_code=401)
        return JSONResponse({"ok": True})

    async def token_broken(request: Request) -> Response:
        return JSONResponse({"code": "internal_error"}, status_code=500)

    async def token_html(request: Request) -> Response:
        return Response("<html>502 from a proxy, dressed as 200</html>", media_type="text/html")

    return Starlette(
        routes=[
            Route("/token", token, methods=["POST"]),
            Route("/echo", echo),
            Route("/boom", boom),
            Route("/missing", missing),
            Route("/hang", hang),
            Route("/hang/healthz", hang),
            Route("/healthz", healthz),
            Route("/picky", picky),
            Route("/token-broken", token_broken, methods=["POST"]),
            Route("/token-html", token_html, methods=["POST"]),
        ]
    )


def _closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused at once."""
    return f"http://127.0.0.1:{closed_port()}"


@pytest.fixture(scope="module")
def server() -> Iterator[FakePeer]:
    """The fake peer served by uvicorn in a thread, so client timeouts are real network timeouts."""
    state = FakePeer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(_fake_app(state), log_level="warning", access_log=False, lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "fake peer did not start"
        time.sleep(0.01)
    yield state
    state.release.set()
    uv.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.fixture
def fake(server: FakePeer) -> FakePeer:
    server.reset()
    return server


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with new_http_client(TIMEOUT) as client:
        yield client


def credentials(
    http: httpx.AsyncClient, fake: FakePeer, secret: str = DEV_SERVICE_SECRET
) -> ClientCredentials:
    return ClientCredentials(http, fake.url + "/token", "svc-scoring", secret)


class FakeClock:
    """Stands in for the `time` module inside kit.peers, so token expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def namespace(self) -> SimpleNamespace:
        return SimpleNamespace(monotonic=lambda: self.now)


async def test_peer_carries_the_service_token_and_the_current_request_id(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    peer = Peer("scoring", fake.url, http, credentials(http, fake))
    reset = request_id_var.set("req-peer-0001")
    try:
        r = await peer.request("GET", "/echo")
    finally:
        request_id_var.reset(reset)
    assert r.status_code == 200
    assert r.json() == {"authorization": "Bearer tok-1", "x_request_id": "req-peer-0001"}
    assert fake.token_forms == [
        {"grant_type": "client_credentials", "client_id": "svc-scoring", "client_secret": DEV_SERVICE_SECRET}
    ]
    assert fake.token_request_ids == ["req-peer-0001"]  # the token fetch is traceable to the request too


async def test_peer_without_request_context_sends_no_request_id(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    peer = Peer("media", fake.url, http, token=None)
    r = await peer.request("GET", "/echo")
    assert r.json() == {"authorization": None, "x_request_id": None}
    assert fake.token_forms == []


async def test_peer_that_refuses_connections_is_service_unavailable(http: httpx.AsyncClient) -> None:
    peer = Peer("media", _closed_port_url(), http, token=None)
    with pytest.raises(ServiceUnavailable) as caught:
        await peer.request("GET", "/echo")
    exc = caught.value
    assert (exc.status, exc.instance_code) == (503, "peer_unavailable")
    assert exc.headers == {"Retry-After": "5"}
    assert exc.extensions == {"peer": "media"}
    assert await peer.healthy() is False


async def test_peer_that_hangs_is_a_gateway_timeout_after_about_the_timeout(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    peer = Peer("scoring", fake.url, http, token=None)
    started = time.monotonic()
    with pytest.raises(GatewayTimeout) as caught:
        await peer.request("GET", "/hang")
    elapsed = time.monotonic() - started
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.0
    assert (caught.value.status, caught.value.instance_code) == (504, "peer_timeout")
    assert caught.value.extensions == {"peer": "scoring"}
    slow = Peer("scoring", fake.url + "/hang", http, token=None)  # its /healthz hangs
    started = time.monotonic()
    assert await slow.healthy() is False
    assert time.monotonic() - started < TIMEOUT + 1.0


async def test_peer_answering_500_is_a_bad_gateway(http: httpx.AsyncClient, fake: FakePeer) -> None:
    peer = Peer("scoring", fake.url, http, credentials(http, fake))
    with pytest.raises(BadGateway) as caught:
        await peer.request("GET", "/boom")
    assert (caught.value.status, caught.value.instance_code) == (502, "peer_error")
    assert caught.value.extensions == {"peer": "scoring"}
    assert fake.peer_calls == 1


async def test_peer_answering_4xx_is_returned_for_the_caller_to_judge(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    peer = Peer("scoring", fake.url, http, token=None)
    r = await peer.request("GET", "/missing")
    assert r.status_code == 404
    assert r.json() == {"code": "not_found"}
    assert await peer.healthy() is True


async def test_service_token_is_cached_until_near_expiry_then_refetched(
    http: httpx.AsyncClient, fake: FakePeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(peers_module, "time", clock.namespace())
    peer = Peer("scoring", fake.url, http, credentials(http, fake))  # tokens live 300 s

    first = await peer.request("GET", "/echo")
    clock.now += 239  # still more than a minute left
    second = await peer.request("GET", "/echo")
    assert [first.json()["authorization"], second.json()["authorization"]] == ["Bearer tok-1"] * 2
    assert len(fake.token_forms) == 1

    clock.now += 2  # inside the last minute: refetched before it can expire in flight
    third = await peer.request("GET", "/echo")
    assert third.json()["authorization"] == "Bearer tok-2"
    assert len(fake.token_forms) == 2


async def test_concurrent_first_calls_share_one_token_fetch(http: httpx.AsyncClient, fake: FakePeer) -> None:
    peer = Peer("scoring", fake.url, http, credentials(http, fake))
    answers = await asyncio.gather(*(peer.request("GET", "/echo") for _ in range(5)))
    assert {r.json()["authorization"] for r in answers} == {"Bearer tok-1"}
    assert len(fake.token_forms) == 1


async def test_wrong_service_secret_is_a_bad_gateway_and_the_peer_is_not_called(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    peer = Peer("scoring", fake.url, http, credentials(http, fake, secret="not-the-secret"))
    with pytest.raises(BadGateway) as caught:
        await peer.request("GET", "/echo")
    assert (caught.value.status, caught.value.instance_code) == (502, "peer_auth_failed")
    assert fake.peer_calls == 0


@pytest.mark.parametrize("token_path", ["/token-broken", "/token-html"])
async def test_issuer_failing_or_answering_without_a_token_is_a_bad_gateway(
    http: httpx.AsyncClient, fake: FakePeer, token_path: str
) -> None:
    """An issuer fault is `peer_error` naming issues, not a credentials problem and not our own 500."""
    token = ClientCredentials(http, fake.url + token_path, "svc-scoring", DEV_SERVICE_SECRET)
    peer = Peer("scoring", fake.url, http, token)
    with pytest.raises(BadGateway) as caught:
        await peer.request("GET", "/echo")
    assert (caught.value.status, caught.value.instance_code) == (502, "peer_error")
    assert caught.value.extensions == {"peer": "issues"}
    assert fake.peer_calls == 0


async def test_unreachable_issuer_while_fetching_the_token_is_service_unavailable(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    token = ClientCredentials(http, _closed_port_url() + "/token", "svc-scoring", DEV_SERVICE_SECRET)
    peer = Peer("scoring", fake.url, http, token)
    with pytest.raises(ServiceUnavailable) as caught:
        await peer.request("GET", "/echo")
    assert caught.value.instance_code == "peer_unavailable"
    assert caught.value.extensions == {"peer": "issues"}
    assert fake.peer_calls == 0


@pytest.mark.parametrize(
    ("target", "status", "code", "retry_after"),
    [
        ("closed", 503, "peer_unavailable", "5"),
        ("/hang", 504, "peer_timeout", None),
        ("/boom", 502, "peer_error", None),
    ],
)
async def test_peer_failures_reach_the_client_as_problems(
    http: httpx.AsyncClient,
    fake: FakePeer,
    target: str,
    status: int,
    code: str,
    retry_after: str | None,
) -> None:
    """What a client of a service sees when that service's peer fails: a problem naming the peer."""
    base, path = (_closed_port_url(), "/echo") if target == "closed" else (fake.url, target)
    peer = Peer("media", base, http, token=None)
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/relay")
    async def relay() -> dict[str, Any]:
        return dict((await peer.request("GET", path)).json())

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        r = await client.get("/relay")
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers.get("retry-after") == retry_after
    body = r.json()
    assert (body["status"], body["code"], body["peer"]) == (status, code, "media")


async def test_a_refused_service_token_is_replaced_once_and_the_call_retried(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    peer = Peer("media", fake.url, http, credentials(http, fake))
    r = await peer.request("GET", "/picky")
    assert r.status_code == 200
    assert len(fake.token_forms) == 2
    assert fake.peer_calls == 2
    again = await peer.request("GET", "/picky")  # the new token is kept
    assert again.status_code == 200
    assert len(fake.token_forms) == 2


async def test_a_peer_that_keeps_refusing_is_answered_401_after_one_retry(
    http: httpx.AsyncClient, fake: FakePeer
) -> None:
    fake.expires_in = 300
    peer = Peer("media", fake.url, http, credentials(http, fake))
    await peer.request("GET", "/picky")  # tok-1 refused, tok-2 accepted
    peer2 = Peer("media", fake.url, http, credentials(http, fake))  # gets tok-3, refused; then tok-4, refused
    r = await peer2.request("GET", "/picky")
    assert r.status_code == 401
    assert len(fake.token_forms) == 4  # one retry, not a loop


@pytest.mark.parametrize("target", ["closed", "/hang", "/boom"])
async def test_every_failure_of_media_is_503_media_unavailable_to_the_services_that_use_it(
    http: httpx.AsyncClient, fake: FakePeer, target: str
) -> None:
    """Unreachable, too slow or a 5xx: one answer for one fact (media cannot be asked now), with
    `Retry-After`, whether issues checks evidence or scoring a scorecard's photos."""
    base, path = (_closed_port_url(), "/echo") if target == "closed" else (fake.url, target)
    peer = Peer("media", base, http, token=None)
    with pytest.raises(ServiceUnavailable) as caught:
        await media_request(peer, "GET", path)
    assert (caught.value.status, caught.value.instance_code) == (503, "media_unavailable")
    assert caught.value.headers == {"Retry-After": "5"}
