"""Token endpoints (public) and the published keys."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from services.issues.auth import revocations, service
from services.issues.auth.schemas import (
    ClientCredentialsGrant,
    PasswordGrant,
    TokenRequest,
    TokenResponse,
    WeChatLogin,
    WeChatTokenResponse,
)
from services.issues.auth.wechat import openid_for_code
from services.issues.deps import HttpDep, KeyRingDep, LoginThrottleDep, SessionDep, SettingsDep, StateDep
from services.kit.errors import BadRequest, TooManyRequests, UnsupportedMediaType, problem_docs
from services.kit.identity import ROLE_SCOPES, Role, Subject

router = APIRouter(tags=["auth"])
# RFC 6749 §5.1: a response carrying a token must not be cached.
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_token_request = TypeAdapter[PasswordGrant | ClientCredentialsGrant](TokenRequest)

# Inline schema: neither grant is a route's body model, so neither is in components.
_TOKEN_BODY_SCHEMA = {
    "oneOf": [PasswordGrant.model_json_schema(), ClientCredentialsGrant.model_json_schema()]
}
_TOKEN_BODY_EXAMPLES = {
    "password": {"value": {"grant_type": "password", "username": "admin", "password": "huanzhi-demo-2026"}},
    "client_credentials": {
        "value": {
            "grant_type": "client_credentials",
            "client_id": "cli_7f3a9c2e1b4d5a60",
            "client_secret": "…",
        }
    },
}
_TOKEN_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            media_type: {"schema": _TOKEN_BODY_SCHEMA, "examples": _TOKEN_BODY_EXAMPLES}
            for media_type in ("application/x-www-form-urlencoded", "application/json")
        },
    }
}


async def _read_token_request(request: Request) -> PasswordGrant | ClientCredentialsGrant:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw: Any
    if content_type == "application/x-www-form-urlencoded":
        raw = dict((await request.form()).items())
    elif content_type == "application/json":
        try:
            raw = json.loads(await request.body())
        except ValueError as exc:
            raise BadRequest("the request body is not valid JSON", code="malformed_json") from exc
    else:
        raise UnsupportedMediaType("send the token request as form data or JSON")
    try:
        return _token_request.validate_python(raw)
    except ValidationError as exc:
        # Errors inside the chosen grant are located under its tag ("password"): name the field itself.
        tag = raw.get("grant_type") if isinstance(raw, dict) else None
        raise RequestValidationError(
            [
                {**e, "loc": ("body", *(e["loc"][1:] if e["loc"][:1] == (tag,) else e["loc"]))}
                for e in exc.errors(include_url=False)
            ]
        ) from exc


@router.post(
    "/v1/auth/token",
    response_model=TokenResponse,
    summary="Get an access token (password or client credentials)",
    description="OAuth 2.0 token endpoint. Staff sign in with `grant_type=password`; integrations and the "
    "other services with `grant_type=client_credentials`. A wrong user and a wrong password get the same "
    "answer. Failures answer 429 `login_throttled` with `Retry-After`: 5 for one username or client from one "
    "address (15 minutes there, and only there), growing waits (1 s, 2 s, 4 s … 60 s) past 10 from anywhere "
    "and a ceiling of 50, and 30 from one address over all accounts.",
    openapi_extra=_TOKEN_BODY_DOC,
    responses=problem_docs(415, 429),
)
async def token(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyRingDep,
    throttle: LoginThrottleDep,
) -> TokenResponse:
    grant = await _read_token_request(request)
    account = grant.username.lower() if isinstance(grant, PasswordGrant) else grant.client_id
    address = request.client.host if request.client else "-"
    # The account from this address (hard limit), the account from anywhere (growing delays, a much
    # higher ceiling), the address over every account.
    keys = (f"pair:{account}|{address}", f"account:{account}", f"addr:{address}")
    wait = throttle.retry_after(*keys)
    if wait:
        raise TooManyRequests(
            "too many failed sign-ins; try again later",
            code="login_throttled",
            headers={"Retry-After": str(wait)},
            error="invalid_grant",
        )
    try:
        if isinstance(grant, PasswordGrant):
            principal = await service.user_principal(session, grant.username, grant.password, settings)
        else:
            principal = await service.client_principal(
                session, settings, grant.client_id, grant.client_secret
            )
    except service.InvalidCredentials:
        throttle.fail(*keys)
        raise
    throttle.succeed(keys[0])
    throttle.succeed(keys[1])
    issued = service.token_for(keyring, settings, principal, service.narrow(principal.scopes, grant.scope))
    response.headers.update(_NO_STORE)
    return TokenResponse(access_token=issued.access_token, expires_in=issued.expires_in, scope=issued.scope)


@router.post(
    "/v1/auth/wechat",
    response_model=WeChatTokenResponse,
    summary="Sign in from a WeChat mini-program",
    description="Exchanges the `wx.login` code at WeChat's `jscode2session`; the openid finds or creates a "
    "`citizen` account. WeChat's own errors come back as problems: `wechat_invalid_code` (400), "
    "`wechat_rate_limited` (429), `wechat_busy` (503), `wechat_timeout` (504), `wechat_bad_response` (502).",
    responses=problem_docs(429, 502, 503, 504),
)
async def wechat_login(
    body: WeChatLogin,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    keyring: KeyRingDep,
    http: HttpDep,
) -> WeChatTokenResponse:
    openid, _unionid = await openid_for_code(
        http,
        base_url=settings.wechat_base_url,
        appid=settings.wechat_appid,
        secret=settings.wechat_secret.get_secret_value(),
        code=body.code,
        timeout_seconds=settings.wechat_timeout_seconds,
    )
    user, region, created = await service.citizen_for_openid(session, settings, openid)
    principal = service.Principal(
        subject=str(Subject.user(user.id or 0)),
        role=user.role,
        region=region.code,
        region_path=region.path,
        scopes=ROLE_SCOPES[Role(user.role)],
        name=user.display_name,
        user_id=user.id,
    )
    issued = service.token_for(keyring, settings, principal, principal.scopes)
    response.headers.update(_NO_STORE)
    return WeChatTokenResponse(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        scope=issued.scope,
        user_id=user.id or 0,
        created=created,
    )


@router.get(
    "/.well-known/jwks.json",
    summary="The issuer's public keys (JWKS)",
    description="Every key that may have signed a live token; the newest signs new tokens.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "keys": [
                            {
                                "kty": "EC",
                                "crv": "P-256",
                                "x": "…",
                                "y": "…",
                                "kid": "20261123T182000123456-1a2b3c4d",
                                "alg": "ES256",
                                "use": "sig",
                            }
                        ]
                    }
                }
            }
        }
    },
)
async def jwks(keyring: KeyRingDep) -> dict[str, Any]:
    return keyring.jwks()


@router.get(
    "/.well-known/revocations.json",
    summary="Recently revoked subjects (for verifiers)",
    description="Subjects whose tokens issued at or before `revoked_at` (Unix seconds) are void: users "
    "disabled, demoted, moved to another region or given a new password, API clients revoked. Entries "
    "stay for a token's lifetime (`window_seconds`). Every service refreshes this list every "
    "`REVOCATION_CACHE_SECONDS` (20 s by default), so a revocation takes effect everywhere within that.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "subjects": [{"sub": "user:42", "revoked_at": 1796371200.25}],
                        "window_seconds": 3660,
                    }
                }
            }
        }
    },
)
async def revocations_list(state: StateDep) -> dict[str, Any]:
    return await revocations.recent(state.database, state.settings.access_token_seconds)
