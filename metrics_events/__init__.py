"""Synthetic product events and the source table they are written to."""

from metrics_events.generator import Event, GeneratorConfig, generate_events
from metrics_events.source import delete_events, ensure_source_table, load_events

__all__ = [
    "Event",
    "GeneratorConfig",
    "delete_events",
    "ensure_source_table",
    "generate_events",
    "load_events",
]
