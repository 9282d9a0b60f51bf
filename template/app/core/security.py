"""Password hashing (argon2 via pwdlib), JWT access tokens (PyJWT) and the
secrets of password reset links."""

import hashlib
import os
import secrets
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import settings

password_hash = PasswordHash(
    (
        Argon2Hasher(
            time_cost=settings.PASSWORD_HASH_TIME_COST,
            memory_cost=settings.PASSWORD_HASH_MEMORY_KIB,
        ),
    )
)

# Verified against when the email is unknown, so that login takes as long either way.
DUMMY_HASH = password_hash.hash("dummy-password-for-timing-equalisation")


def hash_concurrency() -> int:
    configured = settings.PASSWORD_HASH_CONCURRENCY
    return configured or min(4, os.cpu_count() or 1)


# Each argon2 computation holds PASSWORD_HASH_MEMORY_KIB (64 MiB by default); a
# burst of 50 registrations hashing at once would take over 3 GiB. Callers run
# these in threads; at most this many compute at a time, the rest wait.
_hash_slots = threading.BoundedSemaphore(hash_concurrency())


def hash_password(password: str) -> str:
    with _hash_slots:
        return password_hash.hash(password)


def verify_password(password: str, hashed: str) -> bool:
    with _hash_slots:
        return password_hash.verify(password, hashed)


def create_access_token(
    subject: str, version: int = 0, expires_delta: timedelta | None = None
) -> str:
    """A signed token for user `subject`, valid while the user's token version
    is still `version` (see User.token_version) and until it expires."""
    expires = datetime.now(UTC) + (
        expires_delta or timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    )
    payload = {"sub": subject, "ver": version, "exp": expires, "iat": datetime.now(UTC)}
    return jwt.encode(payload, settings.SECRET_KEY, algorithm=settings.ALGORITHM)


def decode_access_token(token: str) -> dict[str, Any] | None:
    """Return the claims of a valid token, or None for anything else."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.SECRET_KEY,
            # Pinned: the token's "alg" header is never trusted (no "none", no swap).
            algorithms=[settings.ALGORITHM],
            options={"require": ["exp", "sub"]},
        )
    except jwt.PyJWTError:
        return None
    return claims


def new_reset_secret() -> tuple[str, str]:
    """A reset link's secret (for the email) and its digest (for the database)."""
    secret = secrets.token_urlsafe(32)
    return secret, reset_secret_digest(secret)


def reset_secret_digest(secret: str) -> str:
    # 256 random bits need no slow hash: SHA-256 cannot be reversed, and there
    # is nothing to guess.
    return hashlib.sha256(secret.encode()).hexdigest()
