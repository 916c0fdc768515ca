"""Definitions are read strictly: YAML keys given twice are refused, and no text is converted into
a number or a boolean (a duplicate `visibility` once turned PRIVATE into PUBLIC silently)."""

from __future__ import annotations

from typing import Any

import pytest

from custom_metrics import MetricValidationError, parse_definition
from custom_metrics.definitions import load_definitions_text

BASE: dict[str, Any] = {
    "name": "strict",
    "metric_type": "COUNT",
    "data_source": "events",
    "calculation_formula": "*",
}


@pytest.mark.parametrize(
    "text",
    [
        "name: a\nmetric_type: COUNT\ndata_source: events\ncalculation_formula: '*'\n"
        "visibility: PRIVATE\nvisibility: PUBLIC\n",
        "{name: a, name: b, metric_type: COUNT, data_source: events, calculation_formula: '*'}",
        "definitions:\n  - name: a\n    metric_type: COUNT\n    data_source: events\n"
        "    calculation_formula: '*'\n    filters: {event_type: click, event_type: view}\n",
        "definitions: []\ndefinitions: []\n",
    ],
)
def test_duplicate_keys_are_refused(text: str) -> None:
    with pytest.raises(MetricValidationError, match=r"twice \(remove one\)"):
        load_definitions_text(text, "defs.yml")


def test_merge_keys_still_work() -> None:
    text = (
        "base: &base {metric_type: COUNT, data_source: events, calculation_formula: '*'}\n"
        "definitions:\n  - {<<: *base, name: a}\n"
    )
    (definition,) = load_definitions_text(text)
    assert definition.name == "a"


@pytest.mark.parametrize("depth", [1_000, 60_000])
def test_deep_yaml_is_a_clear_error(depth: int) -> None:
    with pytest.raises(MetricValidationError, match=r"^deep.yml: ") as caught:
        load_definitions_text("[" * depth + "]" * depth, "deep.yml")
    assert "nests too deeply" in str(caught.value) or "expected a definition" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"metric_type": "PERCENTILE", "percentile": "0.5"}, "percentile"),
        ({"lookback_days": True}, "lookback_days"),
        ({"lookback_days": "30"}, "lookback_days"),
        ({"lookback_days": 30.0}, "lookback_days"),
        ({"is_active": "yes"}, "is_active"),
        ({"is_active": 1}, "is_active"),
        ({"name": 123}, "name"),
        ({"calculation_formula": 1}, "calculation_formula"),
        ({"where": True}, "where"),
        ({"dimensions": [1]}, "dimensions"),
        ({"owner": 7}, "owner"),
        ({"metric_type": 1}, "metric_type"),
        ({"visibility": True}, "visibility"),
        ({"time_grain": 7}, "time_grain"),
        ({"data_source": ["events"]}, "data_source"),
    ],
)
def test_no_coercion(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(MetricValidationError) as caught:
        parse_definition({**BASE, **overrides})
    assert caught.value.field.startswith(field), str(caught.value)


def test_yaml_strings_stay_strings() -> None:
    text = (
        "name: a\nmetric_type: PERCENTILE\ndata_source: events\n"
        "calculation_formula: revenue_cents\npercentile: '0.5'\n"
    )
    with pytest.raises(MetricValidationError, match="percentile"):
        load_definitions_text(text)
    ok = text.replace("'0.5'", "0.5")
    assert load_definitions_text(ok)[0].percentile == 0.5
