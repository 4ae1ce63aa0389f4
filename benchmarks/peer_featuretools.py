"""Peer timing: featuretools deep feature synthesis (DFS) for purchase (RFM) features as of a cutoff.

Used to compare the speed of ``vipml.features.build_features`` with featuretools on the same
order rows. This script does not import vipml: featuretools 1.31 needs pandas < 2.4 (it fails
with pandas 3.x), so it runs in its own virtual environment, for example::

    python3 -m venv /tmp/ftenv
    /tmp/ftenv/bin/pip install "pandas<2.4" featuretools pyarrow
    /tmp/ftenv/bin/python benchmarks/peer_featuretools.py \
        --orders benchmarks/.data/peer_orders.parquet --as-of 2024-06-01 --customers 10000

Features built, rough counterpart of vipml's purchase family (count, sum, mean, max, std and
min of order rows and of ``amount``): one DFS call without a training window (all history
before the cutoff) and one call per look-back window of 30, 90, 180 and 365 days.
featuretools takes a single ``training_window`` per call, so each window is its own call, and
``seconds`` is the total wall time of all of them.

Semantics differ slightly from vipml, and are left as featuretools does them by default:

* featuretools includes rows stamped exactly at the cutoff time (``time <= cutoff``; its
  ``include_cutoff_time`` option is left at its default, True), while vipml only uses rows
  strictly before ``as_of``. A training window of ``w`` days thus covers
  ``(cutoff - w, cutoff]`` in featuretools and ``[as_of - w, as_of)`` in vipml.
* vipml counts only purchases (positive, not cancelled) in its order counts and spend; here
  every order row is aggregated as is (the generated benchmark data has only plain purchases).

Prints one JSON line on stdout: customers, rows (order rows of those customers strictly before
the cutoff), seconds (DFS calls only, excluding imports, the Parquet read and building the
EntitySet), peak_mib (max RSS of the process), features (feature columns in the joined
matrix), featuretools and pandas versions; plus peak_before_dfs_mib (max RSS after imports and
the read, before the EntitySet and DFS), entityset_seconds and per-call dfs_seconds.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings

import featuretools as ft
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

AGG_PRIMITIVES = ["count", "sum", "mean", "max", "std", "min"]
WINDOWS_DAYS = [30, 90, 180, 365]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", required=True, help="Parquet file of order rows")
    p.add_argument("--as-of", required=True, help="cutoff date or time (UTC), e.g. 2024-06-01")
    p.add_argument(
        "--customers",
        type=int,
        default=10000,
        help="use the first N distinct customer ids, sorted (default 10000)",
    )
    p.add_argument(
        "--windows",
        default=",".join(str(w) for w in WINDOWS_DAYS),
        help="comma-separated look-back windows in days; empty for none (default 30,90,180,365)",
    )
    p.add_argument("--n-jobs", type=int, default=1, help="featuretools n_jobs (default 1)")
    return p.parse_args(argv)


def load_orders(path: str, n_customers: int) -> tuple[pd.DataFrame, list[str]]:
    """Read the needed columns of the rows of the first ``n_customers`` sorted customer ids.

    The ids are picked from the customer_id column alone and the other columns are read with a
    row filter, so the peak memory reflects the subset rather than the whole file.
    """
    id_column = pq.read_table(path, columns=["customer_id"]).column("customer_id")
    ids = sorted(str(v) for v in pc.unique(id_column).to_pylist())[:n_customers]
    del id_column
    table = pq.read_table(
        path,
        columns=["order_id", "customer_id", "ordered_at", "amount"],
        filters=pc.field("customer_id").isin(pa.array(ids, type=pa.string())),
    )
    orders = table.to_pandas()
    del table
    orders["order_id"] = orders["order_id"].astype(str)
    orders["customer_id"] = orders["customer_id"].astype(str)
    ordered_at = pd.to_datetime(orders["ordered_at"], utc=True)
    # Naive UTC times: featuretools' time handling is written for tz-naive datetimes.
    orders["ordered_at"] = ordered_at.dt.tz_localize(None)
    orders["amount"] = orders["amount"].astype("float64")
    return orders.reset_index(drop=True), ids


def build_entityset(orders: pd.DataFrame, ids: list[str]) -> ft.EntitySet:
    es = ft.EntitySet(id="peer")
    es.add_dataframe(
        dataframe_name="customers",
        dataframe=pd.DataFrame({"customer_id": ids}),
        index="customer_id",
        logical_types={"customer_id": "Unknown"},
    )
    es.add_dataframe(
        dataframe_name="orders",
        dataframe=orders,
        index="order_id",
        time_index="ordered_at",
        logical_types={
            "order_id": "Unknown",
            "customer_id": "Unknown",
            "ordered_at": "Datetime",
            "amount": "Double",
        },
    )
    es.add_relationship("customers", "customer_id", "orders", "customer_id")
    # Set last time indexes up front so training windows filter without a warning.
    es.add_last_time_indexes()
    return es


def run(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    as_of = pd.Timestamp(args.as_of)
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    as_of_naive = as_of.tz_localize(None)
    windows = [int(w) for w in args.windows.split(",") if w.strip()]

    orders, ids = load_orders(args.orders, args.customers)
    rows = int((orders["ordered_at"] < as_of_naive).sum())  # strictly before, as vipml counts

    before_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    t0 = time.perf_counter()
    es = build_entityset(orders, ids)
    entityset_seconds = time.perf_counter() - t0

    cutoff = pd.DataFrame({"customer_id": ids, "time": as_of_naive})

    matrices = []
    per_call: dict[str, float] = {}
    seconds = 0.0
    for window in [None, *windows]:
        label = "all" if window is None else f"{window}d"
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fm, _defs = ft.dfs(
                entityset=es,
                target_dataframe_name="customers",
                cutoff_time=cutoff,
                cutoff_time_in_index=True,
                training_window=None if window is None else f"{window} days",
                agg_primitives=AGG_PRIMITIVES,
                trans_primitives=[],
                max_depth=1,
                n_jobs=args.n_jobs,
                verbose=False,
            )
        elapsed = time.perf_counter() - t0
        seconds += elapsed
        per_call[label] = round(elapsed, 4)
        matrices.append(fm.add_suffix(f"_{label}"))

    features = pd.concat(matrices, axis=1)
    if len(features) != len(ids):
        raise SystemExit(f"feature matrix has {len(features)} rows, expected {len(ids)}")

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "customers": len(ids),
        "rows": rows,
        "seconds": round(seconds, 4),
        "peak_mib": round(peak / 1024, 1),
        "features": int(features.shape[1]),
        "featuretools": ft.__version__,
        "pandas": pd.__version__,
        "peak_before_dfs_mib": round(before_mib, 1),
        "entityset_seconds": round(entityset_seconds, 4),
        "dfs_seconds": per_call,
    }


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(run(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
