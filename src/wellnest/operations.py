"""add-module, remove-module and the module listing, as plans over a project."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wellnest import merging, migrations, naming, registry
from wellnest.blueprint import SUFFIX, Blueprint
from wellnest.changes import Plan, ensure_absent, recover
from wellnest.errors import UsageError, WellnestError
from wellnest.project import Project, is_removed, module_name


def module_entry(
    blueprint: Blueprint,
    answers: dict[str, Any],
    name: str,
    fields: Sequence[str] = (),
    earlier: Sequence[Any] = (),
    no_overlap: Sequence[str] = (),
    pinned: dict[str, str] | None = None,
) -> Any:
    """The `modules` entry for a new module: its name, its singular when the
    template's regular rule would get it wrong, and its fields in canonical form.

    `earlier` are the entries listed before it (a ref may only point back). The
    fields are checked by copier.yml's own validator, which names the bad field.
    """
    expected = naming.singular(name)
    context = blueprint.context({**answers, "modules": [name]})
    entry: dict[str, Any] = {"name": name, **(pinned or {})}
    if context["module_specs"][0]["singular"] != expected:
        entry["singular"] = expected
    if no_overlap and not fields:
        raise UsageError("--no-overlap names fields of the module: give it its fields")
    if fields:
        entry["fields"] = list(fields)
        if no_overlap:
            entry["no_overlap"] = list(no_overlap)
        modules = [*earlier, entry]
        message = blueprint.validate("modules", {**answers, "modules": modules})
        if message:
            raise UsageError(message)
        specs = blueprint.context({**answers, "modules": modules})["module_specs"]
        # The canonical spec: what `wellnest modules` prints, and what copier stores.
        entry["fields"] = [field["spec"] for field in specs[-1]["fields"]]
    return entry if len(entry) > 1 else name


def _change_revisions(record: dict[str, Any]) -> list[str]:
    """The migrations of a module's changes. A retarget has none of its own: the
    rename of the module it points at (`by`) renames its foreign key."""
    return [change["revision"] for change in record["changes"] if "revision" in change]


def _recorded_revisions(context: dict[str, Any]) -> set[str]:
    """Every migration id the answers give a module, removed ones included."""
    found = set()
    for record in context["module_records"]:
        found.add(record["revision"])
        found.update(_change_revisions(record))
        if record["gone"]:
            found.add(record["removed"]["revision"])
    return found


def check_name(blueprint: Blueprint, answers: dict[str, Any], entry: Any) -> None:
    """copier.yml's validator, plus the checks only a project on disk can make."""
    name = module_name(entry)
    existing = [module_name(item) for item in answers["modules"] if not is_removed(item)]
    if name in existing:
        raise WellnestError(f"module '{name}' already exists in this project")
    message = blueprint.validate("modules", {**answers, "modules": [*answers["modules"], entry]})
    if message:
        raise UsageError(message)


def _registry_plan(
    blueprint: Blueprint,
    project: Project,
    old_context: dict[str, Any],
    new_context: dict[str, Any],
    spec: dict[str, Any],
    adding: bool,
) -> dict[str, tuple[bytes, bytes]]:
    changes = {}
    names = {"name": spec["name"], "class_name": spec["class_name"]}
    for relpath in registry.REGISTRY_FILES:
        before = blueprint.render_file(relpath + SUFFIX, old_context)
        after = blueprint.render_file(relpath + SUFFIX, new_context)
        lines = registry.added_lines(before, after)
        if not project.exists(relpath):
            raise WellnestError(f"{relpath} is missing; this does not look like a wellnest project")
        current = project.read(relpath)
        if adding:
            updated = registry.insert_lines(current, lines, names, relpath)
        else:
            updated = registry.remove_lines(current, lines, relpath)
        if updated != current:
            changes[relpath] = (current.encode(), updated.encode())
    return changes


