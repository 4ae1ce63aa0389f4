"""Load and validate generated order rows from Parquet, against a plain ``pandas.read_parquet``.

Each measurement runs in a fresh process so peak memory (max RSS) is its own; memory is reported
as the peak minus the process's footprint after imports. Target: loading and validating takes at
most 3x the plain read's time and memory.

    python benchmarks/bench_tables.py [--rows 10000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".data"

CHILD = r"""
import json, resource, sys, time
import pandas as pd
import vipml.tables as vt
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path, mode = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "read":
    frame = pd.read_parquet(path)
    rows = len(frame)
else:
    tables, report = vt.load_tables({"orders": path})
    rows = report.tables["orders"].rows_in
    assert report.tables["orders"].rows_kept + report.tables["orders"].rows_quarantined == rows
elapsed = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "peak_mib": peak / 1024, "base_mib": base / 1024, "rows": rows}))
"""


def make_orders(path: Path, rows: int, seed: int = 0) -> None:
    """Write ``rows`` order rows shaped like a real export (string ids, UTC times, a little mess)."""
    rng = np.random.default_rng(seed)
    customers = max(rows // 20, 1)
    cust = rng.integers(100_000, 100_000 + customers, rows)
    start = np.datetime64("2022-01-01T00:00:00", "s").astype(np.int64)
    seconds = start + rng.integers(0, 3 * 365 * 86400, rows)
    amount = np.round(rng.lognormal(3.5, 0.9, rows), 2)
    status = np.where(rng.random(rows) < 0.03, "returned", "completed")
    amount[status == "returned"] *= -1
    cust_id = pa.array(cust.astype(str))
    missing = rng.random(rows) < 0.001  # a few rows without a customer
    cust_id = pa.compute.if_else(pa.array(missing), pa.scalar(None, pa.string()), cust_id)
    table = pa.table(
        {
            "order_id": pa.array(np.char.add("O", np.arange(rows).astype(str))),
            "customer_id": cust_id,
            "ordered_at": pa.array(seconds.astype("datetime64[s]")).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "amount": pa.array(amount),
            "channel": pa.array(rng.choice(["web", "app", "store"], rows)),
            "status": pa.array(status),
        }
    )
    pq.write_table(table, path)


def measure(path: Path, mode: str) -> dict[str, float]:
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), mode], capture_output=True, text=True, check=True
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"orders_{args.rows}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        make_orders(path, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f} s -> {path}")
    results: dict[str, list[dict[str, float]]] = {"read": [], "load": []}
    for _ in range(args.repeat):
        for mode in ("read", "load"):
            results[mode].append(measure(path, mode))

    def med(mode: str, key: str) -> float:
        return float(np.median([r[key] for r in results[mode]]))

    read_s, load_s = med("read", "seconds"), med("load", "seconds")
    read_m = med("read", "peak_mib") - med("read", "base_mib")
    load_m = med("load", "peak_mib") - med("load", "base_mib")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"pandas {pd.__version__}, pyarrow {pa.__version__}"
    )
    print(f"rows: {args.rows:,}; median of {args.repeat} fresh processes")
    print(f"{'':<28}{'seconds':>10}{'rows/s':>14}{'peak MiB':>12}")
    print(f"{'pandas.read_parquet':<28}{read_s:>10.2f}{args.rows / read_s:>14,.0f}{read_m:>12,.0f}")
    print(f"{'vipml load_tables':<28}{load_s:>10.2f}{args.rows / load_s:>14,.0f}{load_m:>12,.0f}")
    print(
        f"ratio time {load_s / read_s:.2f}x (target <= 3), memory {load_m / read_m:.2f}x (target <= 3)"
    )


if __name__ == "__main__":
    main()
