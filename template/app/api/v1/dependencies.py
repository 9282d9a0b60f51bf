"""The bouncers: database session, current user and pagination, as `Annotated`
aliases that routes declare as parameter types.

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain
`def` dependency in the thread pool, a hand-off that costs more than the work.
"""

import hashlib
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import settings
from app.core.exceptions import (
    ForbiddenError,
    TooManyRequestsError,
    UnauthorizedError,
)
from app.core.listing import MAX_ID, MAX_PAGE_SIZE
from app.core.rate_limit import RateLimiter
from app.core.security import decode_access_token
from app.db.session import (
    ReadSessionLocal,
    RowReader,
    SessionLocal,
    get_db,
    get_row_reader,
)
from app.modules.auth.models import User
from app.modules.auth.passwords import SessionFactory
from app.modules.auth.service import AuthService, normalize_email
from app.modules.auth.token_cache import verified_tokens

SessionDep = Annotated[AsyncSession, Depends(get_db)]


async def get_session_factory() -> SessionFactory:
    """For work that outlives the request (a background task): its own sessions."""
    return SessionLocal


SessionFactoryDep = Annotated[SessionFactory, Depends(get_session_factory)]


async def get_read_session_factory() -> SessionFactory:
    """Sessions on the read pool: no transaction, so on SQLite no write lock."""
    return ReadSessionLocal


ReadSessionFactoryDep = Annotated[SessionFactory, Depends(get_read_session_factory)]
# What GET routes of modules read with (app/db/session.py): rows, no session.
RowReaderDep = Annotated[RowReader, Depends(get_row_reader)]

# auto_error=False: a missing token goes through UnauthorizedError like a bad one,
# so every 401 has the same body and the WWW-Authenticate header.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl=f"{settings.API_V1_PREFIX}/auth/login", auto_error=False
)


async def _verify(session: AsyncSession, token: str | None) -> tuple[User, float]:
    """The active user a bearer token names, and the token's expiry, or 401."""
    if not token:
        raise UnauthorizedError
    claims = decode_access_token(token)
    if claims is None:
        raise UnauthorizedError("Invalid or expired token")
    # Tokens issued before token versions existed carry none: version 0.
    version = claims.get("ver", 0)
    user = await AuthService(session).get_active_user(str(claims["sub"]), version)
    if user is None:
        raise UnauthorizedError("Invalid or expired token")
    return user, float(claims["exp"])


