"""`wellnest update`: copier's three-way update to this wellnest's template, with
the conflicts copier leaves behind found and reported instead of passed over.

copier applies an update with conflict markers inline (or `.rej` files) and still
exits 0. A project with `<<<<<<<` in app/main.py does not even import, so every
conflicted file is found here and the command fails until they are resolved.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from wellnest import migrations, store
from wellnest.blueprint import Blueprint
from wellnest.errors import WellnestError
from wellnest.project import Project

MARKERS = (b"<<<<<<< ", b">>>>>>> ")


@dataclass
class UpdateResult:
    old: str
    new: str
    changed: list[str] = field(default_factory=list)  # "M path", "A path", "D path"
    conflicts: list[str] = field(default_factory=list)
    # New template migrations chained onto the project's head: (revision, parent).
    rechained: list[tuple[str, str]] = field(default_factory=list)
    dry_run: bool = False

    @property
    def up_to_date(self) -> bool:
        return self.old == self.new and not self.changed


def update(project: Project, blueprint: Blueprint, *, dry_run: bool) -> UpdateResult:
    root = project.root
    old = str(project.answers.get("_commit") or "")
    if not old:
        msg = (
            f"{project.root.name}/.copier-answers.yml records no template version (_commit), "
            "so there is no base for a three-way update (a project made by wellnest 0.1 from an "
            "installed wheel); render it again with `wellnest new` and move your changes over"
        )
        raise WellnestError(msg)
    _require_clean_git(root)
    source = store.sync(blueprint)
    recorded = Path(str(project.answers.get("_src_path", ""))).expanduser()
    if _same_path(recorded, source.path):
        if not store.has_tag(source.path, old):
            msg = (
                f"template version {old} is not in {source.path}: install that wellnest "
                f"version once and run `wellnest modules` with it, then update again"
            )
            raise WellnestError(msg)
        if _newer(old, source.tag):
            msg = f"the project is on template {old}, newer than this wellnest ({source.tag})"
            raise WellnestError(msg)
        target: str | None = source.tag
    else:
        target = None  # a project made from another source: its newest version
    if target == old:
        # The same template version on both sides: copier would render both and
        # find no difference, seconds later.
        return UpdateResult(old=old, new=old, dry_run=dry_run)
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="wellnest-update-") as scratch:
            clone = Path(scratch) / root.name
            _git(root, "clone", "-q", "--no-hardlinks", str(root), str(clone))
            for name in (".env",):  # kept by copier, ignored by git
                if (root / name).is_file():
                    shutil.copy2(root / name, clone / name)
            result = apply(clone, old, target)
        result.dry_run = True
        return result
    return apply(root, old, target)


def apply(root: Path, old: str, target: str | None) -> UpdateResult:
    """copier's update of the project at root from template version old to target."""
    from copier import run_update
    from copier.errors import CopierError

    before = migrations.read_revisions(root)
    modules = Project.find(root).answers.get("modules")
    converted = legacy_bookings(root, modules, before)
    # A booking conversion, when there is one, is the head the rebuilds come after.
    conversion = next(
        (
            entry["legacy_booking"]["revision"]
            for entry in converted or []
            if isinstance(entry, dict) and "legacy_booking" in entry
        ),
        None,
    )
    rebuilt, head = rebuilds(root, converted or modules, before, conversion, "autoincrement")
    indexed, head = rebuilds(root, rebuilt or converted or modules, before, head, "indexes")
    moved = indexed or rebuilt or converted
    data: dict[str, object] = {"modules": moved} if moved is not None else {}
    events = event_tables(root, before, head)
    if events is not None:
        data["events_migration"] = events
    try:
        run_update(
            str(root),
            # copier renders the old side with the answers as they were, the new one with these.
            data=data,
            defaults=True,
            overwrite=True,
            skip_answered=True,
            unsafe=False,
            quiet=True,
            conflict="inline",
            vcs_ref=target,
        )
    except (CopierError, ValueError, OSError, subprocess.CalledProcessError) as exc:
        detail = str(exc).strip().splitlines()
        raise WellnestError(f"copier could not update: {detail[-1] if detail else exc}") from exc
    answers = Project.find(root).answers
    result = UpdateResult(old=old, new=str(answers.get("_commit") or target or ""))
    versions = root / migrations.VERSIONS_DIR
    if not any(_has_markers(path) for path in versions.glob("*.py")):
        result.rechained = migrations.keep_history(before, migrations.read_revisions(root))
    status = _git(root, "status", "--porcelain", "--untracked-files=all").stdout
    for line in status.splitlines():
        code, relpath = line[:2], line[3:].strip('"')
        kind = "A" if "?" in code or "A" in code else "D" if "D" in code else "M"
        result.changed.append(f"{kind} {relpath}")
        path = root / relpath
        if relpath.endswith(".rej"):
            result.conflicts.append(relpath.removesuffix(".rej"))
        elif kind != "D" and path.is_file() and _has_markers(path):
            result.conflicts.append(relpath)
    return result


