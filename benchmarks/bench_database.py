"""Reading contract tables from PostgreSQL: three columnar readers, and the time filter.

Starts a throwaway PostgreSQL server (as the tests do), loads a generated retailer into it, then
reads each table into pandas with

* the ADBC PostgreSQL driver (``cursor.fetch_arrow_table``; what vipml uses),
* connectorx (``read_sql(..., return_type="arrow")``),
* psycopg 3 ``COPY (...) TO STDOUT (FORMAT csv)`` parsed by ``pyarrow.csv`` with the table's
  column types,

median of ``--repeat`` runs each, readers taking turns. Then ``vipml.load_tables`` reads the
whole retailer from the database, and only what a cutoff needs (the filter in the database).

    python benchmarks/bench_database.py [--customers 100000] [--repeat 3]

Needs the bench and postgres extras (``pip install -e '.[bench,postgres]'``) and PostgreSQL's
server programs (``make postgres``).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pgserver import postgres_server  # noqa: E402
from vipml.config import load_config  # noqa: E402
from vipml.datasets import make_retailer  # noqa: E402
from vipml.io import load_tables  # noqa: E402

TABLES = ("orders", "order_items", "events")


def read_adbc(url: str, sql: str, schema: pa.Schema) -> pa.Table:
    import adbc_driver_postgresql.dbapi as dbapi

    with dbapi.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def read_connectorx(url: str, sql: str, schema: pa.Schema) -> pa.Table:
    import connectorx as cx

    return cx.read_sql(url, sql, return_type="arrow")


def read_copy(url: str, sql: str, schema: pa.Schema) -> pa.Table:
    import psycopg

    buf = io.BytesIO()
    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        with conn.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)") as copy:
            for chunk in copy:
                buf.write(chunk)
    buf.seek(0)
    types = {f.name: f.type for f in schema}
    return pcsv.read_csv(
        buf,
        convert_options=pcsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=True,
            timestamp_parsers=["%Y-%m-%d %H:%M:%S%z", pcsv.ISO8601],
        ),
    )


READERS = {"ADBC (adbc-driver-postgresql)": read_adbc, "connectorx": read_connectorx}
READERS["psycopg COPY csv -> pyarrow"] = read_copy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--as-of", default="2024-01-01")
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}"
        f", pyarrow {pa.__version__}, pandas {pd.__version__}"
    )
    retailer = make_retailer(args.customers, seed=0)
    frames = retailer.tables()
    with postgres_server() as url:
        import adbc_driver_postgresql.dbapi as dbapi

        with dbapi.connect(url) as conn, conn.cursor() as cur:
            cur.execute("CREATE SCHEMA shop")
            for name, frame in frames.items():
                t0 = time.perf_counter()
                cur.adbc_ingest(
                    name,
                    pa.Table.from_pandas(frame, preserve_index=False),
                    mode="create",
                    db_schema_name="shop",
                )
                conn.commit()
                print(
                    f"loaded shop.{name}: {len(frame):,} rows in {time.perf_counter() - t0:.2f} s"
                )
            cur.execute("ANALYZE")
        print()
        print("| table | rows | reader | seconds (median) | rows/s |")
        print("| --- | ---: | --- | ---: | ---: |")
        for name in TABLES:
            sql = f"SELECT * FROM shop.{name}"
            schema = read_adbc(url, sql + " LIMIT 0", pa.schema([])).schema
            times: dict[str, list[float]] = {r: [] for r in READERS}
            rows = {}
            for _ in range(args.repeat):
                for label, reader in READERS.items():
                    t0 = time.perf_counter()
                    table = reader(url, sql, schema)
                    table.to_pandas()
                    times[label].append(time.perf_counter() - t0)
                    rows[label] = table.num_rows
            for label, ts in times.items():
                med = statistics.median(ts)
                print(
                    f"| {name} | {rows[label]:,} | {label} | {med:.3f} | {rows[label] / med / 1e6:.2f}M |"
                )
        os.environ["VIPML_DB_URL"] = url
        cfg = load_config(
            None,
            connection="${VIPML_DB_URL}",
            tables={n: {"table": f"shop.{n}"} for n in frames},
        )
        print()
        print("| vipml.load_tables from PostgreSQL | rows read | seconds (median) |")
        print("| --- | ---: | ---: |")
        for label, window in (
            ("every row", {}),
            (f"as_of {args.as_of} (filter in the database)", {"as_of": args.as_of}),
        ):
            ts = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                _, report = load_tables(config=cfg, **window)
                ts.append(time.perf_counter() - t0)
            read = sum(t.rows_in for t in report.tables.values())
            print(f"| {label} | {read:,} | {statistics.median(ts):.2f} |")


if __name__ == "__main__":
    main()
