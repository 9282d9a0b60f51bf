"""Account management for superusers: list, read, (de)activate, promote, delete.

What a superuser may see of other users' module objects is decided here too:
nothing more than anyone else. This API is for accounts; every module keeps
scoping its reads and writes to the owner.
"""

from pydantic import TypeAdapter
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.exceptions import ConflictError, NotFoundError
from app.db.locks import advisory_lock
from app.db.session import Base
from app.modules.auth.models import User
from app.modules.auth.schemas import UserAdminRead, UserAdminUpdate, UserFilter
from app.modules.auth.service import AuthService, normalize_email
from app.modules.auth.token_cache import verified_tokens

_PAGE_OF = TypeAdapter(list[UserAdminRead])
# Taken by every change that could leave no active superuser, so two admins
# demoting each other at once cannot both pass the check.
_SUPERUSERS_LOCK = "users:superusers"
LAST_SUPERUSER = "That would leave no active superuser; promote another one first"


class UserAdminService:
    resource_name = "User"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list(
        self, *, limit: int, offset: int, filters: UserFilter
    ) -> list[UserAdminRead]:
        query = select(User).order_by(User.id).limit(limit).offset(offset)
        if filters.email is not None:
            query = query.where(User.email == normalize_email(filters.email))
        if filters.is_active is not None:
            query = query.where(User.is_active == filters.is_active)
        return _PAGE_OF.validate_python(list(await self.session.scalars(query)))

    async def get(self, user_id: int) -> User:
        user = await self.session.get(User, user_id)
        if user is None:
            raise NotFoundError(self.resource_name, user_id)
        return user

    async def update(self, user_id: int, data: UserAdminUpdate) -> User:
        changes = data.model_dump(exclude_unset=True)
        async with advisory_lock(self.session, _SUPERUSERS_LOCK):
            user = await self.get(user_id)
            stays = changes.get("is_active", user.is_active) and changes.get(
                "is_superuser", user.is_superuser
            )
            if not stays:
                await self._keep_one_superuser(user)
            if user.is_active and changes.get("is_active") is False:
                # Reactivating later must not bring the account's old tokens back.
                await AuthService(self.session).raise_token_version(user_id)
            for field, value in changes.items():
                setattr(user, field, value)
            await self.session.flush()
        await self.session.commit()
        verified_tokens.forget_user(user_id)
        return user

    async def delete(self, user_id: int) -> None:
        async with advisory_lock(self.session, _SUPERUSERS_LOCK):
            user = await self.get(user_id)
            await self._keep_one_superuser(user)
            await self._delete_owned_rows(user_id)
            await self.session.delete(user)
            await self.session.flush()
        await self.session.commit()
        verified_tokens.forget_user(user_id)

    async def _delete_owned_rows(self, user_id: int) -> None:
        """Delete what the account owns, rows that point at others first.

        The database would cascade the account's deletion to them, but MySQL and
        MariaDB check each foreign key row by row during a cascade: one owned
        row still pointing at another (a ref with ondelete=restrict) refused the
        whole deletion. In dependency order it works on every database."""
        for table in reversed(Base.metadata.sorted_tables):
            for key in table.foreign_keys:
                owned = key.ondelete == "CASCADE"
                if owned and key.column.table.name == User.__tablename__:
                    rows = delete(table).where(key.parent == user_id)
                    await self.session.execute(rows)

    async def _keep_one_superuser(self, user: User) -> None:
        """Refuse to take away the last active superuser."""
        if not (user.is_active and user.is_superuser):
            return
        # A locking read: it waits for another demotion not yet committed (on
        # MySQL the named lock is released just before the commit).
        other = await self.session.scalar(
            select(User.id)
            .where(User.is_superuser, User.is_active, User.id != user.id)
            .limit(1)
            .with_for_update()
        )
        if other is None:
            raise ConflictError(LAST_SUPERUSER)
