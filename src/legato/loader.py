"""Import a project's pipeline modules; a module that fails to import is recorded, not fatal."""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from legato.config import ProjectConfig, load_config
from legato.definitions.errors import DefinitionError
from legato.definitions.pipeline import Pipeline


@dataclass(frozen=True)
class LoadError:
    """A module of the project that could not be imported, and why."""

    module: str
    message: str  # one line, naming file and line where known
    traceback: str


@dataclass
class Project:
    """A loaded code location: its settings, its pipelines, and what failed to load."""

    config: ProjectConfig
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    errors: list[LoadError] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.config.root


def _forget_modules(root: Path, names: tuple[str, ...]) -> None:
    # A second load in one process (tests, a reloading server) must import afresh.
    for mod_name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None) or ""
        top = mod_name.split(".", 1)[0]
        if file.startswith(str(root) + "/") or top in names:
            del sys.modules[mod_name]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, DefinitionError | SyntaxError):
        if isinstance(exc, SyntaxError) and exc.filename:
            return f"{exc.filename}:{exc.lineno}: SyntaxError: {exc.msg}"
        return str(exc)
    tb = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(tb):
        if "/legato/" not in frame.filename and "<frozen" not in frame.filename:
            where = f"{frame.filename}:{frame.lineno}: "
            break
    return f"{where}{type(exc).__name__}: {exc}"


def _import_tree(name: str) -> list[ModuleType]:
    module = importlib.import_module(name)
    found = [module]
    if hasattr(module, "__path__"):
        for info in pkgutil.walk_packages(module.__path__, prefix=name + "."):
            found.append(importlib.import_module(info.name))
    return found


def load_project(root: Path | str) -> Project:
    """Load the project in ``root``: settings, then each module named in legato.toml."""
    config = load_config(Path(root))
    project = Project(config=config)
    top_names = tuple(m.split(".", 1)[0] for m in config.modules)
    _forget_modules(config.root, top_names)
    if str(config.root) not in sys.path:
        sys.path.insert(0, str(config.root))
    files: set[str] = set()
    for name in config.modules:
        try:
            modules = _import_tree(name)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            project.errors.append(
                LoadError(name, _one_line(exc), "".join(traceback.format_exception(exc)))
            )
            continue
        for module in modules:
            if getattr(module, "__file__", None):
                files.add(module.__file__)  # type: ignore[arg-type]
            for value in vars(module).values():
                if isinstance(value, Pipeline):
                    other = project.pipelines.get(value.name)
                    if other is not None and other is not value:
                        project.errors.append(
                            LoadError(
                                module.__name__,
                                f"{value.file}:{value.line}: pipeline name {value.name!r} "
                                f"is already used at {other.file}:{other.line}",
                                "",
                            )
                        )
                        continue
                    project.pipelines[value.name] = value
    digest = hashlib.sha256()
    for file in sorted(files):
        try:
            digest.update(Path(file).read_bytes())
        except OSError:
            digest.update(file.encode())
    base = digest.hexdigest()
    for p in project.pipelines.values():
        p.code_version = hashlib.sha256(f"{base}:{p.name}".encode()).hexdigest()[:16]
    return project
