"""A thin, typed wrapper over a DuckDB, PostgreSQL or Spark connection with one calling convention.

Parameters are always a dict; SQL uses the driver's native named style
(`%(name)s` for psycopg2, `$name` for DuckDB, `:name` for Spark SQL). `Warehouse.param(name)`
writes one for you.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from warehouse.config import WarehouseConfig

# How long a reader waits, by default, for a DuckDB writer (a build) to let go of the file.
READ_WAIT_SECONDS = 10.0


class WarehouseBusyError(RuntimeError):
    """DuckDB's file is held by another process (a build writing it) for longer than the
    caller was willing to wait."""


class WarehouseUnavailableError(RuntimeError):
    """The configured warehouse cannot be opened (no such PostgreSQL database or server, a file
    that is not a DuckDB database); the message says which setting to change."""


def is_lock_error(error: BaseException) -> bool:
    """Whether `error` is DuckDB refusing a file that another process holds."""
    text = str(error).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text)


class Warehouse:
    """One open connection to the configured warehouse."""

    def __init__(self, config: WarehouseConfig, raw: Any) -> None:
        self.config = config
        self.raw = raw

    @property
    def dialect(self) -> str:
        return self.config.target

    @property
    def schema(self) -> str:
        return self.config.schema

    @property
    def source_schema(self) -> str:
        return self.config.source_schema

    def param(self, name: str) -> str:
        """Placeholder for a named parameter in this driver's native style."""
        if self.dialect == "spark":
            return f":{name}"
        return f"%({name})s" if self.dialect == "postgres" else f"${name}"

    def utc_date(self, column: str) -> str:
        """SQL for the UTC calendar day of an instant column (Spark's session zone is UTC and
        its SQL has no AT TIME ZONE)."""
        if self.dialect == "spark":
            return f"cast({column} as date)"
        return f"cast({column} at time zone 'UTC' as date)"

    def utc_day_number(self, column: str) -> str:
        """SQL for the UTC day of an instant column as days since 1970-01-01, an integer: on
        each warehouse the cheapest per-row form (DuckDB's time zone conversion costs 15x its
        integer division of epoch microseconds; PostgreSQL's epoch is a numeric, twice the
        cost of its date arithmetic)."""
        if self.dialect == "spark":
            return f"(unix_micros({column}) div 86400000000)"
        if self.dialect == "postgres":
            return f"(cast({column} at time zone 'UTC' as date) - date '1970-01-01')"
        return f"(epoch_us({column}) // 86400000000)"

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement (autocommit unless inside `transaction()`)."""
        if self.dialect == "spark":
            self.raw.sql(sql, args=dict(params) if params else None).collect()
        elif self.dialect == "postgres":
            with self.raw.cursor() as cur:
                cur.execute(sql, dict(params) if params else None)
        else:
            self.raw.execute(sql, dict(params) if params else None)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return all rows as tuples."""
        rows, _ = self.query_with_columns(sql, params)
        return rows

    def query_with_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> tuple[list[tuple[Any, ...]], list[str]]:
        """Run a query and return (rows, column names)."""
        if self.dialect == "spark":
            frame = self.raw.sql(sql, args=dict(params) if params else None)
            return [tuple(r) for r in frame.collect()], list(frame.columns)
        if self.dialect == "postgres":
            with self.raw.cursor() as cur:
                cur.execute(sql, dict(params) if params else None)
                columns = [d[0] for d in cur.description or ()]
                return [tuple(r) for r in cur.fetchall()], columns
        result = self.raw.execute(sql, dict(params) if params else None)
        columns = [d[0] for d in result.description or ()]
        return [tuple(r) for r in result.fetchall()], columns

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run one statement for many parameter sets."""
        if not rows:
            return
        if self.dialect == "spark":
            for row in rows:
                self.execute(sql, row)
        elif self.dialect == "postgres":
            from psycopg2.extras import execute_batch

            with self.raw.cursor() as cur:
                execute_batch(cur, sql, [dict(r) for r in rows], page_size=1000)
        else:
            self.raw.executemany(sql, [dict(r) for r in rows])

    def insert_rows(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert dict rows (the same keys: columns of `table`): one `executemany`; on Spark,
        where that is a Spark job per row, one statement from a typed DataFrame
        (warehouse.spark.append_rows)."""
        if not rows:
            return
        columns = list(rows[0])
        if self.dialect == "spark":
            from warehouse.spark import append_rows

            append_rows(self, table, columns, rows)
            return
        self.executemany(
            f"insert into {table} ({', '.join(columns)})"
            f" values ({', '.join(self.param(column) for column in columns)})",
            rows,
        )

    @contextmanager
    def transaction(self) -> Iterator[Warehouse]:
        """Everything inside commits together or not at all (PostgreSQL, DuckDB).

        Spark has no transactions: there each statement takes effect when it runs.
        """
        if self.dialect == "spark":
            yield self
        elif self.dialect == "postgres":
            self.raw.autocommit = False
            try:
                yield self
                self.raw.commit()
            except BaseException:
                self.raw.rollback()
                raise
            finally:
                self.raw.autocommit = True
        else:
            self.raw.execute("begin transaction")
            try:
                yield self
                self.raw.execute("commit")
            except BaseException:
                self.raw.execute("rollback")
                raise

    def table_exists(self, schema: str, table: str) -> bool:
        if self.dialect == "spark":
            return bool(self.raw.catalog.tableExists(f"{schema}.{table}"))
        if self.dialect == "postgres":
            # information_schema.tables' own filter, read from pg_catalog by exact name: the
            # view builds every row before filtering (about 0.9 ms), this is one index lookup.
            sql = _PG_TABLE_EXISTS.format(s=self.param("s"), t=self.param("t"))
            rows = self.query(sql, {"s": schema, "t": table})
            return bool(rows[0][0])
        rows = self.query(
            "select count(*) from information_schema.tables "
            f"where table_schema = {self.param('s')} and table_name = {self.param('t')}",
            {"s": schema, "t": table},
        )
        return bool(rows[0][0])

    def close(self) -> None:
        """Close the connection; a Spark session stays up for the process (see warehouse.spark)."""
        if self.dialect != "spark":
            self.raw.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_PG_TABLE_EXISTS: Final = (
    "select count(*) from pg_catalog.pg_class c"
    " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
    " where n.nspname = {s} and c.relname = {t} and c.relkind in ('r', 'p', 'v', 'f')"
    " and not pg_is_other_temp_schema(n.oid)"
    " and (pg_has_role(c.relowner, 'USAGE')"
    " or has_table_privilege(c.oid,"
    " 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')"
    " or has_any_column_privilege(c.oid, 'SELECT, INSERT, UPDATE, REFERENCES'))"
)
"""`table_exists` on PostgreSQL: the rows information_schema.tables shows (tables, partitioned
tables, views, foreign tables the user may use), matched by exact schema and table name; its
``{s}`` and ``{t}`` are filled with the connection's placeholders (`Warehouse.param`)."""


