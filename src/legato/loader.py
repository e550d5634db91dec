"""Import a project's pipeline modules; a module that fails to import is recorded, not fatal."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import sys
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType

from legato.config import ProjectConfig, load_config
from legato.definitions.errors import DefinitionError
from legato.definitions.graph import Node
from legato.definitions.pipeline import Pipeline
from legato.fingerprint import Fingerprint, is_under, is_user_file


@dataclass(frozen=True)
class LoadError:
    """A module of the project that could not be imported, and why."""

    module: str
    message: str  # one line, naming file and line where known
    traceback: str

    @property
    def where(self) -> str:
        """The ``file:line`` the message starts with ("" when it names none)."""
        found = _WHERE.match(self.message)
        return found.group(1) if found else ""

    @property
    def error(self) -> str:
        """The message without its ``file:line``."""
        where = self.where
        return self.message[len(where) + 2 :] if where else self.message


_WHERE = re.compile(r"([^:\n]+?\.py:\d+): ")


@dataclass
class Project:
    """A loaded code location: its settings, its pipelines, and what failed to load."""

    config: ProjectConfig
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    errors: list[LoadError] = field(default_factory=list)
    fingerprint: Fingerprint | None = None  # the code this load imported (see fingerprint.py)

    @property
    def root(self) -> Path:
        return self.config.root


# Per project folder, the modules its last load counted as its code: a reload forgets them
# all, local packages outside the folder included, so that an edit to any of them is seen.
_loaded: dict[Path, set[str]] = {}


def _forget_modules(root: Path, names: tuple[str, ...]) -> None:
    # A second load in one process (tests, a reloading daemon) must import afresh.
    # __main__ is never the project's: a script run as ../../.venv/bin/legato from inside the
    # project has an unnormalised __file__ that starts with the project's path.
    earlier = _loaded.pop(root, set())
    for mod_name, mod in list(sys.modules.items()):
        if mod_name == "__main__":
            continue
        file = getattr(mod, "__file__", None) or ""
        top = mod_name.split(".", 1)[0]
        if (
            mod_name in earlier
            or (file and is_under(file, root))
            or top in names
        ):
            del sys.modules[mod_name]
    importlib.invalidate_caches()  # a module file added since the last load must be found


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


#: Frames of these folders say nothing to the user whose module failed to import.
_MACHINERY = (
    os.path.dirname(importlib.__file__) + os.sep,
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
)


def _user_traceback(exc: BaseException) -> str:
    # The traceback shown (in the UI's banner) without the import machinery's frames and
    # legato's loader: for a syntax error, only the line and its caret are left.
    shown = traceback.TracebackException.from_exception(exc)
    shown.stack = traceback.StackSummary.from_list(
        [
            f
            for f in shown.stack
            if not f.filename.startswith("<frozen") and not f.filename.startswith(_MACHINERY)
        ]
    )
    return "".join(shown.format())


def _try_import(name: str, errors: list[LoadError]) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        sys.modules.pop(name, None)
        errors.append(LoadError(name, _one_line(exc), _user_traceback(exc)))
        return None


def _import_tree(name: str, errors: list[LoadError]) -> list[ModuleType]:
    """``name`` and, for a package, each of its submodules, each imported on its own: one
    that fails is recorded in ``errors`` and costs only itself (and, for a package, what is
    inside it)."""
    module = _try_import(name, errors)
    if module is None:
        return []
    found = [module]
    path = getattr(module, "__path__", None)
    if path is not None:
        for info in pkgutil.iter_modules(path, prefix=name + "."):
            found += _import_tree(info.name, errors)
    return found


def load_project(root: Path | str, env: str | None = None) -> Project:
    """Load the project in ``root``: settings (of the environment ``env``, see
    ``load_config``), then each module named in legato.toml."""
    config = load_config(Path(root), env)
    project = Project(config=config)
    top_names = tuple(m.split(".", 1)[0] for m in config.modules)
    _forget_modules(config.root, top_names)
    # First on the path, even if it is there already: a project loaded earlier in this
    # process (a test session) may have modules of the same names.
    if str(config.root) in sys.path:
        sys.path.remove(str(config.root))
    sys.path.insert(0, str(config.root))
    before = set(sys.modules)
    folders = {str(config.root)}
    for name in config.modules:
        for module in _import_tree(name, project.errors):
            folders.update(getattr(module, "__path__", None) or ())
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
    ours, files = _project_modules(config.root, before)
    _loaded[config.root] = ours
    project.fingerprint = Fingerprint.take(config.root, files, folders)
    for p in project.pipelines.values():
        p.code_version = project.fingerprint.version(p.name)
    return project


def _project_modules(root: Path, before: set[str]) -> tuple[set[str], set[str]]:
    # The project's code: modules under its folder, and those this load imported from
    # anywhere but the standard library, site-packages and legato (local packages).
    names: set[str] = set()
    files: set[str] = set()
    for mod_name, mod in list(sys.modules.items()):
        file = getattr(mod, "__file__", None)
        if not file or mod_name == "__main__" or not file.endswith(".py"):
            continue
        if not is_user_file(file):  # a virtualenv inside the project folder is not its code
            continue
        if mod_name not in before or is_under(file, root):
            names.add(mod_name)
            files.add(file)
    return names, files


def _check_references(project: Project) -> None:
    # What a pipeline names outside itself (pools and resources of legato.toml, upstream
    # pipelines) can only be checked once everything is loaded. Such a pipeline is left out,
    # with a load error.
    pools = project.config.pools
    broken = _check_resources(project)
    produced = _produced(project)
    for name, pipe in list(project.pipelines.items()):
        at = f"{pipe.file}:{pipe.line}"
        problems: list[tuple[str, str]] = []  # (where, what)
        for node in pipe.graph.nodes.values():
            problems += _resource_problems(project, name, node, broken)
            node = pipe.graph.nodes[node.id]  # its pool may come from a resource
            pool = node.task.pool
            if pool is not None and pool not in pools:
                known = ", ".join(sorted(pools)) or "none; add a [pools] section to legato.toml"
                problems.append((at, f"pipeline {name!r}: task {node.id!r}: pool {pool!r} does "
                                 f"not exist (pools: {known})"))
        for trig in pipe.automation.triggers:
            upstream = getattr(trig, "upstream", None)
            if upstream is not None and upstream not in project.pipelines:
                problems.append((at, f"pipeline {name!r}: triggers: {trig.name!r} waits for "
                                 f"pipeline {upstream!r}, which does not exist"))
            for key in getattr(trig, "assets", ()):
                problems += _asset_trigger_problem(pipe, trig.name, key, produced)
        if problems:
            del project.pipelines[name]
            for where, problem in problems:
                project.errors.append(LoadError(pipe.module, f"{where}: {problem}", ""))
    _check_producers(project)


def _produced(project: Project) -> dict[str, set[str]]:
    """Each asset some task produces, with the pipelines those tasks are in."""
    out: dict[str, set[str]] = {}
    for pipe in project.pipelines.values():
        for node in pipe.graph.nodes.values():
            for a in node.task.produces:
                out.setdefault(a.key, set()).add(pipe.name)
    return out


def _asset_trigger_problem(
    pipe: Pipeline, trigger: str, key: str, produced: dict[str, set[str]]
) -> list[tuple[str, str]]:
    """What is wrong with ``pipe``'s trigger on asset ``key``: nothing produces it (a typo,
    most likely), or the pipeline produces it itself (each run would start the next)."""
    import difflib

    at = f"{pipe.file}:{pipe.line}"
    what = f"pipeline {pipe.name!r}: triggers: {trigger!r} waits for asset {key!r}"
    makers = produced.get(key)
    if makers is None:
        close = difflib.get_close_matches(key, list(produced), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return [(at, f"{what}, which no task produces{hint}")]
    if pipe.name in makers:
        return [(at, f"{what}, which one of its own tasks produces: each run would start "
                 "the next")]
    return []


def _check_producers(project: Project) -> None:
    """An asset has one producing task: the pipeline of a second one is left out, with a
    load error naming both."""
    from legato.definitions.asset_graph import producer_conflicts

    for key, first, second in producer_conflicts(project.pipelines.values()):
        pipe = project.pipelines.pop(second.pipeline, None)
        if pipe is None:
            continue  # left out already, for another asset
        project.errors.append(
            LoadError(
                pipe.module,
                f"{second.file}:{second.line}: asset {key!r} is produced by task {second} "
                f"and by task {first} ({first.file}:{first.line}): an asset has one "
                "producing task",
                "",
            )
        )


def _check_resources(project: Project) -> set[str]:
    """The declared resources whose kind cannot be found, each recorded as a load error."""
    from legato.resources.kind import ResourceError
    from legato.resources.opened import kind_of

    broken: set[str] = set()
    where = project.config.root / "legato.toml"
    for res, table in project.config.resource_tables.items():
        try:
            kind_of(res, table)
            pool = table.get("pool")
            if pool is not None and not isinstance(pool, str):
                raise ResourceError(f"resource {res!r}: 'pool' must be a pool's name")
        except ResourceError as exc:
            broken.add(res)
            message = f"{where}: [resources.{res}]: {exc}"
            project.errors.append(LoadError("legato.toml", message, ""))
    return broken


def _resource_problems(
    project: Project, pipeline: str, node: Node, broken: set[str]
) -> list[tuple[str, str]]:
    """What is wrong with the resources ``node`` asks for; a resource that says ``pool``
    makes the node take a slot of that pool (replacing the node in its graph)."""
    from legato.resources.opened import overridden

    tables = project.config.resource_tables
    given = overridden()  # an in-process test run hands these objects to the tasks
    at = f"{node.file}:{node.line}"
    what = f"pipeline {pipeline!r}: task {node.task.name!r}"
    problems = []
    pools: dict[str, str] = {}
    for param, res in node.resources:
        if res in given:
            continue
        if res not in tables:
            if param in node.task.resource_params:
                known = ", ".join(sorted(tables)) or "none; add a [resources.NAME] table"
                problems.append((at, f"{what}: parameter {param!r} asks for resource {res!r}, "
                                 f"which is not declared (resources: {known})"))
            else:
                problems.append((at, f"{what} called wrongly: missing argument {param!r} (and "
                                 f"no resource is named {param!r})"))
        elif res in broken:
            problems.append((at, f"{what}: resource {res!r} is declared wrongly (see legato.toml)"))
        elif isinstance(tables[res].get("pool"), str):
            pools[res] = tables[res]["pool"]
    wanted = set(pools.values())
    own = node.task.pool
    if len(wanted) > 1 or (own is not None and wanted and wanted != {own}):
        held = ", ".join(f"{r!r} takes pool {p!r}" for r, p in sorted(pools.items()))
        mine = f"; the task takes pool {own!r}" if own is not None else ""
        problems.append((at, f"{what}: its resources take different pools ({held}{mine}); a "
                         "task takes one pool"))
    elif wanted and own is None:
        pipe = project.pipelines[pipeline]
        pipe.graph.nodes[node.id] = replace(node, task=replace(node.task, pool=wanted.pop()))
    return problems
