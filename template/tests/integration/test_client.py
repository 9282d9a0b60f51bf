"""The typed client a team using the API generates (README, "Typed clients"):
signing up and in through it, as a frontend or another service would."""

import importlib
from types import ModuleType

from httpx import ASGITransport, AsyncClient

from app.main import app


async def test_a_generated_client_registers_signs_in_and_reads_the_account(
    sdk: ModuleType, client: AsyncClient
) -> None:
    models = importlib.import_module("sdk.models")
    register = importlib.import_module("sdk.api.auth.register")
    login = importlib.import_module("sdk.api.auth.login")
    read_me = importlib.import_module("sdk.api.auth.read_me")
    transport = {"transport": ASGITransport(app=app)}
    anonymous = sdk.Client(
        base_url="http://test", httpx_args=transport, raise_on_unexpected_status=True
    )
    account = {"email": "sdk@example.com", "password": "a-long-password"}

    created = await register.asyncio(
        client=anonymous, body=models.UserCreate.from_dict(account)
    )
    form = models.LoginForm(username=account["email"], password=account["password"])
    token = await login.asyncio(client=anonymous, body=form)
    signed_in = sdk.AuthenticatedClient(
        base_url="http://test",
        token=token.access_token,
        httpx_args=transport,
        raise_on_unexpected_status=True,
    )
    me = await read_me.asyncio(client=signed_in)

    assert isinstance(created, models.UserRead)
    assert isinstance(me, models.UserRead)
    assert (me.id, me.email) == (created.id, "sdk@example.com")
