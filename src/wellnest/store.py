"""The template's version history on this machine: what projects record as their source.

copier can only update a project from a git repository that holds both the
version the project was made with and the new one. An installed wheel is a
folder in a virtualenv with no history, and it is replaced on every upgrade, so
wellnest never renders from it directly. Each wellnest version instead commits
its bundled template (copier.yml, includes/, template/) to one git repository in
the user's data folder and tags it `v<version>`. Projects record that repository
as `_src_path` (as `~/...` when under the home folder, so the answers file reads
the same for everyone on a team) and the tag as `_commit`. Plain `copier copy`
and `copier update` work against it, offline, and every version this machine has
installed stays available as the base of a three-way update.

Bytecode, caches and other artefacts never enter the history: pip compiles the
template's .py files when it installs the wheel, and those must not reach a
rendered project.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wellnest import __version__
from wellnest.blueprint import Blueprint
from wellnest.errors import WellnestError

# What the history holds, relative to the blueprint root (copier.yml's folder).
CONTENT = ("copier.yml", "includes", "template")
_INDEX = "wellnest-index.json"  # (content digest -> tag), inside .git
# Released versions' templates, in a wheel cut by scripts/release.py (absent in a checkout).
BUNDLE = Path(__file__).with_name("history.bundle")
_BUNDLED = "bundle imported by"  # index key: the version whose bundle was imported


def data_home() -> Path:
    override = os.environ.get("WELLNEST_HOME")
    if override:
        return Path(override)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base, "wellnest")


@dataclass(frozen=True)
class Source:
    """Where copier finds the template and which version to use."""

    path: Path
    tag: str

    @property
    def recorded(self) -> str:
        """The `_src_path` written to answers files: home-relative when possible."""
        home = Path.home().resolve()
        try:
            return "~/" + self.path.resolve().relative_to(home).as_posix()
        except ValueError:
            return self.path.resolve().as_posix()


def sync(blueprint: Blueprint, version: str | None = None) -> Source:
    """Make sure this wellnest's template is committed and tagged; return it."""
    version = version or __version__
    files = _content(blueprint)
    digest = _digest(files)
    store = data_home() / "template"
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        with _locked(store.parent / "template.lock"):
            index = _read_index(store)
            if BUNDLE.is_file() and index.get(_BUNDLED) != version:
                _import_released(store)
                index[_BUNDLED] = version
                _write_index(store, index)
            tag = index.get(digest)
            if tag is None or not has_tag(store, tag):
                tag = _commit(store, files, version)
                index[digest] = tag
                _write_index(store, index)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or exc
        msg = f"could not record the template's history in {store}: {str(detail).strip()}"
        raise WellnestError(msg) from exc
    return Source(store, tag)


def _import_released(store: Path) -> None:
    """Every released version's template, from the history the wheel carries
    (scripts/release.py builds it): a project made by a version this machine never
    installed updates all the same, on a teammate's machine as on its author's."""
    _init(store)
    listed = _git(store, "bundle", "list-heads", str(BUNDLE)).stdout.split()
    missing = [
        ref
        for ref in listed[1::2]
        if ref.startswith("refs/tags/") and not has_tag(store, ref.removeprefix("refs/tags/"))
    ]
    if missing:
        _git(store, "fetch", "-q", str(BUNDLE), *(f"{ref}:{ref}" for ref in missing))


def build_history(releases: list[tuple[str, Path]], bundle: Path) -> list[str]:
    """The template of each (version, blueprint root), oldest first, committed and
    tagged as sync() records it, written to `bundle`; returns the tags."""
    with tempfile.TemporaryDirectory(prefix="wellnest-history-") as scratch:
        store = Path(scratch) / "template"
        tags = [_commit(store, _content(Blueprint(root)), version) for version, root in releases]
        bundle.parent.mkdir(parents=True, exist_ok=True)
        _git(store, "bundle", "create", "-q", str(bundle.resolve()), "--tags")
    return tags


def remember(blueprint: Blueprint) -> None:
    """sync() as a side effect of any project command, so that plain `copier update`
    finds a newly installed version; a history that cannot be written is not this
    command's business (`wellnest new` and `update` report it)."""
    with contextlib.suppress(WellnestError):
        sync(blueprint)


def _content(blueprint: Blueprint) -> dict[str, bytes]:
    root = blueprint.root
    files: dict[str, bytes] = {}
    for top in CONTENT:
        start = root / top
        if start.is_file():
            files[top] = start.read_bytes()
            continue
        for folder, dirs, names in os.walk(start):
            dirs[:] = sorted(d for d in dirs if not blueprint.excluded(d))
            for name in sorted(names):
                if not blueprint.excluded(name):
                    path = Path(folder, name)
                    files[path.relative_to(root).as_posix()] = path.read_bytes()
    return files


def _digest(files: dict[str, bytes]) -> str:
    sha = hashlib.sha256()
    for relpath, data in sorted(files.items()):
        sha.update(relpath.encode() + b"\0" + hashlib.sha256(data).digest())
    return sha.hexdigest()


def _commit(store: Path, files: dict[str, bytes], version: str) -> str:
    """Replace the work tree with `files`, commit if anything changed, and tag."""
    _init(store)
    for child in store.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    for relpath, data in files.items():
        path = store / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    _git(store, "add", "-A")
    has_head = _git(store, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode == 0
    changed = _git(store, "diff", "--cached", "--quiet", check=False).returncode != 0
    if changed or not has_head:
        _git(store, "commit", "-q", "--allow-empty", "-m", f"wellnest {version}")
    tree = _git(store, "rev-parse", "HEAD^{tree}").stdout.strip()
    # One tag per released version; a checkout whose template differs from what
    # its version number was first recorded with gets a local version label.
    for tag in (f"v{version}", f"v{version}+t{tree[:10]}"):
        if not has_tag(store, tag):
            _git(store, "tag", tag)
            return tag
        if _git(store, "rev-parse", f"{tag}^{{tree}}").stdout.strip() == tree:
            return tag
    raise WellnestError(f"the template history in {store} has conflicting tags for {version}")


def _init(store: Path) -> None:
    if not (store / ".git").is_dir():
        if store.exists():
            shutil.rmtree(store)  # a half-made store from an interrupted first run
        store.mkdir(parents=True)
        _git(store, "init", "-q", "-b", "main")


def has_tag(store: Path, tag: str) -> bool:
    if not (store / ".git").is_dir():
        return False
    ref = f"refs/tags/{tag}"
    return _git(store, "rev-parse", "--verify", "-q", ref, check=False).returncode == 0


def _read_index(store: Path) -> dict[str, str]:
    try:
        loaded = json.loads((store / ".git" / _INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _write_index(store: Path, index: dict[str, str]) -> None:
    path = store / ".git" / _INDEX
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(index, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two wellnest commands at once (or parallel tests) must not interleave commits.
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _git(store: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "wellnest",
        "GIT_AUTHOR_EMAIL": "wellnest@localhost",
        "GIT_COMMITTER_NAME": "wellnest",
        "GIT_COMMITTER_EMAIL": "wellnest@localhost",
    }
    return subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
        cwd=store,
        env=env,
        check=check,
        capture_output=True,
        text=True,
    )
