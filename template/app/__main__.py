"""Management commands: `python -m app create-superuser [--email E] [--password-stdin]`.

The password never comes from the command line: arguments show in `ps`, shell
history and CI logs. It comes from standard input (`--password-stdin`), from
FIRST_SUPERUSER_PASSWORD, or from a prompt in a terminal.
"""

import argparse
import asyncio
import getpass
import sys
from collections.abc import Callable
from typing import TextIO

from app.modules.auth.superuser import SuperuserInputError


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser(
        "create-superuser",
        help="create the first superuser, or make an existing account one",
    )
    create.add_argument("--email", help="default: FIRST_SUPERUSER_EMAIL")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input (default: "
        "FIRST_SUPERUSER_PASSWORD, else a prompt)",
    )
    return parser.parse_args(argv)


def read_password(
    args: argparse.Namespace,
    configured: str | None,
    stdin: TextIO,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    if args.password_stdin:
        return stdin.readline().rstrip("\r\n")
    if configured:
        return configured
    if not stdin.isatty():
        msg = (
            "no password: set FIRST_SUPERUSER_PASSWORD, pipe one with "
            "--password-stdin, or run this in a terminal"
        )
        raise SuperuserInputError(msg)
    password = prompt("Password: ")
    if prompt("Password (again): ") != password:
        raise SuperuserInputError("the passwords differ")
    return password


async def _create(email: str | None, password: str) -> str:
    from app.db.session import SessionLocal, engine
    from app.modules.auth.superuser import ensure_superuser

    try:
        return await ensure_superuser(email, password, SessionLocal)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from app.core.config import settings

    try:
        password = read_password(args, settings.FIRST_SUPERUSER_PASSWORD, sys.stdin)
        email = args.email or settings.FIRST_SUPERUSER_EMAIL
        print(asyncio.run(_create(email, password)))
    except SuperuserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
