"""The first superuser, for `python -m app create-superuser` and start-up."""

from collections.abc import Callable

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.auth.schemas import UserCreate
from app.modules.auth.service import AuthService

OUTCOMES = {
    "created": "Created the superuser {email}.",
    "promoted": "{email} is now an active superuser (its password is unchanged).",
    "unchanged": "{email} is already an active superuser; nothing changed.",
}


class SuperuserInputError(Exception):
    """A missing or invalid email or password: one line, nothing changed."""


async def ensure_superuser(
    email: str | None,
    password: str | None,
    session_factory: Callable[[], AsyncSession],
) -> str:
    """Make sure the account exists and is an active superuser; say what it took."""
    if not email:
        raise SuperuserInputError("no email: pass --email or set FIRST_SUPERUSER_EMAIL")
    if not password:
        raise SuperuserInputError("no password")
    try:
        data = UserCreate(email=email, password=password)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise SuperuserInputError(f"{error['loc'][-1]}: {error['msg']}") from None
    async with session_factory() as session:
        user, outcome = await AuthService(session).ensure_superuser(data)
    return OUTCOMES[outcome].format(email=user.email)
