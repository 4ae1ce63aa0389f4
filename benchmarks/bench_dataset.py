"""Reading a table from a hive-partitioned Parquet dataset with the time filter pushed down.

Writes a generated retailer's ``events`` and ``orders`` as datasets partitioned by month
(``month=2024-06/part-0.parquet``, time-sorted, row groups of ``--row-group`` rows), then reads
each as ``vipml.load_tables`` does for several cutoffs: rows in the dataset, files and rows
scanned (row groups whose statistics cannot match are skipped), rows returned, and the time,
beside reading the whole dataset.

    python benchmarks/bench_dataset.py [--customers 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vipml.datasets import make_retailer  # noqa: E402
from vipml.io.dataset import open_dataset, read_dataset, scan_stats, time_filter  # noqa: E402

TIMES = {"orders": "ordered_at", "events": "occurred_at"}


def write_by_month(frame: pd.DataFrame, column: str, folder: Path, row_group: int) -> None:
    """A hive-partitioned dataset, one folder per month, rows sorted by time."""
    frame = frame.sort_values(column, kind="stable")
    table = pa.Table.from_pandas(
        frame.assign(month=frame[column].dt.strftime("%Y-%m")), preserve_index=False
    )
    ds.write_dataset(
        table,
        folder,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive"),
        max_rows_per_group=row_group,
        min_rows_per_group=min(row_group, 1024),
        existing_data_behavior="overwrite_or_ignore",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--row-group", type=int, default=65_536)
    parser.add_argument(
        "--cutoffs", default="2023-01-01,2024-01-01,2024-03-15,2024-07-01", help="comma-separated"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}"
        f", pyarrow {pa.__version__}, pandas {pd.__version__}"
    )
    retailer = make_retailer(args.customers, seed=0)
    frames = retailer.tables()
    folder = Path(tempfile.mkdtemp(prefix="vipml-dataset-"))
    try:
        for name, col in TIMES.items():
            write_by_month(frames[name], col, folder / name, args.row_group)
        print(f"data: {retailer.start:%Y-%m-%d} .. {retailer.end:%Y-%m-%d}, partitioned by month")
        print()
        print(
            "| table | cutoff | rows in dataset | files read | rows scanned | rows returned "
            "| seconds (median) |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for name, col in TIMES.items():
            dataset = open_dataset(folder / name, table=name)
            for cutoff in [None, *args.cutoffs.split(",")]:
                until = None if cutoff is None else pd.Timestamp(cutoff, tz="UTC")
                stats = scan_stats(dataset, time_filter(dataset, col, until))
                seconds = []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    frame, _ = read_dataset(folder / name, table=name, column=col, until=until)
                    seconds.append(time.perf_counter() - t0)
                assert len(frame) == stats.rows_returned
                print(
                    f"| {name} | {cutoff or 'none (every row)'} | {stats.rows:,} | "
                    f"{stats.files_read:,} of {stats.files:,} | {stats.rows_scanned:,} | "
                    f"{stats.rows_returned:,} | {statistics.median(seconds):.3f} |"
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
