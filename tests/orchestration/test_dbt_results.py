"""run_results.json read into per-node outcomes: status, rows, errors and when the SQL ran."""

from __future__ import annotations

from datetime import UTC, datetime

from orchestration.audit_log import JobStatus
from orchestration.dbt_results import parse_run_results


def _result(unique_id: str, status: str, **extra: object) -> dict[str, object]:
    return {"unique_id": unique_id, "status": status, "message": "", **extra}


def test_execute_timing_is_read_when_reported() -> None:
    timing = [
        {
            "name": "compile",
            "started_at": "2025-01-01T00:00:00Z",
            "completed_at": "2025-01-01T00:00:01Z",
        },
        {
            "name": "execute",
            "started_at": "2025-01-01T00:00:01.500000Z",
            "completed_at": "2025-01-01T00:00:04Z",
        },
    ]
    outcome = parse_run_results(
        {
            "results": [
                _result("model.p.daily_metrics", "success", timing=timing),
                _result("model.p.weekly_totals", "success", timing=[]),
                _result("model.p.monthly_totals", "success", timing=[{"name": "execute"}]),
            ]
        },
        None,
    )
    timed, untimed, partial = outcome.nodes
    assert timed.executed == (
        datetime(2025, 1, 1, 0, 0, 1, 500000, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 4, tzinfo=UTC),
    )
    assert untimed.executed is None and partial.executed is None
    assert outcome.status() is JobStatus.COMPLETED


def test_failures_name_the_node_and_what_was_written_before() -> None:
    outcome = parse_run_results(
        {
            "results": [
                _result("model.p.stg_events", "success", adapter_response={"rows_affected": 5}),
                {**_result("model.p.daily_metrics", "error"), "message": "boom"},
                _result("test.p.not_null_x.abc", "skipped"),
            ]
        },
        None,
    )
    assert outcome.status() is JobStatus.FAILED
    assert [node.rows_affected for node in outcome.nodes] == [5, None, None]
    text = outcome.error_text() or ""
    assert "model.p.daily_metrics [error]: boom" in text
    assert "skipped because of the failures above: test.p.not_null_x.abc" in text
    assert (
        "written before the failure (the retry rebuilds their window): model.p.stg_events" in text
    )


def test_a_failed_data_test_says_what_it_found() -> None:
    """A test that found rows keeps its query; the rows read back are added to its line."""
    query = "select 'not_null' as rule_name"
    outcome = parse_run_results(
        {
            "results": [
                {
                    **_result("test.p.raw_events_row_rules.abc", "fail"),
                    "message": "Got 1 result, configured to fail if != 0",
                    "compiled_code": query,
                },
                {**_result("model.p.daily_metrics", "error"), "compiled_code": "select 1"},
                _result("test.p.unique_x.def", "pass", compiled_code="select 2"),
            ]
        },
        None,
    )
    assert outcome.failed_tests_sql == {"test.p.raw_events_row_rules.abc": query}
    outcome.failing_rows = {"test.p.raw_events_row_rules.abc": "rule_name=not_null"}
    lines = (outcome.error_text() or "").splitlines()
    assert lines[0] == (
        "test.p.raw_events_row_rules.abc [fail]: Got 1 result, configured to fail if != 0; "
        "failing rows: rule_name=not_null"
    )
    assert lines[1] == "model.p.daily_metrics [error]: "
