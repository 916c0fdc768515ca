"""Audit writes outlive a PostgreSQL restart: a write that finds the server gone reconnects and
retries, so an attempt's own FAILED row (with its real error) is not lost. The restart is a
loopback TCP gate in front of the real server that drops and refuses connections for a while."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import date

import pytest

from orchestration.audit_log import AuditEntry, AuditLog, JobStatus
from warehouse import WarehouseConfig, connect
from warehouse.connection import WarehouseUnavailableError


class Gate:
    """A TCP relay to PostgreSQL: while shut, open connections are cut and new ones are
    accepted and closed at once, which is what a client sees of a restarting server."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.passing = threading.Event()
        self.passing.set()
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.passing.is_set():
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def shut(self) -> None:
        self.passing.clear()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def reopen_after(self, seconds: float) -> None:
        threading.Timer(seconds, self.passing.set).start()

    def close(self) -> None:
        self.shut()
        self.listener.close()


@pytest.fixture()
def gated_audit(
    pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AuditLog, Gate]]:
    schema = f"metrics_r{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("METRICS_TARGET", "postgres")
    monkeypatch.setenv("METRICS_SCHEMA", schema)
    direct = WarehouseConfig()
    gate = Gate(pg_env["PGHOST"], int(pg_env["PGPORT"]))
    monkeypatch.setenv("PGHOST", "127.0.0.1")
    monkeypatch.setenv("PGPORT", str(gate.port))
    try:
        yield AuditLog(WarehouseConfig(), retry_seconds=30), gate
    finally:
        gate.close()
        monkeypatch.setenv("PGHOST", pg_env["PGHOST"])
        monkeypatch.setenv("PGPORT", pg_env["PGPORT"])
        with connect(direct) as wh:
            wh.execute(f"drop schema if exists {schema} cascade")


def _entry() -> AuditEntry:
    day = date(2024, 3, 1)
    return AuditEntry("daily_rollups_job", "daily", day, day, day, date(2024, 3, 2), "run-1", 1)


def test_the_failed_row_survives_a_server_restart(gated_audit: tuple[AuditLog, Gate]) -> None:
    audit, gate = gated_audit
    log_id = audit.start(_entry())
    gate.shut()
    gate.reopen_after(1.0)
    cause = "OperationalError: server closed the connection unexpectedly"
    audit.finish(log_id, JobStatus.FAILED, error=cause)
    [row] = audit.entries("run-1")
    assert (row["status"], row["error"]) == ("FAILED", cause)


def test_start_and_close_abandoned_wait_for_the_server_too(
    gated_audit: tuple[AuditLog, Gate],
) -> None:
    audit, gate = gated_audit
    gate.shut()
    gate.reopen_after(1.0)
    log_id = audit.start(_entry())
    gate.shut()
    gate.reopen_after(1.0)
    assert audit.close_abandoned(lambda run_id: False, "run-2", 1) == 1
    [row] = audit.entries("run-1")
    assert row["log_id"] == log_id and row["status"] == "FAILED"


def test_a_server_that_stays_away_fails_after_the_retry_budget(
    gated_audit: tuple[AuditLog, Gate],
) -> None:
    audit, gate = gated_audit
    log_id = audit.start(_entry())
    gate.shut()
    impatient = AuditLog(audit.config, retry_seconds=0.5)
    with pytest.raises(WarehouseUnavailableError):
        impatient.finish(log_id, JobStatus.FAILED, error="x")


def test_errors_that_are_not_about_the_connection_are_not_retried(
    gated_audit: tuple[AuditLog, Gate],
) -> None:
    audit, _ = gated_audit
    audit.start(_entry())
    with pytest.raises(LookupError, match="no audit log row"):
        audit.finish("no-such-row", JobStatus.COMPLETED)
