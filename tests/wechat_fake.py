"""A local stand-in for WeChat's `jscode2session`, served by uvicorn on a free loopback port.

What it answers depends on `js_code`: `good-<x>` logs in openid `o_<x>`; `bad`, `used`, `limited`, `busy`
answer WeChat's errcodes 40029, 40163, 45011, -1; `slow` sleeps past any sane timeout; `garbage`
answers HTML; `noopenid` answers `{}`; `http500` fails with status 500. Like WeChat, it labels its JSON
`text/plain`, and it refuses a wrong appid, secret or grant_type with WeChat's own errcodes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

APPID = "wx-test-appid"
SECRET = "wx-test-app-secret-0123456789"
SESSION_KEY = "SECRET_SESSION_KEY"
SLOW_SECONDS = 1.5

_ERRCODES = {
    "bad": (40029, "invalid code"),
    "used": (40163, "code been used"),
    "limited": (45011, "api minute-quota reach limit  mustslower  retry next minute"),
    "busy": (-1, "system error"),
}


def _wechat_json(body: object, status: int = 200) -> Response:
    # WeChat really does label its JSON text/plain.
    return PlainTextResponse(json.dumps(body), status_code=status)


@dataclass
class FakeWeChat:
    """The fake's app and what it was asked; `url` is set once the server listens."""

    url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)

    async def jscode2session(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.requests.append(params)
        if params.get("appid") != APPID:
            return _wechat_json({"errcode": 40013, "errmsg": "invalid appid"})
        if params.get("secret") != SECRET:
            return _wechat_json({"errcode": 40125, "errmsg": "invalid appsecret"})
        if params.get("grant_type") != "authorization_code":
            return _wechat_json({"errcode": 40002, "errmsg": "invalid grant_type"})
        code = params.get("js_code", "")
        if code.startswith("good-"):
            who = code.removeprefix("good-")
            return _wechat_json({"openid": f"o_{who}", "session_key": SESSION_KEY, "unionid": f"u_{who}"})
        if code in _ERRCODES:
            errcode, errmsg = _ERRCODES[code]
            return _wechat_json({"errcode": errcode, "errmsg": errmsg})
        if code == "slow":
            await asyncio.sleep(SLOW_SECONDS)
            return _wechat_json({"openid": "o_slow", "session_key": SESSION_KEY})
        if code == "garbage":
            return PlainTextResponse("<html><body>502 Bad Gateway</body></html>")
        if code == "noopenid":
            return _wechat_json({})
        if code == "http500":
            return PlainTextResponse("internal error", status_code=500)
        return _wechat_json({"errcode": 40029, "errmsg": "invalid code"})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/sns/jscode2session", self.jscode2session)])


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def running_fake_wechat() -> Iterator[FakeWeChat]:
    """Serve the fake in a background thread for the duration of the block."""
    fake = FakeWeChat()
    sock = _free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(fake.app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake WeChat server did not start")
        time.sleep(0.01)
    fake.url = f"http://127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
