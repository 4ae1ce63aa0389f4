"""Reading a table from a Parquet dataset: a folder of Parquet files, hive-partitioned or not.

The folder is opened lazily with :mod:`pyarrow.dataset`; given a cutoff, the filter
``time < until`` is pushed down, so files and row groups whose statistics show only later rows
are never read, and the rows left are filtered while scanning. Partition folders such as
``year=2024/month=06`` become columns (kept like any other extra column).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from vipml.errors import DataError


@dataclass(frozen=True)
class ScanStats:
    """How much of a dataset a filter let through."""

    files: int
    files_read: int
    rows: int
    rows_scanned: int
    rows_returned: int


def is_dataset(path: Path) -> bool:
    """A folder holding Parquet files (at any depth)."""
    if not path.is_dir():
        return False
    return any(p.suffix in (".parquet", ".pq") or p.name.startswith("part-") for p in _files(path))


def _files(path: Path):
    return (p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))


def open_dataset(path: Path, *, table: str = "") -> ds.Dataset:
    """The dataset in a folder (hive partitions as columns); hidden and ``_`` files ignored."""
    if not path.is_dir():
        raise DataError(
            f"table '{table}': dataset folder not found: {path}\n"
            f"Fix: check tables.{table}.path in the config, or the --data folder"
        )
    try:
        return ds.dataset(path, format="parquet", partitioning="hive", exclude_invalid_files=False)
    except Exception as exc:  # pyarrow raises many types
        raise DataError(
            f"table '{table}': cannot open the Parquet dataset {path}: {type(exc).__name__}: {exc}"
        ) from None


def time_filter(
    dataset: ds.Dataset, column: str | None, until: pd.Timestamp | None, *, timezone: str = "UTC"
) -> ds.Expression | None:
    """``column < until`` in the column's own type, or None when it cannot be pushed down."""
    if until is None or column is None or column not in dataset.schema.names:
        return None
    kind = dataset.schema.field(column).type
    if pa.types.is_timestamp(kind):
        if kind.tz is None:  # naive: local time in the config's zone, as vipml reads it
            bound = until.tz_convert(timezone).tz_localize(None)
        else:
            bound = until.tz_convert("UTC")
        return ds.field(column) < pa.scalar(bound.as_unit("us"), pa.timestamp("us", kind.tz)).cast(
            kind
        )
    if pa.types.is_date(kind):
        local = until.tz_convert(timezone).tz_localize(None)
        day = local.normalize() + (
            pd.Timedelta(days=1) if local != local.normalize() else pd.Timedelta(0)
        )
        return ds.field(column) < pa.scalar(day.date(), pa.date32()).cast(kind)
    return None


def scan_stats(dataset: ds.Dataset, expression: ds.Expression | None) -> ScanStats:
    """Files and rows in the dataset, and those a scan with ``expression`` reads (row groups
    whose statistics or partition values cannot match are skipped)."""
    fragments = list(dataset.get_fragments())
    rows = sum(f.count_rows() for f in fragments)
    if expression is None:
        return ScanStats(len(fragments), len(fragments), rows, rows, rows)
    kept = list(dataset.get_fragments(filter=expression))
    scanned = 0
    files_read = 0
    for fragment in kept:
        groups = fragment.split_by_row_group(expression)
        if groups:
            files_read += 1
        scanned += sum(rg.num_rows for g in groups for rg in g.row_groups)
    returned = dataset.count_rows(filter=expression)
    return ScanStats(len(fragments), files_read, rows, scanned, returned)


def read_dataset(
    path: Path,
    *,
    table: str,
    column: str | None = None,
    until: pd.Timestamp | None = None,
    timezone: str = "UTC",
) -> tuple[pd.DataFrame, str]:
    """Read a Parquet dataset; only rows with ``column`` before ``until`` when both are given.

    Returns the rows and a note saying how many of the dataset's rows were read.
    """
    dataset = open_dataset(path, table=table)
    expression = time_filter(dataset, column, until, timezone=timezone)
    try:
        arrow = dataset.to_table(filter=expression)
    except Exception as exc:  # pyarrow raises many types
        raise DataError(
            f"table '{table}': cannot read the Parquet dataset {path}: {type(exc).__name__}: {exc}"
        ) from None
    note = f"{arrow.num_rows:,} rows read from the Parquet dataset {path}"
    if expression is not None:
        stats = scan_stats(dataset, expression)
        note += (
            f" ({stats.rows:,} in it; {column} before {until:%Y-%m-%d %H:%M} UTC only, "
            f"{stats.files_read:,} of {stats.files:,} files and {stats.rows_scanned:,} rows scanned)"
        )
    elif until is not None and column is not None:
        note += f"; every row: {column} is not a date or timestamp column to filter on"
    return arrow.to_pandas(), note
