"""Auth routes: register, log in, who am I."""

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from app.api.routing import ReadRetryRoute
from app.api.v1.dependencies import (
    CurrentUser,
    SessionDep,
    limit_login_attempts,
    limit_registrations,
)
from app.api.v1.responses import UNAUTHORIZED, error_responses
from app.modules.auth.schemas import Token, UserCreate, UserRead
from app.modules.auth.service import AuthService

router = APIRouter(prefix="/auth", tags=["Auth"], route_class=ReadRetryRoute)


@router.post(
    "/register",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(limit_registrations)],
    responses=error_responses(
        status.HTTP_409_CONFLICT, status.HTTP_429_TOO_MANY_REQUESTS
    ),
)
async def register(data: UserCreate, session: SessionDep) -> UserRead:
    """Create an account."""
    user = await AuthService(session).register(data)
    return UserRead.model_validate(user)


@router.post(
    "/login",
    response_model=Token,
    dependencies=[Depends(limit_login_attempts)],
    responses=error_responses(
        status.HTTP_401_UNAUTHORIZED, status.HTTP_429_TOO_MANY_REQUESTS
    ),
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep
) -> Token:
    """Exchange email (as `username`) and password for a bearer token."""
    token = await AuthService(session).login(form.username, form.password)
    return Token(access_token=token)


@router.get("/me", response_model=UserRead, responses=UNAUTHORIZED)
async def read_me(current_user: CurrentUser) -> UserRead:
    """The authenticated user."""
    return UserRead.model_validate(current_user)
