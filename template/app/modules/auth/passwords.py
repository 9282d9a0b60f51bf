"""Password change, reset by email, and signing out everywhere.

Each of them raises the user's token version: every token issued before stops
working at once (see User.token_version), with no list of tokens to keep.
"""

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.core.config import settings
from app.core.email import Mailer
from app.core.exceptions import BadRequestError
from app.core.logging import one_line
from app.core.security import (
    create_access_token,
    hash_password,
    new_reset_secret,
    reset_secret_digest,
    verify_password,
)
from app.db.types import utcnow
from app.events.outbox import record
from app.modules.auth.models import PasswordResetToken, User
from app.modules.auth.schemas import PasswordChanged
from app.modules.auth.service import AuthService
from app.modules.auth.token_cache import verified_tokens

ACCOUNT_PASSWORD_CHANGED = "account.password_changed"
logger = logging.getLogger("app.auth")

SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]

INVALID_RESET_TOKEN = "Invalid or expired reset token"
WRONG_PASSWORD = "The current password is not correct"


def reset_email(mailer: Mailer, address: str, secret: str) -> EmailMessage:
    # In the fragment, after "#": browsers never send it to a server, so the
    # secret stays out of web server logs and Referer headers.
    link = f"{settings.PASSWORD_RESET_URL}#token={secret}"
    minutes = settings.PASSWORD_RESET_TOKEN_MINUTES
    body = (
        f"Someone asked to reset the password of your {settings.APP_NAME} account.\n\n"
        f"To choose a new password, open this link within {minutes} minutes:\n\n"
        f"{link}\n\n"
        "The link works once. If you did not ask for it, ignore this email: "
        "your password stays as it is.\n"
    )
    return mailer.message(address, f"Reset your {settings.APP_NAME} password", body)


class EmailNotSent(Exception):
    """The mail server did not take a message: the job runs again later."""


async def send_reset_link(email: str, sessions: SessionFactory, mailer: Mailer) -> None:
    """Issue and email a reset link, if `email` has an active account.

    A job (app/modules/auth/jobs.py), queued after the response went out: the
    answer to the request is the same, and takes as long, for every address.
    Raises when the link could not be issued or sent, so that the job runs
    again; each run issues a link of its own (an unsent one only expires)."""
    try:
        async with sessions() as session:
            found = await PasswordService(session).request_reset(email)
    except (SQLAlchemyError, OSError) as exc:
        logger.error("No password reset link issued: %s", one_line(exc))
        raise
    if found is None:
        return
    address, secret = found
    sent = await mailer.send(reset_email(mailer, address, secret), secret=secret)
    if mailer.configured and not sent:
        raise EmailNotSent("the mail server did not take the reset link")


class PasswordService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def change(self, user: User, current: str, new: str) -> str:
        """Set a new password after checking the current one; a fresh token for
        the caller, since the one it used is revoked with all the others."""
        user_id, hashed = user.id, user.hashed_password
        # No connection held while argon2 runs (twice): see AuthService.authenticate.
        await self.session.commit()
        if not await run_in_threadpool(verify_password, current, hashed):
            raise BadRequestError(WRONG_PASSWORD)
        new_hash = await run_in_threadpool(hash_password, new)
        # Reset links asked for before are spent: they were for the old password.
        await self._spend_reset_links(user_id)
        _changed(self.session, user_id, "change")
        version = await self._revoke_tokens(user_id, hashed_password=new_hash)
        return create_access_token(str(user_id), version)

    async def sign_out_everywhere(self, user_id: int) -> None:
        await self._revoke_tokens(user_id)

    async def request_reset(self, email: str) -> tuple[str, str] | None:
        """A reset secret for an active account: (address, secret) to email, or
        None when there is no such account (the caller answers the same)."""
        user = await AuthService(self.session).get_by_email(email)
        if user is None or not user.is_active:
            return None
        secret, digest = new_reset_secret()
        now = utcnow()
        lifetime = timedelta(minutes=settings.PASSWORD_RESET_TOKEN_MINUTES)
        # Housekeeping on the way: this account's expired links go.
        await self.session.execute(
            delete(PasswordResetToken).where(
                PasswordResetToken.user_id == user.id,
                PasswordResetToken.expires_at <= now,
            )
        )
        self.session.add(
            PasswordResetToken(
                user_id=user.id,
                token_hash=digest,
                expires_at=now + lifetime,
            )
        )
        await self.session.commit()
        return user.email, secret

    async def reset(self, secret: str, new_password: str) -> None:
        """Set a new password with an emailed secret: once, before it expires."""
        digest = reset_secret_digest(secret)
        found = await self.session.execute(
            select(PasswordResetToken.id, PasswordResetToken.user_id)
            .join(User, User.id == PasswordResetToken.user_id)
            .where(
                PasswordResetToken.token_hash == digest,
                PasswordResetToken.expires_at > utcnow(),
                User.is_active,
            )
        )
        row = found.first()
        await self.session.commit()
        if row is None:
            raise BadRequestError(INVALID_RESET_TOKEN)
        token_id, user_id = row
        new_hash = await run_in_threadpool(hash_password, new_password)
        # Spend the link first, in the same transaction as the new password: of
        # two requests racing with one link, only the one that deletes it wins.
        spent = await self.session.execute(
            delete(PasswordResetToken).where(
                PasswordResetToken.id == token_id,
                PasswordResetToken.expires_at > utcnow(),
            )
        )
        if cast(CursorResult[Any], spent).rowcount != 1:
            await self.session.rollback()
            raise BadRequestError(INVALID_RESET_TOKEN)
        await self._spend_reset_links(user_id)  # every other link dies with it
        _changed(self.session, user_id, "reset")
        await self._revoke_tokens(user_id, hashed_password=new_hash)

    async def _spend_reset_links(self, user_id: int) -> None:
        await self.session.execute(
            delete(PasswordResetToken).where(PasswordResetToken.user_id == user_id)
        )

    async def _revoke_tokens(self, user_id: int, **changes: str) -> int:
        """Raise the token version (plus `changes`), commit; the new version."""
        version = await AuthService(self.session).raise_token_version(
            user_id, **changes
        )
        await self.session.commit()
        verified_tokens.forget_user(user_id)
        return version


def _changed(
    session: AsyncSession, user_id: int, how: Literal["change", "reset"]
) -> None:
    """The account's event, in the transaction that sets the password."""
    changed = PasswordChanged(user_id=user_id, how=how, changed_at=utcnow())
    record(session, ACCOUNT_PASSWORD_CHANGED, user_id, user_id, changed)
