"""API tokens: created by `metrics tokens create`, stored only as a SHA-256 hash in the warehouse.

A token is ``mt_<token id>_<secret>``: the id (also in the table) lets operators list and
revoke tokens without ever seeing the secret again; the whole token is hashed, so the table
cannot be replayed. The secret has 256 bits of entropy, so a fast hash is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Final

from custom_metrics import Principal
from serving.keys import encode_component
from warehouse import Warehouse

TABLE: Final = "api_tokens"
_TOKEN_RE: Final = re.compile(r"mt_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.@:+-]{1,200}")


class TokenError(ValueError):
    """A bad argument to a token command (names the argument)."""


@dataclass(frozen=True)
class TokenRecord:
    """One stored token, without its secret."""

    token_id: str
    user_id: str
    team: str | None
    organization: str | None
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None

    @cached_property
    def scope(self) -> str:
        """Everything that decides what the token's holder may see, for per-caller cache keys
        (readable when short, a digest of the same text when long). Worked out once per record:
        a memoized lookup's record serves every request of its memo time."""
        parts = (
            self.user_id,
            self.team or "",
            self.organization or "",
            "admin" if self.is_admin else "",
        )
        text = "|".join(encode_component(part) if part else "-" for part in parts)
        if len(text) <= 120:
            return text
        return "sha256-" + hashlib.sha256(text.encode()).hexdigest()

    @property
    def principal(self) -> Principal:
        """The principal the custom-metrics service acts for with this token."""
        return Principal(
            self.user_id, team=self.team, organization=self.organization, is_org_admin=self.is_admin
        )


def hash_token(token: str) -> str:
    """Hex SHA-256 of the whole token: what the table stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def _check_name(what: str, value: str | None) -> None:
    if value is not None and not _NAME_RE.fullmatch(value):
        raise TokenError(
            f"--{what} {value!r}: use 1-200 letters, digits or _ . @ : + - (no spaces)"
        )


_COLUMNS: Final = "token_id, user_id, team, organization, is_admin, created_at, revoked_at"


def _record(row: tuple[object, ...]) -> TokenRecord:
    created, revoked = row[5], row[6]
    assert isinstance(created, datetime)
    return TokenRecord(
        token_id=str(row[0]),
        user_id=str(row[1]),
        team=None if row[2] is None else str(row[2]),
        organization=None if row[3] is None else str(row[3]),
        is_admin=bool(row[4]),
        created_at=created if created.tzinfo else created.replace(tzinfo=UTC),
        revoked_at=revoked if isinstance(revoked, datetime) else None,
    )


class TokenStore:
    """The token table of one warehouse connection."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse
        self.table = f"{warehouse.schema}.{TABLE}"

    def ensure_table(self) -> None:
        """Create the schema and the table if missing."""
        self.wh.execute(f"create schema if not exists {self.wh.schema}")
        self.wh.execute(
            f"create table if not exists {self.table} ("
            " token_id text primary key,"
            " token_hash text not null unique,"
            " user_id text not null,"
            " team text,"
            " organization text,"
            " is_admin boolean not null,"
            " created_at timestamptz not null,"
            " revoked_at timestamptz)"
        )

    def create(
        self,
        user_id: str,
        team: str | None = None,
        organization: str | None = None,
        *,
        is_admin: bool = False,
    ) -> tuple[TokenRecord, str]:
        """Store a new token's hash; returns the record and the token (shown once)."""
        _check_name("user", user_id)
        _check_name("team", team)
        _check_name("org", organization)
        try:  # the principal the token will act for must be one the service accepts
            Principal(user_id, team=team, organization=organization, is_org_admin=is_admin)
        except ValueError as error:
            raise TokenError(f"--user/--team/--org: {error}") from None
        self.ensure_table()
        token_id = secrets.token_hex(6)
        token = f"mt_{token_id}_{secrets.token_urlsafe(32)}"
        created = datetime.now(UTC)
        p = self.wh.param
        self.wh.execute(
            f"insert into {self.table} (token_id, token_hash, user_id, team, organization,"
            " is_admin, created_at) values ("
            f"{p('id')}, {p('hash')}, {p('user')}, {p('team')}, {p('org')}, {p('admin')},"
            f" {p('created')})",
            {
                "id": token_id,
                "hash": hash_token(token),
                "user": user_id,
                "team": team,
                "org": organization,
                "admin": is_admin,
                "created": created,
            },
        )
        return TokenRecord(token_id, user_id, team, organization, is_admin, created, None), token

    def lookup(self, token: str) -> TokenRecord | None:
        """The live (not revoked) token with this text, or None."""
        match = _TOKEN_RE.fullmatch(token)
        if match is None or not self.wh.table_exists(self.wh.schema, TABLE):
            return None
        p = self.wh.param
        rows = self.wh.query(
            f"select {_COLUMNS}, token_hash from {self.table}"
            f" where token_id = {p('id')} and revoked_at is null",
            {"id": match.group(1)},
        )
        if not rows or not hmac.compare_digest(str(rows[0][7]), hash_token(token)):
            return None
        return _record(rows[0])

    def get(self, token_id: str) -> TokenRecord | None:
        """The live token with this id (a session refers to it), or None."""
        if not self.wh.table_exists(self.wh.schema, TABLE):
            return None
        p = self.wh.param
        rows = self.wh.query(
            f"select {_COLUMNS} from {self.table}"
            f" where token_id = {p('id')} and revoked_at is null",
            {"id": token_id},
        )
        return _record(rows[0]) if rows else None

    def list(self) -> list[TokenRecord]:
        """Every token, oldest first (revoked ones too, with when)."""
        if not self.wh.table_exists(self.wh.schema, TABLE):
            return []
        rows = self.wh.query(f"select {_COLUMNS} from {self.table} order by created_at, token_id")
        return [_record(row) for row in rows]

    def revoke(self, token_id: str) -> bool:
        """Revoke a token by its id (or the whole token); False if no live token has it."""
        match = _TOKEN_RE.fullmatch(token_id)
        wanted = match.group(1) if match else token_id
        if not re.fullmatch(r"[0-9a-f]{12}", wanted):
            raise TokenError(f"{token_id!r} is not a token id (12 hex digits, see tokens list)")
        if not self.wh.table_exists(self.wh.schema, TABLE):
            return False
        p = self.wh.param
        live = self.wh.query(
            f"select count(*) from {self.table} where token_id = {p('id')} and revoked_at is null",
            {"id": wanted},
        )
        if not live[0][0]:
            return False
        self.wh.execute(
            f"update {self.table} set revoked_at = {p('now')}"
            f" where token_id = {p('id')} and revoked_at is null",
            {"id": wanted, "now": datetime.now(UTC)},
        )
        return True
