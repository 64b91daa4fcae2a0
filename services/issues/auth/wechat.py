"""WeChat mini-program login: exchange a `wx.login` code at jscode2session for the user's openid.

The `session_key` WeChat returns is never stored, returned or logged.
"""

from __future__ import annotations

import json

import httpx

from services.kit.errors import (
    BadGateway,
    BadRequest,
    GatewayTimeout,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
)


class WeChatNotConfigured(ServiceUnavailable):
    code = "wechat_not_configured"


# WeChat's errcode → the problem we answer with.
_ERRORS: dict[int, tuple[type[Problem], str, str]] = {
    40029: (
        BadRequest,
        "wechat_invalid_code",
        "the wx.login code is invalid or expired; call wx.login again",
    ),
    40163: (BadRequest, "wechat_code_used", "the wx.login code was already used; call wx.login again"),
    40226: (BadRequest, "wechat_user_blocked", "WeChat refuses this user (high-risk account)"),
    45011: (TooManyRequests, "wechat_rate_limited", "WeChat is rate-limiting logins; try again shortly"),
    -1: (ServiceUnavailable, "wechat_busy", "WeChat is busy; try again shortly"),
}


async def openid_for_code(
    client: httpx.AsyncClient, *, base_url: str, appid: str, secret: str, code: str, timeout_seconds: float
) -> tuple[str, str | None]:
    """The (openid, unionid) for a login code, or a problem naming what went wrong."""
    if not appid or not secret:
        raise WeChatNotConfigured("WeChat login is not configured on this server")
    try:
        response = await client.get(
            base_url.rstrip("/") + "/sns/jscode2session",
            params={"appid": appid, "secret": secret, "js_code": code, "grant_type": "authorization_code"},
            timeout=timeout_seconds,
        )
    except httpx.TimeoutException as exc:
        raise GatewayTimeout("WeChat did not answer in time", code="wechat_timeout") from exc
    except httpx.TransportError as exc:
        raise ServiceUnavailable(
            "WeChat cannot be reached", code="wechat_unreachable", headers={"Retry-After": "5"}
        ) from exc
    if response.status_code >= 500:
        raise ServiceUnavailable(
            "WeChat is busy; try again shortly", code="wechat_busy", headers={"Retry-After": "5"}
        )
    try:
        # WeChat answers JSON, often labelled text/plain.
        body = json.loads(response.text)
    except ValueError as exc:
        raise BadGateway("WeChat answered something that is not JSON", code="wechat_bad_response") from exc
    if not isinstance(body, dict):
        raise BadGateway("WeChat answered something unexpected", code="wechat_bad_response")
    errcode = body.get("errcode", 0)
    if errcode not in (0, None):
        kind, code_name, detail = _ERRORS.get(
            int(errcode) if isinstance(errcode, int | str) and str(errcode).lstrip("-").isdigit() else 0,
            (BadGateway, "wechat_error", "WeChat refused the login"),
        )
        headers = {"Retry-After": "10"} if kind in (TooManyRequests, ServiceUnavailable) else None
        raise kind(detail, code=code_name, headers=headers, wechat_errcode=errcode)
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid or len(openid) > 64:
        raise BadGateway("WeChat's answer has no openid", code="wechat_bad_response")
    unionid = body.get("unionid")
    return openid, unionid if isinstance(unionid, str) else None
