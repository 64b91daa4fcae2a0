"""Token requests and answers (OAuth 2.0 shapes: form-encoded or JSON)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class PasswordGrant(BaseModel):
    grant_type: Literal["password"]
    username: str = Field(min_length=1, max_length=64, examples=["admin"])
    password: str = Field(min_length=1, max_length=256, examples=["huanzhi-demo-2026"])
    scope: str | None = Field(
        default=None,
        max_length=1000,
        description="Space-separated scopes, to ask for fewer than the role has; one the role does not "
        "have answers 400 `invalid_scope`.",
    )


class ClientCredentialsGrant(BaseModel):
    grant_type: Literal["client_credentials"]
    client_id: str = Field(min_length=1, max_length=64, examples=["cli_7f3a9c2e1b4d5a60"])
    client_secret: str = Field(min_length=1, max_length=256)
    scope: str | None = Field(
        default=None,
        max_length=1000,
        description="Space-separated scopes, to ask for fewer than the client has; one it does not have "
        "answers 400 `invalid_scope`.",
    )


TokenRequest = Annotated[PasswordGrant | ClientCredentialsGrant, Field(discriminator="grant_type")]


class TokenResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "access_token": "eyJhbGciOiJFUzI1NiIsImtpZCI6Ij...",
                "token_type": "bearer",
                "expires_in": 3600,
                "scope": "issues:read issues:write photos:read photos:write regions:read",
            }
        }
    )

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    scope: str


class WeChatLogin(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"code": "0a3Xk3000abcDE1xyzAb2pQr0a3Xk30B"}]})

    code: str = Field(
        min_length=1,
        max_length=128,
        description="The code `wx.login` gave the mini-program.",
        examples=["0a3Xk3000abcDE1xyzAb2pQr0a3Xk30B"],
    )


class WeChatTokenResponse(TokenResponse):
    user_id: int
    created: bool = Field(description="True when this login created the citizen account.")
