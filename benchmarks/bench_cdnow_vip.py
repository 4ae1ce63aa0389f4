"""CDNOW acceptance: the shipped VIP configs on the published split, beside the baselines.

The model sees only rows dated before ``as_of = 1997-10-01`` (the tables are cut there before
anything is trained or scored); the label is the top 10% of spend in ``[as_of, as_of + 273 d)``
over every customer in the file. The scores are written as ``customer_id,score`` and measured by
the shared evaluation script (``$VIPML_EVAL``, default ``../shared/eval/cdnow_sample_vip.py``),
which computes PR AUC, capture of VIPs in the top 10% (ties shared pro rata), ROC AUC and
bootstrap standard errors (200 resamples) beside prior spend, the RFM quintile score, BG/NBD +
Gamma-Gamma and LightGBM on RFM features. This script adds the model's Brier score and ECE (with
bootstrap standard errors), its number of distinct scores and the share of the list tied at the
top-10% boundary.

    python benchmarks/bench_cdnow_vip.py [--out DIR] [--config configs/vip-all.yaml ...]

Nothing here is tuned on the test window: the configs are used as shipped.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
AS_OF = pd.Timestamp("1997-10-01", tz="UTC")
HORIZON = 273


def cut(tables, as_of):
    """The tables as a retailer holds them on ``as_of``: rows dated before it only."""
    orders = tables.orders
    return tables.replace(orders=orders[orders["ordered_at"] < as_of].reset_index(drop=True))


def labels(tables):
    """The acceptance label on the full file: top 10% of spend in the 273 days from as_of."""
    from vipml.vip import window_spend

    orders = tables.orders
    ids = pd.Index(sorted(orders["customer_id"].unique()), name="customer_id")
    spend = window_spend(orders, AS_OF, AS_OF + pd.Timedelta(days=HORIZON), ids)
    thr = np.quantile(spend.to_numpy(), 0.9)
    return ((spend >= thr) & (spend > 0)).astype(int)


def config_for(path: Path):
    """The shipped config's labels, VIP rule and training; the CDNOW mapping of cdnow.yaml."""
    from vipml.config import load_config

    data = load_config(ROOT / "configs" / "cdnow.yaml")
    cfg = load_config(path, tracking={"enabled": False})
    if cfg.generated is not None or path.name == "vip-all.yaml":
        cfg = cfg.model_copy(
            update={"tables": data.tables, "data_dir": data.data_dir, "generated": None}
        )
        cfg._base_dir = data.base_dir
    cfg.labels.horizon_days = HORIZON
    cfg.train.test_cutoff = None  # the split is the acceptance's: nothing after as_of is seen
    cfg.train.fold_horizon_days = None
    return cfg


def ties(score: np.ndarray, share: float = 0.10) -> tuple[int, float]:
    """Distinct scores, and the share of rows tied with the score at the top-share boundary."""
    s = np.asarray(score, dtype=float)
    s = s[np.isfinite(s)]
    k = int(round(share * len(s)))
    boundary = np.sort(s)[::-1][k - 1]
    return int(len(np.unique(s))), float((s == boundary).sum() / len(s))


def boot(y: np.ndarray, p: np.ndarray, n: int = 200, seed: int = 0) -> dict[str, float]:
    """Brier and ECE with bootstrap standard errors."""
    from vipml.metrics import expected_calibration_error

    rng = np.random.default_rng(seed)
    brier = lambda yy, pp: float(np.mean((pp - yy) ** 2))  # noqa: E731
    draws = []
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        draws.append((brier(y[i], p[i]), expected_calibration_error(y[i], p[i])))
    se = np.std(draws, axis=0, ddof=1)
    return {
        "brier": brier(y, p),
        "brier_se": float(se[0]),
        "ece": expected_calibration_error(y, p),
        "ece_se": float(se[1]),
    }


def run(config_path: Path, out: Path) -> Path:
    from vipml.bundle import load_bundle, save_bundle
    from vipml.io import load_tables
    from vipml.score import score
    from vipml.train import train

    cfg = config_for(config_path)
    full, _ = load_tables(config=cfg)
    seen = cut(full, AS_OF)
    started = time.perf_counter()
    result = train(seen, cfg)
    trained = time.perf_counter() - started
    bundle = load_bundle(save_bundle(result, tables=seen, config=cfg, out=out / "models"))
    scored = score(seen, bundle, as_of=AS_OF, config=cfg)
    t = scored.targets
    name = config_path.stem
    path = out / f"{name}.csv"
    t[["customer_id", "score"]].to_csv(path, index=False)
    y = labels(full).reindex(t["customer_id"]).fillna(0).to_numpy()
    inside = t["in_population"].to_numpy(dtype=bool)
    distinct, tied = ties(t["score"].to_numpy())
    print(f"\n# {name}: trained in {trained:.1f} s")
    for note in result.plan.notes:
        print(f"note: {note}")
    print(f"evaluated cutoffs: {', '.join(f'{c:%Y-%m-%d}' for c in result.plan.cutoffs)}")
    print(
        f"shipped: {result.shipped.get('model')} on {len(result.shipped.get('cutoffs', []))} "
        f"cutoffs, {result.shipped.get('rows')} rows, {result.shipped.get('positives')} "
        f"positives, {result.shipped.get('trees')} trees; horizon {bundle.info['horizon_days']} d"
    )
    print(f"calibration: {result.shipped.get('calibration')}")
    print(
        f"scored {int(inside.sum())} of {len(t)} customers; distinct scores {distinct}, "
        f"share tied at the top-10% boundary {tied:.4f}"
    )
    print(f"drift warnings: {scored.warnings}")
    cal = boot(y[inside], t["score"].to_numpy()[inside])
    print(
        "calibration on the scored customers: " + ", ".join(f"{k} {v:.4f}" for k, v in cal.items())
    )
    print("\ntest fold inside the training data (before as_of):")
    print(result.metrics[["rows", "positives", "roc_auc", "pr_auc", "capture_10"]].round(4))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/vipml-cdnow")
    parser.add_argument(
        "--config",
        action="append",
        default=None,
        help="shipped configs to run (default: configs/vip-all.yaml and configs/cdnow-vip.yaml)",
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    configs = [Path(c) for c in (args.config or ["configs/vip-all.yaml", "configs/cdnow-vip.yaml"])]
    files = [str(run(ROOT / c if not c.is_absolute() else c, out)) for c in configs]
    script = os.environ.get(
        "VIPML_EVAL", str(ROOT.parent.parent / "shared" / "eval" / "cdnow_sample_vip.py")
    )
    if not Path(script).is_file():
        script = str(ROOT.parent / "shared" / "eval" / "cdnow_sample_vip.py")
    print(f"\n# {script}")
    sys.stdout.flush()
    return subprocess.call([sys.executable, script, *files])


if __name__ == "__main__":
    raise SystemExit(main())
