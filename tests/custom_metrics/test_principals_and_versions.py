"""Principals are checked when made (no poisoned rows, no reserved ids), one damaged stored row
never breaks reads of the others, and each version of a definition keeps its own visibility."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from custom_metrics import (
    SYSTEM,
    CustomMetricService,
    MetricNotFoundError,
    MetricValidationError,
    Principal,
    calculate_all_active,
)
from warehouse import Warehouse

ALICE = Principal("alice", "red", "acme")
BOB = Principal("bob", "red", "acme")

COUNT: dict[str, Any] = {
    "name": "count by type",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
    "dimensions": ["event_type"],
}


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (("a" * 101,), "principal.user_id", "limit is 100"),
        (("eve\u200b",), "principal.user_id", r"U\+200B"),
        (("eve\x00",), "principal.user_id", r"U\+0000"),
        (("eve\u202e",), "principal.user_id", r"U\+202E"),
        (("eve\n",), "principal.user_id", "spaces"),
        (("",), "principal.user_id", "empty"),
        (("   ",), "principal.user_id", "empty"),
        ((None,), "principal.user_id", "must be text, not NoneType"),
        ((42,), "principal.user_id", "must be text"),
        (("eve", "red\u200d"), "principal.team", r"U\+200D"),
        (("eve", "red", "o" * 101), "principal.organization", "limit is 100"),
        (("eve", "red", "acme", "yes"), "principal.is_org_admin", "true or false"),
        (("system",), "principal.user_id", "reserved"),
        (("operator",), "principal.user_id", "reserved"),
        (("System",), "principal.user_id", "reserved"),
        (("OPERATOR",), "principal.user_id", "reserved"),
    ],
)
def test_bad_principals_are_refused(args: tuple[Any, ...], field: str, message: str) -> None:
    with pytest.raises(MetricValidationError, match=message) as caught:
        Principal(*args)
    assert caught.value.field == field


def test_system_principals_keep_their_ids() -> None:
    from custom_metrics.access import OPERATOR

    assert SYSTEM.user_id == "system" and SYSTEM.is_system
    assert OPERATOR.user_id == "operator" and OPERATOR.is_system
    assert Principal("systems").user_id == "systems"  # only the exact ids are reserved


def test_a_user_called_system_cannot_edit_what_system_created(wh: Warehouse) -> None:
    stored = CustomMetricService(wh, SYSTEM).create_definition({**COUNT, "owner": "carol"})
    with pytest.raises(MetricValidationError, match="reserved"):
        CustomMetricService(wh, Principal("system", "red", "acme"), ensure_tables=False)
    assert stored.definition.owner == "carol"


@pytest.fixture()
def damaged(wh: Warehouse) -> Iterator[tuple[str, str]]:
    """One good definition and one whose stored owner is 150 characters long."""
    service = CustomMetricService(wh, ALICE)
    good = service.create_definition({**COUNT, "visibility": "PUBLIC"}).definition_id
    bad = service.create_definition({**COUNT, "visibility": "PUBLIC"}).definition_id
    table = f"{wh.schema}.custom_metric_definitions"
    where = f"definition_id = {wh.param('id')}"
    wh.execute(
        f"update {table} set owner = {wh.param('o')} where {where}", {"o": "x" * 150, "id": bad}
    )
    try:
        yield good, bad
    finally:
        wh.execute(f"delete from {table} where {where}", {"id": bad})


def test_one_damaged_row_does_not_break_the_others(
    wh: Warehouse, damaged: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    good, bad = damaged
    with caplog.at_level(logging.WARNING, logger="custom_metrics.store"):
        for who in (ALICE, BOB, SYSTEM):
            service = CustomMetricService(wh, who, ensure_tables=False)
            ids = {s.definition_id for s in service.list_definitions()}
            assert good in ids and bad not in ids
            assert service.get_definition(good).definition_id == good
            with pytest.raises(MetricNotFoundError):
                service.get_definition(bad)
        results = calculate_all_active(wh, "2025-01-01", "2025-01-02")
    assert {r.definition_id for r in results} >= {good}
    assert bad not in {r.definition_id for r in results}
    assert any(bad in message for message in caplog.messages)


def test_earlier_private_versions_stay_private(wh: Warehouse) -> None:
    alice = CustomMetricService(wh, ALICE)
    secret = {**COUNT, "visibility": "PRIVATE", "where": "actor_id = 'u7'"}
    v1 = alice.create_definition(secret)
    alice.calculate_metric(v1.definition_id, "2025-01-01", "2025-01-08")
    v2 = alice.update_definition(v1.definition_id, {"visibility": "PUBLIC", "where": None})
    alice.calculate_metric(v1.definition_id, "2025-01-01", "2025-01-08")

    bob = CustomMetricService(wh, BOB, ensure_tables=False)
    assert bob.get_definition(v1.definition_id).version == v2.version == 2
    with pytest.raises(MetricNotFoundError, match="version 1"):
        bob.get_definition(v1.definition_id, version=1)
    assert [s.version for s in bob.history(v1.definition_id)] == [2]
    assert {v.definition_version for v in bob.values(v1.definition_id)} == {2}
    assert {c.definition_version for c in bob.calculations(v1.definition_id)} == {2}

    # the owner still sees everything
    assert [s.version for s in alice.history(v1.definition_id)] == [1, 2]
    assert alice.get_definition(v1.definition_id, version=1).definition.where == "actor_id = 'u7'"
    assert {v.definition_version for v in alice.values(v1.definition_id)} == {1, 2}


def test_a_later_private_version_hides_the_current_one_only(wh: Warehouse) -> None:
    alice = CustomMetricService(wh, ALICE)
    v1 = alice.create_definition({**COUNT, "visibility": "PUBLIC"})
    alice.update_definition(v1.definition_id, {"visibility": "PRIVATE"})
    bob = CustomMetricService(wh, BOB, ensure_tables=False)
    with pytest.raises(MetricNotFoundError):
        bob.get_definition(v1.definition_id)
    assert bob.get_definition(v1.definition_id, version=1).version == 1  # it was public
    assert [s.version for s in bob.history(v1.definition_id)] == [1]
    with pytest.raises(MetricValidationError, match="whole number"):
        bob.get_definition(v1.definition_id, version="1")  # type: ignore[arg-type]
