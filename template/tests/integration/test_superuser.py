"""The first superuser: `python -m app create-superuser` and the start-up check."""

import io
import logging
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.__main__ import parse, read_password
from app.core.config import PLACEHOLDER_SUPERUSER_PASSWORD, Settings, settings
from app.core.security import verify_password
from app.main import ensure_first_superuser
from app.modules.auth.models import User
from app.modules.auth.superuser import SuperuserInputError, ensure_superuser

ADMIN = "admin@example.com"


def _factory(session: AsyncSession) -> Any:
    return lambda: session


async def _account(session: AsyncSession, email: str) -> User:
    # Read afresh: the command closed the session, detaching what it had loaded.
    account = await session.scalar(select(User).where(User.email == email))
    assert account is not None
    return account


async def _users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_the_first_run_creates_and_later_runs_change_nothing(
    session: AsyncSession,
) -> None:
    first = await ensure_superuser(ADMIN, "first-password", _factory(session))
    again = await ensure_superuser(ADMIN, "another-password", _factory(session))

    admin = await _account(session, ADMIN)
    assert first == f"Created the superuser {ADMIN}."
    assert again == f"{ADMIN} is already an active superuser; nothing changed."
    assert admin.is_superuser
    assert admin.is_active
    assert verify_password("first-password", admin.hashed_password)  # not overwritten


async def test_an_existing_account_is_promoted_and_keeps_its_password(
    session: AsyncSession, user: User
) -> None:
    user.is_active = False
    await session.commit()
    hashed = user.hashed_password

    message = await ensure_superuser(user.email, "not-its-password", _factory(session))

    promoted = await _account(session, user.email)
    assert message.endswith("is now an active superuser (its password is unchanged).")
    assert promoted.is_superuser
    assert promoted.is_active
    assert promoted.hashed_password == hashed


@pytest.mark.parametrize(
    ("email", "password", "error"),
    [
        (None, "long-enough-password", "no email"),
        ("not-an-email", "long-enough-password", "email: value is not a valid email"),
        (ADMIN, "short", "password: String should have at least 8 characters"),
        (ADMIN, "", "no password"),
    ],
)
async def test_bad_input_is_one_line_and_changes_nothing(
    session: AsyncSession, email: str | None, password: str, error: str
) -> None:
    with pytest.raises(SuperuserInputError) as raised:
        await ensure_superuser(email, password, _factory(session))
    assert str(raised.value).startswith(error)
    assert "\n" not in str(raised.value)
    assert await _users(session) == 0


def test_the_password_is_never_an_argument() -> None:
    # Arguments show in `ps`, shell history and CI logs.
    with pytest.raises(SystemExit) as exited:
        parse(["create-superuser", "--password", "secret-password"])
    assert exited.value.code == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_password_comes_from_stdin_the_settings_or_a_prompt() -> None:
    piped = parse(["create-superuser", "--password-stdin"])
    plain = parse(["create-superuser"])
    answers = iter(["typed-password", "typed-password", "one", "other"])

    def prompt(_label: str) -> str:
        return next(answers)

    assert read_password(piped, None, io.StringIO("piped-password\n")) == (
        "piped-password"
    )
    assert read_password(plain, "configured-pw", io.StringIO()) == "configured-pw"
    assert read_password(plain, None, _Terminal(), prompt) == "typed-password"
    with pytest.raises(SuperuserInputError, match="the passwords differ"):
        read_password(plain, None, _Terminal(), prompt)
    with pytest.raises(SuperuserInputError, match="no password"):
        read_password(plain, None, io.StringIO())  # not a terminal: never hangs


def test_production_refuses_the_placeholder_password() -> None:
    with pytest.raises(ValidationError, match="FIRST_SUPERUSER_PASSWORD"):
        Settings(  # type: ignore[call-arg]
            _env_file=None,
            DATABASE_URL="sqlite+aiosqlite://",
            ENVIRONMENT="production",
            SECRET_KEY="s" * 40,
            FIRST_SUPERUSER_PASSWORD=PLACEHOLDER_SUPERUSER_PASSWORD,
        )


async def test_start_up_makes_the_configured_superuser(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "FIRST_SUPERUSER_EMAIL", ADMIN)
    monkeypatch.setattr(settings, "FIRST_SUPERUSER_PASSWORD", "start-up-password")
    await ensure_first_superuser(_factory(session))
    assert (await _account(session, ADMIN)).is_superuser


async def test_start_up_logs_a_bad_setting_and_goes_on(
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(settings, "FIRST_SUPERUSER_EMAIL", ADMIN)
    monkeypatch.setattr(settings, "FIRST_SUPERUSER_PASSWORD", "short")
    with caplog.at_level(logging.ERROR, logger="app"):
        await ensure_first_superuser(_factory(session))
    assert "First superuser not created: password:" in caplog.text
    assert "short" not in caplog.text  # the value itself is never logged
    assert await _users(session) == 0
