"""Account management for superusers: /api/v1/users."""

import pytest
from httpx import AsyncClient, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.auth.models import User

USERS = "/api/v1/users"


@pytest.fixture
async def admin(session: AsyncSession, user: User) -> User:
    user.is_superuser = True
    await session.commit()
    return user


async def test_only_superusers_get_in(
    client: AsyncClient, user: User, other_user: User, auth_headers: dict[str, str]
) -> None:
    one = f"{USERS}/{other_user.id}"
    calls = [
        ("GET", USERS, None),
        ("GET", one, None),
        ("PATCH", one, {"is_active": False}),
        ("DELETE", one, None),
    ]
    for method, url, body in calls:
        anonymous = await client.request(method, url, json=body)
        normal = await client.request(method, url, json=body, headers=auth_headers)
        assert anonymous.status_code == 401, (method, url)
        assert normal.status_code == 403, (method, url)
        assert normal.json() == {"detail": "Superusers only"}


async def test_a_superuser_lists_and_filters_accounts(
    client: AsyncClient, admin: User, other_user: User, auth_headers: dict[str, str]
) -> None:
    everyone = await client.get(USERS, headers=auth_headers)
    by_email = await client.get(
        USERS, params={"email": other_user.email.upper()}, headers=auth_headers
    )
    active = await client.get(USERS, params={"is_active": "true"}, headers=auth_headers)

    assert [u["email"] for u in everyone.json()] == [admin.email, other_user.email]
    assert [u["id"] for u in by_email.json()] == [other_user.id]
    assert len(active.json()) == 2
    assert everyone.json()[0]["is_superuser"] is True
    assert "hashed_password" not in everyone.json()[0]


@pytest.mark.parametrize("email", ["\x00", "x\x1b[2J", "x" * 321])
async def test_a_filter_value_no_database_can_store_is_422(
    client: AsyncClient, admin: User, auth_headers: dict[str, str], email: str
) -> None:
    response = await client.get(USERS, params={"email": email}, headers=auth_headers)

    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "email"]


async def test_a_superuser_reads_one_account(
    client: AsyncClient, admin: User, other_user: User, auth_headers: dict[str, str]
) -> None:
    found = await client.get(f"{USERS}/{other_user.id}", headers=auth_headers)
    missing = await client.get(f"{USERS}/{other_user.id + 1000}", headers=auth_headers)

    assert found.json()["email"] == other_user.email
    assert found.json()["is_superuser"] is False
    assert missing.status_code == 404


async def test_a_deactivated_account_is_locked_out_of_writes_at_once(
    client: AsyncClient,
    admin: User,
    other_user: User,
    auth_headers: dict[str, str],
    other_auth_headers: dict[str, str],
) -> None:
    response = await client.patch(
        f"{USERS}/{other_user.id}", json={"is_active": False}, headers=auth_headers
    )

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    me = await client.get("/api/v1/auth/me", headers=other_auth_headers)
    assert me.status_code == 401


async def test_granting_superuser_lets_that_account_manage_others(
    client: AsyncClient,
    admin: User,
    other_user: User,
    auth_headers: dict[str, str],
    other_auth_headers: dict[str, str],
) -> None:
    grant = await client.patch(
        f"{USERS}/{other_user.id}", json={"is_superuser": True}, headers=auth_headers
    )
    assert grant.json()["is_superuser"] is True
    assert (await client.get(USERS, headers=other_auth_headers)).status_code == 200


@pytest.mark.parametrize(
    "change", [{"is_superuser": False}, {"is_active": False}, None], ids=str
)
async def test_the_last_active_superuser_cannot_be_removed(
    client: AsyncClient,
    admin: User,
    other_user: User,
    auth_headers: dict[str, str],
    session: AsyncSession,
    change: dict[str, bool] | None,
) -> None:
    url = f"{USERS}/{admin.id}"

    async def remove() -> Response:
        if change is None:
            return await client.delete(url, headers=auth_headers)
        return await client.patch(url, json=change, headers=auth_headers)

    refused = await remove()
    assert refused.status_code == 409
    assert "no active superuser" in refused.json()["detail"]

    other_user.is_superuser = True  # with another one, it is allowed
    await session.commit()
    allowed = await remove()
    assert allowed.status_code in (200, 204)


async def test_an_inactive_superuser_does_not_count(
    client: AsyncClient,
    admin: User,
    other_user: User,
    auth_headers: dict[str, str],
    session: AsyncSession,
) -> None:
    other_user.is_superuser = True
    other_user.is_active = False
    await session.commit()

    response = await client.patch(
        f"{USERS}/{admin.id}", json={"is_superuser": False}, headers=auth_headers
    )
    assert response.status_code == 409


async def test_deleting_an_account_removes_it(
    client: AsyncClient, admin: User, other_user: User, auth_headers: dict[str, str]
) -> None:
    deleted = await client.delete(f"{USERS}/{other_user.id}", headers=auth_headers)
    again = await client.get(f"{USERS}/{other_user.id}", headers=auth_headers)
    assert deleted.status_code == 204
    assert again.status_code == 404


@pytest.mark.parametrize(
    "body",
    [{"is_active": None}, {"is_active": "false"}, {"email": "x@example.com"}, {"x": 1}],
)
async def test_odd_changes_are_422(
    client: AsyncClient,
    admin: User,
    other_user: User,
    auth_headers: dict[str, str],
    body: dict[str, object],
) -> None:
    response = await client.patch(
        f"{USERS}/{other_user.id}", json=body, headers=auth_headers
    )
    assert response.status_code == 422


async def test_a_deleted_accounts_id_never_comes_back(
    client: AsyncClient, admin: User, other_user: User, auth_headers: dict[str, str]
) -> None:
    # A token names its user by id: a reused id would let an old token in as
    # someone else (SQLite reuses the highest freed id unless told not to).
    await client.delete(f"{USERS}/{other_user.id}", headers=auth_headers)
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "carol@example.com", "password": "a-long-password"},
    )
    assert response.json()["id"] > other_user.id
