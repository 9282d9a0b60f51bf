"""The template in `template/`, rendered without copier for one module at a time.

`wellnest add-module` must produce exactly what `copier copy` produces, so this
module evaluates copier.yml's own expressions (computed answers, validators) and
renders the same files with the same Jinja settings copier uses: a sandboxed
environment, the ansible core filters, kept trailing newlines and the `.jinja`
suffix. Importing copier itself would cost more than the whole command.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from jinja2 import (
    ChoiceLoader,
    FileSystemBytecodeCache,
    FileSystemLoader,
    FunctionLoader,
    Template,
    TemplateError,
)
from jinja2.sandbox import SandboxedEnvironment

from wellnest.errors import WellnestError

SUFFIX = ".jinja"
STRING_PREFIX = "string:"
YIELD_RE = re.compile(
    r"\{%-?\s*yield\s+(?P<var>\w+)\s+from\s+(?P<expr>.+?)\s*-?%\}"
    r"(?P<body>.*?)\{%-?\s*endyield\s*-?%\}",
    re.DOTALL,
)

# libyaml when present: several times faster to load copier.yml.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def locate_root() -> Path:
    """The folder holding copier.yml and template/: bundled in the wheel, or the checkout."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "_blueprint", package.parent.parent):
        if (candidate / "copier.yml").is_file() and (candidate / "template").is_dir():
            return candidate
    raise WellnestError("wellnest's template is missing from this installation")


