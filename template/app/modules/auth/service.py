"""Registration, authentication and user look-ups."""

import re
import unicodedata

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from app.core.exceptions import ConflictError, UnauthorizedError
from app.core.security import (
    DUMMY_HASH,
    create_access_token,
    hash_password,
    verify_password,
)
from app.events.outbox import record
from app.modules.auth.models import PasswordResetToken, User
from app.modules.auth.schemas import UserCreate, UserRead

ACCOUNT_REGISTERED = "account.registered"

MAX_EMAIL_LENGTH = 320
# A token subject is a user id as this service writes it: ASCII digits, no sign,
# no leading zero, within the 32-bit id range (str.isdigit also accepts "²" and
# full-width digits, which int() then rejects or reads as another id).
_USER_ID = re.compile(r"[1-9][0-9]{0,9}", re.ASCII)
MAX_USER_ID = 2**31 - 1


def normalize_email(email: str) -> str:
    """One spelling per address, on every path that takes one: registration
    stores what the email validator normalised (Unicode NFC), so a login typed
    in decomposed form ("e" + U+0301 for "é") must compose it too."""
    return unicodedata.normalize("NFC", email.strip()).lower()


# Built once, run with parameters: building a statement on every request cost
# more CPU than running it (every authenticated request makes this look-up).
_USER_BY_ID = select(User).where(User.id == bindparam("user_id"))


class AuthService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_email(self, email: str) -> User | None:
        if "\x00" in email or len(email) > MAX_EMAIL_LENGTH:
            return None  # cannot match a stored address; PostgreSQL rejects NUL
        email = normalize_email(email)
        user = await self.session.scalar(select(User).where(User.email == email))
        # A users table made before its email column compared exactly (MySQL's
        # default collation: "jose" equals "josé") may answer another address.
        return user if user is not None and user.email == email else None

    async def get_active_user(self, user_id: str, version: object = 0) -> User | None:
        """The user a token's subject names, if it still exists, is active and
        has not revoked tokens of this `version` (its "ver" claim) since."""
        if not _USER_ID.fullmatch(user_id) or int(user_id) > MAX_USER_ID:
            return None
        user = await self.session.scalar(_USER_BY_ID, {"user_id": int(user_id)})
        if user is None or not user.is_active:
            return None
        # type() is int, not isinstance: JSON's true must not pass for version 1.
        if type(version) is not int or version != user.token_version:
            return None
        return user

    async def raise_token_version(self, user_id: int, **changes: str) -> int:
        """Revoke every token issued so far (and set `changes`); the new version.
        The caller commits.

        One UPDATE adds 1 in the database, so concurrent revocations never
        overwrite each other's increment; the session's copy is updated too.
        Pending password-reset links are spent as well: an event that ends
        earlier sessions (sign-out everywhere, a new password, deactivation)
        must not leave a way back in."""
        await self.session.execute(
            delete(PasswordResetToken).where(PasswordResetToken.user_id == user_id)
        )
        await self.session.execute(
            update(User)
            .where(User.id == user_id)
            .values(token_version=User.token_version + 1, **changes)
        )
        version = await self.session.scalar(
            select(User.token_version).where(User.id == user_id)
        )
        return version or 0

    async def register(self, data: UserCreate) -> User:
        email = normalize_email(data.email)
        existing = await self.session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )
        if existing:
            raise ConflictError("A user with this email already exists")
        # End the read before the slow part: no transaction (on SQLite, no lock)
        # stays open while argon2 runs. The unique index settles any race below.
        await self.session.commit()
        # Argon2 is deliberately slow: keep it off the event loop.
        hashed = await run_in_threadpool(hash_password, data.password)
        user = User(email=email, hashed_password=hashed, full_name=data.full_name)
        self.session.add(user)
        try:
            await self.session.flush()
            read = UserRead.model_validate(user)
            record(self.session, ACCOUNT_REGISTERED, user.id, user.id, read)
            await self.session.commit()
        except IntegrityError as exc:
            # Lost a race with a concurrent registration of the same address.
            await self.session.rollback()
            raise ConflictError("A user with this email already exists") from exc
        return user

    async def ensure_superuser(self, data: UserCreate) -> tuple[User, str]:
        """Make `data.email` an active superuser, and say what that took.

        A new account gets `data.password`; an existing one keeps its own password
        and is promoted (and reactivated). Safe to run any number of times, and
        from several processes at once."""
        user = await self.get_by_email(data.email)
        if user is None:
            try:
                user = await self.register(data)
            except ConflictError:  # another process created it meanwhile
                user = await self.get_by_email(data.email)
            else:
                user.is_superuser = True
                await self.session.commit()
                return user, "created"
        if user is None:  # created and deleted again meanwhile
            raise ConflictError("The account changed meanwhile; run this again")
        if user.is_superuser and user.is_active:
            return user, "unchanged"
        user.is_superuser = True
        user.is_active = True
        await self.session.commit()
        return user, "promoted"

    async def authenticate(self, email: str, password: str) -> User:
        """Check credentials; an unknown email and a wrong password look alike."""
        user = await self.get_by_email(email)
        hashed = user.hashed_password if user is not None else DUMMY_HASH
        # Hand the connection back while argon2 runs (and waits for a slot):
        # a burst of logins must not exhaust the database pool.
        await self.session.commit()
        valid = await run_in_threadpool(verify_password, password, hashed)
        if user is None or not valid or not user.is_active:
            raise UnauthorizedError("Incorrect email or password")
        return user

    async def login(self, email: str, password: str) -> str:
        user = await self.authenticate(email, password)
        return create_access_token(str(user.id), user.token_version)
