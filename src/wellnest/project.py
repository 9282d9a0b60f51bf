"""A generated project: found by its answers file, searching upward."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from wellnest.blueprint import load_yaml
from wellnest.errors import WellnestError

ANSWERS_FILE = ".copier-answers.yml"


def module_name(entry: Any) -> str:
    """A `modules` entry is a name or a mapping with a name (see copier.yml)."""
    if isinstance(entry, dict):
        return str(entry.get("name", ""))
    return str(entry)


def is_removed(entry: Any) -> bool:
    """A removed module stays in `modules` (with `removed`) while its migrations stay
    in the project's history; it is no longer part of the project."""
    return isinstance(entry, dict) and "removed" in entry


@dataclass
class Project:
    root: Path
    answers: dict[str, Any]
    recovered: str | None = None  # what was rolled back on the way in

    @classmethod
    def find(cls, start: Path) -> Project:
        start = start.resolve()
        for folder in (start, *start.parents):
            if (folder / ANSWERS_FILE).is_file():
                return cls(folder, _read_answers(folder / ANSWERS_FILE))
        msg = f"not inside a wellnest project: no {ANSWERS_FILE} in {start} or any parent folder"
        raise WellnestError(msg)

    @property
    def modules(self) -> list[Any]:
        """Every `modules` entry, removed modules included (the answers as stored)."""
        modules: list[Any] = self.answers["modules"]
        return modules

    @property
    def module_names(self) -> list[str]:
        """The modules the project has now."""
        return [module_name(entry) for entry in self.modules if not is_removed(entry)]

    def read(self, relpath: str) -> str:
        return (self.root / relpath).read_text(encoding="utf-8")

    def exists(self, relpath: str) -> bool:
        return (self.root / relpath).exists()


def _read_answers(path: Path) -> dict[str, Any]:
    try:
        answers = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WellnestError(f"{path.name} cannot be read: {_first_line(exc)}") from exc
    if not isinstance(answers, dict):
        raise WellnestError(f"{path.name} is corrupt: expected a mapping of answers")
    modules = answers.get("modules")
    if not isinstance(modules, list) or not all(
        isinstance(entry, str) or (isinstance(entry, dict) and "name" in entry) for entry in modules
    ):
        raise WellnestError(f"{path.name} is corrupt: `modules` must be a list of names")
    return answers


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