def _knock_on(
    blueprint: Blueprint,
    project: Project,
    old_context: dict[str, Any],
    new_context: dict[str, Any],
    name: str,
    plan: Plan,
) -> None:
    """Files outside the module itself that the template renders differently with
    it: shared helpers and the generated tests of modules that reference it (they
    build its objects to point at)."""
    old_files = blueprint.shared_files(old_context)
    new_files = blueprint.shared_files(new_context)
    old_specs = {spec["name"]: spec for spec in old_context["module_specs"]}
    for spec in new_context["module_specs"]:
        other = spec["name"]
        if other != name and other in old_specs and old_specs[other] != spec:
            old_files.update(blueprint.module_files(old_context, other))
            new_files.update(blueprint.module_files(new_context, other))
    skip = {*registry.REGISTRY_FILES, *plan.create, *plan.delete, *plan.modify}
    merging.follow(project.root, old_files, new_files, plan, skip)


def answers_change(
    blueprint: Blueprint, project: Project, modules: list[Any]
) -> tuple[bytes, bytes]:
    relpath = blueprint.answers_relpath
    old = (project.root / relpath).read_bytes()
    new = blueprint.render_answers({**project.answers, "modules": modules}).encode()
    return old, new


def find_spec(context: dict[str, Any], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = next(s for s in context["module_specs"] if s["name"] == name)
    return spec


def single_head(project: Project, revisions: list[migrations.Revision] | None = None) -> str:
    """The one Alembic head a new migration goes after; several (or none) is refused."""
    if revisions is None:
        revisions = migrations.read_revisions(project.root)
    heads = migrations.heads(revisions)
    if len(heads) != 1:
        found = ", ".join(heads) or "none"
        msg = f"expected one Alembic head in {migrations.VERSIONS_DIR}, found {found}"
        raise WellnestError(msg)
    return heads[0]


def plan_add(
    blueprint: Blueprint,
    project: Project,
    name: str,
    fields: Sequence[str] = (),
    no_overlap: Sequence[str] = (),
) -> Plan:
    answers = project.answers
    revisions = migrations.read_revisions(project.root)
    pinned = {}
    default = f"create_{name}"
    if (
        default in {rev.revision for rev in revisions}
        or default in _recorded_revisions(blueprint.context(answers))
        or migrations.committed_before(project.root, default)
    ):
        # The id is taken (a removed module's history keeps it) or a database may
        # hold it (a teammate's, production): `alembic upgrade head` would then
        # skip the new module's table. A new id, pinned.
        pinned["revision"] = migrations.fresh_revision(name)
    first = {"name": name, **pinned} if pinned else name
    check_name(blueprint, answers, first)  # the name first: fields are read against it
    entry = module_entry(
        blueprint,
        answers,
        name,
        fields,
        earlier=project.modules,
        no_overlap=no_overlap,
        pinned=pinned,
    )
    check_name(blueprint, answers, entry)
    if project.exists(f"app/modules/{name}"):
        raise WellnestError(f"app/modules/{name} already exists but is not a registered module")

    heads = [single_head(project, revisions)]
    modules = [*project.modules, entry]
    old_context = blueprint.context(answers)
    new_context = blueprint.context({**answers, "modules": modules})
    spec = find_spec(new_context, name)
    if spec["down_revision"] != heads[0]:
        # Chained after the newest migration, wherever that is: recorded, so a
        # copy with the answers renders the same chain.
        entry = {**(entry if isinstance(entry, dict) else {"name": name}), "after": heads[0]}
        modules = [*project.modules, entry]
        new_context = blueprint.context({**answers, "modules": modules})
        spec = find_spec(new_context, name)

    plan = Plan(project.root)
    plural = naming.plural_of_singular(name)
    if plural:
        # Routes are collections (/prescriptions/{id}): a warning, not a refusal,
        # since uncountable names (staff, software) look singular too.
        plan.warnings.append(
            f"'{name}' looks singular; modules are named in the plural "
            f"(did you mean '{plural}'?), and its routes will be /{spec['route']}"
        )
    plan.create = blueprint.module_files(new_context, name)
    ensure_absent(plan)
    plan.modify = _registry_plan(blueprint, project, old_context, new_context, spec, True)
    _knock_on(blueprint, project, old_context, new_context, name, plan)
    plan.modify[blueprint.answers_relpath] = answers_change(blueprint, project, modules)
    return plan


def plan_remove(blueprint: Blueprint, project: Project, name: str, force: bool) -> Plan:
    """Remove a module: its files, registry lines and answers entry. Its migrations
    leave the history only if no database can hold them (never committed, not
    applied to the development database, nothing built on them); otherwise they
    stay, and a new migration drops the table, so `alembic upgrade head` works
    from any applied state."""
    answers = project.answers
    if name not in project.module_names:
        raise WellnestError(f"module '{name}' is not in this project's modules")
    context = blueprint.context(answers)
    spec = find_spec(context, name)
    if spec["referenced_by"]:
        users = ", ".join(f"{ref['module']}.{ref['column']}" for ref in spec["referenced_by"])
        first = spec["referenced_by"][0]
        field = first["field"]
        msg = (
            f"module '{name}' is referenced by {users}; remove those first "
            f"(wellnest remove-field {first['module']} {field})"
        )
        raise WellnestError(msg)

    files = blueprint.module_files(context, name)
    versions = f"{migrations.VERSIONS_DIR}/"
    code = {path: data for path, data in files.items() if not path.startswith(versions)}
    modified = [
        relpath
        for relpath, content in code.items()
        if project.exists(relpath) and (project.root / relpath).read_bytes() != content
    ]
    if modified and not force:
        msg = (
            f"{len(modified)} file(s) of '{name}' changed since they were rendered "
            f"({', '.join(modified)}); use --force to remove them anyway"
        )
        raise WellnestError(msg)

    revisions = migrations.read_revisions(project.root)
    own = {spec["revision"], *_change_revisions(spec)}
    if spec["legacy"]:
        own.add(spec["legacy"]["revision"])
    present = [rev for rev in revisions if rev.revision in own]
    plan = Plan(project.root)
    if present and _history_kept(project, revisions, present, own):
        drop = migrations.fresh_revision(f"{name}_remove", prefix="")
        removed = {"revision": drop, "after": single_head(project, revisions)}
        remaining = [
            {**(entry if isinstance(entry, dict) else {"name": entry}), "removed": removed}
            if module_name(entry) == name and not is_removed(entry)
            else entry
            for entry in project.modules
        ]
        tombstone: str | None = f"{name}@{drop}"
        plan.warnings.append(
            f"its table and every row in it are dropped at the next `alembic upgrade head` "
            f"({migrations.VERSIONS_DIR}/{drop}.py; its downgrade recreates the table, empty)"
        )
    else:
        remaining = [
            e for e in project.modules if not (module_name(e) == name and not is_removed(e))
        ]
        code = files  # nothing can hold its migrations: they go too
        tombstone = None
    new_context = blueprint.context({**answers, "modules": remaining})
    for relpath in code:
        if project.exists(relpath):
            plan.delete[relpath] = (project.root / relpath).read_bytes()
    if tombstone is not None:
        # Its migrations stay as they are; the one that drops the table is new.
        for relpath, content in blueprint.module_files(new_context, tombstone).items():
            if relpath not in files:
                plan.create[relpath] = content
    ensure_absent(plan)
    plan.modify = _registry_plan(blueprint, project, new_context, context, spec, False)
    _knock_on(blueprint, project, context, new_context, name, plan)
    plan.modify[blueprint.answers_relpath] = answers_change(blueprint, project, remaining)
    return plan


def _history_kept(
    project: Project,
    revisions: list[migrations.Revision],
    present: list[migrations.Revision],
    own: set[str],
) -> bool:
    """Whether a database may hold one of the module's migrations, or a migration
    of something else builds on them: then they stay in the history."""
    if any(migrations.committed_before(project.root, rev.revision) for rev in present):
        return True
    applied, _ = migrations.applied(project.root)
    if applied is None or applied & own:
        return True  # a server database wellnest cannot read: it may have them
    return any(set(migrations.dependents(revisions, rev.revision)) - own for rev in present)


@dataclass
class ModuleStatus:
    name: str
    in_answers: bool
    has_folder: bool
    in_base: bool
    in_router: bool
    fields: list[str]

    @property
    def hand_written(self) -> bool:
        """Registered or foldered, but never generated: the project's own code,
        which wellnest neither checks nor changes."""
        return not self.in_answers

    @property
    def problems(self) -> list[str]:
        problems: list[str] = []
        if self.hand_written:
            return problems
        if not self.has_folder:
            problems.append("no folder in app/modules")
        if not self.in_base:
            problems.append("not registered in app/db/base.py")
        if not self.in_router:
            problems.append("not registered in app/api/v1/router.py")
        return problems


# Part of every project, not modules: the auth package, and the routes that
# manage its accounts (app/api/v1/endpoints/users.py).
BUILT_IN = frozenset({"auth", "users"})


def module_statuses(project: Project, blueprint: Blueprint) -> list[ModuleStatus]:
    """Every module the answers, the folders or the registries know of, each
    generated one with its fields as they are now (changes replayed)."""
    modules_dir = project.root / "app" / "modules"
    folders = (
        {
            p.name
            for p in modules_dir.iterdir()
            if p.is_dir() and p.name not in BUILT_IN and not p.name.startswith(("_", "."))
        }
        if modules_dir.is_dir()
        else set()
    )
    base = _safe_read(project, "app/db/base.py")
    router = _safe_read(project, "app/api/v1/router.py")
    registered = {*_BASE_IMPORT.findall(base), *_ROUTER_INCLUDE.findall(router)} - BUILT_IN
    names = list(dict.fromkeys([*project.module_names, *sorted(folders | registered)]))
    fields = {
        spec["name"]: [str(field["spec"]) for field in spec["fields"]]
        for spec in blueprint.context(project.answers)["module_specs"]
    }
    return [
        ModuleStatus(
            name=name,
            in_answers=name in project.module_names,
            has_folder=name in folders,
            in_base=f"app.modules.{name}.models" in base,
            in_router=_registers_router(router, name),
            fields=fields.get(name, []),
        )
        for name in names
    ]


_BASE_IMPORT = re.compile(r"^from app\.modules\.(\w+)\.models import", re.MULTILINE)
_ROUTER_INCLUDE = re.compile(r"include_router\((\w+)\.router")


def _registers_router(router: str, name: str) -> bool:
    return f"include_router({name}.router" in router


def _safe_read(project: Project, relpath: str) -> str:
    try:
        return project.read(relpath)
    except OSError:
        return ""


EVENTS_TEMPLATE = "{{ events_revision }}.py" + SUFFIX


def require_event_tables(project: Project, blueprint: Blueprint) -> None:
    """A module's code writes events: a project made before the event tables
    (wellnest 0.5) gets them from `wellnest update` before this template's
    modules change it."""
    made_by_template = blueprint.template_dir / migrations.VERSIONS_DIR / EVENTS_TEMPLATE
    if not made_by_template.is_file() or project.answers.get("events_migration"):
        return
    if project.exists(f"{migrations.VERSIONS_DIR}/{migrations.EVENTS_MIGRATION}"):
        return
    msg = (
        "this project predates the event tables its modules now write to "
        "(wellnest 0.5); run `wellnest update` first"
    )
    raise WellnestError(msg)


def resolve_project(path: Path | None) -> Project:
    """The project around `path`, after rolling back any change a killed wellnest
    command left half applied (`project.recovered` says what was done)."""
    project = Project.find(path or Path.cwd())
    recovered = recover(project.root)
    if recovered:
        project = Project.find(project.root)  # the answers may have been put back
        project.recovered = recovered
    return project
