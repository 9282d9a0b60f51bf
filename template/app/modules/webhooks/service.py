"""Business logic of webhooks: every query is scoped to the owner."""

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import settings
from app.core.exceptions import ConflictError, InvalidFieldError, NotFoundError
from app.events.models import Event
from app.modules.webhooks import delivery
from app.modules.webhooks.models import Webhook, WebhookDelivery
from app.modules.webhooks.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryRead,
    WebhookRead,
    WebhookUpdate,
)

RESOURCE_NAME = "Webhook"


async def _checked(url: str) -> str:
    """The URL, if its host is one deliveries may go to (else a 422 on url)."""
    try:
        await delivery.resolve(url)
    except delivery.UnsafeURL as exc:
        raise InvalidFieldError("url", str(exc)) from exc
    return url


class WebhookService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, owner_id: int, limit: int, offset: int) -> list[WebhookRead]:
        rows = await self.session.scalars(
            select(Webhook)
            .where(Webhook.owner_id == owner_id)
            .order_by(Webhook.id)
            .limit(limit)
            .offset(offset)
        )
        return [WebhookRead.model_validate(row) for row in rows]

    async def get(self, owner_id: int, webhook_id: int) -> Webhook:
        """Someone else's webhook is reported as missing, never as forbidden."""
        webhook = await self.session.scalar(
            select(Webhook).where(
                Webhook.id == webhook_id, Webhook.owner_id == owner_id
            )
        )
        if webhook is None:
            raise NotFoundError(RESOURCE_NAME, webhook_id)
        return webhook

    async def create(self, owner_id: int, data: WebhookCreate) -> WebhookCreated:
        url = await _checked(data.url)
        count = await self.session.scalar(
            select(func.count())
            .select_from(Webhook)
            .where(Webhook.owner_id == owner_id)
        )
        if (count or 0) >= settings.WEBHOOKS_PER_USER:
            msg = f"At most {settings.WEBHOOKS_PER_USER} webhooks per account"
            raise ConflictError(msg)
        webhook = Webhook(
            owner_id=owner_id,
            url=url,
            secret=delivery.new_secret(),
            events=data.model_dump()["events"],
            enabled=data.enabled,
        )
        self.session.add(webhook)
        await self.session.flush()
        await self.session.refresh(webhook)
        await self.session.commit()
        return WebhookCreated.model_validate(webhook)

    async def update(
        self, owner_id: int, webhook_id: int, data: WebhookUpdate
    ) -> WebhookRead:
        values = data.model_dump(exclude_unset=True)
        if "url" in values:
            await _checked(values["url"])
        webhook = await self.get(owner_id, webhook_id)
        for name, value in values.items():
            setattr(webhook, name, value)
        await self.session.flush()
        await self.session.refresh(webhook)
        await self.session.commit()
        return WebhookRead.model_validate(webhook)

    async def delete(self, owner_id: int, webhook_id: int) -> None:
        """Its deliveries go with it, pending ones included."""
        webhook = await self.get(owner_id, webhook_id)
        await self.session.delete(webhook)
        await self.session.commit()

    async def deliveries(
        self, owner_id: int, webhook_id: int, limit: int, offset: int
    ) -> list[WebhookDeliveryRead]:
        """The webhook's delivery log, newest first."""
        await self.get(owner_id, webhook_id)
        rows = await self.session.execute(
            select(WebhookDelivery, Event.type)
            .join(Event, Event.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [
            WebhookDeliveryRead.model_validate(
                {
                    **{c: getattr(row, c) for c in _DELIVERY_FIELDS},
                    "event_type": event_type,
                    "next_attempt_at": row.next_attempt_at
                    if row.status == "pending"
                    else None,
                }
            )
            for row, event_type in rows
        ]


_DELIVERY_FIELDS = (
    "id",
    "event_id",
    "status",
    "attempts",
    "response_status",
    "last_error",
    "created_at",
    "delivered_at",
)
