"""Feature build on a large generated retailer, against the cheapest pass over the same orders.

Data (generated once, cached in benchmarks/.data/): 1M customers, 20M order rows, 30M events,
3M offers. Each measurement runs in a fresh process; peak memory is the process's max RSS.

Reported:
* the full ``build_features`` (every family the tables allow) wall time and peak memory;
* reference (a): a single group-by sum of amount per customer over the same orders, by DuckDB
  (the fastest engine at hand) and, for context, by pandas;
* the ratio full / reference (target: within 10x) and peak memory (target: under 12 GiB).

    python benchmarks/bench_features.py [--customers 1000000] [--orders 20000000] [--events 30000000]
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
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".data"
START = np.datetime64("2022-01-01T00:00:00", "s").astype(np.int64)
SPAN = 3 * 365 * 86400


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    text = pa.array(numbers).cast(pa.string())
    return pa.compute.binary_join_element_wise(prefix, pa.compute.utf8_lpad(text, width, "0"), "")


def _times(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds.astype("datetime64[s]")).cast(pa.timestamp("us", tz="UTC"))


def generate(
    folder: Path, customers: int, orders: int, events: int, offers: int, seed: int = 0
) -> None:
    """Write customers, orders, events and offers Parquet files (vectorised, a minute or so)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    weight = rng.lognormal(0, 1.0, customers)
    weight /= weight.sum()
    signup = START - rng.integers(0, 365 * 86400, customers)
    pq.write_table(
        pa.table(
            {
                "customer_id": _ids("C", np.arange(customers), 7),
                "signup_at": _times(signup),
                "region": pa.array(
                    rng.choice(["Seoul", "Busan", "Incheon", "Daegu", "Gwangju"], customers)
                ),
                "age_band": pa.array(rng.choice(["20s", "30s", "40s", "50s+"], customers)),
            }
        ),
        folder / "customers.parquet",
    )

    cust = rng.choice(customers, orders, p=weight)
    amount = np.round(rng.lognormal(3.5, 0.9, orders), 2)
    status = rng.choice(
        np.array(["completed", "returned", "cancelled"]), orders, p=[0.95, 0.03, 0.02]
    )
    pq.write_table(
        pa.table(
            {
                "order_id": _ids("O", np.arange(orders), 9),
                "customer_id": _ids("C", cust, 7),
                "ordered_at": _times(START + rng.integers(0, SPAN, orders)),
                "amount": pa.array(amount),
                "discount": pa.array(
                    np.where(rng.random(orders) < 0.2, np.round(amount * 0.1, 2), 0.0)
                ),
                "channel": pa.array(rng.choice(np.array(["web", "app", "store"]), orders)),
                "status": pa.array(status),
            }
        ),
        folder / "orders.parquet",
    )
    del cust, amount, status

    cust = rng.choice(customers, events, p=weight)
    kind = rng.choice(
        np.array(["session_start", "product_view", "add_to_cart"]), events, p=[0.2, 0.7, 0.1]
    )
    pq.write_table(
        pa.table(
            {
                "customer_id": _ids("C", cust, 7),
                "occurred_at": _times(START + rng.integers(0, SPAN, events)),
                "event_type": pa.array(kind),
                "session_id": _ids("S", rng.integers(0, events // 5, events), 9),
                "category": pa.array(
                    rng.choice(
                        np.array(["fashion", "beauty", "home", "sports", "food", "tech"]), events
                    )
                ),
                "duration_s": pa.array(np.round(rng.exponential(60, events), 1)),
                "channel": pa.array(rng.choice(np.array(["app", "web"]), events)),
            }
        ),
        folder / "events.parquet",
    )
    del cust, kind

    cust = rng.integers(0, customers, offers)
    sent = START + rng.integers(0, SPAN, offers)
    opened = np.where(rng.random(offers) < 0.4, sent + rng.integers(0, 3 * 86400, offers), -1)
    accepted = np.where(rng.random(offers) < 0.08, sent + rng.integers(0, 14 * 86400, offers), -1)
    pq.write_table(
        pa.table(
            {
                "offer_id": _ids("F", np.arange(offers), 8),
                "customer_id": _ids("C", cust, 7),
                "sent_at": _times(sent),
                "offer_type": pa.array(
                    rng.choice(np.array(["upsell", "cross_sell", "bundle"]), offers)
                ),
                "group": pa.array(np.where(rng.random(offers) < 0.1, "control", "treatment")),
                "opened_at": pa.array(
                    np.where(opened >= 0, opened, 0).astype("datetime64[s]"), mask=opened < 0
                ).cast(pa.timestamp("us", tz="UTC")),
                "accepted_at": pa.array(
                    np.where(accepted >= 0, accepted, 0).astype("datetime64[s]"), mask=accepted < 0
                ).cast(pa.timestamp("us", tz="UTC")),
            }
        ),
        folder / "offers.parquet",
    )


CHILD = r"""
import json, resource, sys, time
folder, mode, as_of = sys.argv[1], sys.argv[2], sys.argv[3]
import pandas as pd
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {}
if mode == "build":
    from vipml import load_tables
    from vipml.features import build_features
    t0 = time.perf_counter()
    tables, report = load_tables(folder)
    out["load_seconds"] = time.perf_counter() - t0
    out["load_peak_mib"] = rss()
    t0 = time.perf_counter()
    frame = build_features(tables, as_of=as_of)
    out["seconds"] = time.perf_counter() - t0
    out["rows"], out["columns"] = frame.shape
    out["families"] = frame.attrs["feature_spec"]["families"]
else:
    orders = pd.read_parquet(folder + "/orders.parquet", columns=["customer_id", "amount"])
    out["load_peak_mib"] = rss()
    if mode == "duckdb":
        import duckdb
        con = duckdb.connect()
        con.register("orders", orders)
        t0 = time.perf_counter()
        res = con.execute("SELECT customer_id, sum(amount) FROM orders GROUP BY customer_id").to_arrow_table()
        out["seconds"] = time.perf_counter() - t0
        out["duckdb"] = duckdb.__version__
    else:
        t0 = time.perf_counter()
        res = orders.groupby("customer_id", sort=False)["amount"].sum()
        out["seconds"] = time.perf_counter() - t0
out["peak_mib"] = rss()
print(json.dumps(out))
"""


def run(folder: Path, mode: str, as_of: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), mode, as_of], capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=20_000_000)
    parser.add_argument("--events", type=int, default=30_000_000)
    parser.add_argument("--offers", type=int, default=3_000_000)
    parser.add_argument("--as-of", default="2024-06-01")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    folder = CACHE / f"retail_{args.customers}_{args.orders}_{args.events}_{args.offers}"
    if not (folder / "offers.parquet").exists():
        t0 = time.perf_counter()
        generate(folder, args.customers, args.orders, args.events, args.offers)
        print(f"generated in {time.perf_counter() - t0:.0f} s -> {folder}", flush=True)
    results: dict[str, list[dict]] = {"build": [], "duckdb": [], "pandas": []}
    for _ in range(args.repeat):
        for mode in results:
            results[mode].append(run(folder, mode, args.as_of))
            print(mode, json.dumps(results[mode][-1]), flush=True)

    def med(mode: str, key: str) -> float:
        return float(np.median([r[key] for r in results[mode]]))

    build, duck, pand = med("build", "seconds"), med("duckdb", "seconds"), med("pandas", "seconds")
    print()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"data: {args.customers:,} customers, {args.orders:,} orders, {args.events:,} events, "
        f"{args.offers:,} offers; as of {args.as_of}"
    )
    b = results["build"][-1]
    print(f"load_tables:                 {med('build', 'load_seconds'):8.2f} s")
    print(
        f"build_features ({b['columns']} columns, {b['rows']:,} rows): {build:8.2f} s, "
        f"peak {med('build', 'peak_mib') / 1024:.2f} GiB (process, load included)"
    )
    print(f"reference: DuckDB group-by sum {duck:8.2f} s; pandas group-by sum {pand:8.2f} s")
    print(
        f"ratio build / DuckDB sum: {build / duck:.1f}x (target <= 10); / pandas sum: {build / pand:.1f}x"
    )


if __name__ == "__main__":
    main()
