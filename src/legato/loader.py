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
    # __main__ is never the project's: a script run as ../../.venv/bin/legato from inside the
    # project has an unnormalised __file__ that starts with the project's path.
    for mod_name, mod in list(sys.modules.items()):
        if mod_name == "__main__":
            continue
        file = getattr(mod, "__file__", None) or ""
        top = mod_name.split(".", 1)[0]
        if (file and Path(file).resolve().is_relative_to(root)) or top in names:
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
    _check_references(project)
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


def _check_references(project: Project) -> None:
    # What a pipeline names outside itself (pools of legato.toml, upstream pipelines) can only
    # be checked once everything is loaded. Such a pipeline is left out, with a load error.
    pools = project.config.pools
    for name, pipe in list(project.pipelines.items()):
        problems = []
        for node in pipe.graph.nodes.values():
            pool = node.task.pool
            if pool is not None and pool not in pools:
                known = ", ".join(sorted(pools)) or "none; add a [pools] section to legato.toml"
                problems.append(
                    f"pipeline {name!r}: task {node.id!r}: pool {pool!r} does not exist "
                    f"(pools: {known})"
                )
        for trig in pipe.automation.triggers:
            upstream = getattr(trig, "upstream", None)
            if upstream is not None and upstream not in project.pipelines:
                problems.append(
                    f"pipeline {name!r}: triggers: {trig.name!r} waits for pipeline "
                    f"{upstream!r}, which does not exist"
                )
        if problems:
            del project.pipelines[name]
            for problem in problems:
                project.errors.append(
                    LoadError(pipe.module, f"{pipe.file}:{pipe.line}: {problem}", "")
                )
