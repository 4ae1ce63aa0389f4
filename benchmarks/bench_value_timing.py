"""The expected-value timing at scoring: BG/NBD fit and purchase summary, alone and after the
features, on the generated retailer of ``bench_score.py`` (300,000 customers by default).

Measures, in one process after loading the tables and building the features (as ``score`` does):

* ``timing`` with nothing to read back (the BG/NBD fit runs: what scoring paid before);
* ``timing`` after the features, whose BTYD family fitted the same buyers (the fit is read back);
* the purchase summary alone.

The parameters of both ``timing`` calls are checked equal bit for bit.

    python benchmarks/bench_value_timing.py [--data benchmarks/.data/score_300000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=HERE / ".data" / "score_300000")
    parser.add_argument("--as-of", default="2025-01-01")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import pandas as pd

    import vipml.features.btyd as btyd
    from vipml import load_tables
    from vipml.features import build_features
    from vipml.value import purchase_summary, timing
    from vipml.windows import as_cutoff

    if not (args.data / "orders.parquet").exists():
        raise SystemExit(
            f"no generated retailer in {args.data}: run benchmarks/bench_score.py --customers "
            "300000 first, or pass --data"
        )
    as_of = as_cutoff(args.as_of)
    tables, _ = load_tables(args.data)
    started = time.perf_counter()
    X = build_features(tables, as_of=as_of)
    print(f"customers {len(X):,}, order rows {len(tables.orders):,}")
    print(f"features (BTYD family included) {time.perf_counter() - started:.2f} s")
    ids = pd.Index(X.index, name="customer_id")

    def run(label: str, fn, clear: bool) -> object:
        seconds = []
        for _ in range(args.repeat):
            if clear:
                btyd._FITTED.clear()
            started = time.perf_counter()
            out = fn()
            seconds.append(time.perf_counter() - started)
        print(f"{label}: best {min(seconds):.3f} s of {args.repeat}")
        return out

    def call():
        return timing(tables, as_of=as_of, customers=ids, horizon_days=90)

    read_back = run("timing, the features' fit read back", call, clear=False)
    fitted = run("timing, fitted again (nothing to read back)", call, clear=True)
    pd.testing.assert_frame_equal(read_back, fitted, check_exact=True)
    run("purchase summary alone", lambda: purchase_summary(tables.orders, as_of, ids), False)
    print("same p_alive, next_order_at and clv_ratio bit for bit: yes")


if __name__ == "__main__":
    main()
