"""copier.yml and template/: answers, validators, and what lands in a render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SECRET, Render, snapshot
from tests.test_fields import DEFAULT_MODULES

MODULE_FILES = [
    "app/modules/{m}/__init__.py",
    "app/modules/{m}/models.py",
    "app/modules/{m}/schemas.py",
    "app/modules/{m}/service.py",
    "app/api/v1/endpoints/{m}.py",
    "tests/unit/test_modules/test_{m}_service.py",
    "tests/integration/api/v1/test_{m}_endpoints.py",
    "migrations/versions/create_{m}.py",
]


def test_defaults_render_the_seed_layout(copie: Any) -> None:
    result = copie.copy()

    assert result.exit_code == 0, result.exception
    root = result.project_dir
    for relpath in [
        "pyproject.toml",
        ".pre-commit-config.yaml",
        ".env.example",
        ".env",
        ".gitignore",
        "alembic.ini",
        "README.md",
        "Dockerfile",
        "compose.yaml",
        ".github/workflows/ci.yml",
        "app/main.py",
        "app/core/config.py",
        "app/core/exceptions.py",
        "app/core/logging.py",
        "app/core/security.py",
        "app/db/session.py",
        "app/db/base.py",
        "app/api/v1/router.py",
        "app/api/v1/dependencies.py",
        "app/api/v1/endpoints/auth.py",
        "app/modules/auth/models.py",
        "app/modules/auth/schemas.py",
        "app/modules/auth/service.py",
        "tests/__init__.py",
        "tests/conftest.py",
        "tests/unit/test_modules/test_auth_service.py",
        "tests/integration/api/v1/test_auth_endpoints.py",
        "migrations/env.py",
        "migrations/versions/0001_create_users.py",
        "migrations/versions/0002_account_security.py",
        "migrations/versions/0003_events.py",
        "app/events/models.py",
        "app/modules/webhooks/service.py",
        "app/api/v1/endpoints/webhooks.py",
        "tests/integration/test_events.py",
        *(path.format(m=m) for path in MODULE_FILES for m in ("therapists", "bookings")),
        "tests/integration/api/v1/test_bookings_overlaps.py",
    ]:
        assert (root / relpath).is_file(), relpath
    answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
    assert answers["modules"] == DEFAULT_MODULES
    assert answers["database"] == "sqlite"
    assert answers["project_slug"] == "wellnest-service"


def test_nothing_of_the_template_repository_leaks(copie: Any) -> None:
    result = copie.copy()

    files = set(snapshot(result.project_dir))
    assert not any(path.endswith(".jinja") for path in files)
    for leaked in ("copier.yml", "src", "pyproject.toml.jinja", "template", "docs"):
        assert not any(path == leaked or path.startswith(leaked + "/") for path in files)
    assert not any("{%" in path or "{{" in path for path in files)


def test_the_secret_lands_in_dot_env_only(render: Render) -> None:
    root = render()

    files = snapshot(root)
    holders = [path for path, data in files.items() if SECRET.encode() in data]
    assert holders == [".env"]
    answers = yaml.safe_load(files[".copier-answers.yml"])
    assert "secret_key" not in answers


def test_each_render_gets_its_own_random_secret(copie: Any) -> None:
    first = copie.copy().project_dir / ".env"
    second = copie.copy().project_dir / ".env"

    def secret(path: Path) -> str:
        line = next(x for x in path.read_text().splitlines() if x.startswith("SECRET_KEY="))
        return line.split("=", 1)[1]

    assert secret(first) != secret(second)
    assert len(secret(first)) >= 32


def test_modules_render_through_yield_with_names(render: Render) -> None:
    root = render(modules=["bookings", "payments", "payment_methods"])

    for module in ("bookings", "payments", "payment_methods"):
        for relpath in MODULE_FILES:
            assert (root / relpath.format(m=module)).is_file()
    models = (root / "app/modules/payment_methods/models.py").read_text()
    assert "class PaymentMethod(Base):" in models
    assert '__tablename__ = "payment_methods"' in models
    endpoints = (root / "app/api/v1/endpoints/payment_methods.py").read_text()
    assert 'prefix="/payment-methods"' in endpoints
    assert 'tags=["Payment Methods"]' in endpoints
    payments = (root / "app/api/v1/endpoints/payments.py").read_text()
    assert 'prefix="/payments"' in payments
    assert 'tags=["Payments"]' in payments
    assert "class Payment(Base):" in (root / "app/modules/payments/models.py").read_text()


def test_no_modules_renders_auth_and_account_management_only(render: Render) -> None:
    root = render(modules=[])

    assert not (root / "app/modules/bookings").exists()
    router = (root / "app/api/v1/router.py").read_text()
    assert "import (\n    auth,\n    events,\n    users,\n    webhooks,\n)" in router


def test_migrations_chain_in_module_order(render: Render) -> None:
    root = render(modules=["bookings", "payments", "invoices"])

    versions = root / "migrations/versions"
    assert (
        'down_revision: str | None = "0003_events"' in (versions / "create_bookings.py").read_text()
    )
    assert (
        'down_revision: str | None = "create_bookings"'
        in (versions / "create_payments.py").read_text()
    )
    assert (
        'down_revision: str | None = "create_payments"'
        in (versions / "create_invoices.py").read_text()
    )


@pytest.mark.parametrize(
    ("database", "driver", "url"),
    [
        ("sqlite", "aiosqlite", "sqlite+aiosqlite:///./wellnest_service.db"),
        ("postgresql", "asyncpg", "postgresql+asyncpg://"),
        ("mysql", "aiomysql", "mysql+aiomysql://"),
    ],
)
def test_the_driver_follows_the_database(
    render: Render, database: str, driver: str, url: str
) -> None:
    root = render(database=database)

    assert f'"{driver}>=' in (root / "pyproject.toml").read_text()
    assert f"DATABASE_URL={url}" in (root / ".env").read_text()


def test_optional_files_follow_the_switches(render: Render) -> None:
    root = render(include_docker=False, include_github_actions=False)

    assert not (root / "Dockerfile").exists()
    assert not (root / "compose.yaml").exists()
    assert not (root / ".dockerignore").exists()
    assert not (root / ".github").exists()


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_slug": "Not Kebab"}, "kebab-case"),
        ({"project_slug": "-leading"}, "kebab-case"),
        ({"project_name": "  "}, "must not be empty"),
        ({"author_email": "nobody"}, "email"),
        ({"python_version": "3.9"}, ""),
        ({"database": "oracle"}, ""),
        ({"modules": ["Payments"]}, "snake_case"),
        ({"modules": ["pay-ments"]}, "snake_case"),
        ({"modules": ["../x"]}, "snake_case"),
        ({"modules": [""]}, "snake_case"),
        ({"modules": ["class"]}, "Python keyword"),
        ({"modules": ["auth"]}, "reserved"),
        ({"modules": ["tests"]}, "reserved"),
        ({"modules": ["payments", "payments"]}, "listed twice"),
        ({"modules": ["a" * 25]}, "longer than 24"),
        ({"modules": "payments"}, "YAML list"),
    ],
)
def test_validators_reject_bad_answers(copie: Any, answers: dict[str, Any], message: str) -> None:
    result = copie.copy(extra_answers=answers)

    assert result.exit_code != 0
    assert message in str(result.exception)


def test_a_short_secret_key_is_rejected(render: Render) -> None:
    with pytest.raises(ValueError, match="at least 32"):
        render(secret_key="short")
