"""Scoring 1M customers end to end, against features plus a bare LightGBM predict.

Data: a generated retailer of 1,000,000 customers (cached in benchmarks/.data/); the model: a VIP
bundle trained on 50,000 customers of the same generator. Each side runs in a fresh process:

* bare: load the tables, build the features, ``booster.predict`` on the prepared matrix;
* full: load the tables, ``vipml.score.score`` (features, calibrated predict, reasons from
  contributions, segments, plays, selection, control group) and write the Parquet list.

Target: the full path (reasons for every customer included) at most 2x the bare path; peak
memory under 8 GiB.

    python benchmarks/bench_score.py [--customers 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".data"

CHILD = r"""
import json, resource, sys, time
folder, bundle_path, mode, out = sys.argv[1:5]
from vipml import load_tables
from vipml.bundle import load_bundle
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
bundle = load_bundle(bundle_path)
t0 = time.perf_counter()
tables, _ = load_tables(folder)
res = {"load_s": time.perf_counter() - t0}
t0 = time.perf_counter()
if mode == "bare":
    from vipml.features import build_features
    from vipml.score import scoring_config
    from vipml.train import prepare_matrix
    X = build_features(tables, as_of="2025-01-01", config=scoring_config(bundle, None))
    res["features_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    p = bundle.booster.predict(prepare_matrix(X, bundle.features, bundle.categories))
    res["predict_s"] = time.perf_counter() - t1
    res["rows"] = len(p)
else:
    from vipml.score import score
    from vipml.tables import write_frame
    result = score(tables, bundle, as_of="2025-01-01")
    write_frame(result.targets, out)
    res["rows"] = len(result.targets)
res["work_s"] = time.perf_counter() - t0
res["peak_gib"] = peak()
print(json.dumps(res))
"""


def score_data(customers: int) -> tuple[Path, Path]:
    """The generated retailer (cached) and a VIP bundle trained on 50,000 of its customers."""
    from vipml import load_tables
    from vipml.bundle import save_bundle
    from vipml.config import load_config
    from vipml.datasets import make_retailer
    from vipml.train import train

    gen = {"sessions_per_customer_year": 2.0, "seed": 7}
    folder = CACHE / f"score_{customers}"
    if not (folder / "orders.parquet").exists():
        make_retailer(customers, **gen).to_dir(folder)
    bundles = CACHE / "score_bundle"
    found = sorted(bundles.glob("vip-*")) if bundles.exists() else []
    if not found:
        small = load_tables(make_retailer(50_000, **gen).tables())[0]
        cfg = load_config(
            None, labels={"horizon_days": 90}, train={"n_cutoffs": 4}, tracking={"enabled": False}
        )
        found = [save_bundle(train(small, cfg), tables=small, config=cfg, out=bundles)]
    return folder, found[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    folder, bundle = score_data(args.customers)
    runs = {}
    for mode in ("bare", "full"):
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(folder),
                str(bundle),
                mode,
                str(CACHE / "targets.parquet"),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode:
            sys.exit(f"{mode} failed:\n{proc.stderr[-3000:]}")
        runs[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(mode, json.dumps(runs[mode]), flush=True)
    bare, full = runs["bare"]["work_s"], runs["full"]["work_s"]
    print(
        f"rows {runs['full']['rows']:,}: bare (features + predict) {bare:.1f} s; full score + write {full:.1f} s; "
        f"ratio {full / bare:.2f}x (target <= 2); peak {runs['full']['peak_gib']:.2f} GiB (target < 8)"
    )


if __name__ == "__main__":
    main()
