"""A real server for the HTTP tests: uvicorn on a free loopback port, in a thread, and a small
urllib client; plus rollup tables with the contracted columns filled from plain Python rows."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import uvicorn

from serving.http import ServerSettings, create_app
from warehouse import Warehouse
from warehouse.marts import marts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass
class Client:
    """Sends real HTTP requests to one server, optionally with a Bearer token."""

    base: str
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def with_token(self, token: str | None) -> Client:
        return Client(self.base, token, dict(self.headers))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Reply:
        all_headers = {**self.headers, **(headers or {})}
        if self.token is not None:
            all_headers.setdefault("Authorization", f"Bearer {self.token}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=all_headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(
                    response.status,
                    {k.lower(): v for k, v in response.headers.items()},
                    response.read(),
                )
        except urllib.error.HTTPError as error:
            return Reply(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)


@contextmanager
def running_server(settings: ServerSettings) -> Iterator[str]:
    """Serve `create_app(settings)` on a free port; yields the base URL; stops afterwards.

    The socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing it and serving on it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listener.close()


def create_rollup_tables(wh: Warehouse) -> None:
    """Every contracted rollup table, empty, with the contract's columns and types."""
    wh.execute(f"create schema if not exists {wh.schema}")
    for mart in marts().values():
        columns = ", ".join(f"{name} {kind}" for name, kind in mart.columns)
        wh.execute(f"create table {wh.schema}.{mart.name} ({columns})")


def insert_rows(wh: Warehouse, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    placeholders = ", ".join(wh.param(n) for n in names)
    wh.executemany(
        f"insert into {wh.schema}.{table} ({', '.join(names)}) values ({placeholders})", rows
    )


LEVELS = [
    ("asset", "a1", "click"),
    ("asset", "a1", "*"),
    ("asset", "a2", "click"),
    ("asset", "a2", "purchase"),
    ("asset", "a2", "*"),
    ("asset", "*", "click"),
    ("asset", "*", "purchase"),
    ("asset", "*", "*"),
    ("*", "*", "click"),
    ("*", "*", "purchase"),
    ("*", "*", "*"),
]


def daily_rows(first: date, days: int) -> list[dict[str, Any]]:
    """Deterministic daily rows for every level (values need not add up: only read back)."""
    rows = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        for index, (entity_type, entity_id, event_type) in enumerate(LEVELS):
            count = (offset * 7 + index * 3) % 11 + 1
            rows.append(
                {
                    "metric_date": day,
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "event_type": event_type,
                    "event_count": count,
                    "unique_actors": max(1, count // 2),
                    "revenue_cents": count * 125 if event_type != "click" else 0,
                }
            )
    return rows


def weekly_rows(weeks: Sequence[date]) -> list[dict[str, Any]]:
    """Weekly rows with averages and growth (numeric values with decimals)."""
    rows = []
    for w, week in enumerate(weeks):
        for index, (entity_type, entity_id, event_type) in enumerate(LEVELS):
            count = (w * 5 + index * 2) % 13 + 3
            prev = None if w == 0 else (count + 1)
            rows.append(
                {
                    "week_start": week,
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "event_type": event_type,
                    "event_count": count,
                    "unique_actors": count // 2,
                    "revenue_cents": count * 99,
                    "active_days": min(7, count),
                    "avg_daily_events": Decimal(count) / 7,
                    "avg_daily_revenue_cents": (Decimal(count * 99) / 7).quantize(
                        Decimal("0.000001")
                    ),
                    "prev_event_count": prev,
                    "prev_unique_actors": None if prev is None else prev // 2,
                    "prev_revenue_cents": None if prev is None else prev * 99,
                    "event_count_growth_pct": None
                    if prev is None
                    else (Decimal(100) * (count - prev) / prev).quantize(Decimal("0.01")),
                    "unique_actors_growth_pct": None,
                    "revenue_growth_pct": None,
                }
            )
    return rows