def legacy_bookings(
    root: Path, modules: object, revisions: list[migrations.Revision]
) -> list[object] | None:
    """The modules answer with the booking table of wellnest 0.2 marked for conversion,
    or None when there is none to convert.

    Up to 0.2 a module named `bookings` rendered a fixed booking table whatever its
    entry said. Now a name means nothing special, so the same entry would render a
    module of `name` and `description` over a table that has other columns. The entry
    becomes `legacy_booking: {revision, after}` instead: its first migration stays as
    0.2 wrote it, and a new one, after the project's head, converts the table
    (includes/legacy.jinja). The old table is recognised by its migration, which
    creates a `user_id` column no module of fields has."""
    if not isinstance(modules, list):
        return None
    converted: list[object] = []
    found = False
    for entry in modules:
        mapped = entry if isinstance(entry, dict) else {"name": entry}
        plain = not set(mapped) - {"name", "singular", "revision", "after"}
        script = root / migrations.VERSIONS_DIR / f"{mapped.get('revision', 'create_bookings')}.py"
        if mapped.get("name") == "bookings" and plain and _creates_user_id(script):
            head = _single_head(revisions, "convert the booking table")
            revision = migrations.fresh_revision("bookings_convert", prefix="")
            entry = {**mapped, "legacy_booking": {"revision": revision, "after": head}}
            found = True
        converted.append(entry)
    return converted if found else None


def event_tables(
    root: Path, revisions: list[migrations.Revision], head: str | None
) -> dict[str, str] | None:
    """`events_migration: {revision, after}` for a project made before the event
    tables (None for one that has them): their migration comes after the
    project's head, since its modules' migrations already follow the account
    tables, where a new project has the event tables."""
    answers = Project.find(root).answers
    if (
        answers.get("events_migration")
        or (root / migrations.VERSIONS_DIR / migrations.EVENTS_MIGRATION).exists()
    ):
        return None
    if head is None:
        head = _single_head(revisions, "make the event tables")
    return {"revision": migrations.fresh_revision("events", prefix=""), "after": head}


_PURPOSES = {
    "autoincrement": "rebuild its tables with AUTOINCREMENT",
    "indexes": "give its tables an index behind every sort",
}


