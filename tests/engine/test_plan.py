"""Where an attempt's log goes (``plan.log_path``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato.engine import plan


def test_log_path_is_one_file_in_the_runs_folder(tmp_path: Path) -> None:
    path = plan.log_path(tmp_path, "01RUN", "fetch[3]", 2)
    assert Path(path) == tmp_path / "01RUN" / "fetch[3].2.log"


@pytest.mark.parametrize(
    ("run_id", "task_key"),
    [
        ("01RUN", "../../../escaped_task"),
        ("01RUN", "a/b"),
        ("01RUN", "..\\x"),
        ("01RUN", "a\x00b"),
        ("01RUN", ""),
        ("..", "task"),
        (".", "task"),
        ("../elsewhere", "task"),
        ("", "task"),
    ],
)
def test_log_path_refuses_to_leave_the_logs_folder(
    tmp_path: Path, run_id: str, task_key: str
) -> None:
    # Task names are checked when defined; this is the second line, for anything that slips.
    with pytest.raises(ValueError, match="log"):
        plan.log_path(tmp_path / "logs", run_id, task_key, 1)
