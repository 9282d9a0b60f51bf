"""Account management routes, for superusers only: HTTP in, service call, HTTP out."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from app.api.routing import ReadRetryRoute
from app.api.v1.dependencies import (
    CurrentSuperuser,
    IdPath,
    PaginationDep,
    SessionDep,
)
from app.api.v1.responses import error_responses
from app.modules.auth.admin import UserAdminService
from app.modules.auth.schemas import UserAdminRead, UserAdminUpdate, UserFilter

router = APIRouter(prefix="/users", tags=["Users"], route_class=ReadRetryRoute)

ADMIN = error_responses(status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN)
ADMIN_OBJECT = error_responses(
    status.HTTP_401_UNAUTHORIZED, status.HTTP_403_FORBIDDEN, status.HTTP_404_NOT_FOUND
)
ADMIN_CHANGE = error_responses(
    status.HTTP_401_UNAUTHORIZED,
    status.HTTP_403_FORBIDDEN,
    status.HTTP_404_NOT_FOUND,
    status.HTTP_409_CONFLICT,
)


@router.get("", response_model=list[UserAdminRead], responses=ADMIN)
async def list_users(
    session: SessionDep,
    _admin: CurrentSuperuser,
    page: PaginationDep,
    filters: Annotated[UserFilter, Query()],
) -> list[UserAdminRead]:
    """Every account, oldest first; filter by exact email or by `is_active`."""
    service = UserAdminService(session)
    return await service.list(limit=page.limit, offset=page.offset, filters=filters)


@router.get("/{user_id}", response_model=UserAdminRead, responses=ADMIN_OBJECT)
async def get_user(
    user_id: IdPath, session: SessionDep, _admin: CurrentSuperuser
) -> UserAdminRead:
    """One account."""
    user = await UserAdminService(session).get(user_id)
    return UserAdminRead.model_validate(user)


@router.patch("/{user_id}", response_model=UserAdminRead, responses=ADMIN_CHANGE)
async def update_user(
    user_id: IdPath,
    data: UserAdminUpdate,
    session: SessionDep,
    _admin: CurrentSuperuser,
) -> UserAdminRead:
    """Deactivate or reactivate an account, grant or revoke superuser (409 if that
    would leave no active superuser)."""
    user = await UserAdminService(session).update(user_id, data)
    return UserAdminRead.model_validate(user)


@router.delete(
    "/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ADMIN_CHANGE
)
async def delete_user(
    user_id: IdPath, session: SessionDep, _admin: CurrentSuperuser
) -> None:
    """Delete an account and everything it owns (409 for the last active superuser)."""
    await UserAdminService(session).delete(user_id)
