"""What jobs are given, as taskiq dependencies: tests put theirs in place with
`broker.dependency_overrides`, as they do for routes with FastAPI's."""

from typing import Annotated

from taskiq import TaskiqDepends

from app.core import email
from app.db.session import SessionLocal
from app.modules.auth.passwords import SessionFactory


def session_factory() -> SessionFactory:
    """A job opens sessions of its own: it runs after the request is gone."""
    return SessionLocal


def current_mailer() -> email.Mailer:
    return email.mailer


SessionsDep = Annotated[SessionFactory, TaskiqDepends(session_factory)]
MailerDep = Annotated[email.Mailer, TaskiqDepends(current_mailer)]