def connect(
    config: WarehouseConfig | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = 0.0,
) -> Warehouse:
    """Open the warehouse the environment points at, with the session time zone set to UTC.

    DuckDB admits one writing process; while another holds the file (a dbt build), this waits
    up to `wait_seconds` for it and then raises WarehouseBusyError saying so.
    """
    config = config or WarehouseConfig()
    if config.target == "postgres":
        return _connect_postgres(config)
    if config.target == "spark":
        return _connect_spark(config)
    deadline = time.monotonic() + max(0.0, wait_seconds)
    delay = 0.05
    while True:
        try:
            return _connect_duckdb(config, read_only)
        except Exception as error:  # a lock held by another process; anything else is raised
            if not is_lock_error(error):
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"the DuckDB warehouse {config.duckdb_path} is in use by another process "
                    f"(a build is probably running; waited {wait_seconds:g}s): try again when "
                    "it has finished"
                ) from error
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 1.0)


def _connect_postgres(config: WarehouseConfig) -> Warehouse:
    import psycopg2

    params: dict[str, Any] = {"options": "-c timezone=UTC", "connect_timeout": 10}
    params.update(config.pg_params())
    try:
        raw = psycopg2.connect(**params)
    except psycopg2.OperationalError as error:
        raise WarehouseUnavailableError(_postgres_hint(error, params)) from error
    raw.autocommit = True
    return Warehouse(config, raw)


def _postgres_hint(error: Exception, params: Mapping[str, Any]) -> str:
    """One line saying what failed and which PG* variable or command fixes it."""
    detail = (str(error).strip().splitlines() or ["no detail"])[0]
    name = params.get("dbname") or params.get("user") or "postgres"
    if "does not exist" in detail and "database" in detail:
        return (
            f"PostgreSQL database {name!r} does not exist: create it (createdb {name}) "
            "or point PGDATABASE at an existing one"
        )
    where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
    return (
        f"cannot connect to PostgreSQL at {where} ({detail}): check PGHOST, PGPORT, PGUSER "
        "and PGPASSWORD"
    )


def _connect_spark(config: WarehouseConfig) -> Warehouse:
    from warehouse.spark import spark_session

    try:
        session = spark_session(config)
    except Exception as error:
        detail = (str(error).strip().splitlines() or ["no detail"])[0]
        raise WarehouseUnavailableError(
            f"cannot start the Spark session ({detail}): check that Java 17 is installed "
            "(make setup installs it) and METRICS_SPARK_WAREHOUSE_DIR / "
            "METRICS_SPARK_METASTORE_DIR, whose metastore one process at a time may open"
        ) from error
    return Warehouse(config, session)


def _connect_duckdb(config: WarehouseConfig, read_only: bool) -> Warehouse:
    import duckdb

    path = config.duckdb_file
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        raw = duckdb.connect(str(path), read_only=read_only)
    except (duckdb.Error, OSError) as error:
        if is_lock_error(error):
            raise
        detail = (str(error).strip().splitlines() or ["no detail"])[0]
        raise WarehouseUnavailableError(
            f"METRICS_DUCKDB_PATH={str(path)!r} cannot be opened as a DuckDB database "
            f"({detail}): point it at a DuckDB file or at a path where one can be created"
        ) from error
    raw.execute("set timezone = 'UTC'")
    return Warehouse(config, raw)


@contextmanager
def open_warehouse(
    config: WarehouseConfig | None = None,
    *,
    read_only: bool = False,
    wait_seconds: float = 0.0,
    reads: Iterable[str] | None = None,
) -> Iterator[Warehouse]:
    """`connect`, closed on exit. On Spark the connection first forgets what this process's
    session cached of the tables it reads (`reads`, ``schema.table`` names, or every table of
    the two schemas), so it sees what a dbt child, another run or the ingestion wrote since
    (warehouse.spark.refresh_tables)."""
    from warehouse.spark import refresh_tables

    wh = connect(config, read_only=read_only, wait_seconds=wait_seconds)
    try:
        if wh.dialect == "spark":
            refresh_tables(wh, reads)
        yield wh
    finally:
        wh.close()
