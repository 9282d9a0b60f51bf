"""A planned set of file changes, applied all at once or not at all."""

from __future__ import annotations

import base64
import difflib
import json
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
    warnings: list[str] = field(default_factory=list)  # shown before anything is written
    # Files merged with conflict markers: written, reported, and the command fails.
    conflicts: list[str] = field(default_factory=list)

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

    def apply(self, label: str = "a change") -> None:
        """Write everything; on any failure put every touched path back as it was.

        A journal with every path's before-image is on disk before the first write
        and removed after the last: if the process dies in between, the next wellnest
        command in the project rolls the change back (`recover`).
        """
        undo: list[tuple[Path, bytes | None]] = []
        made_dirs = _missing_parents(self.root, self.create)
        current = JOURNAL
        try:
            _write_journal(self, label, made_dirs)
            for folder in made_dirs:
                current = folder.relative_to(self.root).as_posix()
                folder.mkdir()
            for relpath, data in self.create.items():
                current = relpath
                path = self.root / relpath
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
            for relpath in self.delete:
                _prune_empty_parents(self.root / relpath, self.root)
            (self.root / JOURNAL).unlink()
        except OSError as exc:
            _rollback(undo, made_dirs)
            (self.root / JOURNAL).unlink(missing_ok=True)
            reason = exc.strerror or str(exc)
            msg = f"could not write {current}: {reason}; nothing was changed"
            raise WellnestError(msg) from exc


JOURNAL = ".wellnest-journal.json"


def _missing_parents(root: Path, relpaths: dict[str, bytes]) -> list[Path]:
    missing: list[Path] = []
    for relpath in relpaths:
        folder = (root / relpath).parent
        chain = []
        while not folder.exists() and folder not in missing:
            chain.append(folder)
            folder = folder.parent
        missing.extend(reversed(chain))
    return missing


def _write_journal(plan: Plan, label: str, made_dirs: list[Path]) -> None:
    entries = [
        *({"path": relpath, "before": None} for relpath in plan.create),
        *({"path": relpath, "before": _b64(old)} for relpath, (old, _) in plan.modify.items()),
        *({"path": relpath, "before": _b64(old)} for relpath, old in plan.delete.items()),
    ]
    record = {
        "label": label,
        "entries": entries,
        "dirs": [folder.relative_to(plan.root).as_posix() for folder in made_dirs],
    }
    _write(plan.root / JOURNAL, json.dumps(record).encode(), durable=True)


def recover(root: Path) -> str | None:
    """Roll back a change a killed wellnest left half done; say what was done."""
    path = root / JOURNAL
    (root / f".{JOURNAL}.wellnest-tmp").unlink(missing_ok=True)  # died writing it
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        entries = [(str(e["path"]), e["before"]) for e in record["entries"]]
        dirs = [root / str(folder) for folder in record["dirs"]]
        label = str(record["label"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"{JOURNAL} (left by an interrupted wellnest command) is unreadable: {exc}"
        raise WellnestError(msg) from exc
    try:
        for relpath, before in reversed(entries):
            target = root / relpath
            target.with_name(f".{target.name}.wellnest-tmp").unlink(missing_ok=True)
            if before is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                _write(target, base64.b64decode(before))
        for folder in reversed(dirs):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        path.unlink()
    except OSError as exc:
        msg = f"could not roll back the interrupted {label}: {exc.strerror or exc}"
        raise WellnestError(msg) from exc
    return f"rolled back an interrupted {label} ({len(entries)} files put back as they were)"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _write(path: Path, data: bytes, *, durable: bool = False) -> None:
    # Write beside the target, then rename: a file is either old or new, never half.
    temporary = path.with_name(f".{path.name}.wellnest-tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
        if durable:  # the rename itself must survive a crash too
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
    finally:
        temporary.unlink(missing_ok=True)


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
