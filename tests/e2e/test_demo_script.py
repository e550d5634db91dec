"""scripts/demo.sh tells the user the address `legato up` will really serve."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _executable(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def demo_output(tmp_path: Path, port: str | None) -> str:
    """Run a copy of demo.sh whose venv installs nothing and whose `legato` only echoes."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "demo.sh", tmp_path / "scripts" / "demo.sh")
    example = tmp_path / "examples" / "retail_orders"
    example.mkdir(parents=True)
    shutil.copy(REPO / "examples" / "retail_orders" / "legato.toml", example / "legato.toml")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    _executable(
        bin_dir / "python",
        f'#!/bin/sh\n[ "$1 $2" = "-m pip" ] && exit 0\nexec {sys.executable} "$@"\n',
    )
    _executable(bin_dir / "legato", '#!/bin/sh\necho "legato $*"\n')
    env = {k: v for k, v in os.environ.items() if k != "LEGATO_PORT"}
    if port is not None:
        env["LEGATO_PORT"] = port
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "demo.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_demo_prints_the_port_from_legato_port(tmp_path: Path) -> None:
    printed = demo_output(tmp_path, "9123")
    assert "legato up at http://127.0.0.1:9123/: open the one-time" in printed, printed
    assert "8765" not in printed, printed
    assert "legato up --project examples/retail_orders" in printed


def test_demo_prints_the_projects_port_by_default(tmp_path: Path) -> None:
    printed = demo_output(tmp_path, None)
    assert "legato up at http://127.0.0.1:8765/: open the one-time" in printed, printed
