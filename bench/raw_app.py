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


@app.get("/api/v1/bookings")
async def list_bookings(request: Request, limit: int = 20, offset: int = 0) -> JSONResponse:
    async with POOL["db"].acquire() as connection:
        user_id = await _user_id(request, connection)
        if user_id is None:
            return JSONResponse({"detail": "Not authenticated"}, status_code=401)
        rows = await connection.fetch(PAGE, user_id, limit, offset)
    return JSONResponse([_row(row) for row in rows])


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
