"""rename-module, as a plan over a project.

The module keeps its rows and its history. Its answers entry takes the new name,
pins the id of its first migration (create_<old name>, which databases have
applied) and records `{renamed_from: OLD, revision, after}`: the template renders
that migration, which renames the table and everything named after it. Each module
whose refs point at it records `{retarget: OLD, to: NEW, by: REVISION}`: from there
on its refs name the new module, and the renaming migration renames its foreign
keys. Files follow from the old render to the new one: the module's own move to
their new paths, hand edits merged three-way, as the field commands do.
"""

from __future__ import annotations

import re
from typing import Any

from wellnest import migrations
from wellnest.blueprint import Blueprint
from wellnest.changes import Plan
from wellnest.errors import UsageError, WellnestError
from wellnest.merging import follow, merge
from wellnest.operations import answers_change, module_entry, single_head
from wellnest.project import Project, is_removed, module_name


def plan_rename_module(blueprint: Blueprint, project: Project, old: str, new: str) -> Plan:
    if old not in project.module_names:
        known = ", ".join(project.module_names) or "none"
        raise WellnestError(f"module '{old}' is not in this project's modules ({known})")
    if new == old:
        raise UsageError(f"module '{old}' already has that name")
    if new in project.module_names:
        raise UsageError(f"module '{new}' already exists in this project")
    if project.exists(f"app/modules/{new}"):
        raise WellnestError(f"app/modules/{new} already exists but is not a registered module")
    answers = project.answers
    old_context = blueprint.context(answers)
    revision = migrations.fresh_revision(f"{new}_rename", prefix="")
    after = single_head(project)
    pointing = {
        spec["name"]
        for spec in old_context["module_specs"]
        if any(ref["target"] == old for ref in [*spec["refs"], *spec["links"]])
    }
    modules = [
        _renamed(blueprint, answers, entry, old, new, revision, after)
        if module_name(entry) == old and not is_removed(entry)
        else _retargeted(entry, old, new, revision)
        if module_name(entry) in pointing and not is_removed(entry)
        else entry
        for entry in project.modules
    ]
    new_answers = {**answers, "modules": modules}
    message = blueprint.validate("modules", new_answers)
    if message:
        raise UsageError(message)
    new_context = blueprint.context(new_answers)

    old_files = blueprint.shared_files(old_context)
    for spec in old_context["module_specs"]:
        old_files.update(blueprint.module_files(old_context, spec["name"]))
    new_files = blueprint.shared_files(new_context)
    for spec in new_context["module_specs"]:
        new_files.update(blueprint.module_files(new_context, spec["name"]))

    plan = Plan(project.root)
    for source, target in _moves(blueprint.module_files(old_context, old), new_files, old, new):
        _move(project, plan, source, target, old_files.pop(source), new_files.pop(target))
    follow(project.root, old_files, new_files, plan, skip={blueprint.answers_relpath})
    plan.modify[blueprint.answers_relpath] = answers_change(blueprint, project, modules)
    return plan


def _renamed(
    blueprint: Blueprint,
    answers: dict[str, Any],
    entry: Any,
    old: str,
    new: str,
    revision: str,
    after: str,
) -> dict[str, Any]:
    mapped = {"name": entry} if isinstance(entry, str) else dict(entry)
    mapped.pop("singular", None)  # the old name's
    named = module_entry(blueprint, answers, new)
    renamed: dict[str, Any] = {"name": new}
    if isinstance(named, dict) and "singular" in named:
        renamed["singular"] = named["singular"]
    # Its first migration keeps its id: databases have applied it under that id.
    renamed["revision"] = mapped.pop("revision", f"create_{old}")
    renamed.update((key, value) for key, value in mapped.items() if key != "name")
    change = {"renamed_from": old, "revision": revision, "after": after}
    renamed["changes"] = [*(mapped.get("changes") or []), change]
    return renamed


def _retargeted(entry: Any, old: str, new: str, revision: str) -> dict[str, Any]:
    mapped = {"name": entry} if isinstance(entry, str) else dict(entry)
    change = {"retarget": old, "to": new, "by": revision}
    mapped["changes"] = [*(mapped.get("changes") or []), change]
    return mapped


def _moves(
    own: dict[str, bytes], new_files: dict[str, bytes], old: str, new: str
) -> list[tuple[str, str]]:
    """The module's files that the new name renders at another path: (old, new)."""
    name = re.compile(rf"(?<![a-z0-9]){re.escape(old)}(?![a-z0-9])")
    moves = []
    for relpath in own:
        target = name.sub(new, relpath)
        if target != relpath and target in new_files and relpath not in new_files:
            moves.append((relpath, target))
    return moves


def _move(
    project: Project, plan: Plan, source: str, target: str, base: bytes, theirs: bytes
) -> None:
    """One of the module's files to its new path, with a hand edit merged in."""
    if project.exists(target):
        raise WellnestError(f"{target} already exists; refusing to overwrite it")
    path = project.root / source
    current = path.read_bytes() if path.is_file() else None
    if current is None:
        plan.create[target] = theirs  # deleted by hand: the new render, as an update would
        return
    plan.delete[source] = current
    if current == base:
        plan.create[target] = theirs
        return
    merged = merge(current, base, theirs)
    plan.create[target] = merged.content
    if merged.conflicted:
        plan.conflicts.append(target)
