"""Who is calling: a Bearer token, or (for GET requests from the page) a session cookie.

The session cookie holds a random session id; Redis maps it to the token id for
`session_seconds`. Only safe methods accept the cookie, so a cross-site form cannot make
changes with it (it is SameSite=Strict as well).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from custom_metrics import Principal
from serving.http.context import ServerContext
from serving.http.problems import Problem, unauthorized
from serving.http.tokens import TokenRecord, TokenStore

SESSION_COOKIE = "metrics_session"


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of one request."""

    token: TokenRecord

    @property
    def principal(self) -> Principal:
        return self.token.principal

    @property
    def is_admin(self) -> bool:
        return self.token.is_admin

    @property
    def scope(self) -> str:
        """Everything that decides what this caller may see, for per-caller cache keys."""
        return self.token.scope


def context_of(request: Request) -> ServerContext:
    context: ServerContext = request.app.state.context
    return context


def _session_key(context: ServerContext, session_id: str) -> str:
    return f"{context.settings.cache_namespace}:session:{session_id}"


def start_session(context: ServerContext, token: TokenRecord) -> str:
    """A new session id for `token`, valid for the configured time."""
    session_id = secrets.token_urlsafe(32)
    context.cache.client.set(
        _session_key(context, session_id), token.token_id, ex=context.settings.session_seconds
    )
    return session_id


def end_session(context: ServerContext, session_id: str) -> None:
    context.cache.client.delete(_session_key(context, session_id))


def _from_session(context: ServerContext, session_id: str) -> TokenRecord | None:
    if not session_id or len(session_id) > 100:
        return None
    token_id: bytes | None = context.cache.client.get(_session_key(context, session_id))  # type: ignore[assignment]
    if token_id is None:
        return None
    with context.pool.connection() as wh:
        return TokenStore(wh).get(token_id.decode())


def optional_caller(request: Request) -> Caller | None:
    """The caller, or None when the request carries no credentials at all."""
    context = context_of(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise unauthorized("the Authorization header must be 'Bearer <token>'")
        record = context.token(value.strip())
        if record is None:
            raise unauthorized("the token is not valid (unknown or revoked)")
        return Caller(record)
    session = request.cookies.get(SESSION_COOKIE)
    if session and request.method in ("GET", "HEAD"):
        record = _from_session(context, session)
        if record is None:
            raise unauthorized("the session has ended: sign in again with a token")
        return Caller(record)
    return None


async def require_caller(request: Request) -> Caller:
    """The caller; 401 when there are no credentials. A memoized token is checked on the event
    loop; anything that needs the warehouse or Redis runs in the thread pool."""
    header = request.headers.get("authorization")
    if header is not None and header[:7].lower() == "bearer ":
        known, record = context_of(request).remembered_token(header[7:].strip())
        if known:
            if record is None:
                raise unauthorized("the token is not valid (unknown or revoked)")
            return Caller(record)
    caller = await run_in_threadpool(optional_caller, request)
    if caller is None:
        raise unauthorized("send 'Authorization: Bearer <token>' (see `metrics tokens create`)")
    return caller


def require_admin(caller: Annotated[Caller, Depends(require_caller)]) -> Caller:
    """The caller, who must hold an admin token; 403 otherwise."""
    if not caller.is_admin:
        raise Problem(403, "this endpoint needs an admin token (metrics tokens create --admin)")
    return caller


CallerDep = Annotated[Caller, Depends(require_caller)]
AdminDep = Annotated[Caller, Depends(require_admin)]
