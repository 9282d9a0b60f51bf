"""Webhook routes: HTTP in, service call, HTTP out."""

from fastapi import APIRouter, status

from app.api.routing import ReadRetryRoute
from app.api.v1.dependencies import CurrentUser, IdPath, PaginationDep, SessionDep
from app.api.v1.responses import (
    CONFLICTING_CREATE,
    OWNED_OBJECT,
    UNAUTHORIZED,
    error_responses,
)
from app.modules.webhooks.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
)
from app.modules.webhooks.service import WebhookService

router = APIRouter(prefix="/webhooks", tags=["Webhooks"], route_class=ReadRetryRoute)
OWNED_CHANGE = error_responses(status.HTTP_401_UNAUTHORIZED, status.HTTP_404_NOT_FOUND)


@router.get("", response_model=list[WebhookRead], responses=UNAUTHORIZED)
async def list_webhooks(
    session: SessionDep, user: CurrentUser, page: PaginationDep
) -> list[WebhookRead]:
    """Your webhooks, oldest first."""
    return await WebhookService(session).page(user.id, page.limit, page.offset)


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    responses=CONFLICTING_CREATE,
)
async def create_webhook(
    data: WebhookCreate, session: SessionDep, user: CurrentUser
) -> WebhookCreated:
    """Send your objects' events to a URL, signed with the secret in this answer
    (shown once). The URL must reach a public address: 422 otherwise; 409 when
    you have WEBHOOKS_PER_USER already."""
    return await WebhookService(session).create(user.id, data)


@router.get("/{webhook_id}", response_model=WebhookRead, responses=OWNED_OBJECT)
async def get_webhook(
    webhook_id: IdPath, session: SessionDep, user: CurrentUser
) -> WebhookRead:
    """One of your webhooks (its secret is never shown again)."""
    webhook = await WebhookService(session).get(user.id, webhook_id)
    return WebhookRead.model_validate(webhook)


@router.patch("/{webhook_id}", response_model=WebhookRead, responses=OWNED_CHANGE)
async def update_webhook(
    webhook_id: IdPath, data: WebhookUpdate, session: SessionDep, user: CurrentUser
) -> WebhookRead:
    """Change the URL, the events or whether it is enabled."""
    return await WebhookService(session).update(user.id, webhook_id, data)


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=OWNED_CHANGE
)
async def delete_webhook(
    webhook_id: IdPath, session: SessionDep, user: CurrentUser
) -> None:
    """Delete one of your webhooks, and its pending deliveries."""
    await WebhookService(session).delete(user.id, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[WebhookDeliveryRead],
    responses=OWNED_OBJECT,
)
async def list_webhook_deliveries(
    webhook_id: IdPath, session: SessionDep, user: CurrentUser, page: PaginationDep
) -> list[WebhookDeliveryRead]:
    """The webhook's deliveries, newest first: status, attempts, last error."""
    service = WebhookService(session)
    return await service.deliveries(user.id, webhook_id, page.limit, page.offset)
