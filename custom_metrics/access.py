"""Who may see and who may change a definition.

Viewing: PUBLIC everyone; ORGANIZATION members of its organization; TEAM members of its team
(in the same organization); PRIVATE the owner only. Organization admins also see every
non-PRIVATE definition of their organization.
Editing: the owner, and admins of the definition's organization for non-PRIVATE definitions.
The system principals (the scheduler, `SYSTEM`, and the local operator of the CLI, `OPERATOR`)
see everything and edit nothing they did not create. Their ids are reserved: no user may be
called `system` or `operator`.

A principal is checked when it is made (ids of 1-100 characters without control, zero-width or
other invisible characters), so nothing it stamps on a definition can poison the stored rows.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

from custom_metrics.definitions import MAX_PRINCIPAL_TEXT, MetricDefinition, Visibility
from custom_metrics.errors import MetricValidationError

RESERVED_IDS: Final = frozenset({"system", "operator"})


def _check_name(field: str, value: object, *, required: bool) -> None:
    """One principal field: text of 1-100 visible characters, no surrounding spaces."""
    label = f"principal.{field}"
    if value is None and not required:
        return
    if not isinstance(value, str):
        raise MetricValidationError(label, f"must be text, not {type(value).__name__}")
    if not value.strip():
        raise MetricValidationError(label, "must not be empty")
    if len(value) > MAX_PRINCIPAL_TEXT:
        raise MetricValidationError(
            label, f"is {len(value)} characters long; the limit is {MAX_PRINCIPAL_TEXT}"
        )
    if value != value.strip():
        raise MetricValidationError(label, "must not start or end with spaces")
    for index, char in enumerate(value):
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise MetricValidationError(
                label, f"control or invisible character U+{ord(char):04X} is not allowed", index
            )


@dataclass(frozen=True)
class Principal:
    """The user a service call acts for (checked on creation; MetricValidationError if bad)."""

    user_id: str
    team: str | None = None
    organization: str | None = None
    is_org_admin: bool = False
    is_system: bool = False

    def __post_init__(self) -> None:
        _check_name("user_id", self.user_id, required=True)
        _check_name("team", self.team, required=False)
        _check_name("organization", self.organization, required=False)
        for flag in ("is_org_admin", "is_system"):
            if not isinstance(getattr(self, flag), bool):
                raise MetricValidationError(f"principal.{flag}", "must be true or false")
        if not self.is_system and self.user_id.casefold() in RESERVED_IDS:
            raise MetricValidationError(
                "principal.user_id",
                f"{self.user_id!r} is reserved for the scheduler and the local operator; "
                "use another user id",
            )


SYSTEM = Principal("system", is_system=True)
OPERATOR = Principal("operator", is_system=True)


def _admin_of(principal: Principal, definition: MetricDefinition) -> bool:
    return (
        principal.is_org_admin
        and definition.organization is not None
        and definition.organization == principal.organization
        and definition.visibility is not Visibility.PRIVATE
    )


def can_view(principal: Principal, definition: MetricDefinition) -> bool:
    """Whether `principal` may see (and calculate) `definition`."""
    if principal.is_system or definition.owner == principal.user_id:
        return True
    if _admin_of(principal, definition):
        return True
    match definition.visibility:
        case Visibility.PUBLIC:
            return True
        case Visibility.ORGANIZATION:
            return (
                definition.organization is not None
                and definition.organization == principal.organization
            )
        case Visibility.TEAM:
            return (
                definition.team is not None
                and definition.team == principal.team
                and definition.organization == principal.organization
            )
        case _:
            return False


def can_edit(principal: Principal, definition: MetricDefinition) -> bool:
    """Whether `principal` may change `definition` (make a new version of it)."""
    return definition.owner == principal.user_id or _admin_of(principal, definition)
