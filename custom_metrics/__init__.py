"""User-defined metrics compiled to safe, parameterized SQL for PostgreSQL and DuckDB.

`compile_metric` (docs/reference.md) validates a definition against allowlists and returns SQL with
bound parameters; `CustomMetricService` stores versioned definitions with visibility rules,
test-runs and calculates them read-only under a timeout, and audits every calculation.
"""

from custom_metrics.access import OPERATOR, SYSTEM, Principal, can_edit, can_view
from custom_metrics.compiler import CompiledMetric, compile_metric, validate_definition
from custom_metrics.definitions import (
    MetricDefinition,
    MetricType,
    TimeGrain,
    Visibility,
    load_definitions,
    load_examples,
    parse_definition,
)
from custom_metrics.errors import (
    MetricExecutionError,
    MetricNotFoundError,
    MetricPermissionError,
    MetricTimeoutError,
    MetricValidationError,
)
from custom_metrics.execution import CostClass, CostEstimate, ExecutionPolicy
from custom_metrics.service import (
    CalculationResult,
    CustomMetricService,
    MetricValue,
    TestRun,
    calculate_all_active,
)
from custom_metrics.sources import SOURCES, DataSource

__all__ = [
    "OPERATOR",
    "SOURCES",
    "SYSTEM",
    "CalculationResult",
    "CompiledMetric",
    "CostClass",
    "CostEstimate",
    "CustomMetricService",
    "DataSource",
    "ExecutionPolicy",
    "MetricDefinition",
    "MetricExecutionError",
    "MetricNotFoundError",
    "MetricPermissionError",
    "MetricTimeoutError",
    "MetricType",
    "MetricValidationError",
    "MetricValue",
    "Principal",
    "TestRun",
    "TimeGrain",
    "Visibility",
    "calculate_all_active",
    "can_edit",
    "can_view",
    "compile_metric",
    "load_definitions",
    "load_examples",
    "parse_definition",
    "validate_definition",
]
