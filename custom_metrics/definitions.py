"""The custom metric definition model (pydantic) and loading definitions from YAML.

The model checks shape and simple values (types, enums, the data-source allowlist, the
percentile range). Formulas, `where`, dimension and filter names are checked against the data
source by the compiler, which is the one place that decides what SQL is acceptable.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from datetime import date
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from custom_metrics.errors import MetricValidationError
from custom_metrics.sources import SOURCES
from warehouse.calendar import Grain

MAX_EXPRESSION_LENGTH: Final = 2000
MAX_DIMENSIONS: Final = 8
MAX_FILTERS: Final = 20
MAX_FILTER_VALUES: Final = 200
MAX_FILTER_TEXT: Final = 500
MAX_YAML_BYTES: Final = 256 * 1024
MAX_PRINCIPAL_TEXT: Final = 100
MAX_STEPS: Final = 10
MAX_RETENTION_PERIODS: Final = 52
MAX_WINDOW_DAYS: Final = 366
# Fields stored together as JSON (added with the product-analytics types).
OPTION_FIELDS: Final = (
    "compare_to",
    "steps",
    "conversion_window_days",
    "counted_by",
    "cohort_event",
    "return_event",
    "period",
    "periods",
)


class MetricType(StrEnum):
    """How the formula is aggregated."""

    COUNT = "COUNT"
    SUM = "SUM"
    AVERAGE = "AVERAGE"
    DISTINCT_COUNT = "DISTINCT_COUNT"
    PERCENTILE = "PERCENTILE"
    RATIO = "RATIO"
    MAX = "MAX"
    MIN = "MIN"
    FUNNEL = "FUNNEL"
    RETENTION = "RETENTION"


# The types that aggregate `calculation_formula` (FUNNEL and RETENTION follow actors instead).
AGGREGATE_TYPES: Final = frozenset(MetricType) - {MetricType.FUNNEL, MetricType.RETENTION}


class Visibility(StrEnum):
    """Who may see a definition (editing is owner or an admin of its organization)."""

    PRIVATE = "PRIVATE"
    TEAM = "TEAM"
    ORGANIZATION = "ORGANIZATION"
    PUBLIC = "PUBLIC"


# The bucket size when a definition is calculated as a series: the project's one grain
# (day, week, month; weeks start on METRICS_WEEK_START), under the name definitions use.
TimeGrain = Grain


class CompareTo(StrEnum):
    """What a per-period value is compared with."""

    PREVIOUS_PERIOD = "previous_period"


class CountedBy(StrEnum):
    """Whom a FUNNEL or RETENTION follows through the events."""

    ACTOR_ID = "actor_id"
    ENTITY_ID = "entity_id"


FilterScalar = (
    Annotated[StrictStr, Field(max_length=MAX_FILTER_TEXT)]
    | StrictBool
    | StrictInt
    | StrictFloat
    | date
    | None
)
FilterValue = FilterScalar | Annotated[list[FilterScalar], Field(min_length=1, max_length=200)]
# An event filter (a FUNNEL step, a RETENTION event): column -> value or list, all must match.
EventFilter = Annotated[dict[str, FilterValue], Field(min_length=1, max_length=MAX_FILTERS)]


def _enum_text(value: object) -> object:
    """Enum fields take their names as text; a number or a boolean is refused, not converted."""
    if value is None or isinstance(value, StrEnum):
        return value
    raise ValueError(f"must be one of the names as text, not {type(value).__name__}")


MIN_STEPS: Final = 2


def _event_filter_shape(value: object) -> object:
    """A mapping of column -> value or list of plain values (clear messages for mistakes)."""
    if not isinstance(value, Mapping):
        raise ValueError("must be a mapping of column -> value or list of values")
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValueError(f"key {key!r} must be a column name")
        if isinstance(item, list):
            if not item:
                raise ValueError(f"{key}: an empty list matches nothing")
            if any(isinstance(v, list | dict) for v in item):
                raise ValueError(f"{key}: list items must be plain values")
        elif isinstance(item, dict | set | tuple):
            raise ValueError(f"{key}: a value or a list of values, not {type(item).__name__}")
    return value


def _check_plain_text(value: str | None, *, allow_newlines: bool = False) -> str | None:
    """Reject control and format characters (NUL, RTL overrides, zero-width) in free text."""
    if value is None:
        return None
    for index, char in enumerate(value):
        if allow_newlines and char in "\n\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ValueError(
                f"control or invisible character U+{ord(char):04X} at position {index}"
            )
    return value


class MetricDefinition(BaseModel):
    """A user-defined metric: what to aggregate, over which source, sliced how, seen by whom.

    Types are strict: `percentile: '0.5'` or `lookback_days: true` are refused, not converted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr = Field(default="", max_length=MAX_EXPRESSION_LENGTH)
    metric_type: MetricType
    data_source: StrictStr
    calculation_formula: StrictStr | None = Field(default=None, min_length=1)
    percentile: StrictFloat | None = None
    dimensions: tuple[StrictStr, ...] = Field(default=(), max_length=MAX_DIMENSIONS)
    filters: dict[str, FilterValue] = Field(default_factory=dict, max_length=MAX_FILTERS)
    where: StrictStr | None = None
    time_grain: TimeGrain | None = None
    lookback_days: StrictInt | None = Field(default=None, ge=1, le=366)
    compare_to: CompareTo | None = None
    steps: tuple[EventFilter, ...] | None = Field(default=None, min_length=2, max_length=MAX_STEPS)
    conversion_window_days: StrictInt | None = Field(default=None, ge=1, le=MAX_WINDOW_DAYS)
    counted_by: CountedBy | None = None
    cohort_event: EventFilter | None = None
    return_event: EventFilter | None = None
    period: TimeGrain | None = None
    periods: StrictInt | None = Field(default=None, ge=1, le=MAX_RETENTION_PERIODS)
    visibility: Visibility = Visibility.PRIVATE
    owner: StrictStr | None = Field(default=None, max_length=MAX_PRINCIPAL_TEXT)
    team: StrictStr | None = Field(default=None, max_length=MAX_PRINCIPAL_TEXT)
    organization: StrictStr | None = Field(default=None, max_length=MAX_PRINCIPAL_TEXT)
    is_active: StrictBool = True

    @field_validator("metric_type", "visibility", mode="before")
    @classmethod
    def _upper_enum(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else _enum_text(value)

    @field_validator("time_grain", "compare_to", "counted_by", "period", mode="before")
    @classmethod
    def _lower_enum(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else _enum_text(value)

    @field_validator("percentile")
    @classmethod
    def _fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 1:
            raise ValueError(f"must be a fraction strictly between 0 and 1, not {value}")
        return value

    @field_validator("filters", "cohort_event", "return_event", mode="before")
    @classmethod
    def _filter_shapes(cls, value: object) -> object:
        """Clear messages for the common mistakes before pydantic's union errors."""
        return value if value is None else _event_filter_shape(value)

    @field_validator("steps", mode="before")
    @classmethod
    def _step_shapes(cls, value: object) -> object:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of event filters (column -> value), one per step")
        if not MIN_STEPS <= len(value) <= MAX_STEPS:
            raise ValueError(f"a funnel has {MIN_STEPS} to {MAX_STEPS} steps, not {len(value)}")
        for index, step in enumerate(value):
            try:
                _event_filter_shape(step)
            except ValueError as error:
                raise ValueError(f"step {index + 1}: {error}") from None
        return value

    @field_validator("data_source")
    @classmethod
    def _known_source(cls, value: str) -> str:
        if value not in SOURCES:
            raise ValueError(f"must be one of {', '.join(SOURCES)}")
        return value

    @field_validator("name", "owner", "team", "organization")
    @classmethod
    def _plain_line(cls, value: str | None) -> str | None:
        return _check_plain_text(value)

    @field_validator("description")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        _check_plain_text(value, allow_newlines=True)
        return value

    @model_validator(mode="after")
    def _percentile_only_for_percentile(self) -> MetricDefinition:
        if self.percentile is not None and self.metric_type is not MetricType.PERCENTILE:
            raise ValueError("percentile is only allowed with metric_type PERCENTILE")
        return self


def _field_of(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if not str(p).startswith(("function-", "union["))]
    # pydantic reports union members by type name ("str", "list[...]"); drop them.
    kept = [p for p in parts if p not in ("str", "bool", "int", "float", "date", "none")]
    kept = [p for p in kept if not p.startswith(("list[", "constrained-"))]
    return ".".join(kept) or "definition"


def parse_definition(definition: MetricDefinition | Mapping[str, Any]) -> MetricDefinition:
    """The model for a mapping (or the model itself); MetricValidationError names the bad field."""
    if isinstance(definition, MetricDefinition):
        return definition
    if not isinstance(definition, Mapping):
        raise MetricValidationError("definition", "must be a mapping of fields")
    try:
        return MetricDefinition.model_validate(dict(definition))
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise MetricValidationError(_field_of(tuple(first["loc"])), message) from None


def _documents(data: object, origin: str) -> Iterator[tuple[str, object]]:
    if isinstance(data, Mapping) and "definitions" in data:
        data = data["definitions"]
    if isinstance(data, Mapping):
        yield origin, data
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield f"{origin}[{index}]", item
    else:
        raise MetricValidationError(origin, "expected a definition or a list of definitions")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (the last would win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: the base class reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice (remove one)",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def load_definitions_text(text: str, origin: str = "<yaml>") -> list[MetricDefinition]:
    """Definitions from YAML text: one mapping, a list, or a mapping with `definitions:`."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise MetricValidationError(origin, f"file is larger than {MAX_YAML_BYTES} bytes")
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise MetricValidationError(origin, f"not valid YAML: {error}") from None
    except RecursionError:
        raise MetricValidationError(
            origin, "YAML nests too deeply; a definition is a flat mapping"
        ) from None
    out: list[MetricDefinition] = []
    for where, item in _documents(data, origin):
        if not isinstance(item, Mapping):
            raise MetricValidationError(where, "must be a mapping of fields")
        try:
            out.append(parse_definition(item))
        except MetricValidationError as error:
            raise MetricValidationError(f"{where}: {error.field}", error.reason) from None
    return out


def load_definitions(path: str | Path) -> list[MetricDefinition]:
    """Definitions from one YAML file."""
    file = Path(path)
    return load_definitions_text(file.read_text(encoding="utf-8"), file.name)


def load_examples() -> dict[str, MetricDefinition]:
    """The shipped seed examples, keyed by file stem."""
    out: dict[str, MetricDefinition] = {}
    folder = resources.files("custom_metrics").joinpath("examples")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yml"):
            (definition,) = load_definitions_text(entry.read_text(encoding="utf-8"), entry.name)
            out[entry.name.removesuffix(".yml")] = definition
    return out
