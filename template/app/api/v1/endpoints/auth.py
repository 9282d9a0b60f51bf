"""Auth routes: register, log in, who am I, passwords, sign out everywhere."""

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Form, status

from app.api.routing import ReadRetryRoute
from app.api.v1.dependencies import (
    CurrentUser,
    ResetEmailLimiterDep,
    SessionDep,
    limit_login_attempts,
    limit_password_changes,
    limit_registrations,
    limit_reset_confirmations,
    limit_reset_requests,
    may_email_reset_link,
)
from app.api.v1.responses import UNAUTHORIZED, error_responses
from app.jobs.broker import enqueue
from app.modules.auth.jobs import send_reset_link
from app.modules.auth.passwords import PasswordService
from app.modules.auth.schemas import (
    LoginForm,
    Message,
    PasswordChange,
    PasswordResetConfirm,
    PasswordResetRequest,
    Token,
    UserCreate,
    UserRead,
)
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
async def login(form: Annotated[LoginForm, Form()], session: SessionDep) -> Token:
    """Exchange email (as `username`) and password for a bearer token."""
    token = await AuthService(session).login(form.username, form.password)
    return Token(access_token=token)


@router.get("/me", response_model=UserRead, responses=UNAUTHORIZED)
async def read_me(current_user: CurrentUser) -> UserRead:
    """The authenticated user."""
    return UserRead.model_validate(current_user)


@router.post(
    "/password",
    response_model=Token,
    dependencies=[Depends(limit_password_changes)],
    responses=error_responses(
        status.HTTP_400_BAD_REQUEST,
        status.HTTP_401_UNAUTHORIZED,
        status.HTTP_429_TOO_MANY_REQUESTS,
    ),
)
async def change_password(
    data: PasswordChange, current_user: CurrentUser, session: SessionDep
) -> Token:
    """Change the password (the current one is required). Every token issued
    before stops working, this one too: use the token in the answer."""
    token = await PasswordService(session).change(
        current_user, data.current_password, data.new_password
    )
    return Token(access_token=token)


@router.post(
    "/logout-all", status_code=status.HTTP_204_NO_CONTENT, responses=UNAUTHORIZED
)
async def logout_all(current_user: CurrentUser, session: SessionDep) -> None:
    """Sign out everywhere: every token issued so far stops working."""
    await PasswordService(session).sign_out_everywhere(current_user.id)


RESET_REQUESTED = "If an account uses this address, a reset link is on its way"


@router.post(
    "/password-reset",
    response_model=Message,
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(limit_reset_requests)],
    responses=error_responses(status.HTTP_429_TOO_MANY_REQUESTS),
)
async def request_password_reset(
    data: PasswordResetRequest,
    email_limiter: ResetEmailLimiterDep,
    background: BackgroundTasks,
) -> Message:
    """Email a single-use reset link. The answer is the same, and as quick,
    whether or not the address has an account (a job looks it up, queued after
    the answer went out), and whether or not an email was sent just before to
    that address."""
    if await may_email_reset_link(email_limiter, data.email):
        background.add_task(enqueue, send_reset_link, data.email)
    return Message(detail=RESET_REQUESTED)


@router.post(
    "/password-reset/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(limit_reset_confirmations)],
    responses=error_responses(
        status.HTTP_400_BAD_REQUEST, status.HTTP_429_TOO_MANY_REQUESTS
    ),
)
async def confirm_password_reset(
    data: PasswordResetConfirm, session: SessionDep
) -> None:
    """Set a new password with the emailed token (once, before it expires);
    every token issued before stops working."""
    await PasswordService(session).reset(data.token, data.new_password)
