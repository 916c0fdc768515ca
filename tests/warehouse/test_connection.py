"""Opening DuckDB while another process writes it: a bounded wait, then a clear error."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from warehouse import WarehouseBusyError, WarehouseConfig, connect

HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("create table if not exists t as select 1 as x")
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    open(sys.argv[1] + ".released", "w").close()
    con.close()
    """
)


def _hold(path: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens the file for writing and keeps it for `seconds`."""
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None
    assert writer.stdout.readline().strip() == "holding"
    return writer


def test_a_reader_fails_clearly_when_the_writer_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    writer = _hold(path, 30)
    try:
        with pytest.raises(WarehouseBusyError, match="a build is probably running"):
            connect(WarehouseConfig(duckdb_path=str(path)), read_only=True, wait_seconds=0.3)
    finally:
        writer.kill()
        writer.wait()


def test_a_reader_waits_for_the_writer_to_finish(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    writer = _hold(path, 1.0)
    wh = connect(WarehouseConfig(duckdb_path=str(path)), read_only=True, wait_seconds=120)
    try:
        assert Path(f"{path}.released").exists()  # it got in only once the writer let go
        assert wh.query("select x from t") == [(1,)]
    finally:
        wh.close()
        writer.wait()
