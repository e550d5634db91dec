"""legato.toml's [limits]: what the server and the services take at most."""

from __future__ import annotations

from pathlib import Path

import pytest

from legato.config import ConfigError, load_config
from tests.helpers import make_project


def test_limits_have_defaults_and_can_be_set(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path / "a", "x = 1\n"))
    assert (config.request_bytes, config.params_bytes) == (1024 * 1024, 256 * 1024)
    toml = "\n[limits]\nrequest_bytes = 5000\nparams_bytes = 300\n"
    config = load_config(make_project(tmp_path / "b", "x = 1\n", extra=toml))
    assert (config.request_bytes, config.params_bytes) == (5000, 300)


def test_worker_recycling_is_off_by_default_and_can_be_set(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path / "a", "x = 1\n"))
    assert (config.max_tasks_per_worker, config.max_worker_memory_mb) == (None, None)
    toml = "max_tasks_per_worker = 500\nmax_worker_memory_mb = 0\n"
    config = load_config(make_project(tmp_path / "b", "x = 1\n", extra=toml))
    assert (config.max_tasks_per_worker, config.max_worker_memory_mb) == (500, None)
    with pytest.raises(ConfigError, match="max_worker_memory_mb must be a positive number"):
        load_config(make_project(tmp_path / "c", "x = 1\n", extra="max_worker_memory_mb = -1\n"))


def test_web_section_paths_are_the_projects_and_the_public_url_an_origin(tmp_path: Path) -> None:
    config = load_config(make_project(tmp_path / "a", "x = 1\n"))
    assert (config.tls_cert, config.tls_key, config.public_url) == (None, None, None)
    toml = (
        '\n[web]\ntls_cert = "certs/server.pem"\ntls_key = "/etc/k.pem"\n'
        'public_url = "https://Legato.example.com:8443/"\n'
    )
    root = make_project(tmp_path / "b", "x = 1\n", extra=toml)
    config = load_config(root)
    assert config.tls_cert == root.resolve() / "certs" / "server.pem"
    assert config.tls_key == Path("/etc/k.pem")
    assert config.public_url == "https://Legato.example.com:8443"


@pytest.mark.parametrize(
    ("section", "toml", "message"),
    [
        ("limits", "request_bytes = 0", "[limits] request_bytes must be at least 1"),
        ("limits", "params_bytes = -5", "[limits] params_bytes must be at least 1"),
        ("limits", 'request_bytes = "1MB"', "[limits] request_bytes must be a int"),
        ("limits", "body_bytes = 10", "unknown key 'body_bytes' in [limits]"),
        ("web", 'tls_cert = "c.pem"', "tls_cert and tls_key go together"),
        ("web", 'tls_key = "k.pem"', "tls_cert and tls_key go together"),
        ("web", 'public_url = "legato.example.com"', "public_url must be an origin"),
        ("web", 'public_url = "ftp://legato.example.com"', "public_url must be an origin"),
        ("web", 'public_url = "https://legato.example.com/ui"', "public_url must be an origin"),
        ("web", "public_url = 8765", "[web] public_url must be a str"),
        ("web", 'host = "0.0.0.0"', "unknown key 'host' in [web]"),
        ("auth", 'oidc = "https://id.example.com"', "[auth.oidc] must be a table"),
        ("auth", "saml = 1", "[auth.saml] must be a table"),
    ],
)
def test_wrong_settings_are_refused(
    tmp_path: Path, section: str, toml: str, message: str
) -> None:
    root = make_project(tmp_path, "x = 1\n", extra=f"\n[{section}]\n{toml}\n")
    with pytest.raises(ConfigError) as info:
        load_config(root)
    assert message in str(info.value)


def test_single_sign_on_tables_are_kept_as_written(tmp_path: Path) -> None:
    assert load_config(make_project(tmp_path / "a", "x = 1\n")).auth_tables == {}
    toml = (
        '\n[auth.oidc]\nissuer = "https://id.example.com"\nclient_id = "legato"\n'
        '[auth.oidc.role_map]\n"data-ops" = "operator"\n'
        '[auth.saml]\nidp_metadata = "idp.xml"\n'
    )
    config = load_config(make_project(tmp_path / "b", "x = 1\n", extra=toml))
    assert config.auth_tables == {
        "oidc": {
            "issuer": "https://id.example.com",
            "client_id": "legato",
            "role_map": {"data-ops": "operator"},
        },
        "saml": {"idp_metadata": "idp.xml"},
    }
