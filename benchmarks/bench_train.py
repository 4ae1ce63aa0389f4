"""Training time and peak memory on the large generated retailer at three cutoffs.

Uses the data of ``bench_features.py`` (1M customers, 20M orders, 30M events, 3M offers, cached
in benchmarks/.data/), the VIP-conversion task with a 90-day horizon and three cutoffs (train,
validation, test), in a fresh process; prints the wall time of each step and the peak memory.

    python benchmarks/bench_train.py [--folder benchmarks/.data/retail_...]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--folder", default=str(HERE / ".data" / "retail_1000000_20000000_30000000_3000000")
    )
    args = parser.parse_args()
    if not Path(args.folder, "orders.parquet").is_file():
        sys.exit(
            f"no data in {args.folder}: run benchmarks/bench_features.py first (it generates it)"
        )
    from vipml import load_tables
    from vipml.config import load_config
    from vipml.train import build_dataset, plan_cutoffs, train

    def peak() -> float:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024

    out = {}
    t0 = time.perf_counter()
    tables, _ = load_tables(args.folder)
    out["load_s"] = time.perf_counter() - t0
    config = load_config(
        None,
        labels={"horizon_days": 90},
        train={"n_cutoffs": 3, "last_cutoff": "2024-09-01", "min_positives": 20},
        tracking={"enabled": False},
    )
    plan = plan_cutoffs(tables, config)
    t0 = time.perf_counter()
    X, y = build_dataset(tables, plan, config)
    out["dataset_s"] = time.perf_counter() - t0
    out["rows"] = len(X)
    del X, y
    t0 = time.perf_counter()
    result = train(tables, config)
    out["train_total_s"] = time.perf_counter() - t0
    out["cutoffs"] = [f"{c:%Y-%m-%d}" for c in plan.cutoffs]
    out["trees"] = result.best_iteration
    out["test_roc_auc"] = round(float(result.metrics.loc["model", "roc_auc"]), 4)
    out["peak_gib"] = round(peak(), 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
