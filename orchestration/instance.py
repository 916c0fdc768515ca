"""Which Dagster instance in-process runs (CLI, demo) record to.

With DAGSTER_HOME set, that instance: `DAGSTER_HOME=$(pwd)` uses the repository's production
`dagster.yaml` (PostgreSQL storage); the Makefile's `.dagster_home` gets the local config below
written on first use (SQLite under DAGSTER_HOME, the warehouse pool limited to one writer), so
`make ui` afterwards shows what `make demo` built. Without DAGSTER_HOME, an ephemeral instance.
"""

import os
from pathlib import Path

from dagster import DagsterInstance

LOCAL_INSTANCE_YAML = """\
# Local Dagster instance (written by orchestration.instance when DAGSTER_HOME had no config):
# SQLite storage under DAGSTER_HOME, no server needed. The production config with PostgreSQL
# storage is the repository's dagster.yaml (use DAGSTER_HOME=<repository root>).
concurrency:
  pools:
    # One run at a time may write the warehouse (DuckDB admits a single writer).
    default_limit: 1
telemetry:
  enabled: false
"""


# Materializations of one asset over many partitions (a backfill run writes one per partition)
# are stored in batches of up to this many rows, one INSERT each, instead of one by one.
EVENT_BATCH_SIZE = 500


def batch_event_writes() -> None:
    """Have Dagster store a range run's per-partition materializations in batches.

    Dagster reads DAGSTER_EVENT_BATCH_SIZE (0, off, by default) in the process that runs the
    step, so this is set where the code location is loaded: the CLI, the demo, tests, and every
    run worker `dagster dev` or the daemon starts. A value already in the environment wins. On
    PostgreSQL a 120-day backfill stores its 240 materializations with 2 INSERTs, not 240
    rounds of insert, tags and asset update; SQLite storage writes them one by one either way.
    """
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(EVENT_BATCH_SIZE))


def ensure_local_config(home: Path) -> Path:
    """Write the local instance config into `home` unless it already has a dagster.yaml."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(LOCAL_INSTANCE_YAML)
    return config


def open_instance() -> DagsterInstance:
    """The DAGSTER_HOME instance (with a local config if it had none), else an ephemeral one.

    The instance keeps its storage connections open for the life of this process: by default
    Dagster's PostgreSQL storage opens a new connection for every operation, and a backfill
    records several hundred events (a materialization per partition and asset), each costing
    a few connections. The webserver does the same through this call; a no-op on SQLite.
    """
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home:
        return DagsterInstance.ephemeral()
    ensure_local_config(Path(home))
    instance = DagsterInstance.get()
    # statement_timeout 0 = none (PostgreSQL's default); pool_recycle in seconds.
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
    return instance
