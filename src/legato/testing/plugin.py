"""Legato's pytest plugin, loaded by pytest wherever Legato is installed (entry point
``pytest11``). Its fixtures, each writing only under the test's ``tmp_path``:

``legato_run(pipeline, *, project=None, params=None, partition=None, resources=None, timeout=60)``
    ``legato.testing.run_pipeline`` on a store of the test's own; a pipeline given by name
    is looked up in ``project`` (default: the project the test file is in).
``legato_project(source=None, *, files=None, toml=None)``
    A copy under ``tmp_path`` of the project in ``source`` (default: the project the test
    file is in), ``files`` ({"pipelines.py": "..."}) written over it; what the copy's
    pipelines write under their project folder stays out of the original.
    ``legato_project.new(files, toml=None)`` makes a new project of ``files``.
``legato_harness(project=None, pipelines=(), resources=None)``
    An open ``legato.testing.Harness``: an isolated store for several runs (a run, then a
    re-run of it), closed after the test.

Importing this module imports only ``legato`` itself (the authoring API): the harness, the
store and their libraries are imported when a test uses a fixture.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from legato.definitions.pipeline import Pipeline
    from legato.testing.harness import Harness
    from legato.testing.result import PipelineResult

#: What a copied project leaves behind: run state, caches, environments.
_NOT_COPIED = shutil.ignore_patterns(
    ".legato", "__pycache__", ".pytest_cache", ".venv", ".git", "*.pyc"
)


def _project_of(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding a legato.toml."""
    for folder in [start, *start.parents]:
        if (folder / "legato.toml").is_file():
            return folder
    raise FileNotFoundError(
        f"no legato.toml in {start} or any folder above it: "
        "pass project=FOLDER (or use legato_project to make one)"
    )


def _test_folder(request: pytest.FixtureRequest) -> Path:
    return Path(request.path).resolve().parent


class ProjectMaker:
    """Makes project folders under one folder (the ``legato_project`` fixture's value)."""

    def __init__(self, folder: Path, default: Callable[[], Path]) -> None:
        self._folder = folder
        self._default = default
        self._count = itertools.count(1)

    def __call__(
        self,
        source: str | Path | None = None,
        *,
        files: Mapping[str, str] | None = None,
        toml: str | None = None,
    ) -> Path:
        """A copy of the project in ``source`` (default: the one the test file is in), with
        ``files`` (path -> text) written over it and ``toml`` as its legato.toml if given.
        Its run state (``.legato``), caches and ``__pycache__`` folders are not copied."""
        origin = Path(source).resolve() if source is not None else self._default()
        if not (origin / "legato.toml").is_file():
            raise FileNotFoundError(f"{origin} is not a project folder (no legato.toml)")
        target = self._next()
        shutil.copytree(origin, target, ignore=_NOT_COPIED, symlinks=True)
        return self._write(target, files, toml)

    def new(self, files: Mapping[str, str], *, toml: str | None = None) -> Path:
        """A new project of ``files`` (path -> text). Its legato.toml is ``toml``, or names
        the top-level modules and packages among ``files``."""
        target = self._next()
        target.mkdir()
        if toml is None:
            modules = sorted({Path(name).parts[0].removesuffix(".py") for name in files})
            toml = f"[project]\nname = {target.name!r}\nmodules = {modules!r}\n"
        return self._write(target, files, toml)

    def _next(self) -> Path:
        return self._folder / f"project-{next(self._count)}"

    @staticmethod
    def _write(target: Path, files: Mapping[str, str] | None, toml: str | None) -> Path:
        if toml is not None:
            (target / "legato.toml").write_text(toml, encoding="utf-8")
        for name, text in (files or {}).items():
            path = target / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return target


@pytest.fixture
def legato_project(request: pytest.FixtureRequest, tmp_path: Path) -> ProjectMaker:
    """Project folders under ``tmp_path``: copies (``legato_project(source)``) or new ones
    (``legato_project.new(files)``)."""
    return ProjectMaker(tmp_path, lambda: _project_of(_test_folder(request)))


@pytest.fixture
def legato_run(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., PipelineResult]:
    """``run_pipeline`` with its store under ``tmp_path`` (a new one per call)."""
    counter = itertools.count(1)

    def run(
        pipeline: str | Pipeline, *, project: str | Path | None = None, **kwargs: Any
    ) -> PipelineResult:
        from legato.testing.harness import run_pipeline

        if isinstance(pipeline, str) and project is None:
            project = _project_of(_test_folder(request))
        return run_pipeline(
            pipeline, project=project, tmp_path=tmp_path / f"legato-run-{next(counter)}", **kwargs
        )

    return run


@pytest.fixture
def legato_harness(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Harness]]:
    """Open a ``Harness`` under ``tmp_path``: ``legato_harness(project=...)`` or
    ``legato_harness(pipelines=[...])`` (default: the project the test file is in)."""
    from legato.testing.harness import Harness

    opened: list[Harness] = []
    counter = itertools.count(1)

    def make(
        project: str | Path | None = None,
        pipelines: Iterable[Pipeline] = (),
        resources: Mapping[str, Any] | None = None,
    ) -> Harness:
        given = list(pipelines)
        if project is None and not given:
            project = _project_of(_test_folder(request))
        harness = Harness(
            tmp_path / f"legato-harness-{next(counter)}",
            project=project,
            pipelines=given,
            resources=resources,
        )
        opened.append(harness)
        return harness

    yield make
    for harness in opened:
        harness.close()

