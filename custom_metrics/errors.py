"""The errors the package raises, so callers can tell a bad definition from a failed run."""

from __future__ import annotations


class MetricValidationError(ValueError):
    """A definition (or part of one) was not accepted; nothing was sent to the database.

    `field` names the offending part (e.g. ``calculation_formula`` or ``filters.event_type``);
    `position` is the 0-based character offset inside that field's text, when known.
    """

    def __init__(self, field: str, message: str, position: int | None = None) -> None:
        self.field = field
        self.reason = message
        self.position = position
        where = f" (at position {position})" if position is not None else ""
        super().__init__(f"{field}: {message}{where}")


class MetricExecutionError(RuntimeError):
    """A valid definition failed while running (the failure is in the audit trail)."""


class MetricTimeoutError(MetricExecutionError):
    """The query ran longer than its cost class allows and was cancelled."""


class MetricPermissionError(PermissionError):
    """The principal may not see or change this definition."""


class MetricNotFoundError(LookupError):
    """No definition with that id (or none visible to the principal)."""
