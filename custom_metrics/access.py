"""Who may see and who may change a definition.

Viewing: PUBLIC everyone; ORGANIZATION members of its organization; TEAM members of its team
(in the same organization); PRIVATE the owner only. Organization admins also see every
non-PRIVATE definition of their organization.
Editing: the owner, and admins of the definition's organization for non-PRIVATE definitions.
The system principal (scheduled jobs) sees everything and edits nothing it did not create.
"""

from __future__ import annotations

from dataclasses import dataclass

from custom_metrics.definitions import MetricDefinition, Visibility


@dataclass(frozen=True)
class Principal:
    """The user a service call acts for."""

    user_id: str
    team: str | None = None
    organization: str | None = None
    is_org_admin: bool = False
    is_system: bool = False


SYSTEM = Principal("system", is_system=True)


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
