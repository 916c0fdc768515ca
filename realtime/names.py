"""Which sample names a metric takes in the Prometheus exposition, and who owns each name.

Dots in a metric name (OpenTelemetry's ``http.server.duration``) become underscores in the
export (`exported_name`), what OpenTelemetry's Prometheus exporters do for classic scrapers; so
``http.server.duration`` and ``http_server_duration`` would meet and the second is refused.
A counter or gauge ``n`` exports ``n``; a histogram ``n`` exports ``n``, ``n_sum`` and
``n_count``; a rate ``n`` exports ``n_per_second``. Two metrics whose names meet there (a
counter ``lat_count`` and a histogram ``lat``, a gauge ``req_per_second`` and a rate ``req``, or
one name used as two kinds) cannot both be exported, so the second is refused when it is first
written. Owners are kept in Redis, in the hash ``P{names}`` (name -> ``kind:name``), so every
process and client agrees; each process asks once per metric name.
"""

from __future__ import annotations

from realtime.labels import RealtimeValidationError
from realtime.series import Kind, Series


class NameCollisionError(RealtimeValidationError):
    """A metric whose exported names are already another metric's."""


def exported_name(name: str) -> str:
    """A metric's name in the Prometheus export: dots translated to underscores."""
    return name.replace(".", "_")


def sample_names(kind: Kind, name: str) -> tuple[str, ...]:
    """The sample names a metric of `kind` called `name` exports."""
    name = exported_name(name)
    if kind == "histogram":
        return (name, f"{name}_sum", f"{name}_count")
    if kind == "rate":
        return (f"{name}_per_second",)
    return (name,)


def owner_of(series: Series) -> str:
    """How the names hash records a metric: ``kind:name``."""
    return f"{series.kind}:{series.name}"


def names_key(prefix: str) -> str:
    """The hash of exported sample names and their owners."""
    return f"{prefix}{{names}}"


def collision(series: Series, owner: str) -> NameCollisionError:
    """The error for writing `series` when `owner` already exports one of its names."""
    kind, _, name = owner.partition(":")
    mine = ", ".join(sample_names(series.kind, series.name))
    return NameCollisionError(
        f"{series.kind} {series.name!r} would export {mine} in Prometheus, which {kind} "
        f"{name!r} already exports; give one of them another name"
    )
