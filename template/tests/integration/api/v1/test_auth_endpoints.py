from datetime import timedelta

from httpx import AsyncClient

from app.core.security import create_access_token
from app.modules.auth.models import User
from tests.conftest import TEST_PASSWORD

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


async def test_register_creates_a_user(client: AsyncClient) -> None:
    payload = {
        "email": "newuser@example.com",
        "password": "strongpassword123",
        "full_name": "New User",
    }

    response = await client.post(REGISTER, json=payload)

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "newuser@example.com"
    assert body["full_name"] == "New User"
    assert body["is_active"] is True
    assert isinstance(body["id"], int)
    assert "password" not in body
    assert "hashed_password" not in body


async def test_register_twice_is_a_conflict(client: AsyncClient, user: User) -> None:
    payload = {"email": "ALICE@example.com", "password": "strongpassword123"}

    response = await client.post(REGISTER, json=payload)

    assert response.status_code == 409
    assert response.json() == {"detail": "A user with this email already exists"}


async def test_register_validates_input(client: AsyncClient) -> None:
    bad_email = {"email": "not-an-email", "password": "strongpassword123"}
    short_password = {"email": "a@example.com", "password": "short"}
    long_password = {"email": "a@example.com", "password": "x" * 129}
    nul_name = {
        "email": "a@example.com",
        "password": "strongpassword123",
        "full_name": "nul\u0000",
    }
    admin = {"email": "a@example.com", "password": "pw-12345678", "is_superuser": True}
    inactive = {"email": "a@example.com", "password": "pw-12345678", "is_active": False}

    for payload in (
        bad_email,
        short_password,
        long_password,
        nul_name,
        admin,
        inactive,
    ):
        response = await client.post(REGISTER, json=payload)
        assert response.status_code == 422, payload
        assert response.json()["detail"] == "Validation error"


async def test_login_returns_a_bearer_token(client: AsyncClient, user: User) -> None:
    form = {"username": user.email, "password": TEST_PASSWORD}

    response = await client.post(LOGIN, data=form)

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    me = await client.get(
        ME, headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["email"] == user.email


async def test_an_address_logs_in_however_its_accents_are_encoded(
    client: AsyncClient,
) -> None:
    decomposed = "jose\u0301@example.com"  # "e" + a combining acute accent
    composed = "jos\u00e9@example.com"
    registered = await client.post(
        REGISTER, json={"email": decomposed, "password": TEST_PASSWORD}
    )
    assert registered.status_code == 201, registered.text

    for typed in (decomposed, composed, composed.upper()):
        form = {"username": typed, "password": TEST_PASSWORD}
        response = await client.post(LOGIN, data=form)
        assert response.status_code == 200, typed


async def test_login_failures_look_the_same(client: AsyncClient, user: User) -> None:
    wrong_password = {"username": user.email, "password": "wrong-password"}
    unknown_email = {"username": "nobody@example.com", "password": TEST_PASSWORD}

    first = await client.post(LOGIN, data=wrong_password)
    second = await client.post(LOGIN, data=unknown_email)

    assert first.status_code == second.status_code == 401
    assert first.json() == second.json() == {"detail": "Incorrect email or password"}


async def test_odd_login_input_is_a_plain_401(client: AsyncClient) -> None:
    for username in ("nul\u0000@example.com", "x" * 1000, ""):
        form = {"username": username, "password": TEST_PASSWORD}
        response = await client.post(LOGIN, data=form)
        assert response.status_code in (401, 422), username


async def test_me_requires_a_valid_token(client: AsyncClient, user: User) -> None:
    expired = create_access_token(str(user.id), expires_delta=timedelta(minutes=-1))

    for headers in (
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": f"Bearer {expired}"},
    ):
        response = await client.get(ME, headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"


async def test_me_returns_the_current_user(
    client: AsyncClient, user: User, auth_headers: dict[str, str]
) -> None:
    response = await client.get(ME, headers=auth_headers)

    assert response.status_code == 200
    assert response.json()["id"] == user.id


async def test_health_reports_the_database(client: AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": "ok"}
