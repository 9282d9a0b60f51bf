"""Accounts in a render, through its own command line, on a real PostgreSQL:
`python -m app create-superuser` (issue "Accounts")."""

from collections.abc import Callable
from pathlib import Path

from tests.conftest import copy_project, run_in


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
