"""What a custom metric cannot do: hold a CPU with a pattern DuckDB matches in exponential time,
or outlast its time limit by spreading the work over many buckets (estimation included).

Time is never measured here: the runner's clock is a counter that the statements themselves move
forward (each bucket query "takes" a fixed number of seconds), so the outcome is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from custom_metrics import (
    SYSTEM,
    CostClass,
    CustomMetricService,
    ExecutionPolicy,
    MetricTimeoutError,
    MetricValidationError,
    Principal,
    calculate_all_active,
    compile_metric,
)
from tests.custom_metrics.support import RecordingRaw, aggregate, as_result, assert_same, reference
from warehouse import Warehouse

OWNER = Principal("timer", "red", "acme")
DAILY: dict[str, Any] = {
    "name": "daily purchases",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "event_id",  # not `*`: that would be read from daily_metrics
    "time_grain": "day",
    "visibility": "PUBLIC",
}
# The examples, written as single patterns (concatenation is refused anyway).
SLOW_PATTERNS = [
    ("where", "'" + "a" * 44 + "' like '" + "_%" * 11 + "b'"),
    ("where", "event_id like '" + "_%" * 10 + "b'"),
    ("count_if", "count_if(coalesce(nullif(event_id, event_id), '" + "a" * 40 + "') like '"),
    ("where", "event_type ilike '%a%a%a%b'"),
    ("where", "event_type ilike '%" + "a%" * 6 + "b'"),
    ("where", "event_type like '%_%_%'"),
    ("where", "event_type like '" + "%a" * 11 + "'"),
    ("where", "event_type like '" + "a" * 101 + "'"),
    ("where", "event_type like event_id"),
    ("where", "event_type like lower('%a%')"),
]


def _slow_definition(kind: str, text: str) -> dict[str, Any]:
    if kind == "count_if":
        return {**DAILY, "calculation_formula": text + "_%" * 10 + "b')", "time_grain": None}
    return {**DAILY, "where": text, "time_grain": None}


@pytest.mark.parametrize(("kind", "text"), SLOW_PATTERNS)
@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
def test_expensive_patterns_are_refused(kind: str, text: str, dialect: str) -> None:
    with pytest.raises(MetricValidationError, match="LIKE") as caught:
        compile_metric(_slow_definition(kind, text), dialect)
    assert caught.value.field in ("where", "calculation_formula")


@pytest.fixture()
def duck_service(duck_wh: Warehouse) -> Iterator[tuple[CustomMetricService, RecordingRaw]]:
    CustomMetricService(duck_wh, OWNER)
    original = duck_wh.raw
    recorder = RecordingRaw(original)
    duck_wh.raw = recorder
    try:
        yield CustomMetricService(duck_wh, OWNER, ensure_tables=False), recorder
    finally:
        duck_wh.raw = original


@pytest.mark.parametrize(("kind", "text"), SLOW_PATTERNS[:3])
def test_estimation_never_sees_an_expensive_pattern(
    kind: str, text: str, duck_service: tuple[CustomMetricService, RecordingRaw]
) -> None:
    """`estimate_cost` ran EXPLAIN for 27.9 s on DuckDB (the pattern is folded at plan time,
    where interrupt() is not honoured); now the definition is refused before any statement."""
    service, recorder = duck_service
    definition = _slow_definition(kind, text)
    with pytest.raises(MetricValidationError):
        service.estimate_cost(definition)
    with pytest.raises(MetricValidationError):
        service.test_metric_definition(definition, "2025-01-01", "2025-01-08")
    assert recorder.statements == []


def test_a_stored_expensive_definition_is_refused_by_the_scheduler(wh: Warehouse) -> None:
    """A definition stored before patterns were bounded is not run by calculate_all_active."""
    service = CustomMetricService(wh, OWNER)
    stored = service.create_definition({**DAILY, "where": "event_id like '%b'"})
    table = f"{wh.schema}.custom_metric_definitions"
    wh.execute(
        f"update {table} set where_clause = {wh.param('w')} where definition_id = {wh.param('id')}",
        {"w": "event_id like '" + "_%" * 10 + "b'", "id": stored.definition_id},
    )
    try:
        results = calculate_all_active(wh, "2025-01-01", "2025-01-03")
        (mine,) = [r for r in results if r.definition_id == stored.definition_id]
        assert mine.status == "FAILED" and mine.error and "too expensive" in mine.error
        system = CustomMetricService(wh, SYSTEM, ensure_tables=False)
        assert system.values(stored.definition_id) == []
        (audit,) = system.calculations(stored.definition_id)
        assert audit.error and audit.error.startswith("no longer valid: where: LIKE pattern")
    finally:
        # a definition that no longer compiles can still be switched off
        assert not service.deactivate_definition(stored.definition_id).definition.is_active


def _like(pattern: str, text: str | None, insensitive: bool = False) -> bool | None:
    if text is None:
        return None
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if insensitive else 0)
    return re.fullmatch(regex, text, flags) is not None


@pytest.mark.parametrize(
    ("where", "pattern", "insensitive", "column"),
    [
        ("event_type like '%ic%'", "%ic%", False, "event_type"),
        ("entity_id like 'a_%'", "a_%", False, "entity_id"),
        ("entity_id like '%1_'", "%1_", False, "entity_id"),
        ("event_type ilike '%CLICK%'", "%CLICK%", True, "event_type"),
        ("event_type ilike 'p%e%'", "p%e%", True, "event_type"),
        ("event_type like '%a%e%'", "%a%e%", False, "event_type"),
    ],
)
def test_bounded_patterns_still_match_like_python(
    where: str,
    pattern: str,
    insensitive: bool,
    column: str,
    wh: Warehouse,
    events: list[dict[str, Any]],
) -> None:
    definition = {**DAILY, "time_grain": None, "dimensions": ["entity_type"], "where": where}
    compiled = compile_metric(definition, wh.dialect, schema=wh.schema)
    expected = reference(
        events,
        ["entity_type"],
        lambda r: bool(_like(pattern, r[column], insensitive)),
        lambda rows: aggregate("count_star", rows),
    )
    assert_same(as_result(wh.query(compiled.sql, compiled.params)), expected)


class _Ticks:
    """A monotonic clock that moves only when a statement of the chosen kind is sent."""

    def __init__(self, seconds_per_query: float, seconds_per_explain: float = 0.0) -> None:
        self.now = 0.0
        self.per_query = seconds_per_query
        self.per_explain = seconds_per_explain

    def __call__(self) -> float:
        return self.now

    def saw(self, sql: str | bytes) -> None:
        text = (sql.decode() if isinstance(sql, bytes) else sql).lstrip().lower()
        if text.startswith("explain"):
            self.now += self.per_explain
        elif text.startswith(("select", "with")) and "stg_events" in text:
            self.now += self.per_query


@pytest.fixture()
def ticking(wh: Warehouse) -> Iterator[tuple[Warehouse, list[_Ticks]]]:
    """The warehouse with its statements moving a fake clock (set the clock per test)."""
    CustomMetricService(wh, OWNER)
    clocks: list[_Ticks] = []
    original = wh.raw
    wh.raw = RecordingRaw(original, lambda sql: [c.saw(sql) for c in clocks])
    try:
        yield wh, clocks
    finally:
        wh.raw = original


POLICY = ExecutionPolicy(
    timeout_ms={CostClass.LOW: 10_000, CostClass.MEDIUM: 10_000, CostClass.HIGH: 10_000}
)


def _service(wh: Warehouse, clock: _Ticks, clocks: list[_Ticks]) -> CustomMetricService:
    clocks.append(clock)
    service = CustomMetricService(wh, OWNER, policy=POLICY, ensure_tables=False)
    service.runner.clock = clock
    return service


def test_one_time_limit_for_the_whole_calculation(
    ticking: tuple[Warehouse, list[_Ticks]],
) -> None:
    """12 daily periods are one statement (and one EXPLAIN) under one 10 s limit."""
    wh, clocks = ticking
    service = _service(wh, _Ticks(seconds_per_query=0, seconds_per_explain=11), clocks)
    stored = service.create_definition(DAILY)
    with pytest.raises(MetricTimeoutError, match="10000 ms"):
        service.calculate_metric(stored.definition_id, "2025-01-01", "2025-01-13")
    (audit,) = service.calculations(stored.definition_id)
    assert audit.status == "FAILED" and audit.timeout_ms == 10_000
    assert audit.error and "timeout" in audit.error
    assert service.values(stored.definition_id) == []

    service = _service(wh, _Ticks(seconds_per_query=0), clocks)
    recorder = wh.raw
    assert isinstance(recorder, RecordingRaw)
    before = len(recorder.statements)
    ok = service.calculate_metric(stored.definition_id, "2025-01-01", "2025-01-13")
    assert ok.status == "SUCCESS" and {v.period_start.day for v in ok.values} == set(range(1, 13))
    sent = [s.decode() if isinstance(s, bytes) else s for s in recorder.statements[before:]]
    reads = [s for s in sent if "stg_events" in s]
    assert len(reads) == 2 and reads[0].lower().startswith("explain")


def test_estimation_counts_against_the_limit(ticking: tuple[Warehouse, list[_Ticks]]) -> None:
    wh, clocks = ticking
    service = _service(wh, _Ticks(seconds_per_query=0.0, seconds_per_explain=11.0), clocks)
    stored = service.create_definition(DAILY)
    with pytest.raises(MetricTimeoutError, match="10000 ms"):
        service.calculate_metric(stored.definition_id, "2025-01-01", "2025-01-04")
    # One query whose EXPLAIN took 11 s has no time left to run in.
    service = _service(wh, _Ticks(seconds_per_query=0.0, seconds_per_explain=11.0), clocks)
    with pytest.raises(MetricTimeoutError, match="10000 ms"):
        service.test_metric_definition({**DAILY, "time_grain": None}, "2025-01-01", "2025-01-02")
