"""`wellnest new`: copier's Python API, with wellnest's naming and validation."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from wellnest import store
from wellnest.blueprint import Blueprint, load_yaml
from wellnest.errors import UsageError, WellnestError
from wellnest.operations import module_entry


def create(
    dest: Path,
    *,
    name: str | None,
    database: str | None,
    modules: list[str] | None,
    defaults: bool,
) -> dict[str, Any]:
    blueprint = Blueprint.locate()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise WellnestError(f"{dest} already exists and is not empty")
    data: dict[str, Any] = {}
    # `wellnest new billing-api` makes "Billing Api" in billing-api/, slug billing-api,
    # as `rails new` and `mix phx.new` name an app after its folder.
    data["project_name"] = name if name is not None else _name_from(dest)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running in blueprint.questions["python_version"].get("choices", []):
        data["python_version"] = running  # the interpreter we know is installed
    if database is not None:
        choices = blueprint.questions["database"].get("choices", [])
        if database not in choices:
            raise UsageError(f"--database must be one of: {', '.join(choices)}")
        data["database"] = database
    if modules is not None:
        entries: list[Any] = []
        for module in modules:
            # "payments amount:decimal=12,2 ...": a name, then its fields.
            name, *fields = module.split() or [""]
            message = blueprint.validate("modules", {"modules": [*entries, name]})
            if message:
                raise UsageError(message)
            entries.append(module_entry(blueprint, {}, name, fields, earlier=entries))
        message = blueprint.validate("modules", {"modules": entries})
        if message:
            raise UsageError(message)
        data["modules"] = entries

    from copier import run_copy
    from copier.errors import CopierError

    # Rendered from the template's history, never from the install folder: the
    # answers then name a source and version that `copier update` can use.
    source = store.sync(blueprint)
    try:
        run_copy(
            source.recorded,
            str(dest),
            data=data,
            vcs_ref=source.tag,
            defaults=defaults,
            unsafe=False,
            quiet=True,
        )
    except ValueError as exc:  # a validator's message
        raise UsageError(str(exc).strip().splitlines()[-1]) from exc
    except (CopierError, OSError) as exc:
        raise WellnestError(f"copier could not render the template: {exc}") from exc
    answers: dict[str, Any] = load_yaml(
        (dest / blueprint.answers_relpath).read_text(encoding="utf-8")
    )
    return answers


def _name_from(dest: Path) -> str:
    words = re.split(r"[^A-Za-z0-9]+", dest.resolve().name)
    return " ".join(word[:1].upper() + word[1:] for word in words if word) or "Service"
