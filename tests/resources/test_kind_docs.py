"""docs/resource-kinds.md: every legato.toml example declares valid resources, the settings
tables name every setting a kind accepts, and each kind's Python example runs against the
resource its legato.toml example declares (local files, a local HTTP server, moto's S3)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from legato.resources.kind import COMMON_KEYS, ResourceKind, kind_class
from tests.resources.servers import Server

DOC = Path(__file__).parents[2] / "docs" / "resource-kinds.md"
KINDS = ("sql", "http", "files", "duckdb")


def section(heading: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def blocks(language: str, heading: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(heading), flags=re.DOTALL)


def declared(heading: str, **values: str) -> dict[str, dict[str, Any]]:
    """The resources the section's legato.toml examples declare, with ``${secret:NAME}`` and
    ``${env:VAR}`` replaced by ``values[NAME]`` (or "x")."""

    def resolve(match: re.Match[str]) -> str:
        return values.get(match.group(1), "x")

    found: dict[str, dict[str, Any]] = {}
    for block in blocks("toml", heading):
        text = re.sub(r"\$\{(?:secret|env):([^}]+)\}", resolve, block)
        found.update(tomllib.loads(text).get("resources", {}))
    return found


def setting_names(heading: str) -> set[str]:
    """The settings the section's table lists (first column, each `name` in it)."""
    rows = [line for line in section(heading).splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def example(heading: str) -> dict[str, Any]:
    """The names the section's Python example defines, once it has run."""
    (block,) = blocks("python", heading)
    scope: dict[str, Any] = {}
    exec(compile(block, f"{DOC}:{heading}", "exec"), scope)
    return scope


@contextmanager
def opened(name: str, table: dict[str, Any], root: Path) -> Iterator[Any]:
    resource: ResourceKind = kind_class(table["kind"])(name, {**table, "root": str(root)})
    client = resource.open()
    try:
        yield client
    finally:
        resource.close(client)


@pytest.mark.parametrize("heading", KINDS)
def test_toml_examples_declare_valid_resources_of_the_kind(heading: str) -> None:
    tables = declared(heading)
    assert tables
    for name, table in tables.items():
        assert table["kind"] == heading
        kind_class(table["kind"])(name, table)  # raises on a wrong setting


@pytest.mark.parametrize("heading", KINDS)
def test_settings_tables_name_every_setting(heading: str) -> None:
    keys = kind_class(heading).settings_keys
    assert keys is not None
    assert setting_names(heading) == set(keys)
    assert setting_names("Settings every kind accepts") == set(COMMON_KEYS)


def test_sql_example_on_sqlite_and_duckdb(tmp_path: Path) -> None:
    from sqlalchemy import text

    count_orders = example("sql")["count_orders"]
    tables = declared("sql")
    for name in ("lookup_db", "warehouse_sql"):
        with opened(name, tables[name], tmp_path) as engine:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE orders (id INTEGER, day TEXT)"))
                conn.execute(text("INSERT INTO orders VALUES (1, '2026-11-20'), (2, '2026-11-20')"))
            assert count_orders.fn(engine, "2026-11-20") == 2
    assert (tmp_path / "data" / "lookup.db").is_file()
    assert (tmp_path / "warehouse.duckdb").is_file()


def test_http_example_against_a_local_api(http_server: Server, tmp_path: Path) -> None:
    fetch_rates = example("http")["fetch_rates"]
    table = declared("http", rates_token="t0k")["rates_api"]
    table["base_url"] = f"{http_server.url}/v2/"
    http_server.bodies["/v2/rates"] = {"rates": {"EUR": 1.0, "USD": 1.05}}
    with opened("rates_api", table, tmp_path) as client:
        assert fetch_rates.fn(client, "2026-11-20") == {"EUR": 1.0, "USD": 1.05}
        resource = kind_class("http")("rates_api", table)
        assert resource.check(client).startswith(f"GET {http_server.url}/v2/health answered 200")
    (hit,) = http_server.on("/v2/rates")
    assert hit.path == "/v2/rates?day=2026-11-20"
    assert hit.headers["Authorization"] == "Bearer t0k"
    assert hit.headers["Accept"] == "application/json"


def test_the_transport_one_liner(http_server: Server) -> None:
    import httpx

    from legato.resources.http_transport import RateLimiter, RetryTransport

    (line,) = re.findall(r"`(httpx\.Client\(transport=.*?\))`", section("http"))
    client = eval(
        line, {"httpx": httpx, "RetryTransport": RetryTransport, "RateLimiter": RateLimiter}
    )
    http_server.script("/echo", (503, {"Retry-After": "0"}))
    with client:
        assert client.get(f"{http_server.url}/echo").status_code == 200
    assert len(http_server.on("/echo")) == 2


def test_files_example_on_s3_and_a_local_folder(
    s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    scope = example("files")
    bucket, options = s3_bucket
    tables = declared("files", S3_KEY=options["key"], s3_secret=options["secret"])
    landing = tables["landing"]
    landing["url"] = landing["url"].replace("s3://landing/", f"s3://{bucket}/")
    landing["options"]["endpoint_url"] = options["endpoint_url"]
    orders = pd.DataFrame({"id": [1, 2], "amount": [9.5, 20.0]})
    with opened("landing", landing, tmp_path) as fs:
        url = scope["land_orders"].fn(fs, "2026-11-20", orders)
        assert url == f"s3://{bucket}/orders/2026-11-20/orders.csv"
        pd.testing.assert_frame_equal(scope["read_orders"].fn(fs, "2026-11-20"), orders)
    with opened("drop", tables["drop"], tmp_path) as fs:
        scope["land_orders"].fn(fs, "2026-11-21", orders)
    assert (tmp_path / "data" / "drop" / "2026-11-21" / "orders.csv").is_file()


def test_duckdb_example(tmp_path: Path) -> None:
    scope = example("duckdb")
    (block,) = blocks("toml", "duckdb")
    assert tomllib.loads(block)["pools"] == {"warehouse": 1}
    sales = pd.DataFrame({"region": ["north", "south", "south"], "amount": [5.0, 7.0, 1.0]})
    with opened("warehouse", declared("duckdb")["warehouse"], tmp_path) as wh:
        assert scope["load_daily_sales"].fn(wh, sales) == 3
        assert scope["load_daily_sales"].fn(wh, sales) == 6
        assert scope["top_regions"].fn(wh) == [("south", 16.0), ("north", 10.0)]
    assert (tmp_path / "warehouse" / "sales.duckdb").is_file()
