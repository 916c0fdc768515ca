"""Prometheus text exposition (format 0.0.4) of every registered series' current value.

    counter   -> ``# TYPE <name> counter``   ``<name>{labels} <total>``
    gauge     -> ``# TYPE <name> gauge``     (the unit, if any, goes in the HELP line)
    histogram -> ``# TYPE <name> summary``   quantiles 0.5/0.9/0.95/0.99, _sum, _count, with a
                 ``window="<seconds>"`` label
    rate      -> ``# TYPE <name>_per_second gauge`` with a ``window="<seconds>"`` label
    unique    -> ``# TYPE <name> gauge``     the estimate, with a ``window`` label
    top       -> ``# TYPE <name> gauge``     the 10 heaviest items' counts, with ``item`` and
                 ``window`` labels

Dots in names are exported as underscores (``http.server.duration`` -> ``http_server_duration``,
realtime.names); the HELP line keeps the name as written.

Rendering needs no client: the client reads the values (`plain_commands`, the windowed read
scripts) and hands them here. Two metrics exporting the same sample name are refused when the
second is first written (realtime.names); should a page still meet one (series written before
that check existed), the later family is skipped and logged rather than making it invalid.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from realtime.labels import TOP_ITEM_LABEL, parse_labels
from realtime.names import exported_name
from realtime.operations import (
    Number,
    parse_histogram,
    parse_rate,
    parse_top,
    reply_text,
    to_number,
)
from realtime.series import Series
from realtime.sketch import HistogramSnapshot

logger = logging.getLogger("realtime.prometheus")

QUANTILES = (0.5, 0.9, 0.95, 0.99)
EXPORTED_TOP = 10  # items of each top-k on the page


def escape_label_value(value: str) -> str:
    """Backslash, double quote and line feed escaped as the text format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float | None) -> str:
    """A sample value: integers as is, floats by repr, NaN/+Inf/-Inf spelled as Prometheus does."""
    if value is None:
        return "NaN"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _labels_text(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{escape_label_value(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


class _Page:
    """Accumulates metric families, refusing sample names already used by another family."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._taken: set[str] = set()

    def family(
        self,
        name: str,
        kind: str,
        help_text: str,
        samples: Iterable[tuple[str, dict[str, str], float | None]],
        sample_names: Sequence[str],
    ) -> None:
        if self._taken.intersection(sample_names):
            logger.warning(
                "Prometheus export: %s %r clashes with another metric; skipped", kind, name
            )
            return
        self._taken.update(sample_names)
        self.lines.append(f"# HELP {name} {escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for sample_name, labels, value in samples:
            self.lines.append(f"{sample_name}{_labels_text(labels)} {format_value(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""


def _grouped(items: Iterable[tuple[Series, Any]]) -> dict[str, list[tuple[Series, Any]]]:
    """Series by metric name, each group under the metric's exported name."""
    groups: dict[str, list[tuple[Series, Any]]] = {}
    for series, value in sorted(
        items, key=lambda item: (item[0].name, item[0].labels, item[0].window)
    ):
        groups.setdefault(series.name, []).append((series, value))
    return groups


def render(
    counters: Iterable[tuple[Series, Number]],
    gauges: Iterable[tuple[Series, tuple[Number, str | None]]],
    histograms: Iterable[tuple[Series, HistogramSnapshot]],
    rates: Iterable[tuple[Series, float]],
    uniques: Iterable[tuple[Series, int]] = (),
    tops: Iterable[tuple[Series, list[tuple[str, int]]]] = (),
) -> str:
    """The exposition page for the given current values."""
    page = _Page()
    for written, group in _grouped(counters).items():
        name = exported_name(written)
        page.family(
            name,
            "counter",
            f"Realtime counter {written}.",
            [(name, parse_labels(s.labels), v) for s, v in group],
            [name],
        )
    for written, group in _grouped(gauges).items():
        name = exported_name(written)
        unit = next((u for _, (_, u) in group if u), None)
        help_text = f"Realtime gauge {written}" + (f" (unit: {unit})." if unit else ".")
        page.family(
            name,
            "gauge",
            help_text,
            [(name, parse_labels(s.labels), v) for s, (v, _) in group],
            [name],
        )
    for written, group in _grouped(histograms).items():
        name = exported_name(written)
        samples: list[tuple[str, dict[str, str], float | None]] = []
        for series, snapshot in group:
            labels = {**parse_labels(series.labels), "window": str(series.window)}
            for q in QUANTILES:
                samples.append((name, {**labels, "quantile": str(q)}, snapshot.percentile(q * 100)))
            samples.append((f"{name}_sum", labels, snapshot.sum))
            samples.append((f"{name}_count", labels, snapshot.count))
        page.family(
            name,
            "summary",
            f"Realtime histogram {written} over a sliding window.",
            samples,
            [name, f"{name}_sum", f"{name}_count"],
        )
    for written, group in _grouped(rates).items():
        family = f"{exported_name(written)}_per_second"
        page.family(
            family,
            "gauge",
            f"Realtime rate of {written} in events per second.",
            [(family, {**parse_labels(s.labels), "window": str(s.window)}, v) for s, v in group],
            [family],
        )
    for written, group in _grouped(uniques).items():
        name = exported_name(written)
        page.family(
            name,
            "gauge",
            f"Realtime unique count of {written} over a sliding window (HyperLogLog estimate).",
            [(name, {**parse_labels(s.labels), "window": str(s.window)}, v) for s, v in group],
            [name],
        )
    for written, group in _grouped(tops).items():
        name = exported_name(written)
        samples = [
            (name, {**parse_labels(s.labels), TOP_ITEM_LABEL: item, "window": str(s.window)}, n)
            for s, ranked in group
            for item, n in ranked
        ]
        page.family(
            name,
            "gauge",
            f"Realtime top {EXPORTED_TOP} items of {written} over a sliding window.",
            samples,
            [name],
        )
    return page.text()


def plain_commands(
    counters: Sequence[Series], gauges: Sequence[Series], key: Callable[[Series], str]
) -> list[tuple[Any, ...]]:
    """The commands that read the counters' totals and the gauges' values and units."""
    return [("GET", key(s)) for s in counters] + [("HMGET", key(s), "v", "u") for s in gauges]


class Collected(NamedTuple):
    """The registered series of each kind and Redis' replies for them."""

    counters: Sequence[Series]
    gauges: Sequence[Series]
    histograms: Sequence[Series]
    rates: Sequence[Series]
    uniques: Sequence[Series]
    tops: Sequence[Series]
    plain: Sequence[Any]  # replies to `plain_commands`, counters first
    # histogram_read replies, then rate_read, unique_read and top_read (EXPORTED_TOP) replies
    windowed: Sequence[Any]


def render_collected(collected: Collected) -> str:
    """The exposition page from what the client read."""
    counters, gauges, histograms, rates, uniques, tops, plain, windowed = collected
    counter_values = [
        (s, to_number(raw))
        for s, raw in zip(counters, plain[: len(counters)], strict=True)
        if raw is not None
    ]
    gauge_values = [
        (s, (to_number(raw[0]), reply_text(raw[1]) if raw[1] is not None else None))
        for s, raw in zip(gauges, plain[len(counters) :], strict=True)
        if raw[0] is not None
    ]
    snapshots = [
        (s, parse_histogram(raw))
        for s, raw in zip(histograms, windowed[: len(histograms)], strict=True)
    ]
    after_rates = len(histograms) + len(rates)
    rate_values = [
        (s, parse_rate(raw, s.window))
        for s, raw in zip(rates, windowed[len(histograms) : after_rates], strict=True)
    ]
    after_uniques = after_rates + len(uniques)
    unique_values = [
        (s, int(raw)) for s, raw in zip(uniques, windowed[after_rates:after_uniques], strict=True)
    ]
    top_values = [
        (s, parse_top(raw)) for s, raw in zip(tops, windowed[after_uniques:], strict=True)
    ]
    return render(counter_values, gauge_values, snapshots, rate_values, unique_values, top_values)
