"""/docs in a real browser with every other host unreachable (issue "contract"):
Swagger UI comes from the service itself and lists the operations."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_in
from tests.test_faults_live import serving

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_docs_render_the_operations_offline(
    project_venv: Path, template_repo: Path, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    project = copy_project(template_repo, tmp_path / "svc", modules=["bookings"])
    env = {"DATABASE_URL": "sqlite+aiosqlite:///./service.db", "DOCS_ENABLED": "true"}
    assert run_in(project_venv, project, "alembic", "upgrade", "head", env=env).returncode == 0

    with serving(project_venv, project, **env) as service:
        result = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={tmp_path / 'profile'}",
                # Every host but this machine fails to resolve: a CDN would be missing.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--virtual-time-budget=15000",
                "--dump-dom",
                f"{service.base}/docs",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    dom = result.stdout
    assert result.returncode == 0, result.stderr[-2000:]
    # Swagger UI ran: it fetched the OpenAPI document and drew each operation.
    for path, operation in (
        ("/api/v1/auth/login", "login"),
        ("/api/v1/bookings", "create_booking"),
        ("/api/v1/bookings/{booking_id}", "delete_booking"),
    ):
        assert f'data-path="{path}"' in dom, path
        assert f'/{operation}"' in dom, operation