@dataclass
class Blueprint:
    root: Path
    config: dict[str, Any] = field(init=False)
    _strings: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.config = load_yaml((self.root / "copier.yml").read_text(encoding="utf-8"))

    @classmethod
    def locate(cls) -> Blueprint:
        return cls(locate_root())

    @property
    def template_dir(self) -> Path:
        return self.root / str(self.config.get("_subdirectory", ""))

    def excluded(self, name: str) -> bool:
        """copier.yml's `_exclude` for one file or folder name. Its patterns are bare
        names (no slash), which git-style matching applies at every depth."""
        return any(fnmatch(name, pattern) for pattern in self.config.get("_exclude", ()))

    @property
    def answers_relpath(self) -> str:
        return str(self.config.get("_answers_file", ".copier-answers.yml"))

    @cached_property
    def env(self) -> SandboxedEnvironment:
        # The settings copier builds its environment with (copier/_main.py: jinja_env).
        envops = {"keep_trailing_newline": True, **self.config.get("_envops", {})}
        # Rooted, like copier's loader, at the folder holding copier.yml, so that
        # copier.yml's `{% from 'includes/...' import ... %}` resolves the same way.
        loader = ChoiceLoader(
            [
                FunctionLoader(self._strings.get),  # "string:<sha1>" names
                FileSystemLoader(self.root),
            ]
        )
        return SandboxedEnvironment(
            loader=loader,
            extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"],
            bytecode_cache=_bytecode_cache(),
            **envops,
        )

    @property
    def questions(self) -> dict[str, dict[str, Any]]:
        return {
            name: spec
            for name, spec in self.config.items()
            if not name.startswith("_") and isinstance(spec, dict)
        }

    def render_string(self, source: str, context: Mapping[str, Any]) -> str:
        if "{" not in source:  # most path parts are plain names
            return source
        try:
            return self._compiled(source).render(**context)
        except TemplateError as exc:
            raise WellnestError(f"the template failed to render: {exc}") from exc

    def _compiled(self, source: str) -> Template:
        # Compiling is most of a render's cost. Strings go through the loader under
        # a name derived from their text, so the bytecode cache serves them too.
        name = STRING_PREFIX + hashlib.sha1(source.encode()).hexdigest()
        self._strings[name] = source
        return self.env.get_template(name)

    def _default(self, spec: dict[str, Any], context: Mapping[str, Any]) -> Any:
        default = spec.get("default")
        if not isinstance(default, str):
            return default
        rendered = self.render_string(default, context)
        if spec.get("type") != "yaml":
            return rendered
        try:  # computed answers render JSON (`| tojson`): far faster to read as such
            return json.loads(rendered)
        except ValueError:
            return load_yaml(rendered)

    def context(self, answers: Mapping[str, Any]) -> dict[str, Any]:
        """Answers plus every computed value, as copier's render context has them."""
        context = {k: v for k, v in answers.items() if not k.startswith("_")}
        for name, spec in self.questions.items():
            computed = spec.get("when") is False
            if computed or name not in context:
                context[name] = self._default(spec, context)
        return context

    def validate(self, question: str, context: Mapping[str, Any]) -> str | None:
        """copier.yml's own validator for one answer: its message, or None."""
        validator = self.questions[question].get("validator")
        if not validator:
            return None
        message = self.render_string(validator, context).strip()
        return message or None

    def render_file(self, relpath: str, context: Mapping[str, Any]) -> str:
        """Render one template file (path relative to template/, with its suffix)."""
        try:
            template = self.env.get_template(self._loader_name(relpath))
            return template.render(**context)
        except TemplateError as exc:
            raise WellnestError(f"the template {relpath} failed to render: {exc}") from exc

    def _loader_name(self, relpath: str) -> str:
        subdirectory = str(self.config.get("_subdirectory", "")).strip("/")
        return f"{subdirectory}/{relpath}" if subdirectory else relpath

    def render_answers(self, answers: Mapping[str, Any]) -> str:
        source = "{{_copier_conf.answers_file}}" + SUFFIX
        return self.render_file(source, {"_copier_answers": dict(answers)})

    @cached_property
    def _yield_paths(self) -> list[PurePosixPath]:
        found = []
        for relpath in self._walk():
            if "{% yield" in str(relpath) or "{%- yield" in str(relpath):
                found.append(relpath)
        return sorted(found)

    def _walk(self) -> Iterator[PurePosixPath]:
        """The path, relative to template/, of every template file copier renders."""
        for folder, dirs, files in os.walk(self.template_dir):
            dirs[:] = [name for name in dirs if not self.excluded(name)]
            for name in files:
                if not self.excluded(name):
                    path = Path(folder, name).relative_to(self.template_dir)
                    yield PurePosixPath(path.as_posix())

    @cached_property
    def _shared_sources(self) -> list[PurePosixPath]:
        """Rendered files outside the per-module yields: the ones whose content can
        depend on the modules' fields (shared helpers rendered only when used)."""
        skipped = {self.answers_relpath, *self.config.get("_skip_if_exists", [])}
        found = []
        for relpath in self._walk():
            if not relpath.name.endswith(SUFFIX) or relpath in self._yield_paths:
                continue
            if "_copier_conf" in str(relpath) or relpath.as_posix().removesuffix(SUFFIX) in skipped:
                continue
            found.append(relpath)
        return sorted(found)

    def shared_files(self, context: Mapping[str, Any]) -> dict[str, bytes]:
        """Every rendered file that no module yields: rendered path -> content."""
        files: dict[str, bytes] = {}
        for source in self._shared_sources:
            parts = [self.render_string(part, context) for part in source.parts]
            if all(parts):  # copier skips a path with any part rendered empty
                target = "/".join(parts).removesuffix(SUFFIX)
                files[target] = self.render_file(str(source), context).encode()
        return files

    def module_files(
        self,
        context: Mapping[str, Any],
        module: str,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, bytes]:
        """Every file the template yields for `module`: rendered path -> content."""
        files: dict[str, bytes] = {}
        for source in self._yield_paths:
            for target, scope in self._render_parts(source.parts, context, module, overrides):
                if source.name.endswith(SUFFIX):
                    content = self.render_file(str(source), scope).encode()
                    target = target.removesuffix(SUFFIX)
                else:
                    content = (self.template_dir / source).read_bytes()
                files[target] = content
        return files

    def _render_parts(
        self,
        parts: tuple[str, ...],
        context: Mapping[str, Any],
        module: str,
        overrides: Mapping[str, Any] | None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each path a yield gives for `module` (a module has one folder, and one
        migration per change), with the scope its file renders in."""
        yield from self._unroll(parts, dict(context), module, overrides, [])

    def _unroll(
        self,
        parts: tuple[str, ...],
        scope: dict[str, Any],
        module: str,
        overrides: Mapping[str, Any] | None,
        rendered: list[str],
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        if not parts:
            if all(rendered):  # copier skips a path with any part rendered empty
                yield "/".join(rendered), scope
            return
        part, rest = parts[0], parts[1:]
        match = YIELD_RE.search(part)
        if match is None:
            rendered = [*rendered, self.render_string(part, scope)]
            yield from self._unroll(rest, scope, module, overrides, rendered)
            return
        items = self.env.compile_expression(match["expr"])(**scope)
        unrolled = part[: match.start()] + match["body"] + part[match.end() :]
        for chosen in (item for item in items or () if _name_of(item) == module):
            inner = {**scope, match["var"]: {**chosen, **(overrides or {})}}
            text = self.render_string(unrolled, inner)
            yield from self._unroll(rest, inner, module, overrides, [*rendered, text])


def _bytecode_cache() -> FileSystemBytecodeCache | None:
    """Compiled templates kept between runs (keyed by source checksum), when the
    user cache folder is writable; otherwise every run compiles afresh."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    folder = Path(base, "wellnest", "jinja")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return FileSystemBytecodeCache(str(folder))


def _name_of(item: Any) -> Any:
    return item.get("name") if isinstance(item, Mapping) else item
