"""Field specs through both entry points: the invariant, canonical answers, bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.conftest import REPO, Render, copy_project, make_template_repo, snapshot
from wellnest.cli import app

runner = CliRunner()

# Every type and every modifier, across a chain payments -> refunds -> receipts.
EVERY_TYPE = [
    "amount:decimal=12,2",
    "currency:str=3:index",
    "status:enum=pending,paid,refunded:default=pending",
    "booking:ref=bookings:opt:ondelete=setnull",
    "code:str=20:uniq",
    "paid_on:date:opt",
    "meta:json:opt",
    "token:uuid:default=new",
    "settled_at:datetime:default=now",
    "attempts:int:default=0",
    "sequence:bigint:opt:uniq",
    "captured:bool:default=true",
    "notes:text:opt:search",
    "therapists:refs=therapists",
]
REFUNDS = [
    "payment:ref=payments:ondelete=cascade",
    "amount:decimal=10,2",
    "reason:str=200:opt:search",
]
RECEIPTS = ["refund:ref=refunds", "slot:ref=bookings", "number:int:uniq", "order:str=10:index"]
# Every type at its bounds, with names at their length limits (24 for modules, 30 for
# fields): the render must still pass ruff, mypy and its own suite on every database.
ENUM_VALUES = ",".join(letter * 48 + "_x" for letter in "abcdef")  # 50 characters each
BOUNDS = [
    "calibration_certificate_number:str=767:uniq",
    "payment:ref=payments:opt:ondelete=setnull",
    "largest_whole_amount_in_cents:decimal=38,0",
    "fraction_with_full_scale_ratio:decimal=30,30",
    "single_digit:decimal=1,0:default=-9",
    "total_with_ten_decimal_places:decimal=38,10:default=-1234567890123456789012345678.0123456789",
    "notes_up_to_two_thousand_char:str=2000:search",
    "smallest_and_largest_integers:int:index",
    "very_large_signed_counter_val:bigint:uniq",
    "day_of_the_maintenance_visits:date:opt:default=9999-12-31",
    "exact_moment_of_maintenance_x:datetime:opt",
    "external_reference_identifier:uuid:uniq",
    f"maintenance_status_value_name:enum={ENUM_VALUES}",
    "arbitrary_structured_metadata:json:opt",
    "is_currently_under_warranty_x:bool:default=false",
    "long_free_form_description_tx:text:opt:search",
    "calibrating_technicians:refs=therapists",  # its index name is 61 characters
]
# The template's default modules: the seed's booking domain as fields and a no-overlap rule.
BOOKINGS = {
    "name": "bookings",
    "fields": [
        "therapist:ref=therapists",
        "starts_at:datetime",
        "ends_at:datetime",
        "notes:text:opt",
    ],
    "no_overlap": ["therapist", "starts_at", "ends_at"],
}
DEFAULT_MODULES: list[Any] = ["therapists", BOOKINGS]
FIELD_MODULES: list[Any] = [
    "therapists",
    BOOKINGS,
    {"name": "payments", "fields": EVERY_TYPE},
    {"name": "refunds", "fields": REFUNDS},
    {"name": "receipts", "fields": RECEIPTS},
    {"name": "laboratoryinstrumentruns", "fields": BOUNDS},
]


def add(project: Path, name: str, *fields: str) -> tuple[int, str]:
    result = runner.invoke(app, ["add-module", name, *fields, "--project", str(project)])
    return result.exit_code, result.output


def answers(project: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return loaded


def test_add_module_with_fields_matches_a_fresh_copy(render: Render) -> None:
    project = render(modules=["therapists"])
    for entry in FIELD_MODULES[1:]:
        rule = ["--no-overlap", ",".join(entry["no_overlap"])] if "no_overlap" in entry else []
        code, output = add(project, entry["name"], *entry["fields"], *rule)
        assert code == 0, output

    expected = render(modules=FIELD_MODULES)
    assert snapshot(project) == snapshot(expected)
    assert answers(project)["modules"] == FIELD_MODULES


def test_specs_are_stored_canonically_and_print_back(render: Render) -> None:
    project = render(modules=["bookings"])

    code, output = add(
        project,
        "payments",
        "amount:decimal=12,2:index:opt",  # modifiers in any order
        "label:str=255",  # the default length is left out
        "booking:ref=bookings:ondelete=restrict",  # and so is the default action
    )

    assert code == 0, output
    stored = answers(project)["modules"][1]["fields"]
    assert stored == ["amount:decimal=12,2:opt:index", "label:str", "booking:ref=bookings"]
    listed = runner.invoke(app, ["modules", "--project", str(project)]).output
    for spec in stored:
        assert spec in listed
    # Re-running with what it printed gives the same answers.
    again = render(modules=["bookings"])
    assert add(again, "payments", *stored)[0] == 0
    assert answers(again) == answers(project)


def test_a_ref_changes_nothing_of_the_referenced_module(render: Render) -> None:
    project = render(modules=["bookings", "invoices"])
    before = snapshot(project)

    code, output = add(project, "payments", "invoice:ref=invoices", "amount:decimal=8,2")

    assert code == 0, output
    after = snapshot(project)
    changed = {path for path in before if before[path] != after.get(path)}
    # The database refuses deleting a referenced invoice; app/db/errors.py
    # answers the 409 for every module, so the invoices files stay as they were.
    assert changed == {".copier-answers.yml", "app/api/v1/router.py", "app/db/base.py"}

    # Undo restores every byte.
    result = runner.invoke(app, ["remove-module", "payments", "--project", str(project)])
    assert result.exit_code == 0, result.output
    assert snapshot(project) == before


def test_a_referenced_module_cannot_be_removed(render: Render) -> None:
    project = render(modules=["bookings", {"name": "payments", "fields": ["booking:ref=bookings"]}])
    before = snapshot(project)

    result = runner.invoke(app, ["remove-module", "bookings", "--project", str(project)])

    assert result.exit_code == 1
    assert "referenced by payments.booking_id" in result.output
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("amount:float", "unknown type 'float'"),
        ("amount:decimal", "decimal needs precision and scale"),
        ("amount:decimal=2,3", "must not exceed its precision"),
        ("code:str=0", "str=N needs a length"),
        ("status:enum", "enum needs its values"),
        ("status:enum=a,a", "listed twice"),
        ("status:enum=a,B", "must be a snake_case identifier"),
        ("n:int:default=x", "is not a whole number"),
        ("status:enum=a,b:default=c", "is not one of a, b"),
        ("x:str:sorted", "unknown modifier 'sorted'"),
        ("x:str:opt:opt", "given twice"),
        ("n:int:search", "search applies to str and text fields only"),
        ("x:str:search=yes", "modifier 'search' takes no value"),
        ("booking:ref=bookings:ondelete=setnull", "needs opt"),
        ("x:int:ondelete=cascade", "ondelete applies to refs only"),
        ("other:ref=widgets", "no module 'widgets' is listed before 'payments'"),
        ("slot:ref=booking", "did you mean ref=bookings?"),
        ("dose:string", "unknown type 'string'; did you mean 'str'?"),
        ("dose:integer", "did you mean 'int'?"),
        ("parent:ref=payments", "cannot ref itself"),
        ("owner_id:int", "is reserved"),
        ("class:int", "is a Python keyword"),
        ("price:decimal{10,2}", "may only use letters, digits"),
    ],
)
def test_bad_specs_exit_2_with_one_line_and_write_nothing(
    render: Render, spec: str, message: str
) -> None:
    project = render(modules=["bookings"])
    before = snapshot(project)

    code, output = add(project, "payments", "label:str", spec)

    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert message in lines[0]
    assert "'payments'" in lines[0]
    assert f"'{spec}'" in lines[0]
    assert snapshot(project) == before


def test_duplicate_field_names_are_refused(render: Render) -> None:
    project = render(modules=["bookings"])
    code, output = add(project, "payments", "booking:ref=bookings", "booking_id:int")
    assert code == 2
    assert "the name 'booking_id' is used twice" in output


def test_plain_copier_rejects_a_bad_spec(tmp_path: Path, template_repo: Path) -> None:
    with pytest.raises(ValueError, match="decimal needs precision and scale"):
        copy_project(
            template_repo,
            tmp_path / "svc",
            modules=["bookings", {"name": "payments", "fields": ["amount:decimal"]}],
        )
    assert not (tmp_path / "svc" / "app").exists()


def test_new_takes_fields_after_the_module_name(tmp_path: Path, render: Render) -> None:
    result = runner.invoke(
        app,
        [
            "new",
            str(tmp_path / "svc"),
            "--defaults",
            "-m",
            "bookings",
            "-m",
            "payments amount:decimal=12,2 booking:ref=bookings",
        ],
    )
    assert result.exit_code == 0, result.output
    assert answers(tmp_path / "svc")["modules"] == [
        "bookings",
        {"name": "payments", "fields": ["amount:decimal=12,2", "booking:ref=bookings"]},
    ]


# The last commit before fields existed: projects made with it must update cleanly.
BEFORE_FIELDS = "edf42f7"


def test_projects_from_before_fields_update_with_no_diff(tmp_path: Path) -> None:
    from tests.conftest import git, update_project

    if subprocess.run(
        ["git", "cat-file", "-e", f"{BEFORE_FIELDS}^{{commit}}"], cwd=REPO, capture_output=True
    ).returncode:
        pytest.skip(f"this checkout has no history back to {BEFORE_FIELDS}")
    old = tmp_path / "old-template"
    old.mkdir()
    archive = subprocess.run(
        ["git", "archive", BEFORE_FIELDS, "copier.yml", "template"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    template = make_template_repo(tmp_path / "template")  # today's, tagged v0.1.0
    for path in (template / "copier.yml", template / "includes", template / "template"):
        subprocess.run(["rm", "-rf", str(path)], check=True)
    subprocess.run(["cp", "-r", f"{old}/.", str(template)], check=True)
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "before fields")
    git(template, "tag", "v0.0.9")
    answers: dict[str, Any] = {
        "database": "postgresql",
        "modules": ["bookings", "payments", {"name": "people", "singular": "person"}],
    }
    project = copy_project(template, tmp_path / "svc", vcs_ref="v0.0.9", **answers)
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    before = snapshot(project)

    update_project(project, vcs_ref="v0.1.0")

    after = snapshot(project)
    changed = {path for path in {*before, *after} if before.get(path) != after.get(path)}
    assert ".copier-answers.yml" in changed  # the recorded template version
    # The update merges cleanly: the project is exactly what today's template
    # renders from the same answers (module code included, which has moved on
    # since for speed and faults), with no conflict left anywhere.
    fresh = copy_project(template, tmp_path / "fresh", vcs_ref="v0.1.0", **answers)
    expected = snapshot(fresh)
    assert sorted(after) == sorted(expected)
    assert [path for path in after if after[path] != expected[path]] == []


def test_wellnest_fields_lists_exactly_the_parsers_types(render: Render) -> None:
    import re

    from wellnest.grammar import GRAMMAR, types

    project = render(modules=["bookings"])
    code, output = add(project, "payments", "x:nosuchtype")
    assert code == 2
    listed = re.search(r"\(types: ([a-z, ]+)\)", output)
    assert listed is not None, output
    assert types() == listed.group(1).split(", ")

    printed = runner.invoke(app, ["fields"])
    assert printed.exit_code == 0
    assert printed.output == GRAMMAR
    # The example is a command that works, as printed.
    example = GRAMMAR.split("Example\n", 1)[1].replace("\\\n", " ").split()
    assert example[:3] == ["wellnest", "add-module", "payments"]
    assert add(project, *example[2:])[0] == 0
