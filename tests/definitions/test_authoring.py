"""The authoring API as a pipeline author meets it: decorators, graphs, params and errors."""

from __future__ import annotations

import random
import re
import sys
from datetime import date

import pytest

from legato import Context, DefinitionError, FailNow, ParamError, pipeline, task, unmapped, when
from legato.definitions.durations import parse_duration
from legato.definitions.graph import Each, FromNode, FromParam, Literal


@task(retries=3, retry_delay="2s", retry_backoff=2, retry_max_delay="5s", timeout="1m", tags=["io"])
def fetch(ctx: Context, day: str) -> list[int]:
    """Fetch rows for a day.

    More text."""
    return [1, 2, 3]


@task
def double(x: int) -> int:
    return 2 * x


@task
def total(xs: list[int], bonus: int = 0) -> int:
    return sum(xs) + bonus


def test_task_options_and_description() -> None:
    assert fetch.retry.retries == 3
    assert fetch.retry.max_attempts == 4
    assert fetch.timeout == 60
    assert fetch.tags == frozenset({"io"})
    assert fetch.description.startswith("Fetch rows for a day.")
    assert fetch.context_arg == "ctx"
    assert double.context_arg is None
    # Exponential backoff with a cap: 2s, 4s, then capped at 5s.
    assert [fetch.retry.delay_before(n) for n in (2, 3, 4)] == [2.0, 4.0, 5.0]


def test_jitter_spreads_delays_within_bounds() -> None:
    @task(retries=5, retry_delay=10, retry_jitter=0.2)
    def t() -> None: ...

    rng = random.Random(7)
    waits = {t.retry.delay_before(2, rng) for _ in range(50)}
    assert len(waits) > 10
    assert all(8.0 <= w <= 12.0 for w in waits)


def test_retry_on_and_fail_now() -> None:
    @task(retries=2, retry_on=(ConnectionError,))
    def t() -> None: ...

    assert t.retry.retries_error(ConnectionError("x"))
    assert not t.retry.retries_error(ValueError("x"))
    assert not fetch.retry.retries_error(FailNow("stop"))


def test_retry_when_condition() -> None:
    def db_up() -> bool:
        return True

    @task(
        retries=1, retry_when=when(db_up, interval="1s", backoff=3, max_interval="5s", timeout="1m")
    )
    def t() -> None: ...

    cond = t.retry.condition
    assert cond is not None and cond.label == "db_up"
    assert [cond.next_interval(i) for i in range(3)] == [1.0, 3.0, 5.0]
    assert cond.timeout == 60


def test_pipeline_graph_is_static_and_wired() -> None:
    @pipeline
    def p(day: str = "2026-11-20", bonus: int = 1):
        rows = fetch(day)
        doubled = double.map(rows)
        total(doubled, bonus=bonus)

    g = p.graph
    assert list(g.nodes) == ["fetch", "double", "total"]
    assert g.nodes["fetch"].args == (FromParam("day"),)
    assert g.nodes["double"].mapped and g.nodes["double"].args == (Each(FromNode("fetch")),)
    assert g.nodes["total"].kwargs == (("bonus", FromParam("bonus")),)
    assert g.downstream["fetch"] == ["double"]
    assert g.descendants({"double"}) == {"double", "total"}
    assert p.snapshot()["nodes"][1]["mapped"] is True


def test_same_task_twice_gets_distinct_node_ids_and_order_edges() -> None:
    @pipeline
    def p():
        a = double(1)
        b = double(2)
        a >> b
        total.map([1, 2], bonus=unmapped([9]))

    assert list(p.graph.nodes) == ["double", "double_2", "total"]
    assert p.graph.nodes["double_2"].upstream == ("double",)
    assert p.graph.nodes["total"].args == (Each(Literal([1, 2])),)
    assert p.graph.nodes["total"].kwargs == (("bonus", Literal([9])),)


def _line_of(text: str) -> int:
    with open(__file__, encoding="utf-8") as fh:
        return next(i for i, line in enumerate(fh, 1) if line.strip() == text)