def rebuilds(
    root: Path,
    modules: object,
    revisions: list[migrations.Revision],
    head: str | None,
    kind: str,
) -> tuple[list[object] | None, str | None]:
    """The modules answer with a `rebuild: KIND` change for every table made before
    the template gave it what KIND names (None when none was), and the head the
    next migration comes after.

    - `autoincrement`: tables made before module tables had AUTOINCREMENT, which
      lets SQLite give a deleted row's id to the next row. Each gets a migration
      that rebuilds it on SQLite.
    - `indexes`: tables made before every sort had an index (owner_id, column,
      id). Each gets a migration that makes them; the migrations written before it
      keep the indexes they made (includes/fields.jinja, `indexed`).

    The template's first migration of such a table changes, but no database that
    ran it does: the new migrations are chained after the project's head (`head`,
    by default its one head), one after another. A module removed since needs none.
    """
    if not isinstance(modules, list):
        return None, head
    rebuilt: list[object] = []
    found = False
    for entry in modules:
        mapped = entry if isinstance(entry, dict) else {"name": entry}
        name = str(mapped.get("name"))
        changes = mapped.get("changes") or []
        done = any(isinstance(change, dict) and change.get("rebuild") == kind for change in changes)
        if not done and "removed" not in mapped and _lacks(root, mapped, kind):
            if head is None:
                head = _single_head(revisions, _PURPOSES[kind])
            label = "rebuild" if kind == "autoincrement" else "indexes"
            revision = migrations.fresh_revision(f"{name}_{label}", prefix="")
            change = {"rebuild": kind, "revision": revision, "after": head}
            entry = {**mapped, "changes": [*changes, change]}
            head, found = revision, True
        rebuilt.append(entry)
    return (rebuilt if found else None), head


def _lacks(root: Path, module: dict[str, object], kind: str) -> bool:
    """Whether the module's table was made without what `kind` names, read off the
    migration that made it (a legacy booking table: the one that converted it)."""
    versions = root / migrations.VERSIONS_DIR
    name = module.get("name")
    legacy = module.get("legacy_booking")
    if kind == "autoincrement":
        if legacy:  # converted by a template that has it
            return False
        text = _read(versions / f"{module.get('revision', f'create_{name}')}.py")
        return "op.create_table(" in text and "sqlite_autoincrement" not in text
    if isinstance(legacy, dict):
        # Converted by this update (no file yet) or before: by a template without them.
        return '"created_at", "id"]' not in _read(versions / f"{legacy.get('revision')}.py")
    text = _read(versions / f"{module.get('revision', f'create_{name}')}.py")
    return "op.create_table(" in text and '"created_at", "id"]' not in text


def _read(script: Path) -> str:
    try:
        return script.read_text(encoding="utf-8")
    except OSError:
        return ""


def _single_head(revisions: list[migrations.Revision], purpose: str) -> str:
    heads = migrations.heads(revisions)
    if len(heads) != 1:
        msg = (
            f"expected one Alembic head in {migrations.VERSIONS_DIR} to {purpose} after, "
            f"found {', '.join(heads) or 'none'}"
        )
        raise WellnestError(msg)
    return heads[0]


def _creates_user_id(script: Path) -> bool:
    try:
        return 'sa.Column("user_id"' in script.read_text(encoding="utf-8")
    except OSError:
        return False


def _has_markers(path: Path) -> bool:
    try:
        lines = path.read_bytes().splitlines()
    except OSError:
        return False
    starts = {marker: any(line.startswith(marker) for line in lines) for marker in MARKERS}
    return all(starts.values())


def _require_clean_git(root: Path) -> None:
    inside = _git(root, "rev-parse", "--show-toplevel", check=False)
    if inside.returncode != 0:
        msg = (
            f"{root} is not a git repository; copier updates by merging into a committed "
            "project: git init && git add -A && git commit -m 'Generated by wellnest'"
        )
        raise WellnestError(msg)
    dirty = _git(root, "status", "--porcelain").stdout.splitlines()
    if dirty:
        first = dirty[0][3:]
        more = f" and {len(dirty) - 1} more" if len(dirty) > 1 else ""
        msg = (
            f"the project has uncommitted changes ({first}{more}); commit or stash them "
            "first, so that the update can be reviewed and undone"
        )
        raise WellnestError(msg)


def _same_path(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _newer(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) > Version(b)
    except InvalidVersion:
        return False


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, check=check, capture_output=True, text=True)