async def get_current_user(
    request: Request,
    session: SessionDep,
    read_sessions: ReadSessionFactoryDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> User:
    """Resolve the bearer token to an existing, active user, or answer 401.

    A GET checks on the read pool, so it never waits for a writer (on SQLite,
    the request session's first statement takes the write lock); any other
    method loads the user into the request's session, to change it."""
    if request.method == "GET":
        async with read_sessions() as reader:
            user, _ = await _verify(reader, token)
        return user
    user, _ = await _verify(session, token)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_current_superuser(user: CurrentUser) -> User:
    """The current user if a superuser (checked afresh, never cached), else 403."""
    if not user.is_superuser:
        raise ForbiddenError("Superusers only")
    return user


CurrentSuperuser = Annotated[User, Depends(get_current_superuser)]


async def get_current_user_id(
    request: Request,
    sessions: SessionFactoryDep,
    read_sessions: ReadSessionFactoryDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
) -> int:
    """The id of the token's active user, for routes that need nothing else.

    A GET trusts a token verified in the last AUTH_CACHE_SECONDS (see
    app/modules/auth/token_cache.py); any other method verifies it again. The
    check opens a session of its own, so a GET served from the cache opens none;
    a GET's check reads on the read pool, so it never waits for a writer.
    """
    cacheable = request.method == "GET"
    if cacheable and token:
        user_id = verified_tokens.get(token)
        if user_id is not None:
            return user_id
    async with (read_sessions if cacheable else sessions)() as session:
        user, expires_at = await _verify(session, token)
    if cacheable and token:
        verified_tokens.put(token, user.id, expires_at)
    return user.id


CurrentUserId = Annotated[int, Depends(get_current_user_id)]


class Pagination(BaseModel):
    limit: int
    offset: int


async def get_pagination(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> Pagination:
    """Bounded paging: at most 100 items a page, never a negative offset."""
    return Pagination(limit=limit, offset=offset)


PaginationDep = Annotated[Pagination, Depends(get_pagination)]

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]


_login_limiter = RateLimiter(settings.LOGIN_RATE_LIMIT, settings.REDIS_URL)
_register_limiter = RateLimiter(settings.REGISTER_RATE_LIMIT, settings.REDIS_URL)
_reset_limiter = RateLimiter(settings.PASSWORD_RESET_RATE_LIMIT, settings.REDIS_URL)
_confirm_limiter = RateLimiter(settings.PASSWORD_CONFIRM_RATE_LIMIT, settings.REDIS_URL)
_reset_email_limiter = (
    RateLimiter(
        f"1 per {settings.PASSWORD_RESET_EMAIL_INTERVAL_SECONDS} seconds",
        settings.REDIS_URL,
    )
    if settings.PASSWORD_RESET_EMAIL_INTERVAL_SECONDS
    else None
)


async def get_login_limiter() -> RateLimiter:
    return _login_limiter


async def get_register_limiter() -> RateLimiter:
    return _register_limiter


async def get_reset_limiter() -> RateLimiter:
    return _reset_limiter


async def get_confirm_limiter() -> RateLimiter:
    return _confirm_limiter


ResetLimiterDep = Annotated[RateLimiter, Depends(get_reset_limiter)]


async def get_reset_email_limiter() -> RateLimiter | None:
    return _reset_email_limiter


ResetEmailLimiterDep = Annotated[RateLimiter | None, Depends(get_reset_email_limiter)]


async def _count(limiter: RateLimiter, action: str, request: Request) -> None:
    address = request.client.host if request.client else "unknown"
    await _hit(limiter, f"{action}:{address}")


async def _hit(limiter: RateLimiter, key: str) -> None:
    retry_after = await limiter.hit(key)
    if retry_after is not None:
        raise TooManyRequestsError(retry_after)


async def limit_login_attempts(
    request: Request,
    limiter: Annotated[RateLimiter, Depends(get_login_limiter)],
) -> None:
    """Answer 429 once a client address has used up its login attempts."""
    await _count(limiter, "login", request)


async def limit_registrations(
    request: Request,
    limiter: Annotated[RateLimiter, Depends(get_register_limiter)],
) -> None:
    """Answer 429 once a client address has registered too often: each
    registration costs an argon2 hash, so unthrottled it is a cheap attack."""
    await _count(limiter, "register", request)


async def limit_password_changes(
    request: Request,
    limiter: Annotated[RateLimiter, Depends(get_login_limiter)],
) -> None:
    """Checking the current password is a guess like a login: limited like one
    (LOGIN_RATE_LIMIT per client address), on a count of its own."""
    await _count(limiter, "password-change", request)


async def limit_reset_requests(request: Request, limiter: ResetLimiterDep) -> None:
    """Reset emails asked for, per client address."""
    await _count(limiter, "reset", request)


async def may_email_reset_link(limiter: RateLimiter | None, email: str) -> bool:
    """At most one reset email per address per PASSWORD_RESET_EMAIL_INTERVAL_SECONDS.

    Beyond that the request is still answered 202 and no email goes out. A
    stranger asking again and again can neither flood the inbox (one email a
    minute, each one a working link for the owner) nor lock the owner out, as a
    429 for the address would. Counted for every address, known or not, and
    Redis sees a digest, never the address."""
    if limiter is None:
        return True
    digest = hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]
    return await limiter.hit(f"reset-email:{digest}") is None


async def limit_reset_confirmations(
    request: Request,
    limiter: Annotated[RateLimiter, Depends(get_confirm_limiter)],
) -> None:
    """Reset confirmations, per client address: each costs an argon2 hash."""
    await _count(limiter, "reset-confirm", request)
