"""The yardstick for the generated read and write paths: the same work on a bare
asyncpg pool, with no ORM, no services and no dependency injection.

Per request, like the generated bookings routes: verify the bearer JWT (PyJWT,
the same key and algorithm), load the user and check it is active, then read a
page of the user's bookings (or one booking), or insert one after checking that
the user owns the therapist and that no booking of the therapist overlaps, under
an advisory lock, and answer JSON. (The generated reads
may skip the user check for AUTH_CACHE_SECONDS; this yardstick never does.)
Served like the real app (FastAPI, one uvicorn worker); run inside a generated
project's environment (DATABASE_URL, SECRET_KEY from its settings).
"""

import base64
import hashlib
import hmac
import json
import os
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg
import jwt
from app.core.config import settings
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

DSN = os.environ["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
POOL: dict[str, asyncpg.Pool] = {}

USER = "SELECT id, is_active FROM users WHERE id = $1"
COLUMNS = "id, owner_id, therapist_id, starts_at, ends_at, notes, created_at, updated_at"
PAGE = f"SELECT {COLUMNS} FROM bookings WHERE owner_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
ONE = f"SELECT {COLUMNS} FROM bookings WHERE id = $1 AND owner_id = $2"
# `?sort=-created_at&starts_at__gte=...`, and the page after a cursor of it: one row
# more than a page says whether a next page (a Link header) follows.
SORTED = (
    f"SELECT {COLUMNS} FROM bookings WHERE owner_id = $1 AND starts_at >= $2 "
    "ORDER BY created_at DESC, id DESC LIMIT $3"
)
AFTER = (
    f"SELECT {COLUMNS} FROM bookings WHERE owner_id = $1 AND starts_at >= $2 "
    "AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $5"
)
INSERT = (
    "INSERT INTO bookings (owner_id, therapist_id, starts_at, ends_at, notes, created_at, "
    f"updated_at) VALUES ($1, $2, $3, $4, $5, now(), now()) RETURNING {COLUMNS}"
)
# The generated create reads the therapist FOR SHARE (it must be the caller's and
# stay until the commit), then checks for an overlapping booking under a
# per-therapist advisory lock with a locking read, in one transaction.
THERAPIST = "SELECT id FROM therapists WHERE id = $1 AND owner_id = $2 FOR SHARE"
LOCK = "SELECT pg_advisory_xact_lock($1)"
OVERLAP = (
    "SELECT id FROM bookings WHERE therapist_id = $1 "
    "AND starts_at < $2 AND ends_at > $3 LIMIT 1 FOR UPDATE"
)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    POOL["db"] = await asyncpg.create_pool(DSN, min_size=1, max_size=10)
    yield
    await POOL["db"].close()


app = FastAPI(lifespan=lifespan)


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in record.items()
    }


async def _user_id(request: Request, connection: asyncpg.Connection) -> int | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return None
    try:
        claims = jwt.decode(header[7:], settings.SECRET_KEY, algorithms=[settings.ALGORITHM])
    except jwt.PyJWTError:
        return None
    user = await connection.fetchrow(USER, int(claims["sub"]))
    return int(user["id"]) if user is not None and user["is_active"] else None


def _signature(payload: bytes) -> str:
    key = settings.SECRET_KEY.encode()
    digest = hmac.new(key, b"list-cursor:" + payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _read_cursor(cursor: str) -> dict[str, Any] | None:
    """The generated app's cursor format: base64 JSON, then its HMAC."""
    text, _, signature = cursor.partition(".")
    payload = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if not hmac.compare_digest(signature, _signature(payload)):
        return None
    data: dict[str, Any] = json.loads(payload)
    return data


def _next_link(request: Request, user_id: int, since: str, last: dict[str, Any]) -> str:
    payload = json.dumps(
        {
            "list": "BookingListQuery",
            "owner": user_id,
            "query": {"sort": "-created_at", "starts_at__gte": since},
            "after": [last["created_at"], last["id"]],
        },
        separators=(",", ":"),
    ).encode()
    text = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    url = request.url.remove_query_params(["cursor", "sort", "starts_at__gte"])
    return f'<{url.include_query_params(cursor=f"{text}.{_signature(payload)}")}>; rel="next"'


@app.get("/api/v1/bookings")
async def list_bookings(
    request: Request,
    limit: int = 20,
    offset: int = 0,
    sort: str | None = None,
    starts_at__gte: str | None = None,
    cursor: str | None = None,
) -> JSONResponse:
    after = _read_cursor(cursor) if cursor else None
    if cursor and after is None:
        return JSONResponse({"detail": "Bad cursor"}, status_code=400)
    if after is not None:
        starts_at__gte = after["query"]["starts_at__gte"]
    async with POOL["db"].acquire() as connection:
        user_id = await _user_id(request, connection)
        if user_id is None:
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        if after is None and sort is None:
            rows = await connection.fetch(PAGE, user_id, limit, offset)
            return JSONResponse([_row(row) for row in rows])
        assert starts_at__gte is not None  # the one sorted list measured
        since = datetime.fromisoformat(starts_at__gte)
        if after is None:
            rows = await connection.fetch(SORTED, user_id, since, limit + 1)
        else:
            created, last_id = after["after"]
            key = datetime.fromisoformat(created)
            rows = await connection.fetch(AFTER, user_id, since, key, last_id, limit + 1)
    items = [_row(row) for row in rows[:limit]]
    headers = {}
    if len(rows) > limit:
        headers["Link"] = _next_link(request, user_id, starts_at__gte, items[-1])
    return JSONResponse(items, headers=headers)


@app.get("/api/v1/bookings/{booking_id}")
async def get_booking(request: Request, booking_id: int) -> JSONResponse:
    async with POOL["db"].acquire() as connection:
        user_id = await _user_id(request, connection)
        if user_id is None:
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        row = await connection.fetchrow(ONE, booking_id, user_id)
    if row is None:
        return JSONResponse({"detail": "Not found"}, status_code=404)
    return JSONResponse(_row(row))


@app.post("/api/v1/bookings")
async def create_booking(request: Request) -> JSONResponse:
    body = await request.json()
    start = datetime.fromisoformat(body["starts_at"])
    end = datetime.fromisoformat(body["ends_at"])
    therapist = int(body["therapist_id"])
    async with POOL["db"].acquire() as connection:
        user_id = await _user_id(request, connection)
        if user_id is None:
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        async with connection.transaction():
            if await connection.fetchval(THERAPIST, therapist, user_id) is None:
                return JSONResponse({"detail": "Therapist not found"}, status_code=404)
            await connection.execute(LOCK, zlib.crc32(f"bookings:{therapist}".encode()))
            if await connection.fetchval(OVERLAP, therapist, end, start) is not None:
                return JSONResponse({"detail": "The therapist is already booked"}, status_code=409)
            row = await connection.fetchrow(INSERT, user_id, therapist, start, end, None)
    return JSONResponse(_row(row), status_code=201)
