"""``legato config``: the settings in effect, every secret masked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from legato.cli.main import EnvOpt, JsonOpt, ProjectOpt, app, user_errors, workspace


@app.command("config")
def config_show(
    env: EnvOpt = None,
    json_out: JsonOpt = False,
    project: ProjectOpt = Path("."),
) -> None:
    """Print the settings in effect: legato.toml with the environment's [env.NAME] laid over
    it, environment variables applied, defaults filled in, every secret masked."""
    with user_errors(), workspace(project) as door:
        shown = door.project.effective_config()
    if json_out:
        from legato.cli.render import print_json

        print_json(shown)
        return
    import tomli_w

    env_name = shown["environment"]
    how = "the settings outside [env]" if env_name == "default" else f"[env.{env_name}] laid over"
    sys.stdout.write(
        f"# {shown['file']}\n"
        f"# environment {env_name!r} (defined: {', '.join(shown['environments'])}): {how},\n"
        "# environment variables applied, defaults filled in, secrets masked\n\n"
    )
    # TOML has no null: a setting left unset is left out (and a section left empty).
    sys.stdout.write(tomli_w.dumps(_without_none(shown["settings"])))


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _without_none(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [_without_none(v) for v in value if v is not None]
    return value
