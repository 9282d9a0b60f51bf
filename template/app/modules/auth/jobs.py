"""The account's jobs: reset emails, and clearing expired reset links."""

import logging

from sqlalchemy import CursorResult, delete

from app.core.logging import one_line
from app.db.errors import DATABASE_ERRORS
from app.db.types import utcnow
from app.jobs.broker import broker
from app.jobs.dependencies import MailerDep, SessionsDep
from app.modules.auth import passwords
from app.modules.auth.models import PasswordResetToken

logger = logging.getLogger("app.auth")


@broker.task(task_name="auth.send_reset_link", retry_on_error=True)
async def send_reset_link(email: str, sessions: SessionsDep, mailer: MailerDep) -> None:
    """Issue and email a reset link, if `email` has an active account. Run
    again while the mail server or the database is down (the link expires, so
    the retries stop well before the link would be useless)."""
    await passwords.send_reset_link(email, sessions, mailer)


@broker.task(
    task_name="auth.purge_expired_reset_links",
    schedule=[{"cron": "*/30 * * * *"}],
)
async def purge_expired_reset_links(sessions: SessionsDep) -> int:
    """Delete reset links past their expiry (a request for a new one clears
    only its own account's): how many went. A database that is away costs one
    logged line; the next run purges them."""
    try:
        async with sessions() as session:
            result = await session.execute(
                delete(PasswordResetToken).where(
                    PasswordResetToken.expires_at <= utcnow()
                )
            )
            await session.commit()
    except DATABASE_ERRORS as exc:
        logger.warning("Expired reset links not purged: %s", one_line(exc))
        return 0
    return int(result.rowcount) if isinstance(result, CursorResult) else 0
