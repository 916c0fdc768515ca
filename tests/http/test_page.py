"""The dashboard page in headless Chromium: `/?token=` starts a session (the token leaves the
address), the page draws weekly and monthly charts whose points and totals match the rows
written here, shows the latest growth and the custom metrics the caller may see; the chart
library is served from the package. Without a session `/` is a sign-in form."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium_path, headless_flags
from tests.http.conftest import Api
from tests.http.http_support import daily_rows, insert_rows, weekly_rows

ROOT = Path(__file__).resolve().parents[2]
DUCKDB_ONLY = pytest.mark.parametrize("warehouse_config", ["duckdb"], indirect=True)
TOTAL = ("*", "*", "*")


def _monthly_rows(months: list[date]) -> list[dict[str, Any]]:
    rows = []
    for index, month in enumerate(months):
        count = 40 + 7 * index
        prev = None if index == 0 else 40 + 7 * (index - 1)
        rows.append(
            {
                "month_start": month,
                "entity_type": "*",
                "entity_id": "*",
                "event_type": "*",
                "event_count": count,
                "unique_actors": count // 3,
                "revenue_cents": count * 250,
                "days_in_month": 30,
                "active_days": 20,
                "avg_daily_events": (Decimal(count) / 30).quantize(Decimal("0.000001")),
                "avg_daily_revenue_cents": (Decimal(count * 250) / 30).quantize(
                    Decimal("0.000001")
                ),
                "prev_event_count": prev,
                "prev_unique_actors": None if prev is None else prev // 3,
                "prev_revenue_cents": None if prev is None else prev * 250,
                "event_count_growth_pct": None
                if prev is None
                else (Decimal(100) * (count - prev) / prev).quantize(Decimal("0.01")),
                "unique_actors_growth_pct": None,
                "revenue_growth_pct": None,
            }
        )
    return rows


def _chromium(chromium: str, profile: Path, url: str, *extra: str) -> str:
    done = subprocess.run(
        [chromium, *headless_flags(profile), *extra, url],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done.stdout


@DUCKDB_ONLY
def test_page_renders_charts_with_data(api: Api, tmp_path: Path) -> None:
    chromium = chromium_path()
    weeks = [date(2025, 1, 6) + timedelta(days=7 * w) for w in range(10)]
    weekly = [
        r
        for r in weekly_rows(weeks)
        if (r["entity_type"], r["entity_id"], r["event_type"]) == TOTAL
    ]
    months = [date(2025, m, 1) for m in range(1, 7)]
    monthly = _monthly_rows(months)
    with api.warehouse() as wh:
        insert_rows(wh, "weekly_metrics", weekly)
        insert_rows(wh, "monthly_metrics", monthly)
        insert_rows(wh, "daily_metrics", daily_rows(date(2025, 1, 1), 5))
    alice = api.client("alice")
    public = alice.post(
        "/v1/custom-metrics",
        {
            "name": "Clicks on a1",
            "metric_type": "SUM",
            "data_source": "daily_metrics",
            "calculation_formula": "event_count",
            "filters": {"entity_type": "asset", "entity_id": "a1", "event_type": "click"},
            "visibility": "PUBLIC",
        },
    ).json()
    calculated = alice.post(
        f"/v1/custom-metrics/{public['id']}/calculate", {"start": "2025-01-01", "end": "2025-01-06"}
    ).json()
    clicks = calculated["values"][0]["value"]
    private = alice.post(
        "/v1/custom-metrics",
        {
            "name": "Alice only",
            "metric_type": "COUNT",
            "data_source": "daily_metrics",
            "calculation_formula": "*",
            "visibility": "PRIVATE",
        },
    ).json()

    # Bob signs in with ?token= and sees the PUBLIC definition, not alice's PRIVATE one.
    url = f"{api.base}/?token={api.tokens['bob']}"
    dom = _chromium(chromium, tmp_path / "profile", url, "--dump-dom")
    assert 'data-ready="true"' in dom, dom[-2000:]

    def attribute(element_id: str, name: str) -> str:
        match = re.search(rf'id="{element_id}"[^>]*?{name}="([^"]*)"', dom) or re.search(
            rf'{name}="([^"]*)"[^>]*?id="{element_id}"', dom
        )
        assert match, (element_id, name)
        return match.group(1)

    for grain, rows in (("weekly", weekly), ("monthly", monthly)):
        for measure in ("event_count", "unique_actors", "revenue_cents"):
            element = f"{grain}-{measure}"
            assert int(attribute(element, "data-points")) == len(rows)
            assert int(attribute(element, "data-total")) == sum(r[measure] for r in rows)
    assert dom.count("<canvas") >= 6
    last_month = monthly[-1]
    assert f'data-growth="{float(last_month["event_count_growth_pct"])}"' in dom or (
        f'data-growth="{last_month["event_count_growth_pct"]}"' in dom
    )
    assert "Clicks on a1" in dom and "Alice only" not in dom
    assert private["id"] not in dom
    assert re.search(rf"<td>{clicks}(\.0)? \(2025-01-01\)</td>", dom), dom[-1500:]
    assert api.tokens["bob"] not in dom

    shot = tmp_path / "dashboard.png"
    _chromium(chromium, tmp_path / "profile2", url, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000
    artifacts = ROOT / ".data" / "http"
    artifacts.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, artifacts / "dashboard.png")


@DUCKDB_ONLY
def test_signin_form_session_cookie_and_static_files(api: Api) -> None:
    anonymous = api.client()
    form = anonymous.get("/")
    assert form.status == 200 and b'name="token"' in form.body
    bad = anonymous.request(
        "POST",
        "/login",
        raw=b"token=nope",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert bad.status == 401 and b"not valid" in bad.body
    library = anonymous.get("/static/uPlot.iife.min.js")
    assert library.status == 200 and b"uPlot" in library.body
    # The session cookie serves GET requests only: a cross-site POST cannot ride on it.
    import http.client
    from urllib.parse import urlsplit

    host = urlsplit(api.base)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    connection.request("GET", f"/?token={api.tokens['carol']}")
    redirected = connection.getresponse()
    redirected.read()
    assert redirected.status == 303 and redirected.getheader("Location") == "/"
    cookie = redirected.getheader("Set-Cookie")
    assert cookie is not None and "HttpOnly" in cookie and "SameSite=strict" in cookie
    session = cookie.split(";")[0]
    with_cookie = anonymous.get("/v1/whoami", headers={"Cookie": session})
    assert with_cookie.status == 200 and with_cookie.json()["user_id"] == "carol"
    post = anonymous.post(
        "/v1/realtime/events",
        {"events": [{"type": "counter", "name": "x"}]},
        headers={"Cookie": session},
    )
    assert post.status == 401
    page = anonymous.get("/", headers={"Cookie": session})
    assert page.status == 200 and b"dashboard.js" in page.body
