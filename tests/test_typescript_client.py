"""A TypeScript client of the generated service (issue "contract"), made the way the
generated README says: @hey-api/openapi-ts reads `python -m app openapi`, `tsc
--strict` accepts a program written against the client (tests/typescript/smoke.ts),
and that program, run by Node against the service, signs up, signs in, and creates,
lists, updates and deletes a booking, meeting a 409 and a 404 on the way."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import copy_project, run_in
from tests.test_faults_live import serving

pytestmark = pytest.mark.slow

NPM = shutil.which("npm")
NODE = shutil.which("node")
# The versions the generated README names; npm fetches them from its registry.
PACKAGES = ("@hey-api/openapi-ts@0.95", "typescript@5")
TSCONFIG = {
    "compilerOptions": {
        "strict": True,
        "target": "es2022",
        "module": "commonjs",
        "moduleResolution": "node10",
        "outDir": "dist",
        "skipLibCheck": True,
        "types": [],
    },
    "include": ["src"],
}


def npm(folder: Path, *args: str) -> str:
    assert NPM is not None
    result = subprocess.run(
        [NPM, *args], cwd=folder, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.skipif(NPM is None or NODE is None, reason="Node.js and npm are not installed")
def test_a_typescript_client_drives_the_service(
    project_venv: Path, template_repo: Path, tmp_path: Path
) -> None:
    assert NODE is not None
    project = copy_project(template_repo, tmp_path / "svc")  # therapists and bookings
    env = {"DATABASE_URL": "sqlite+aiosqlite:///./service.db"}
    assert run_in(project_venv, project, "alembic", "upgrade", "head", env=env).returncode == 0
    document = run_in(project_venv, project, "python", "-m", "app", "openapi", env=env)
    assert document.returncode == 0, document.stderr

    web = tmp_path / "web"
    (web / "src").mkdir(parents=True)
    (web / "openapi.json").write_text(document.stdout)
    (web / "package.json").write_text(json.dumps({"private": True}))
    (web / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    shutil.copy2(Path(__file__).parent / "typescript" / "smoke.ts", web / "src" / "smoke.ts")
    npm(web, "install", "--no-audit", "--no-fund", "--loglevel=error", *PACKAGES)
    generated = npm(web, "exec", "--", "openapi-ts", "-i", "openapi.json", "-o", "src/client")
    assert "warn" not in generated.lower(), generated
    sdk = (web / "src" / "client" / "sdk.gen.ts").read_text()
    for name in ("login", "register", "createBooking", "listBookings", "deleteTherapist"):
        assert f"export const {name} = " in sdk, name
    assert "ApiV1" not in sdk  # no routing noise in the names
    npm(web, "exec", "--", "tsc", "-p", ".")  # --strict: every type lines up

    with serving(project_venv, project, **env) as service:
        ran = subprocess.run(
            [NODE, "dist/smoke.js", service.base],
            cwd=web,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    result = json.loads(ran.stdout.splitlines()[-1])
    booked = result["booked"]
    assert result == {
        "me": "ts-client@example.com",
        "owner": True,
        "clash": 409,
        "listed": [booked],
        "booked": booked,
        "updated": ["bring the forms", "2031-05-01T10:30:00Z"],
        "read": "bring the forms",
        "gone": 404,
    }
