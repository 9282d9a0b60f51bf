import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.exceptions import ConflictError, UnauthorizedError
from app.core.security import decode_access_token
from app.modules.auth.models import User
from app.modules.auth.schemas import UserCreate
from app.modules.auth.service import AuthService
from tests.conftest import TEST_PASSWORD


async def test_register_stores_a_hash_and_a_lowercased_email(
    session: AsyncSession,
) -> None:
    data = UserCreate(email="Carol@Example.COM", password="s3cret-passphrase")

    user = await AuthService(session).register(data)

    assert user.id is not None
    assert user.email == "carol@example.com"
    assert user.hashed_password != "s3cret-passphrase"
    assert user.hashed_password.startswith("$argon2")


async def test_register_refuses_the_same_email_in_another_case(
    session: AsyncSession, user: User
) -> None:
    data = UserCreate(email=user.email.upper(), password="another-passphrase")

    with pytest.raises(ConflictError):
        await AuthService(session).register(data)


async def test_login_returns_a_token_for_the_user(
    session: AsyncSession, user: User
) -> None:
    token = await AuthService(session).login("ALICE@example.com", TEST_PASSWORD)

    claims = decode_access_token(token)
    assert claims is not None
    assert claims["sub"] == str(user.id)


async def test_login_refuses_a_wrong_password(
    session: AsyncSession, user: User
) -> None:
    with pytest.raises(UnauthorizedError):
        await AuthService(session).login(user.email, "not-the-password")


async def test_login_refuses_an_unknown_email(session: AsyncSession) -> None:
    with pytest.raises(UnauthorizedError):
        await AuthService(session).login("nobody@example.com", TEST_PASSWORD)


async def test_inactive_users_cannot_log_in(session: AsyncSession, user: User) -> None:
    user.is_active = False
    await session.commit()

    with pytest.raises(UnauthorizedError):
        await AuthService(session).login(user.email, TEST_PASSWORD)
    assert await AuthService(session).get_active_user(str(user.id)) is None


async def test_get_active_user_ignores_malformed_subjects(
    session: AsyncSession, user: User
) -> None:
    service = AuthService(session)

    assert await service.get_active_user(str(user.id)) == user
    assert await service.get_active_user("not-a-number") is None
    assert await service.get_active_user("9" * 40) is None
