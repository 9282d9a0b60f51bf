"""The users table, and the password reset tokens issued for its accounts."""

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.db.session import Base
from app.db.types import ExactText, UTCDateTime, utcnow


class User(Base):
    __tablename__ = "users"
    # A token names its user by id: SQLite must never hand a deleted user's id to
    # a new account (plain INTEGER PRIMARY KEY reuses the highest freed id).
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased by the service: one account per address on every backend.
    email: Mapped[str] = mapped_column(ExactText(320), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(ExactText(255))
    full_name: Mapped[str | None] = mapped_column(ExactText(100), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every token carries the version current when it was issued; raising it
    # (password change or reset, deactivation, sign-out everywhere) makes every
    # earlier token invalid without keeping a list of tokens anywhere.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class PasswordResetToken(Base):
    """One emailed reset link. Only a SHA-256 of the link's secret is kept: a copy
    of this table lets nobody reset a password."""

    __tablename__ = "password_reset_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(ExactText(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
