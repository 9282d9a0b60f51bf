"""Sending one delivery: the receiver's address checked, the body signed.

Signatures follow Standard Webhooks (the `standardwebhooks` package):
`webhook-id` is the event's id, the same on every retry, so a receiver drops
what it has seen; `webhook-signature` is `v1,` and the base64 HMAC-SHA256 of
`{webhook-id}.{webhook-timestamp}.{body}` with the webhook's secret.

Server-side request forgery: a webhook's URL is the caller's choice, and the
service sends requests to it from inside the network. So the host is resolved
and every address it resolves to must be public, at creation and again at each
delivery (DNS can change between the two: rebinding), and the request goes to
the address that was checked, never to a second lookup. Redirects are not
followed: a 3xx is a failed delivery.
"""

import asyncio
import base64
import ipaddress
import json
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import httpx
from standardwebhooks import Webhook as Signer

from app.core.config import settings

USER_AGENT = "webhooks (+https://www.standardwebhooks.com)"
# The receiver's answer is read this far, for the log; the rest is dropped.
_ERROR_BODY_BYTES = 200
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL's host is not a public address (or does not resolve)."""


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _public(address: _Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    # is_global is False for loopback, RFC 1918 and 4193 private ranges,
    # link-local (cloud metadata at 169.254.169.254), CGNAT, reserved and
    # documentation ranges.
    return address.is_global and not address.is_multicast


async def lookup(host: str, port: int) -> list[_Address]:
    """The addresses DNS gives for a name (the system's resolver)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def resolve(url: str) -> str:
    """The address to send to: the URL's host resolved, every address public.
    Raises UnsafeURL with the reason."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        literal: _Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            found = await asyncio.wait_for(
                lookup(host, port), settings.WEBHOOK_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError, UnicodeError) as exc:
            # UnicodeError: not a name DNS can carry (a label over 63 bytes).
            msg = f"host {host} does not resolve"
            raise UnsafeURL(msg) from exc
        if not found:
            msg = f"host {host} does not resolve"
            raise UnsafeURL(msg)
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for address in found:
            if not _public(address):
                msg = f"host {host} is not a public address ({address})"
                raise UnsafeURL(msg)
    return str(found[0])


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status: int | None = None
    error: str | None = None


def body(event_id: int, event_type: str, created_at: datetime, payload: str) -> str:
    """The delivery's JSON: the event's type and time, and the object as read."""
    head = {
        "id": event_id,
        "type": event_type,
        "timestamp": created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    # The payload is already JSON (the Read schema, as stored): spliced in, not
    # parsed and written again.
    return json.dumps(head, separators=(",", ":"))[:-1] + ',"data":' + payload + "}"


def headers(secret: str, message_id: str, content: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Signer(secret).sign(message_id, now, content),
    }


async def send(
    client: httpx.AsyncClient, url: str, secret: str, message_id: str, content: str
) -> Outcome:
    """POST the signed content to url, at the address checked just now."""
    try:
        address = await resolve(url)
    except UnsafeURL as exc:
        return Outcome(delivered=False, error=str(exc))
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{address}]" if ":" in address else address
    if parts.port:
        netloc += f":{parts.port}"
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    request_headers = headers(secret, message_id, content)
    # The checked address in the URL, the name where the receiver looks for it:
    # the Host header, and the TLS server name (certificates are checked for it).
    request_headers["host"] = parts.netloc.rsplit("@", 1)[-1]
    try:
        # Bounded in all: httpx's timeout bounds each read, not a receiver that
        # trickles its answer a byte at a time.
        status, detail = await asyncio.wait_for(
            _post(client, target, request_headers, content, host),
            settings.WEBHOOK_TIMEOUT_SECONDS,
        )
    except TimeoutError:
        return Outcome(delivered=False, error="no answer in time")
    except httpx.HTTPError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Outcome(delivered=False, error=reason[:500])
    if 200 <= status < 300:
        return Outcome(delivered=True, status=status)
    kind = "redirect (not followed)" if 300 <= status < 400 else "error"
    return Outcome(
        delivered=False,
        status=status,
        error=f"HTTP {status} {kind}: {detail}"[:500],
    )


async def _post(
    client: httpx.AsyncClient,
    target: str,
    request_headers: dict[str, str],
    content: str,
    host: str,
) -> tuple[int, str]:
    """The answer's status, and the start of its body (the rest is not read)."""
    request = client.build_request(
        "POST",
        target,
        content=content.encode(),
        headers=request_headers,
        extensions={"sni_hostname": host},
    )
    response = await client.send(request, stream=True)
    try:
        start = b""
        if not 200 <= response.status_code < 300:
            async for chunk in response.aiter_raw():
                start += chunk
                if len(start) >= _ERROR_BODY_BYTES:
                    break
    finally:
        await response.aclose()
    text = start[:_ERROR_BODY_BYTES].decode(errors="replace")
    return response.status_code, " ".join(text.split())


def client() -> httpx.AsyncClient:
    """The client deliveries share: bounded in time, redirects not followed,
    no proxy or credentials from the environment."""
    return httpx.AsyncClient(
        timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )
