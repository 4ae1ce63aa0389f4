"""CDNOW: expected purchases and spend per customer against BG/NBD + Gamma-Gamma.

The published split of the CDNOW 1/10 sample (Fader, Hardie and Lee 2005): calibration to
1997-09-30 (the tables are cut at ``as_of = 1997-10-01`` before anything is trained), a 39-week
(273-day) holdout. Every customer of the file is predicted:

* vipml: the bundle's expected-value models (trained with ``configs/vip-all.yaml`` and the CDNOW
  mapping; the history before ``as_of`` holds only a shortened horizon, so the models predict
  that horizon and the BG/NBD curve of each customer stretches the prediction to 273 days:
  ``expected x E[N(273 d)] / E[N(h)]``, the same step that gives ``clv_12m``);
* BG/NBD + Gamma-Gamma fitted on the same rows (purchase days before ``as_of``).

Actual: purchase days (repeat purchases: every customer's first purchase is before ``as_of``)
and net spend in ``[as_of, as_of + 273 d)``. Measures: total (aggregate) error, MAE, RMSE,
Spearman, normalised Gini, and decile calibration tables (deciles of each prediction) with their
mean absolute gap between predicted and actual decile means (``decile_gap``).

    VIPML_DATA_DIR=../shared/data python benchmarks/bench_cdnow_value.py [auto|blend|boost|lightgbm]

(the argument: ``value.with_btyd``; auto, the default, is what ships; the others force that way
of letting BG/NBD + Gamma-Gamma into the value models, for the comparison).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
AS_OF = pd.Timestamp("1997-10-01", tz="UTC")
HOLDOUT = 273


def compare(out: Path | None = None, with_btyd: str = "auto") -> dict[str, object]:
    """Train on the calibration rows, predict the holdout; the measures of both methods.
    ``with_btyd``: ``value.with_btyd`` (auto: the shipped choice; blend, boost, lightgbm: that
    way forced, for the comparison)."""
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.features.btyd import (
        WEEK_DAYS,
        bgnbd_expected,
        fit_bgnbd,
        fit_gamma_gamma,
        gamma_gamma_expected,
    )
    from vipml.io import load_tables, order_values
    from vipml.score import score
    from vipml.train import train
    from vipml.value import decile_table, purchase_summary, timing, value_labels, value_measures

    mapping = load_config(ROOT / "configs" / "cdnow.yaml")
    cfg = load_config(ROOT / "configs" / "vip-all.yaml", tracking={"enabled": False})
    cfg = cfg.model_copy(update={"tables": mapping.tables, "data_dir": mapping.data_dir})
    cfg._base_dir = mapping.base_dir
    cfg.generated = None
    cfg.labels.horizon_days = HOLDOUT
    cfg.value.with_btyd = with_btyd
    full, _ = load_tables(config=cfg)
    seen = full.replace(orders=full.orders[full.orders["ordered_at"] < AS_OF])
    started = time.perf_counter()
    result = train(seen, cfg)
    trained = time.perf_counter() - started
    with TemporaryDirectory() as tmp:
        bundle = load_bundle(save_bundle(result, tables=seen, config=cfg, out=out or Path(tmp)))
        t = score(seen, bundle, as_of=AS_OF, config=cfg).targets.set_index("customer_id")
    ids = pd.Index(sorted(t.index), name="customer_id")
    t = t.reindex(ids)
    h = bundle.value.horizon_days
    stretch = timing(seen, as_of=AS_OF, customers=ids, horizon_days=h, span_days=HOLDOUT)
    ours = {
        "orders": t["expected_orders"].to_numpy() * stretch["clv_ratio"].to_numpy(),
        "spend": t["expected_spend"].to_numpy() * stretch["clv_ratio"].to_numpy(),
    }
    # BG/NBD + Gamma-Gamma on the same rows: purchase days before as_of
    s = purchase_summary(seen.orders, AS_OF, ids)
    x, tx, T = (s[c].to_numpy(dtype=np.float64) for c in ("x", "t_x", "T"))
    rows = seen.orders
    vals = order_values(rows)
    day = rows.assign(gross=vals["gross"], day=rows["ordered_at"].dt.floor("D"))
    daily = day[vals["purchase"]].groupby(["customer_id", "day"])["gross"].sum().reset_index()
    first = daily.groupby("customer_id")["day"].transform("min") == daily["day"]
    repeat = daily[~first].groupby("customer_id")["gross"].mean()
    m = repeat.reindex(ids).fillna(0.0).to_numpy()
    bg = fit_bgnbd(x, tx, T)
    gg = fit_gamma_gamma(x, m)
    n = bgnbd_expected(bg, x, tx, T, HOLDOUT / WEEK_DAYS)
    theirs = {"orders": n, "spend": n * gamma_gamma_expected(gg, x, m)}
    actual = value_labels(full, as_of=AS_OF, horizon_days=HOLDOUT, customers=ids)
    measures, deciles, paired = {}, {}, {}
    for target in ("orders", "spend"):
        a = actual[target].to_numpy()
        # per customer, vipml's absolute error minus BG/NBD's: the mean and its standard error
        gap = np.abs(ours[target] - a) - np.abs(theirs[target] - a)
        paired[target] = {
            "mae_gap": float(gap.mean()),
            "se": float(gap.std(ddof=1) / len(a) ** 0.5),
        }
        measures[target] = pd.DataFrame(
            {
                "vipml": value_measures(a, ours[target]),
                "BG/NBD + Gamma-Gamma": value_measures(a, theirs[target]),
            }
        ).T
        deciles[target] = {
            "vipml": decile_table(a, ours[target]),
            "BG/NBD + Gamma-Gamma": decile_table(a, theirs[target]),
        }
        # decile calibration in one figure: mean |predicted - actual| of the decile means
        measures[target]["decile_gap"] = [
            float((t["predicted"] - t["actual"]).abs().mean()) for t in deciles[target].values()
        ]
    return {
        "measures": measures,
        "deciles": deciles,
        "paired_mae": paired,
        "bgnbd": dict(zip(("r", "alpha", "a", "b"), np.round(bg, 3), strict=True)),
        "gamma_gamma": dict(zip(("p", "q", "gamma"), np.round(gg, 3), strict=True)),
        "value_horizon": h,
        "spend_model": bundle.value.kind,
        "value_info": bundle.value.info,
        "trained_s": trained,
        "customers": len(ids),
    }


def next_order_errors(priors=None) -> pd.DataFrame:
    """Mean absolute error (days) of ``next_order_at`` against each customer's first purchase in
    the holdout, by the weight of the BG/NBD cycle against the customer's own mean gap (the
    weights training chooses among, and the BG/NBD cycle alone)."""
    from vipml.config import load_config
    from vipml.io import load_tables
    from vipml.value import CYCLE_PRIORS, purchase_summary, timing

    priors = (*CYCLE_PRIORS, 1e9) if priors is None else priors

    full, _ = load_tables(config=load_config(ROOT / "configs" / "cdnow.yaml"))
    seen = full.replace(orders=full.orders[full.orders["ordered_at"] < AS_OF])
    ids = pd.Index(sorted(seen.orders["customer_id"].unique()), name="customer_id")
    o = full.orders
    after = o[(o["ordered_at"] >= AS_OF) & (o["ordered_at"] < AS_OF + pd.Timedelta(days=HOLDOUT))]
    first = after.groupby("customer_id")["ordered_at"].min().reindex(ids)
    repeat = purchase_summary(seen.orders, AS_OF, ids)["x"].to_numpy() > 0
    rows = []
    for prior in priors:
        t = timing(seen, as_of=AS_OF, customers=ids, horizon_days=HOLDOUT, prior=prior)
        err = np.abs(((t["next_order_at"] - first) / pd.Timedelta(days=1)).to_numpy(dtype=float))
        m = np.isfinite(err)
        rows.append(
            {
                "prior": prior,
                "mae_repeat_buyers": float(err[m & repeat].mean()),
                "mae_all_buyers": float(err[m].mean()),
                "median_all_buyers": float(np.median(err[m])),
                "repeat_buyers": int((m & repeat).sum()),
                "buyers": int(m.sum()),
            }
        )
    return pd.DataFrame(rows)


def main() -> int:
    with_btyd = sys.argv[1] if len(sys.argv) > 1 else "auto"
    holdout = next_order_errors()
    print(holdout.round(1).to_string(index=False))
    got = compare(with_btyd=with_btyd)
    nxt = got["value_info"].get("next_order", {})
    if "cycle_prior" in nxt:
        w = nxt["cycle_prior"]
        on_holdout = holdout.loc[holdout["prior"] == w, "mae_repeat_buyers"]
        print(
            f"next_order_at: training chose the weight {w:g} (MAE "
            f"{nxt.get('training_mae_days_chosen', float('nan')):.1f} days over "
            f"{nxt['training_customers']} repeat buyers at {', '.join(nxt['cutoffs'])}; by weight "
            f"{ {k: round(v, 1) for k, v in nxt['training_mae_days'].items()} }); holdout MAE "
            f"with it: {float(on_holdout.iloc[0]) if len(on_holdout) else float('nan'):.1f} days"
        )
    for target, b in got["value_info"].get("btyd", {}).items():
        test = {m: (round(v["deviance"], 4), round(v["mae"], 4)) for m, v in b["test"].items()}
        print(
            f"{target}: {b['mode']} (asked {b['asked']}); validation Poisson deviance "
            f"{ {m: round(v, 4) for m, v in b['validation_deviance'].items()} }, blend weight "
            f"{b.get('blend_weight')}, boosted trees {b.get('boost_trees')}, actual / BTYD total "
            f"{b.get('btyd_total_ratio', float('nan')):.3f}; test fold (deviance, MAE) {test}"
        )
    print(
        f"CDNOW 1/10 sample, {got['customers']} customers; trained in {got['trained_s']:.1f} s; "
        f"value models on a {got['value_horizon']}-day horizon (spend model "
        f"{got['spend_model']}), stretched to {HOLDOUT} days by each customer's BG/NBD curve"
    )
    print(f"BG/NBD {got['bgnbd']}; Gamma-Gamma {got['gamma_gamma']}")
    for target in ("orders", "spend"):
        print(f"\n## {target} in the 39-week holdout")
        cols = ["actual_total", "predicted_total", "total_error", "mae", "rmse", "spearman", "gini",
                "decile_gap"]  # fmt: skip
        print(got["measures"][target][cols].round(4).to_string())
        gap = got["paired_mae"][target]
        print(
            f"MAE, vipml - BG/NBD (paired over customers): {gap['mae_gap']:+.4f} ± {gap['se']:.4f}"
        )
        for name, table in got["deciles"][target].items():
            print(f"\n{name}: deciles of the prediction (1 = highest)")
            print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
