"""Prometheus text exposition (format 0.0.4) of the current values."""

from __future__ import annotations

import math
import re

import pytest

from realtime.metrics import RealtimeMetrics
from realtime.prometheus import escape_label_value, format_value

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(rf"^({_NAME})(\{{(?:{_LABEL})(?:,{_LABEL})*\}})? (\S+)$")
HELP = re.compile(rf"^# HELP ({_NAME}) (.*)$")
TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|summary|histogram|untyped)$")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_exposition(text: str) -> dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]]:
    """A strict little parser: every line valid, TYPE before samples, families contiguous."""
    assert text.endswith("\n")
    families: dict[str, tuple[str, list[tuple[str, dict[str, str], float]]]] = {}
    current: str | None = None
    for line in text.splitlines():
        if match := HELP.match(line):
            continue
        if match := TYPE.match(line):
            name, kind = match.groups()
            assert name not in families, f"family {name} declared twice"
            families[name] = (kind, [])
            current = name
            continue
        match = SAMPLE.match(line)
        assert match, f"invalid line: {line!r}"
        name, labels_text, value = match.groups()
        assert current is not None
        kind, samples = families[current]
        allowed = {current} | (
            {f"{current}_sum", f"{current}_count"} if kind == "summary" else set()
        )
        assert name in allowed, f"sample {name} outside its family {current}"
        labels = {k: unescape(v) for k, v in LABEL_PAIR.findall(labels_text or "")}
        samples.append((name, labels, float(value)))
    return families


def test_exposition_parses_and_holds_the_values(rt: RealtimeMetrics) -> None:
    tricky = 'say "hi" \\ to C:\\temp'
    rt.increment_counter("http_requests", 3, {"route": "/a", "method": "GET"})
    rt.increment_counter("http_requests", 2, {"route": tricky, "method": "POST"})
    rt.set_gauge("queue_depth", 7.5, {"queue": "mail"}, unit="jobs")
    for value in (10.0, 20.0, 30.0, 40.0):
        rt.add_to_histogram("latency_ms", value, 60, {"route": "/a"})
    rt.track_rate("logins", 60, count=30)
    rt.track_rate("latency_ms", 60)  # its name does not clash: rates get a suffix

    families = parse_exposition(rt.export_prometheus())

    kind, samples = families["http_requests"]
    assert kind == "counter"
    by_route = {labels["route"]: value for _, labels, value in samples}
    assert by_route == {"/a": 3.0, tricky: 2.0}

    kind, samples = families["queue_depth"]
    assert kind == "gauge" and samples == [("queue_depth", {"queue": "mail"}, 7.5)]

    kind, samples = families["latency_ms"]
    assert kind == "summary"
    quantiles = {s[1]["quantile"]: s[2] for s in samples if s[0] == "latency_ms"}
    assert set(quantiles) == {"0.5", "0.9", "0.95", "0.99"}
    assert quantiles["0.5"] == pytest.approx(20.0, rel=0.01)
    assert quantiles["0.99"] == pytest.approx(40.0, rel=0.01)
    assert ("latency_ms_count", {"route": "/a", "window": "60"}, 4.0) in samples
    assert ("latency_ms_sum", {"route": "/a", "window": "60"}, 100.0) in samples

    kind, samples = families["logins_per_second"]
    assert kind == "gauge" and samples == [("logins_per_second", {"window": "60"}, 0.5)]
    assert "latency_ms_per_second" in families


def test_empty_registry_gives_an_empty_page(rt: RealtimeMetrics) -> None:
    assert rt.export_prometheus() == ""


def test_value_and_label_formatting() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert format_value(3) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(None) == "NaN"
    assert format_value(math.inf) == "+Inf" and format_value(-math.inf) == "-Inf"
