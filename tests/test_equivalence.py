"""One service, three databases: the same requests, the same answers.

A render with a module whose fields sit at their bounds is migrated on SQLite,
PostgreSQL and MariaDB, and one script of requests (bounds, values MySQL's
default collation would hold equal, emails that differ by an accent, deep
JSON, malformed values, filters, updates, deletes, other owners) runs against
each. Every answer (status and body, with ids and timestamps masked) must be
the same on the three: a difference like MariaDB's case-insensitive `uniq` or
SQLite's "1E-10" can't come back unnoticed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_in

pytestmark = pytest.mark.slow

SAMPLES = {
    "name": "samples",
    "fields": [
        "label:str=12:uniq",
        "big:decimal=38,10",
        "frac:decimal=30,30:opt",
        "unit:decimal=1,0:opt",
        "count:int:opt",
        "huge:bigint:opt",
        "day:date:opt",
        "at:datetime:opt",
        "flag:bool:opt",
        "kind:enum=red,green:opt",
        "doc:json:opt",
        "key:uuid:opt",
        "body:text:opt",
    ],
}

# Runs in the project's environment, in-process over ASGI; prints one JSON
# line per request: [what, status, body with ids and timestamps masked].
SCRIPT = r"""
import asyncio, json, os

import httpx

os.environ.update(
    ENVIRONMENT="test", REDIS_URL="", SMTP_HOST="", PASSWORD_HASH_TIME_COST="1",
    PASSWORD_HASH_MEMORY_KIB="8192", LOGIN_RATE_LIMIT="10000/minute",
    REGISTER_RATE_LIMIT="10000/minute", SECRET_KEY="equivalence-" + "0" * 40,
)

from app.main import app  # noqa: E402

MASKED = {"id", "owner_id", "created_at", "updated_at", "access_token"}
URL = "/api/v1/samples"
out = []


