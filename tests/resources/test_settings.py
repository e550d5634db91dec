"""``${secret:NAME}`` and ``${env:VAR}`` inside a resource's settings, and the settings as
people may see them."""

from __future__ import annotations

import pytest

from legato.resources.kind import ResourceError
from legato.resources.settings import masked_settings, references, resolve

TABLE = {
    "kind": "sql",
    "pool": "writes",
    "url": "postgresql://shop:${secret:shop_pw}@${env:DB_HOST}:5432/shop",
    "options": {"headers": [{"Authorization": "Bearer ${secret:api_token}"}], "retries": 3},
    "note": "costs $${cents}",
}
SECRETS = {"shop_pw": "pw-1", "api_token": "tok-2"}


def test_references_are_resolved_anywhere_in_strings_of_nested_tables_and_lists() -> None:
    got = resolve("shop", TABLE, secret=SECRETS.__getitem__, env={"DB_HOST": "db.local"})
    assert got.settings == {
        "url": "postgresql://shop:pw-1@db.local:5432/shop",
        "options": {"headers": [{"Authorization": "Bearer tok-2"}], "retries": 3},
        "note": "costs ${cents}",
    }
    assert got.secret_values == {"pw-1", "tok-2"}
    assert references(TABLE) == [
        ("url", "secret", "shop_pw"),
        ("url", "env", "DB_HOST"),
        ("options.headers[0].Authorization", "secret", "api_token"),
    ]


def test_environment_variables_come_from_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_HOST", "from-env")
    got = resolve("shop", {"host": "${env:DB_HOST}"})
    assert got.settings == {"host": "from-env"} and got.secret_values == frozenset()


@pytest.mark.parametrize(
    ("table", "secrets", "env", "message"),
    [
        (
            {"url": "x://${env:NOPE_HOST}/"},
            {},
            {},
            "resource 'shop': setting 'url': environment variable 'NOPE_HOST' is not set",
        ),
        (
            {"auth": {"password": "${secret:gone}"}},
            {},
            {},
            "resource 'shop': setting 'auth.password': no secret named 'gone'",
        ),
        (
            {"url": "${vault:x}"},
            {},
            {},
            "resource 'shop': setting 'url': only ${secret:NAME} and ${env:VAR} may be referenced",
        ),
    ],
)
def test_a_reference_that_cannot_be_resolved_names_the_resource_and_the_setting(
    table: dict[str, object], secrets: dict[str, str], env: dict[str, str], message: str
) -> None:
    def secret(name: str) -> str:
        if name not in secrets:
            raise KeyError(f"no secret named {name!r}")
        return secrets[name]

    with pytest.raises(ResourceError) as info:
        resolve("shop", table, secret=secret, env=env)
    assert str(info.value).startswith(message)


def test_a_secret_without_a_secret_store_is_an_error() -> None:
    with pytest.raises(ResourceError, match="secret 'pw' cannot be read here"):
        resolve("shop", {"password": "${secret:pw}"}, env={})


def test_settings_shown_to_people_keep_references_and_mask_plain_secrets() -> None:
    shown = masked_settings(
        {
            "url": "postgresql://shop:hunter2@db/shop",
            "ref_url": "postgresql://shop:${secret:pw}@db/shop",
            "password": "hunter2",
            "api_key": "${secret:key}",
            "headers": {"X-Token": "abc123"},
            "port": 5432,
        }
    )
    assert shown == {
        "url": "postgresql://shop:****@db/shop",
        "ref_url": "postgresql://shop:${secret:pw}@db/shop",
        "password": "****",
        "api_key": "${secret:key}",
        "headers": {"X-Token": "****"},
        "port": 5432,
    }
