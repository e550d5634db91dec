"""What changed in a pipeline's code between a run and the run of it before.

Each snapshot (one per pipeline and code version) lists the code's files with their sha256;
the store keeps the text of the project folder's files by hash. Comparing two lists says
which files were added, removed or changed, and the kept texts give a unified diff.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from legato.domain.records import RunRecord
    from legato.services.workspace import Workspace

#: Longest diff shown per file, in lines.
DIFF_LINES = 2000


@dataclass(frozen=True)
class FileChange:
    """One file that differs between two code versions."""

    path: str
    change: str  # "added" | "removed" | "changed"
    diff: str | None  # a unified diff when both texts are kept (or the one text, for added)


@dataclass(frozen=True)
class CodeChanges:
    """A run's code version against that of the pipeline's previous run."""

    run: RunRecord
    previous: RunRecord | None  # the pipeline's run made before this one, if any
    files: tuple[str, ...]  # the files of the run's code version ("" list if not known)
    changes: tuple[FileChange, ...]
    known: bool  # whether both versions' file lists are kept (runs made before were not)

    @property
    def same_code(self) -> bool:
        return self.previous is not None and self.previous.code_version == self.run.code_version


def _files(ws: Workspace, run: RunRecord) -> dict[str, str] | None:
    snapshot = ws.store.runs.get_snapshot(run.pipeline, run.code_version)
    code = (snapshot or {}).get("code")
    if not isinstance(code, dict) or not isinstance(code.get("files"), dict):
        return None
    return {str(k): str(v) for k, v in code["files"].items()}


def code_changes(ws: Workspace, run: RunRecord) -> CodeChanges:
    """``run``'s code against that of the run of its pipeline made just before it."""
    older = ws.store.browse.list_runs(pipeline=run.pipeline, limit=1, before_id=run.id)
    previous = older[0] if older else None
    now = _files(ws, run)
    files = tuple(sorted(now or {}))
    if previous is None or now is None:
        return CodeChanges(run, previous, files, (), known=now is not None and previous is None)
    before = _files(ws, previous)
    if before is None:
        return CodeChanges(run, previous, files, (), known=False)
    paths = sorted(set(now) | set(before))
    changed = [p for p in paths if now.get(p) != before.get(p)]
    texts = ws.store.runs.get_code_texts(
        {h for p in changed for h in (now.get(p), before.get(p)) if h is not None}
    )
    out = []
    for path in changed:
        old_hash, new_hash = before.get(path), now.get(path)
        kind = "added" if old_hash is None else "removed" if new_hash is None else "changed"
        old_text = texts.get(old_hash) if old_hash else ""
        new_text = texts.get(new_hash) if new_hash else ""
        diff = None
        if old_text is not None and new_text is not None:
            lines = difflib.unified_diff(
                old_text.splitlines(keepends=True),
                new_text.splitlines(keepends=True),
                fromfile=f"{path} ({previous.code_version})" if old_hash else "/dev/null",
                tofile=f"{path} ({run.code_version})" if new_hash else "/dev/null",
            )
            diff = "".join(
                line if line.endswith("\n") else line + "\n"
                for _, line in zip(range(DIFF_LINES), lines, strict=False)
            )
        out.append(FileChange(path, kind, diff))
    return CodeChanges(run, previous, files, tuple(out), known=True)


__all__ = ["CodeChanges", "FileChange", "code_changes"]
