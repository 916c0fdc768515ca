"""A configuration value that cannot work is refused with an error naming its variable."""

from __future__ import annotations

import pytest

from warehouse import WarehouseConfig


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("METRICS_TARGET", "oracle"),
        ("METRICS_WEEK_START", "funday"),
        ("METRICS_SCHEMA", "a-b"),
        ("METRICS_SCHEMA", "1metrics"),
        ("METRICS_SCHEMA", "métrics"),
        ("METRICS_SCHEMA", "x" * 64),
        ("METRICS_SOURCE_SCHEMA", 'raw"."events" where 1=0 union all select * from "dbt"."o'),
        ("METRICS_SOURCE_SCHEMA", "raw;drop"),
        ("METRICS_SOURCE_SCHEMA", "raw\u200b"),
        ("METRICS_DUCKDB_PATH", "a\x00b"),
    ],
)
def test_bad_values_name_their_variable(
    variable: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warehouse import WarehouseConfigError

    if "\x00" in value:  # the environment cannot hold a NUL; the field can
        with pytest.raises(WarehouseConfigError, match=variable):
            WarehouseConfig(duckdb_path=value)
        return
    monkeypatch.setenv(variable, value)
    with pytest.raises(WarehouseConfigError) as caught:
        WarehouseConfig()
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message
    assert isinstance(caught.value, ValueError)  # callers that catch ValueError still do


@pytest.mark.parametrize("value", ["raw", "Raw_2", "_x", "a" * 63])
def test_plain_identifiers_pass(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_SOURCE_SCHEMA", value)
    assert WarehouseConfig().source_schema == value
