"""Request and response shapes of the auth module."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StrictBool, field_validator

from app.core.validation import Email, QueryText, SafeText

# argon2 accepts any length, but an unbounded password is a cheap way to burn CPU.
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
# A reset link's secret: 43 URL-safe characters; the bound leaves room, no more.
RESET_TOKEN_MAX_LENGTH = 128


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    password: SafeText = Field(
        min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )
    full_name: SafeText | None = Field(default=None, max_length=100)


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: EmailStr
    full_name: str | None
    is_active: bool
    created_at: datetime


class PasswordChanged(BaseModel):
    """The account.password_changed event: whose, and how (never the password)."""

    user_id: int
    how: Literal["change", "reset"]
    changed_at: datetime


class LoginForm(BaseModel):
    """OAuth2's password grant, as a form: the email goes in `username`."""

    grant_type: Literal["password"] | None = None
    username: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    scope: str = ""
    client_id: str | None = None
    client_secret: str | None = None


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class UserAdminRead(UserRead):
    """What a superuser sees of an account."""

    is_superuser: bool


class UserAdminUpdate(BaseModel):
    """Only the flags sent are changed; neither may be null."""

    model_config = ConfigDict(extra="forbid")

    is_active: StrictBool | None = None
    is_superuser: StrictBool | None = None

    @field_validator("is_active", "is_superuser")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            msg = "may be omitted, but not null"
            raise ValueError(msg)
        return value


class UserFilter(BaseModel):
    """List filters: each one given must match exactly (emails in any case)."""

    email: QueryText | None = Field(default=None, max_length=320)
    is_active: bool | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Any stored password may be typed here, including one set before today's rules.
    current_password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    # The rules of registration.
    new_password: SafeText = Field(
        min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class PasswordResetConfirm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=RESET_TOKEN_MAX_LENGTH)
    # The rules of registration.
    new_password: SafeText = Field(
        min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )


class Message(BaseModel):
    detail: str
