"""Features on Spark (local[2]) and bucket by bucket on one machine, against the single-machine
build, on one generated retailer; each side in a fresh process.

* single: ``load_tables`` + ``build_features`` (one process, every table in memory);
* spark: ``build_features_spark`` in ``local[2]`` from the Parquet folder, written as a Parquet
  dataset; time split into the bucket pass, the aggregate pass (VIP bar) and the write;
* buckets: ``features_local`` (``--engine local --buckets N``), split / buckets / aggregate / write;
* score (with ``--bundle``): ``score_local``, features and the target list bucket by bucket.

Peak memory is the peak resident set of each process: the driver, and for Spark the largest of
the JVM and the largest Python worker (sampled every half second).

    python benchmarks/bench_spark.py [--customers 1000000] [--buckets 16] [--skip single,spark]
    # the out-of-core build at 100M order rows (5M customers, denser histories), on a quiet machine:
    python benchmarks/bench_spark.py --customers 5000000 --dense 12.5 --buckets 64 \
        --skip single,spark [--bundle models/vip-...]  # with a bundle: the target list too
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".data"
AS_OF = "2025-01-01"

CHILD = r"""
import json, os, resource, shutil, sys, time
folder, mode, out, buckets = sys.argv[1:5]
buckets = int(buckets)
def peak(who):
    return resource.getrusage(who).ru_maxrss / 1024 / 1024
res = {}
t0 = time.perf_counter()
if mode == "single":
    from vipml import load_tables
    from vipml.features import build_features
    tables, _ = load_tables(folder, as_of="__AS_OF__")
    res["load_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    X = build_features(tables, as_of="__AS_OF__")
    res["features_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    X.reset_index().to_parquet(out)
    res["write_s"] = time.perf_counter() - t1
    res["rows"] = len(X)
elif mode == "spark":
    import threading
    import psutil
    from vipml.spark import TIMINGS, build_features_spark, session, write_parquet
    peaks = {"jvm": 0, "worker": 0}
    stop = threading.Event()
    def sample():  # the JVM and its Python workers are not waited for by this process
        me = psutil.Process()
        while not stop.is_set():
            for child in me.children(recursive=True):
                try:
                    kind = "jvm" if "java" in child.name() else "worker"
                    peaks[kind] = max(peaks[kind], child.memory_info().rss)
                except psutil.Error:
                    pass
            stop.wait(0.5)
    threading.Thread(target=sample, daemon=True).start()
    spark = session("local[2]")
    spark.sparkContext.setLogLevel("ERROR")
    res["session_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    frame = build_features_spark(folder, as_of="__AS_OF__", n_buckets=buckets, spark=spark)
    res["bucket_pass_s"] = TIMINGS.get("buckets")
    res["aggregate_pass_s"] = TIMINGS.get("aggregate")
    t2 = time.perf_counter()
    write_parquet(frame, out)
    res["write_s"] = time.perf_counter() - t2
    res["features_s"] = time.perf_counter() - t1
    res["rows"] = spark.read.parquet(out).count()
    stop.set()
    spark.stop()
    res["jvm_peak_gib"] = peaks["jvm"] / 2**30
    res["python_worker_peak_gib"] = peaks["worker"] / 2**30
elif mode == "score":  # features and the target list, bucket by bucket
    from vipml.buckets import score_local
    from vipml.bundle import load_bundle
    bundle = load_bundle(os.environ["VIPML_BENCH_BUNDLE"])
    run, _ = score_local(folder, bundle, as_of="__AS_OF__", out=out, n_buckets=buckets)
    res.update({k + "_s": v for k, v in run.seconds.items()})
    res["rows"] = run.rows
else:
    from vipml.buckets import features_local
    run = features_local(folder, cutoffs=["__AS_OF__"], out=out, n_buckets=buckets)
    res.update({k + "_s": v for k, v in run.seconds.items()})
    res["features_s"] = time.perf_counter() - t0
    res["rows"] = run.rows
res["work_s"] = time.perf_counter() - t0
res["peak_gib"] = peak(resource.RUSAGE_SELF)
print(json.dumps(res))
""".replace("__AS_OF__", AS_OF)


def dense_data(
    customers: int, orders_per_year: float, sessions_per_year: float
) -> tuple[Path, int]:
    """A large retailer written chunk by chunk (``vipml.datasets.write_retailer``, cached):
    5M customers at 12.5 orders per year give about 100M order rows."""
    import pyarrow.dataset as ds

    from vipml.datasets import write_retailer

    folder = CACHE / f"dense_{customers}_{orders_per_year:g}_{sessions_per_year:g}"
    if not (folder / "orders").exists():
        import resource
        import time

        started = time.perf_counter()
        counts = write_retailer(
            folder,
            customers,
            seed=7,
            progress=True,
            orders_per_customer_year=orders_per_year,
            sessions_per_customer_year=sessions_per_year,
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(
            f"generated {counts} in {time.perf_counter() - started:.1f} s, peak {peak:.2f} GiB",
            flush=True,
        )
    rows = ds.dataset(folder / "orders", format="parquet").count_rows()
    return folder, rows


def data(customers: int) -> tuple[Path, int]:
    """The generated retailer as Parquet (cached): orders as a month-partitioned dataset."""
    import pandas as pd
    import pyarrow.dataset as ds

    from vipml.datasets import make_retailer

    folder = CACHE / f"spark_{customers}"
    if not (folder / "orders").exists():
        tmp = CACHE / f"spark_{customers}.tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        for name, frame in make_retailer(customers, seed=7).tables().items():
            if name == "orders":
                month = pd.to_datetime(frame["ordered_at"], utc=True).dt.strftime(
                    "%%Y-%%m".replace("%%", "%")
                )
                frame.assign(month=month).to_parquet(tmp / "orders", partition_cols=["month"])
            else:
                frame.to_parquet(tmp / f"{name}.parquet")
        os.replace(tmp, folder)
    rows = ds.dataset(folder / "orders", format="parquet", partitioning="hive").count_rows()
    return folder, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--buckets", type=int, default=16)
    parser.add_argument("--skip", default="", help="comma-separated: single, spark, buckets")
    parser.add_argument(
        "--dense",
        type=float,
        default=None,
        metavar="ORDERS_PER_YEAR",
        help="generate chunk by chunk with this order rate (12.5 with --customers 5000000: "
        "about 100M order rows)",
    )
    parser.add_argument("--sessions-per-year", type=float, default=1.0)
    parser.add_argument(
        "--bundle",
        default=None,
        help="a VIP bundle: also score the data bucket by bucket (score_local), features included",
    )
    args = parser.parse_args()
    if args.dense is not None:
        folder, orders = dense_data(args.customers, args.dense, args.sessions_per_year)
    else:
        folder, orders = data(args.customers)
    print(
        f"customers {args.customers:,}; order rows {orders:,}; load {os.getloadavg()}", flush=True
    )
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "MLFLOW_DISABLE_TELEMETRY": "true"}
    skip = {s for s in args.skip.split(",") if s}
    if args.bundle:
        env["VIPML_BENCH_BUNDLE"] = str(Path(args.bundle).resolve())
    for mode in ("single", "spark", "buckets", "score"):
        if mode in skip or (mode == "score" and not args.bundle):
            continue
        out = CACHE / f"features_{mode}"
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(folder), mode, str(out), str(args.buckets)],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode:
            sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            mode,
            json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}),
            flush=True,
        )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
