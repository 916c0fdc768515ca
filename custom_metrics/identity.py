"""Who the `metrics custom` command acts as: always the local operator, never a name it is told.

Whoever can run the CLI on this machine can read the warehouse directly, so the CLI does not
pretend to be someone else: it acts as `OPERATOR` (an administrator that sees every definition
and changes only what it created) and says so on every command that touches the warehouse.
Naming a user (`--user`, `--team`, `--org`, `--admin`, or METRICS_USER / METRICS_TEAM /
METRICS_ORG / METRICS_ADMIN in the environment) is refused with an error, because a name on the
command line proves nothing.

Acting as a particular user is what API tokens are for: `metrics tokens create --user U` makes a
token, and the HTTP API (`metrics serve`) maps each request's token to that user's principal.
A CLI that acted for a token's user would resolve the token here, in `cli_principal`, and use
the principal the token store returns; nothing else in the CLI would change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Final

from custom_metrics.access import OPERATOR, Principal

OPERATOR_NOTICE: Final = "acting as the local operator (admin)"
IDENTITY_FLAGS: Final = ("--user", "--team", "--org", "--admin")
IDENTITY_VARIABLES: Final = ("METRICS_USER", "METRICS_TEAM", "METRICS_ORG", "METRICS_ADMIN")
_WHY: Final = (
    "the CLI always acts as the local operator (admin); to act as a user, create an API token "
    "(metrics tokens create --user U) and use the HTTP API"
)


class IdentityError(ValueError):
    """The command line or the environment tried to choose who the CLI acts as."""


def refuse_identity_claims(argv: Sequence[str], environ: Mapping[str, str]) -> None:
    """Raise IdentityError naming the first flag or variable that names a user."""
    for arg in argv:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if flag in IDENTITY_FLAGS:
            raise IdentityError(f"{flag} is not accepted: {_WHY}")
    for name in IDENTITY_VARIABLES:
        if environ.get(name):
            raise IdentityError(f"{name} is set but not used: {_WHY}; unset {name}")


def cli_principal(environ: Mapping[str, str] | None = None) -> Principal:
    """The principal of `metrics custom`: the local operator (IdentityError if a user is named
    in the environment)."""
    refuse_identity_claims((), os.environ if environ is None else environ)
    return OPERATOR
