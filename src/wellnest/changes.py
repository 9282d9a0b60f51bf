"""A planned set of file changes, applied all at once or not at all."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

from wellnest.errors import WellnestError


@dataclass
class Plan:
    root: Path
    create: dict[str, bytes] = field(default_factory=dict)
    modify: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    delete: dict[str, bytes] = field(default_factory=dict)

    def diff(self, relpath: str) -> str:
        old, new = (data.decode() for data in self.modify[relpath])
        return "".join(
            difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"a/{relpath}",
                tofile=f"b/{relpath}",
            )
        )

    def apply(self) -> None:
        """Write everything; on any failure put every touched path back as it was."""
        undo: list[tuple[Path, bytes | None]] = []
        made_dirs: list[Path] = []
        current = ""
        try:
            for relpath, data in self.create.items():
                current = relpath
                path = self.root / relpath
                made_dirs.extend(_make_parents(path.parent))
                undo.append((path, None))
                _write(path, data)
            for relpath, (old, new) in self.modify.items():
                current = relpath
                path = self.root / relpath
                undo.append((path, old))
                _write(path, new)
            for relpath, old in self.delete.items():
                current = relpath
                path = self.root / relpath
                undo.append((path, old))
                path.unlink()
        except OSError as exc:
            _rollback(undo, made_dirs)
            reason = exc.strerror or str(exc)
            msg = f"could not write {current}: {reason}; nothing was changed"
            raise WellnestError(msg) from exc
        for relpath in self.delete:
            _prune_empty_parents(self.root / relpath, self.root)


def _write(path: Path, data: bytes) -> None:
    # Write beside the target, then rename: a file is either old or new, never half.
    temporary = path.with_name(f".{path.name}.wellnest-tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _make_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
    return missing[::-1]


def _rollback(undo: list[tuple[Path, bytes | None]], made_dirs: list[Path]) -> None:
    for path, old in reversed(undo):
        if old is None:
            path.unlink(missing_ok=True)
        else:
            path.write_bytes(old)
    for folder in reversed(made_dirs):
        if folder.exists() and not any(folder.iterdir()):
            folder.rmdir()


def _prune_empty_parents(path: Path, root: Path) -> None:
    folder = path.parent
    while folder != root and folder.exists():
        leftovers = [p for p in folder.iterdir() if p.name != "__pycache__"]
        if leftovers:
            return
        for cache in folder.glob("__pycache__"):
            for item in cache.iterdir():
                item.unlink()
            cache.rmdir()
        folder.rmdir()
        folder = folder.parent


def ensure_absent(plan: Plan) -> None:
    for relpath in plan.create:
        if (plan.root / relpath).exists():
            raise WellnestError(f"{relpath} already exists; refusing to overwrite it")
