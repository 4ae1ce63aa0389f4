"""Reading contract tables from PostgreSQL, columnar, with the time filter run in the database.

A table comes from ``tables.<t>.table: schema.name`` or ``tables.<t>.sql: SELECT ...``, over the
``connection`` URL (``${VIPML_DB_URL}``: the password stays in the environment and is never
printed). Rows arrive as Arrow through the ADBC PostgreSQL driver (``pip install
'vipml[postgres]'``); it was the fastest of the readers measured (``benchmarks/RESULTS.md``).

Given a cutoff, only the rows strictly before ``until = as_of + horizon`` are asked for: the
``WHERE`` runs in the server, against the table's own time column (``ordered_at``,
``occurred_at``, ``sent_at``; the column the config maps to it). The session's time zone is the
config's ``timezone``, so a ``timestamp without time zone`` column is compared as local time,
exactly as vipml reads naive timestamps. ``order_items`` read from the same database as
``orders`` keep only the lines of orders before ``until``. A time column stored as text is not
filtered in the database (the note says so); validation reads it as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow as pa

from vipml.config import TableSource, expand_env, redact_url
from vipml.errors import ConfigError, DataError

#: Tables whose own time column bounds the rows read (customers are read whole).
FILTERED = {
    "orders": "ordered_at",
    "order_lines": "ordered_at",
    "events": "occurred_at",
    "offers": "sent_at",
}


@dataclass(frozen=True)
class DatabaseTable:
    """One contract table held in a database: the adapter and the connection as written."""

    name: str
    source: TableSource
    connection: str

    def describe(self) -> str:
        """Where the rows come from, without the password."""
        what = f"table {self.source.table}" if self.source.table else "sql"
        return f"{redact_url(self.connection)} ({what})"

    def url(self) -> str:
        """The connection URL with ``${NAME}`` expanded; an empty one is a config error."""
        url = expand_env(self.connection).strip()
        if not url:
            names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", self.connection)
            unset = f"environment variable {names[0]} is not set" if names else "it is empty"
            raise ConfigError(
                f"table '{self.name}': the database connection '{self.connection}' gives no URL: "
                f"{unset}.\nFix: export {names[0] if names else 'VIPML_DB_URL'}="
                "postgresql://user:password@host:5432/dbname"
            )
        return url

    def base_sql(self) -> str:
        """The rows of the table, unfiltered, as a query usable in ``FROM (...)``."""
        if self.source.table:
            return f"SELECT * FROM {self.source.table}"  # validated: [schema.]name
        assert self.source.sql is not None
        return self.source.sql

    def time_column(self) -> str | None:
        """The source column holding the table's own time, as the adapter maps it."""
        own = FILTERED.get(self.name)
        return None if own is None else self.source.columns.get(own, own)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _bound(until: pd.Timestamp) -> str:
    return f"TIMESTAMPTZ '{until.tz_convert('UTC').isoformat()}'"


def _secrets(url: str) -> list[str]:
    """The password in a URL or key=value connection string, as written and decoded."""
    found: list[str] = []
    if "://" in url:
        try:
            raw = urlsplit(url).password
        except ValueError:
            raw = None
        if raw:
            found += [raw, unquote(raw)]
        found += [unquote(v) for v in re.findall(r"(?i)[?&]password=([^&#]*)", url)]
    else:
        for value in re.findall(r"(?i)\bpassword\s*=\s*('[^']*'|\S*)", url):
            found += [value, value.strip("'")]
    return [s for s in found if s]


def _scrub(message: str, url: str) -> str:
    message = message.replace(url, redact_url(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        message = message.replace(secret, "***")
    return message


def _driver():
    try:
        import adbc_driver_postgresql.dbapi as dbapi
    except ImportError:
        raise ConfigError(
            "reading tables from PostgreSQL needs the ADBC PostgreSQL driver.\n"
            "Fix: pip install 'vipml[postgres]'"
        ) from None
    return dbapi


def read_database(
    target: DatabaseTable,
    *,
    until: pd.Timestamp | None = None,
    timezone: str = "UTC",
    parent: DatabaseTable | None = None,
) -> tuple[pd.DataFrame, str]:
    """Read one table from the database; only rows before ``until`` when it is given.

    Parameters
    ----------
    target
        The table and its connection.
    until
        Read only rows whose time is strictly before this instant (None: every row).
    timezone
        The session time zone: naive timestamps in the database are local time in it.
    parent
        For ``order_items``: the ``orders`` table in the same database, whose rows before
        ``until`` decide which lines are read.

    Returns
    -------
    (DataFrame, str)
        The rows as read, and a note saying what was read and how it was filtered.
    """
    dbapi = _driver()
    url = target.url()
    base = target.base_sql()
    note = f"read from {target.describe()}"
    try:
        with dbapi.connect(url) as conn, conn.cursor() as cur:
            cur.execute(f"SET TIME ZONE '{timezone}'")
            query = f"SELECT * FROM ({base}) AS vipml_source"
            where = None
            if until is not None:
                where, why = _where(cur, target, parent, url, until)
                note += f"; {why}"
            if where:
                query += f" WHERE {where}"
            cur.execute(query)
            arrow: pa.Table = cur.fetch_arrow_table()
    except (ConfigError, DataError):
        raise
    except Exception as exc:  # the driver raises its own error types
        detail = _scrub(f"{type(exc).__name__}: {exc}", url).strip()
        raise DataError(
            f"table '{target.name}': cannot read from the database {target.describe()}: "
            f"{detail}\nFix: check the connection (VIPML_DB_URL), the server, and "
            f"tables.{target.name}.{'table' if target.source.table else 'sql'} in the config"
        ) from None
    note = f"{arrow.num_rows:,} rows {note}"
    return arrow.to_pandas(), note


def _schema(cur, sql: str) -> pa.Schema:
    cur.execute(f"SELECT * FROM ({sql}) AS vipml_probe LIMIT 0")
    return cur.fetch_arrow_table().schema


def _timelike(schema: pa.Schema, column: str | None) -> bool:
    if column is None or column not in schema.names:
        return False
    kind = schema.field(column).type
    return pa.types.is_timestamp(kind) or pa.types.is_date(kind)


def _where(
    cur, target: DatabaseTable, parent: DatabaseTable | None, url: str, until: pd.Timestamp
) -> tuple[str | None, str]:
    """The WHERE clause bounding the rows to those before ``until``, and a note about it."""
    when = f"{until:%Y-%m-%d %H:%M} UTC"
    column = target.time_column()
    if column is not None:
        if _timelike(_schema(cur, target.base_sql()), column):
            return (
                f"{_quote(column)} < {_bound(until)}",
                f"rows with {column} before {when} only, filtered in the database",
            )
        return None, (
            f"every row: {column} is not a date or timestamp column, so the time filter "
            "cannot run in the database"
        )
    if target.name == "order_items" and parent is not None and parent.url() == url:
        key = target.source.columns.get("order_id", "order_id")
        parent_key = parent.source.columns.get("order_id", "order_id")
        parent_time = parent.time_column()
        if key in _schema(cur, target.base_sql()).names and _timelike(
            _schema(cur, parent.base_sql()), parent_time
        ):
            assert parent_time is not None
            return (
                f"{_quote(key)} IN (SELECT {_quote(parent_key)} FROM ({parent.base_sql()}) "
                f"AS vipml_parent WHERE {_quote(parent_time)} < {_bound(until)})",
                f"only the lines of orders before {when}, filtered in the database",
            )
    return None, "every row (no time column to filter on)"
