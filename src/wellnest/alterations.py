"""add-field, rename-field and remove-field, as plans over a project.

A change is recorded in the module's answers entry (`changes`, in the order made) with
the Alembic revision of its migration and the revision it follows; the template
replays the changes (includes/fields.jinja) into the fields the module has now and
renders one migration per change. So the answers stay the whole truth: a fresh copy
with them renders this project, migrations included. The module's files are brought
from the old render to the new one as `copier update` would, merging hand edits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wellnest import migrations
from wellnest.blueprint import Blueprint
from wellnest.changes import Plan
from wellnest.errors import UsageError, WellnestError
from wellnest.merging import follow
from wellnest.operations import answers_change, find_spec, single_head
from wellnest.project import Project, is_removed, module_name


def plan_add_field(
    blueprint: Blueprint, project: Project, module: str, fields: Sequence[str]
) -> Plan:
    if not fields:
        raise UsageError("add-field needs at least one field, e.g. due_on:date:opt")
    return _plan(blueprint, project, module, "add", {"add": list(fields)})


def plan_rename_field(
    blueprint: Blueprint, project: Project, module: str, old: str, new: str
) -> Plan:
    return _plan(blueprint, project, module, "rename", {"rename": old, "to": new})


def plan_remove_field(blueprint: Blueprint, project: Project, module: str, field: str) -> Plan:
    return _plan(blueprint, project, module, "remove", {"remove": field})


def _require_module(project: Project, module: str) -> None:
    if module not in project.module_names:
        known = ", ".join(project.module_names) or "none"
        raise WellnestError(f"module '{module}' is not in this project's modules ({known})")


def _require_fields(context: dict[str, Any], module: str, change: dict[str, Any]) -> None:
    """The field a rename or a removal names must exist; a new name must not."""
    names = [str(field["name"]) for field in find_spec(context, module)["fields"]]
    field = change.get("rename", change.get("remove"))
    if field is not None and field not in names:
        msg = f"module '{module}' has no field '{field}' (fields: {', '.join(names)})"
        raise WellnestError(msg)
    if change.get("to") in names:
        raise UsageError(f"module '{module}' already has a field '{change['to']}'")


def _plan(
    blueprint: Blueprint, project: Project, module: str, verb: str, change: dict[str, Any]
) -> Plan:
    _require_module(project, module)
    answers = project.answers
    old_context = blueprint.context(answers)
    _require_fields(old_context, module, change)
    head = single_head(project)
    change = {**change, "revision": _fresh_revision(module, verb), "after": head}
    modules = []
    for entry in project.modules:
        if module_name(entry) == module and not is_removed(entry):
            entry = {"name": entry} if isinstance(entry, str) else dict(entry)
            entry["changes"] = [*(entry.get("changes") or []), change]
        modules.append(entry)
    new_answers = {**answers, "modules": modules}
    message = blueprint.validate("modules", new_answers)
    if message:
        raise UsageError(message)
    new_context = blueprint.context(new_answers)
    if verb == "add":
        # The specs as copier stores them (canonical), as add-module does; the
        # render is the same either way. (The entry in `modules` holds this dict.)
        added = find_spec(new_context, module)["changes"][-1]["fields"]
        change["add"] = [field["spec"] for field in added]

    plan = Plan(project.root)
    # Shared files depend on module names, never on fields, and modules that point
    # at this one take its objects from its factory (tests/factories/<module>.py):
    # only the module's own files change.
    old_files = blueprint.module_files(old_context, module)
    new_files = blueprint.module_files(new_context, module)
    follow(project.root, old_files, new_files, plan, skip={blueprint.answers_relpath})
    plan.modify[blueprint.answers_relpath] = answers_change(blueprint, project, modules)
    return plan


def _fresh_revision(module: str, verb: str) -> str:
    """`<module>_<verb>_<6 hex>`, new every time, within Alembic's 32 characters: a
    field added, removed and added again gets three migrations, never one id twice."""
    return migrations.fresh_revision(f"{module}_{verb}", prefix="")