def test_wrong_call_names_file_and_line() -> None:
    with pytest.raises(DefinitionError) as info:

        @pipeline
        def p():
            double(1, 2, 3)

    assert info.value.file == __file__
    assert info.value.line == _line_of("double(1, 2, 3)")
    assert "double" in str(info.value) and "called wrongly" in str(info.value)


def test_cycle_is_reported_with_its_line() -> None:
    with pytest.raises(DefinitionError) as info:

        @pipeline
        def p():
            a = double(1)
            b = double(a)
            c = double(b)
            c >> a

    assert "cycle" in str(info.value)
    assert info.value.line == _line_of("c >> a")


def test_using_a_handle_as_a_value_is_an_error() -> None:
    with pytest.raises(DefinitionError, match="no value while the pipeline is being defined"):

        @pipeline
        def p():
            for x in fetch("d"):
                double(x)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../../escaped_task", "cannot contain '/'"),
        ("logs/x", "cannot contain '/'"),
        ("..\\up", "cannot contain '\\'"),
        ("a\x00b", "cannot contain a NUL character"),
        ("..", "cannot be '.' or '..'"),
        (".", "cannot be '.' or '..'"),
        ("", "must be non-empty text"),
    ],
)
def test_task_names_that_are_not_one_file_name_are_refused(name: str, why: str) -> None:
    # A task's name is its log file's name: it must not lead out of the logs folder.
    with pytest.raises(DefinitionError, match=re.escape(why)) as info:
        double.named(name)
    assert info.value.file == __file__
    assert info.value.line == _line_of("double.named(name)")
    with pytest.raises(DefinitionError, match=re.escape(why)):
        task(name=name)(lambda x: x)
    # Names with dots or odd characters that stay one file name are fine.
    assert double.named("double.v2..x").name == "double.v2..x"
    assert task(name="...")(lambda x: x).name == "..."


def test_calling_a_task_outside_a_pipeline_points_to_fn() -> None:
    with pytest.raises(DefinitionError, match=r"double.fn"):
        double(2)
    assert double.fn(2) == 4


def test_params_validated_from_type_hints() -> None:
    @pipeline
    def p(limit: int = 10, ids: list[int] | None = None, name: str = "x"):
        total(ids, bonus=limit)

    assert p.validate_params({}) == {"limit": 10, "ids": None, "name": "x"}
    assert p.validate_params({"limit": "5", "ids": "[1,2]", "name": "123"}, from_text=True) == {
        "limit": 5,
        "ids": [1, 2],
        "name": "123",
    }
    with pytest.raises(ParamError, match="has no param 'nope'"):
        p.validate_params({"nope": 1})
    with pytest.raises(ParamError, match="'limit' expects int"):
        p.validate_params({"limit": "ten"}, from_text=True)


def test_required_param() -> None:
    @pipeline
    def p(day: str):
        fetch(day)

    with pytest.raises(ParamError, match="needs param 'day'"):
        p.validate_params({})


def test_bad_task_options_are_definition_errors() -> None:
    with pytest.raises(DefinitionError, match="timeout"):

        @task(timeout="soon")
        def t() -> None: ...


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("10m", 600), ("1h30m", 5400), ("250ms", 0.25), (2, 2), ("2d", 172800)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        parse_duration("10 minutes")


def test_import_legato_stays_light() -> None:
    import subprocess

    code = (
        "import sys, legato; heavy = [m for m in ('sqlalchemy', 'fastapi', 'pandas', "
        "'alembic', 'pydantic', 'rich', 'typer') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_typed_params_round_trip_through_json() -> None:
    @pipeline
    def p(day: date, ids: list[int] = [1]):  # noqa: B006 - a default, never mutated
        fetch(day)

    values = p.validate_params({"day": "2026-11-20"}, from_text=True)
    assert values == {"day": date(2026, 11, 20), "ids": [1]}
    stored = p.params_to_json(values)
    assert stored == {"day": "2026-11-20", "ids": [1]}
    assert p.validate_params(stored) == values
