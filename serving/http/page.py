"""The dashboard page at `/`, its sign-in, and the static files shipped with the package.

A browser may open ``/?token=...`` once: the token is checked, a session starts (an HttpOnly,
SameSite=Strict cookie) and the browser is sent to the same page without the token in its
address. Without a session the page is a sign-in form that posts the token instead.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from serving.http.auth import (
    SESSION_COOKIE,
    CallerDep,
    context_of,
    end_session,
    optional_caller,
    start_session,
)
from serving.http.problems import Problem
from serving.http.responses import JSONResponse

STATIC_DIR = Path(__file__).resolve().parent / "static"
router = APIRouter(include_in_schema=False)
MAX_FORM_BYTES = 4096


def static_files() -> StaticFiles:
    """The vendored chart library and the page's own script and styles."""
    return StaticFiles(directory=STATIC_DIR)


def _signin(error: str = "", status: int = 200) -> HTMLResponse:
    page = (STATIC_DIR / "signin.html").read_text().replace("{error}", html.escape(error))
    return HTMLResponse(page, status_code=status)


def _session_redirect(request: Request, token: str, target: str) -> Response:
    context = context_of(request)
    record = context.token(token)
    if record is None:
        return _signin("That token is not valid (unknown or revoked).", 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        start_session(context, record),
        max_age=context.settings.session_seconds,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/")
def page(request: Request, token: Annotated[str | None, Query(max_length=200)] = None) -> Response:
    if token is not None:
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        return _session_redirect(
            request, token.strip(), "/" + ("?" + urlencode(rest) if rest else "")
        )
    try:
        caller = optional_caller(request)
    except Problem:
        caller = None  # an ended session: sign in again
    if caller is None:
        return _signin()
    return HTMLResponse((STATIC_DIR / "dashboard.html").read_text())


@router.post("/login")
async def login(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _signin("The form is too large.", 413)
    token = (parse_qs(body.decode(errors="replace")).get("token") or [""])[0].strip()
    if not token:
        return _signin("Enter a token.", 422)
    return _session_redirect(request, token, "/")


@router.post("/logout")
def logout(request: Request) -> Response:
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        end_session(context_of(request), session)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/v1/whoami", include_in_schema=True, tags=["auth"])
def whoami(caller: CallerDep) -> Response:
    """Who the token (or session) belongs to."""
    t = caller.token
    return JSONResponse(
        {
            "token_id": t.token_id,
            "user_id": t.user_id,
            "team": t.team,
            "organization": t.organization,
            "admin": t.is_admin,
        }
    )
