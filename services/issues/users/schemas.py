"""User requests and answers: separate Create, Update and Public shapes; the password hash never leaves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from services.kit.fields import not_nullable
from services.kit.identity import USER_ROLES, Role
from services.kit.text import PLAIN_TEXT, TRIMMED, plain_text_schema

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
PHONE_PATTERN = r"^\+?[0-9][0-9 -]{4,30}$"


def _user_role(role: Role) -> Role:
    if role not in USER_ROLES:
        raise ValueError(f"{role.value} is a role for API clients, not for users")
    return role


# Staff and citizen roles only: `integration` and `service` belong to API clients.
UserRole = Annotated[
    Role,
    AfterValidator(_user_role),
    WithJsonSchema({"type": "string", "enum": sorted(USER_ROLES), "title": "UserRole"}),
]
Username = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=USERNAME_PATTERN)]
DisplayName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    PLAIN_TEXT,
    plain_text_schema(100),
    Field(description="1 to 100 characters after trimming, without control or text-direction characters."),
]
# The phone is trimmed before PHONE_PATTERN and the 32-character limit apply; the document says the same.
_PHONE_DOCUMENTED = rf"^{TRIMMED}*\+?[0-9][0-9 -]{{3,29}}[0-9-]{TRIMMED}*$"
Phone = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=32, pattern=PHONE_PATTERN),
    WithJsonSchema({"type": "string", "pattern": _PHONE_DOCUMENTED}),
]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
RegionCode = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class UserCreate(BaseModel):
    """A new staff account, homed in a region of the caller's subtree."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "username": "zhang.wei",
                "display_name": "前庄村 张伟",
                "phone": "13812345678",
                "role": "village",
                "region_code": "370282103201",
                "password": "qianzhuang-2026!",
            }
        },
    )

    username: Username = Field(description="3–64 characters: letters, digits, `_`, `.`, `-`.")
    display_name: DisplayName
    phone: Phone | None = None
    role: UserRole = Field(description="No higher than the caller's own role.")
    region_code: RegionCode = Field(description="Home region; must lie in the caller's subtree.")
    password: Password = Field(description="At least 10 characters; stored only as an Argon2id hash.")


class UserUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are. Only `phone` may be null (it clears the phone)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": {"display_name": "前庄村 张伟（书记）", "role": "village"}},
    )

    display_name: DisplayName | None = Field(default=None, json_schema_extra=not_nullable)
    phone: Phone | None = Field(default=None, description="`null` clears the phone.")
    role: UserRole | None = Field(
        default=None, description="No higher than the caller's own role.", json_schema_extra=not_nullable
    )
    region_code: RegionCode | None = Field(
        default=None, description="New home region in the caller's subtree.", json_schema_extra=not_nullable
    )
    password: Password | None = Field(
        default=None, description="Resets the password.", json_schema_extra=not_nullable
    )
    disabled: StrictBool | None = Field(
        default=None,
        description='`true` or `false` (a JSON boolean; `1` or `"no"` are refused). A disabled user cannot '
        "sign in.",
        json_schema_extra=not_nullable,
    )

    @field_validator("display_name", "role", "region_code", "password", "disabled", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Only the phone may be cleared; null for anything else is a mistake, not "leave it".
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class UserPublic(BaseModel):
    """A user as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "id": 12,
                "username": "zhang.wei",
                "display_name": "前庄村 张伟",
                "phone": "13812345678",
                "role": "village",
                "region_code": "370282103201",
                "disabled": False,
                "created_at": "2026-03-02T08:15:00Z",
                "updated_at": "2026-03-02T08:15:00Z",
            }
        }
    )

    id: int
    username: str | None = Field(description="Null for citizens who sign in only through WeChat.")
    display_name: str
    phone: str | None
    role: str
    region_code: str
    disabled: bool
    created_at: datetime
    updated_at: datetime
