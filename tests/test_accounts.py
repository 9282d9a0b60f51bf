"""Accounts in a render on real servers (issue "Accounts"): its own command line
(`python -m app create-superuser`), and a password reset through real SMTP."""

import email
import re
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_in
from tests.test_faults_live import LOCAL, _free_port, call, post_json, serving, token_for


def test_create_superuser_from_stdin_is_idempotent_and_refuses_bad_input(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
) -> None:
    project = copy_project(template_repo, tmp_path / "svc", database="postgresql")
    env = {"DATABASE_URL": server_database("postgresql"), "ENVIRONMENT": "production"}
    assert run_in(project_venv, project, "alembic", "upgrade", "head", env=env).returncode == 0

    def create(*args: str, stdin: str = "") -> tuple[int, str, str]:
        done = run_in(
            project_venv,
            project,
            "python",
            "-m",
            "app",
            "create-superuser",
            *args,
            env=env,
            stdin=stdin,
        )
        return done.returncode, done.stdout.strip(), done.stderr.strip()

    email = ["--email", "root@example.com"]
    assert create(*email, "--password-stdin", stdin="a-long-password\n") == (
        0,
        "Created the superuser root@example.com.",
        "",
    )
    again = create(*email, "--password-stdin", stdin="another-password\n")
    assert again[:2] == (0, "root@example.com is already an active superuser; nothing changed.")
    # Bad input: one line, exit 2, nothing changed.
    short = create("--email", "new@example.com", "--password-stdin", stdin="short\n")
    assert short == (2, "", "error: password: String should have at least 8 characters")
    no_tty = create("--email", "new@example.com")  # stdin is not a terminal: no prompt
    assert no_tty[0] == 2
    assert no_tty[2].startswith("error: no password")
    argv = create("--email", "new@example.com", "--password", "in-the-process-list")
    assert argv[0] == 2  # argparse refuses it: passwords never come from arguments

    login = run_in(
        project_venv,
        project,
        "python",
        "-c",
        "import asyncio\n"
        "from app.db.session import SessionLocal\n"
        "from app.modules.auth.service import AuthService\n"
        "async def main():\n"
        "    async with SessionLocal() as s:\n"
        "        user = await AuthService(s).authenticate('root@example.com', 'a-long-password')\n"
        "        print(user.is_superuser, await AuthService(s).get_by_email('new@example.com'))\n"
        "asyncio.run(main())",
        env=env,
    )
    assert login.stdout.strip() == "True None", login.stderr


@pytest.mark.parametrize(
    "database",
    [
        pytest.param("postgresql", marks=pytest.mark.postgresql),
        pytest.param("mysql", marks=pytest.mark.mysql),
    ],
)
def test_a_password_reset_by_email_on_a_real_server(
    project_venv: Path,
    tmp_path: Path,
    template_repo: Path,
    server_database: Callable[[str], str],
    database: str,
) -> None:
    """uvicorn, a real database and a real SMTP server (aiosmtpd's debugging
    server, which prints what it receives): the link arrives, two requests racing
    with it make one new password, old tokens die, and no log shows the secret."""
    project = copy_project(template_repo, tmp_path / "svc", database=database)
    url = server_database(database)
    migrated = run_in(
        project_venv, project, "alembic", "upgrade", "head", env={"DATABASE_URL": url}
    )
    assert migrated.returncode == 0, migrated.stderr
    smtp_port = _free_port()
    mailbox = tmp_path / "smtp.log"
    smtp = subprocess.Popen(
        [str(project_venv / "bin/python"), "-m", "aiosmtpd", "-n", "-l", f"{LOCAL}:{smtp_port}"],
        stdout=mailbox.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        env = {
            "DATABASE_URL": url,
            "SECRET_KEY": "a-live-test-secret-" + "x" * 32,
            "SMTP_HOST": LOCAL,
            "SMTP_PORT": str(smtp_port),
            "SMTP_SECURITY": "none",
            "REDIS_URL": "",
        }
        with serving(project_venv, project, **env) as service:
            base = service.base
            old_token = token_for(base, "reset@example.com")
            status, _ = post_json(
                base, "/api/v1/auth/password-reset", {"email": "reset@example.com"}
            )
            assert status == 202
            secret = _wait_for_link(mailbox)

            def confirm(_: int) -> int:
                body = {"token": secret, "new_password": "the-new-password"}
                return post_json(base, "/api/v1/auth/password-reset/confirm", body)[0]

            with ThreadPoolExecutor(4) as pool:
                outcomes = sorted(pool.map(confirm, range(4)))
            me = call(f"{base}/api/v1/auth/me", headers={"Authorization": f"Bearer {old_token}"})
            form = urllib.parse.urlencode(
                {"username": "reset@example.com", "password": "the-new-password"}
            ).encode()
            login = call(
                f"{base}/api/v1/auth/login",
                data=form,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        log = service.stop()
    finally:
        smtp.terminate()
        smtp.wait(timeout=10)

    assert outcomes == [204, 400, 400, 400]
    assert me[0] == 401
    assert login[0] == 200
    assert secret not in log
    assert "Traceback" not in log


def _wait_for_link(mailbox: Path) -> str:
    """The secret of the reset link in the first message the server printed."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        printed = mailbox.read_text(errors="replace")
        if "END MESSAGE" in printed:
            printed_block = printed.split("MESSAGE FOLLOWS ----------\n", 1)[1]
            # The server's own lines (mail options), a blank line, then the message.
            raw = printed_block.split("\n\n", 1)[1].split("\n------------ END", 1)[0]
            body = email.message_from_string(raw).get_payload(decode=True)
            assert isinstance(body, bytes)
            found = re.search(r"#token=([A-Za-z0-9_-]+)", body.decode())
            assert found is not None, printed
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError(f"no reset email arrived:\n{mailbox.read_text(errors='replace')}")