def mask(value):
    if isinstance(value, dict):
        return {k: "*" if k in MASKED else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def deep(levels):
    doc = []
    for _ in range(levels - 1):
        doc = [doc]
    return doc


async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        async def call(what, method, path, token=None, **kwargs):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            response = await client.request(method, path, headers=headers, **kwargs)
            body = response.json() if response.content else None
            out.append([what, response.status_code, mask(body)])
            return body

        tokens = {}
        for email in ("owner@x.io", "jos\u00e9@x.io", "jose@x.io", "JOSE@x.io"):
            form = {"email": email, "password": "pw-" + email}
            await call("register " + email, "POST", "/api/v1/auth/register", json=form)
            login = {"username": email, "password": "pw-" + email}
            body = await call("login " + email, "POST", "/api/v1/auth/login", data=login)
            tokens[email] = (body or {}).get("access_token")
        crossed = {"username": "jose@x.io", "password": "pw-jos\u00e9@x.io"}
        login = "/api/v1/auth/login"
        await call("login jose with jos\u00e9's password", "POST", login, data=crossed)
        me, them = tokens["owner@x.io"], tokens["jose@x.io"]

        nines = "9" * 28 + "." + "9" * 10
        bounds = {
            "label": "bounds", "big": nines, "frac": "0." + "9" * 30, "unit": "-9",
            "count": -(2**31), "huge": 2**63 - 1, "day": "9999-12-31",
            "at": "2030-05-01T12:00:00.123456+02:00", "flag": True, "kind": "green",
            "doc": deep(31), "key": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "body": "\u00e7a va \U0001f600 " * 100,
        }
        made = await call("create at the upper bounds", "POST", URL, me, json=bounds)
        low = {
            "label": "low", "big": "-" + nines, "frac": "-0." + "0" * 29 + "1", "unit": "0",
            "count": 2**31 - 1, "huge": -(2**63), "day": "0001-01-01",
            "at": "1999-12-31T23:59:59.000001-05:00", "flag": False, "doc": {},
        }
        await call("create at the lower bounds", "POST", URL, me, json=low)
        for n, big in enumerate(["-0", "0.0000000001", "-0.00000000010", "10"]):
            await call("decimal " + big, "POST", URL, me, json={"label": f"d{n}", "big": big})

        for n, label in enumerate(["red", "Red", "r\u00e9d", "red ", "\U0001f600", "\U0001f60e"]):
            await call("label " + label, "POST", URL, me, json={"label": label, "big": str(n)})
        await call("label red again", "POST", URL, me, json={"label": "red", "big": "1"})
        await call("another owner's red", "POST", URL, them, json={"label": "red", "big": "1"})

        bad = {
            "big": ["1e5", "\u0663", "\uff11\uff12", "1_000", " 1.0", "", "1.00000000001",
                    12345678901234567.5, "9" * 29],
            "frac": ["1"], "unit": ["10"], "count": [2**31, "5", 1.5, True],
            "huge": [2**63], "day": ["2023-02-29", "10000-01-01"], "flag": ["yes", 1],
            "kind": ["blue", "RED"], "doc": [deep(32), "text"], "key": ["not-a-uuid"],
            "label": ["x" * 13, "a\x00b", None],
        }
        for field, values in bad.items():
            for value in values:
                body = {"label": "bad", "big": "1", field: value}
                await call(f"bad {field} {value!r:.40}", "POST", URL, me, json=body)
        await call("missing big", "POST", URL, me, json={"label": "x"})
        await call("unknown field", "POST", URL, me, json={"label": "x", "big": "1", "z": 1})

        await call("list", "GET", URL, me)
        await call("list kind=green", "GET", URL, me, params={"kind": "green"})
        await call("list flag=false", "GET", URL, me, params={"flag": "false"})
        await call("list limit 2 offset 3", "GET", URL, me, params={"limit": 2, "offset": 3})
        await call("list bad limit", "GET", URL, me, params={"limit": 0})
        path = f"{URL}/{made['id']}"
        await call("read", "GET", path, me)
        await call("read as another owner", "GET", path, them)
        await call("patch label RED", "PATCH", path, me, json={"label": "RED"})
        await call("patch label onto red", "PATCH", path, me, json={"label": "red"})
        await call("patch big null", "PATCH", path, me, json={"big": None})
        await call("patch count '5'", "PATCH", path, me, json={"count": "5"})
        await call("patch as another owner", "PATCH", path, them, json={"label": "q"})
        await call("delete as another owner", "DELETE", path, them)
        await call("delete", "DELETE", path, me)
        await call("read deleted", "GET", path, me)
        await call("list after delete", "GET", URL, me)
        await call("without a token", "GET", URL)


asyncio.run(main())
for line in out:
    print(json.dumps(line, ensure_ascii=False, sort_keys=True))
"""


def test_the_same_requests_get_the_same_answers_on_every_database(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
) -> None:
    project = copy_project(
        template_repo, tmp_path / "svc", database="postgresql", modules=[SAMPLES]
    )
    urls = {
        "sqlite": f"sqlite+aiosqlite:///{tmp_path / 'equivalence.db'}",
        "postgresql": server_database("postgresql"),
        "mysql": server_database("mysql"),
    }
    answers: dict[str, list[list[object]]] = {}
    for database, url in urls.items():
        env = {"DATABASE_URL": url, "ENVIRONMENT": "test"}
        migrated = run_in(project_venv, project, "alembic", "upgrade", "head", env=env)
        assert migrated.returncode == 0, migrated.stderr
        result = run_in(project_venv, project, "python", "-c", SCRIPT, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        answers[database] = [json.loads(line) for line in result.stdout.splitlines()]

    sqlite = answers["sqlite"]
    assert len(sqlite) > 60
    statuses = {status for _, status, _ in sqlite}
    assert statuses <= {200, 201, 204, 401, 404, 409, 422}, statuses  # never a 5xx
    for database in ("postgresql", "mysql"):
        differences = [
            (mine[0], mine[1:], theirs[1:])
            for mine, theirs in zip(sqlite, answers[database], strict=True)
            if mine != theirs
        ]
        assert differences == [], f"{database} differs from SQLite: {differences}"
