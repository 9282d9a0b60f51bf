"""The wellnest CLI through typer's CliRunner, on projects rendered in tmp_path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import Render, git, snapshot
from wellnest import __version__, changes
from wellnest.cli import app

runner = CliRunner()


def wellnest(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def add(project: Path, name: str, *extra: str) -> tuple[int, str]:
    return wellnest("add-module", name, "--project", str(project), *extra)


# ---- the invariant: add-module after a copy == a copy with the module ----------


@pytest.mark.parametrize(
    ("start", "added"),
    [
        (["bookings"], ["payments"]),
        (["bookings"], ["payment_methods"]),
        (["bookings"], ["payments", "invoices"]),
        ([], ["bookings"]),
        (["bookings", "payments"], ["accounts"]),
        (["bookings"], ["categories", "addresses", "notification_preferences"]),
    ],
    ids=["payments", "compound", "two-in-a-row", "into-empty", "sorts-first", "plural-rules"],
)
def test_add_module_matches_a_fresh_copy(
    render: Render, start: list[str], added: list[str]
) -> None:
    project = render(modules=start)
    for name in added:
        code, output = add(project, name)
        assert code == 0, output

    expected = render(modules=[*start, *added])
    assert snapshot(project) == snapshot(expected)


def test_a_reference_leaves_the_referenced_module_untouched(render: Render) -> None:
    """Rails' `references` never touches the target model: neither does a ref.
    The referenced module has been edited by hand, as every module of a project
    owned for years will have been; adding a module that points at it works,
    and changes nothing of it."""
    project = render(modules=["bookings", "payment_methods"])
    target = project / "app/modules/payment_methods"
    for edited in (target / "service.py", project / "app/api/v1/endpoints/payment_methods.py"):
        edited.write_text(edited.read_text() + "\n# Our team's note.\n")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    before = snapshot(project)

    spec = ("method:ref=payment_methods", "booking:ref=bookings:opt:ondelete=cascade")
    code, output = add(project, "invoices", "total:decimal=10,2", *spec)

    assert code == 0, output
    after = snapshot(project)
    changed = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}
    assert changed == {
        ".copier-answers.yml",
        "app/api/v1/router.py",
        "app/db/base.py",
        "migrations/versions/create_invoices.py",
        "app/modules/invoices/__init__.py",
        "app/modules/invoices/models.py",
        "app/modules/invoices/schemas.py",
        "app/modules/invoices/service.py",
        "app/api/v1/endpoints/invoices.py",
        "tests/factories/invoices.py",
        "tests/integration/api/v1/test_invoices_endpoints.py",
        "tests/integration/api/v1/test_invoices_lists.py",
        "tests/unit/test_modules/test_invoices_service.py",
    }, sorted(changed)


@pytest.mark.parametrize(
    ("name", "singular", "class_name"),
    [("people", "person", "Person"), ("statuses", "status", "Status"), ("news", "news", "News")],
)
def test_irregular_plurals_are_pinned_in_the_answers(
    render: Render, name: str, singular: str, class_name: str
) -> None:
    project = render(modules=["bookings"])

    code, output = add(project, name)

    assert code == 0, output
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["modules"] == ["bookings", {"name": name, "singular": singular}]
    models = (project / f"app/modules/{name}/models.py").read_text()
    assert f"class {class_name}(Base):" in models
    expected = render(modules=answers["modules"])
    assert snapshot(project) == snapshot(expected)


def test_regular_plurals_stay_plain_names(render: Render) -> None:
    project = render(modules=[])

    for name in ("categories", "addresses", "payment_methods", "sheep"):
        assert add(project, name)[0] == 0

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["modules"] == ["categories", "addresses", "payment_methods", "sheep"]


def test_migration_chains_onto_the_current_head(render: Render) -> None:
    project = render(modules=["bookings"])
    own = project / "migrations/versions/a1b2c3_add_index.py"
    own.write_text(
        '"""A revision the team wrote."""\n\n'
        'revision = "a1b2c3"\ndown_revision = "create_bookings"\n\n\n'
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )

    code, output = add(project, "payments")

    assert code == 0, output
    migration = (project / "migrations/versions/create_payments.py").read_text()
    assert 'down_revision: str | None = "a1b2c3"' in migration


# ---- help, version, entry points ----------------------------------------------


def test_version() -> None:
    code, output = wellnest("--version")
    assert code == 0
    assert output.strip() == f"wellnest {__version__}"


@pytest.mark.parametrize(
    "command",
    ["new", "add-module", "remove-module", "modules", "add-field", "rename-field", "remove-field"],
)
def test_every_command_has_help(command: str) -> None:
    code, output = wellnest(command, "--help")
    assert code == 0
    assert "Usage" in output


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wellnest", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"wellnest {__version__}"


# ---- dry run ---------------------------------------------------------------------


def test_dry_run_shows_files_and_diffs_and_writes_nothing(render: Render) -> None:
    project = render()
    before = snapshot(project)

    code, output = add(project, "payments", "--dry-run")

    assert code == 0, output
    assert snapshot(project) == before
    assert "payments.py" in output
    assert "create_payments.py" in output
    assert "+from app.modules.payments.models import Payment" in output
    assert "+    payments," in output
    assert "+- payments" in output
    assert "nothing was written" in output


def test_a_singular_name_is_added_with_a_warning_that_suggests_the_plural(
    render: Render,
) -> None:
    project = render()

    code, output = add(project, "prescription")

    assert code == 0, output
    assert output.startswith(
        "warning: 'prescription' looks singular; modules are named in the plural "
        "(did you mean 'prescriptions'?), and its routes will be /prescription\n"
    )
    assert "warning" not in add(project, "payment_methods")[1]


def test_dry_run_diffs_keep_every_character_of_long_lines(render: Render) -> None:
    project = render()
    spec = "status:enum=" + ",".join(letter * 40 for letter in "abcde")

    code, output = add(project, "payments", spec, "--dry-run")

    assert code == 0, output
    assert f"+    - {spec}\n" in output  # 217 characters, piped at 80 columns


# ---- refusals: one line, an exit code, an unchanged tree --------------------------


@pytest.mark.parametrize(
    ("name", "exit_code", "message"),
    [
        ("Payments", 2, "snake_case"),
        ("pay-ments", 2, "snake_case"),
        ("", 2, "snake_case"),
        ("../x", 2, "snake_case"),
        ("a/b", 2, "snake_case"),
        ("class", 2, "Python keyword"),
        ("auth", 2, "reserved"),
        ("core", 2, "reserved"),
        ("bases", 2, "reserved"),
        ("bookings", 1, "already exists"),
    ],
)
def test_bad_names_are_refused_without_changes(
    render: Render, name: str, exit_code: int, message: str
) -> None:
    project = render()
    before = snapshot(project)

    code, output = add(project, name)

    assert code == exit_code
    assert message in output
    assert len(output.strip().splitlines()) == 1
    assert output.startswith("error: ")
    assert snapshot(project) == before


def test_outside_a_project_is_refused(tmp_path: Path) -> None:
    code, output = add(tmp_path, "payments")
    assert code == 1
    assert "not inside a wellnest project" in output
    assert list(tmp_path.iterdir()) == []


def test_discovery_searches_upward(render: Render, chdir: object) -> None:
    project = render()
    assert callable(chdir)
    chdir(project / "app" / "modules")

    code, output = wellnest("add-module", "payments")

    assert code == 0, output
    assert (project / "app/modules/payments/models.py").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not inside a wellnest project"),
        ("modules: [unclosed\n", "cannot be read"),
        ("- just\n- a list\n", "corrupt"),
        ("project_name: x\n", "corrupt"),
        ("modules: 3\n", "corrupt"),
    ],
    ids=["missing", "bad-yaml", "not-a-mapping", "no-modules", "modules-not-a-list"],
)
def test_a_missing_or_corrupt_answers_file_is_refused(
    render: Render, content: str | None, message: str
) -> None:
    project = render()
    answers = project / ".copier-answers.yml"
    if content is None:
        answers.unlink()
    else:
        answers.write_text(content)
    before = snapshot(project)

    code, output = add(project, "payments")

    assert code == 1
    assert message in output
    assert snapshot(project) == before


@pytest.mark.parametrize("relpath", ["app/db/base.py", "app/api/v1/router.py"])
def test_a_registry_file_that_does_not_parse_is_refused(render: Render, relpath: str) -> None:
    project = render()
    path = project / relpath
    path.write_text(path.read_text() + "\ndef broken(:\n")
    before = snapshot(project)

    code, output = add(project, "payments")

    assert code == 1
    assert f"{relpath} does not parse" in output
    assert snapshot(project) == before


def test_a_write_failing_halfway_rolls_everything_back(
    render: Render, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = render()
    before = snapshot(project)
    real_write = changes._write
    calls = {"n": 0}

    def failing_write(path: Path, data: bytes, *, durable: bool = False) -> None:
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError(28, "No space left on device")
        real_write(path, data, durable=durable)

    monkeypatch.setattr(changes, "_write", failing_write)

    code, output = add(project, "payments")

    assert code == 1
    assert "No space left on device; nothing was changed" in output
    assert calls["n"] == 6
    assert snapshot(project) == before
    assert not (project / "app/modules/payments").exists()


def test_an_unregistered_module_folder_is_refused(render: Render) -> None:
    project = render()
    (project / "app/modules/payments").mkdir()

    code, output = add(project, "payments")

    assert code == 1
    assert "not a registered module" in output


# ---- registry edits survive hand edits -----------------------------------------


def test_registry_edits_keep_every_user_line(render: Render) -> None:
    project = render(modules=["bookings", "payments"])
    router = project / "app/api/v1/router.py"
    router.write_text(
        router.read_text()
        .replace("api_router = APIRouter()", "# Our API.\napi_router = APIRouter()")
        .replace(
            "api_router.include_router(auth.router)\napi_router.include_router(bookings.router)",
            "api_router.include_router(bookings.router)  # busy\n"
            "api_router.include_router(auth.router)",
        )
        + "\nfrom app.custom import admin_router  # noqa: E402\n\n"
        'api_router.include_router(admin_router, prefix="/admin")\n'
    )
    base = project / "app/db/base.py"
    base.write_text(base.read_text() + "\n# Keep this comment.\n")
    old_router, old_base = router.read_text(), base.read_text()

    code, output = add(project, "invoices")

    assert code == 0, output
    new_router, new_base = router.read_text(), base.read_text()
    for line in old_router.splitlines():
        assert line in new_router.splitlines()
    for line in old_base.splitlines():
        assert line in new_base.splitlines()
    assert "    invoices,\n    payments," in new_router
    assert new_router.count("include_router(invoices.router)") == 1
    lines = new_router.splitlines()
    custom = lines.index('api_router.include_router(admin_router, prefix="/admin")')
    assert lines.index("api_router.include_router(invoices.router)") < custom
    assert "from app.modules.invoices.models import Invoice\n" in new_base
    assert '    "Invoice",\n' in new_base
    compile(new_router, "router.py", "exec")
    compile(new_base, "base.py", "exec")


def test_add_module_twice_never_duplicates_a_line(render: Render) -> None:
    project = render()
    assert add(project, "payments")[0] == 0
    once = snapshot(project)

    code, output = add(project, "payments")

    assert code == 1
    assert "already exists" in output
    assert snapshot(project) == once
    router = (project / "app/api/v1/router.py").read_text()
    assert router.count("payments") == 2


# ---- remove-module ------------------------------------------------------------------


def test_remove_module_undoes_add_module(render: Render) -> None:
    project = render()
    before = snapshot(project)
    assert add(project, "payments")[0] == 0

    code, output = wellnest("remove-module", "payments", "--project", str(project))

    assert code == 0, output
    assert "warning" not in output  # its SQLite database does not exist yet
    assert snapshot(project) == before
    assert not (project / "app/modules/payments").exists()


def test_a_module_added_again_after_its_migration_was_committed_gets_a_new_id(
    render: Render,
) -> None:
    """create_people was committed, so some database may have applied it: the
    new people (other fields) must not reuse the id, or `alembic upgrade head`
    would silently skip its table there."""
    project = render(modules=["bookings"])
    git(project, "init", "-q", "-b", "main")
    assert add(project, "people", "nickname:str=40")[0] == 0
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "people")
    assert wellnest("remove-module", "people", "--project", str(project))[0] == 0
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "no people")

    code, output = add(project, "people", "nickname:str=40", "age:int:opt")

    assert code == 0, output
    gone, entry = yaml.safe_load((project / ".copier-answers.yml").read_text())["modules"][1:]
    assert "removed" in gone  # its migrations stay: a database may hold them
    revision = entry["revision"]
    assert re.fullmatch(r"create_people_[0-9a-f]{6}", revision), revision
    assert (project / "migrations/versions/create_people.py").exists()
    assert entry["after"] == gone["removed"]["revision"]
    migration = (project / f"migrations/versions/{revision}.py").read_text()
    assert f'revision: str = "{revision}"' in migration
    # The answers still reproduce the project.
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert snapshot(project) == snapshot(render(modules=answers["modules"]))


def test_a_module_added_again_before_any_commit_keeps_its_id(render: Render) -> None:
    project = render(modules=["bookings"])
    assert add(project, "people")[0] == 0
    assert wellnest("remove-module", "people", "--project", str(project))[0] == 0

    assert add(project, "people", "nickname:str=40")[0] == 0

    assert (project / "migrations/versions/create_people.py").is_file()


def test_a_module_applied_to_the_database_is_removed_by_a_migration(render: Render) -> None:
    """Deleting a migration a database has applied would strand that database; a
    migration that drops the table works from any applied state."""
    import sqlite3

    project = render(modules=["bookings", "payments"])
    env = (project / ".env").read_text()
    database = project / env.split("sqlite+aiosqlite:///./", 1)[1].split()[0]
    with sqlite3.connect(database) as connection:  # as `alembic upgrade head` leaves it
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32))")
        connection.execute("INSERT INTO alembic_version VALUES ('create_payments')")
    connection.close()

    code, output = wellnest("remove-module", "payments", "--project", str(project))

    assert code == 0, output
    assert "dropped at the next `alembic upgrade head`" in output
    versions = project / "migrations/versions"
    assert (versions / "create_payments.py").is_file()
    (drop,) = versions.glob("payments_remove_*.py")
    assert 'down_revision: str | None = "create_payments"' in drop.read_text()
    assert 'op.drop_table("payments")' in drop.read_text()
    assert not (project / "app/modules/payments").exists()
    assert "payments" not in (project / "app/api/v1/router.py").read_text()
    # The answers keep its history: a copy with them renders this project.
    modules = yaml.safe_load((project / ".copier-answers.yml").read_text())["modules"]
    assert modules[1]["removed"] == {"revision": drop.stem, "after": "create_payments"}
    files = snapshot(project)
    files.pop(database.name)
    assert files == snapshot(render(modules=modules))


def test_a_server_database_may_hold_the_migration_so_it_is_dropped_by_one(
    render: Render,
) -> None:
    project = render(modules=["bookings", "payments"], database="postgresql")

    code, output = wellnest("remove-module", "payments", "--dry-run", "--project", str(project))

    assert code == 0, output
    assert "dropped at the next `alembic upgrade head`" in output
    assert re.search(r"\+\+\+ b/migrations/versions/payments_remove_[0-9a-f]{6}\.py", output)


def test_remove_module_refuses_edited_files_unless_forced(render: Render) -> None:
    project = render(modules=["bookings", "payments"])
    service = project / "app/modules/payments/service.py"
    service.write_text(service.read_text() + "\n# a local change\n")
    before = snapshot(project)

    code, output = wellnest("remove-module", "payments", "--project", str(project))

    assert code == 1
    assert "app/modules/payments/service.py" in output
    assert "--force" in output
    assert snapshot(project) == before

    code, output = wellnest("remove-module", "payments", "--force", "--project", str(project))
    assert code == 0, output
    assert snapshot(project) == snapshot(render(modules=["bookings"]))


def test_a_module_in_the_middle_of_the_chain_is_removed_by_a_migration(
    render: Render,
) -> None:
    project = render(modules=["customers", "payments", "notes"])

    code, output = wellnest("remove-module", "payments", "--project", str(project))

    assert code == 0, output
    versions = project / "migrations/versions"
    assert (versions / "create_payments.py").is_file()  # create_notes builds on it
    (drop,) = versions.glob("payments_remove_*.py")
    assert 'down_revision: str | None = "create_notes"' in drop.read_text()
    # Added again, with other fields: a new id, after the drop.
    code, output = add(project, "payments", "label:str=40")
    assert code == 0, output
    (created,) = versions.glob("create_payments_*.py")
    assert f'down_revision: str | None = "{drop.stem}"' in created.read_text()
    modules = yaml.safe_load((project / ".copier-answers.yml").read_text())["modules"]
    assert snapshot(project) == snapshot(render(modules=modules))


def test_a_converted_booking_table_is_removed_by_a_migration(render: Render) -> None:
    """The booking table of wellnest 0.2, converted, is a module like any other."""
    legacy = {"revision": "bookings_convert_0a1b2c", "after": "create_payments"}
    project = render(
        modules=[{"name": "bookings", "legacy_booking": legacy}, "payments"], database="postgresql"
    )

    code, output = wellnest("remove-module", "bookings", "--project", str(project))

    assert code == 0, output
    versions = project / "migrations/versions"
    (drop,) = versions.glob("bookings_remove_*.py")
    assert 'down_revision: str | None = "bookings_convert_0a1b2c"' in drop.read_text()
    assert (versions / "create_bookings.py").is_file()
    assert (versions / "bookings_convert_0a1b2c.py").is_file()
    modules = yaml.safe_load((project / ".copier-answers.yml").read_text())["modules"]
    assert modules[0]["legacy_booking"] == legacy
    assert snapshot(project) == snapshot(render(modules=modules, database="postgresql"))


def test_remove_module_of_an_unknown_module_is_refused(render: Render) -> None:
    project = render()
    code, output = wellnest("remove-module", "payments", "--project", str(project))
    assert code == 1
    assert "not in this project's modules" in output


# ---- modules -----------------------------------------------------------------------


def test_modules_lists_and_flags_drift(render: Render) -> None:
    project = render(modules=["bookings", "payments"])

    code, output = wellnest("modules", "--project", str(project))
    assert code == 0, output
    assert "bookings" in output
    assert "payments" in output
    assert "Drift" not in output

    router = project / "app/api/v1/router.py"
    router.write_text(
        router.read_text().replace("api_router.include_router(payments.router)\n", "")
    )
    (project / "app/modules/stray").mkdir()

    code, output = wellnest("modules", "--project", str(project))
    assert code == 1
    assert "Drift" in output
    assert "not registered in app/api/v1/router.py" in output
    assert "stray" in output


def test_modules_lists_hand_written_modules_without_calling_them_drift(
    render: Render,
) -> None:
    project = render(modules=["bookings", "payments"])
    # A module the team wrote itself: a folder and both registrations, no answers entry.
    (project / "app/modules/reports").mkdir()
    (project / "app/db/base.py").write_text(
        (project / "app/db/base.py").read_text()
        + "from app.modules.reports.models import Report  # noqa: E402, F401\n"
    )
    router = project / "app/api/v1/router.py"
    router.write_text(router.read_text() + "api_router.include_router(reports.router)\n")

    code, output = wellnest("modules", "--project", str(project))

    assert code == 0, output  # usable as a CI check
    assert "reports" in output
    assert "hand-written" in output
    assert "Drift" not in output


def test_modules_prints_specs_verbatim(render: Render) -> None:
    specs = ["due:date:opt", "status:enum=open,done:default=open"]
    project = render(modules=["bookings", {"name": "tasks", "fields": specs}])

    code, output = wellnest("modules", "--project", str(project))

    assert code == 0, output
    assert f"tasks {' '.join(specs)}" in output


# ---- new -----------------------------------------------------------------------------


def test_new_renders_with_the_given_answers(tmp_path: Path) -> None:
    dest = tmp_path / "billing"

    code, output = wellnest(
        "new",
        str(dest),
        "--name",
        "Billing API",
        "--database",
        "postgresql",
        "--module",
        "invoices",
        "--module",
        "people",
        "--defaults",
    )

    assert code == 0, output
    assert "uv run pytest" in output
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["project_name"] == "Billing API"
    assert answers["project_slug"] == "billing-api"
    assert answers["database"] == "postgresql"
    assert answers["modules"] == ["invoices", {"name": "people", "singular": "person"}]
    assert (dest / "app/modules/people/models.py").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--database", "oracle"], "--database must be one of"),
        (["--module", "Bad-Name"], "snake_case"),
        (["--module", "x", "--module", "x"], "listed twice"),
    ],
)
def test_new_refuses_bad_answers_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    dest = tmp_path / "svc"

    code, output = wellnest("new", str(dest), "--defaults", *args)

    assert code == 2
    assert message in output
    assert not dest.exists()


def test_new_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")

    code, output = wellnest("new", str(tmp_path), "--defaults")

    assert code == 1
    assert "not empty" in output
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
