"""Plays, selection and channels on the generated retailer.

A VIP bundle is trained on a generated retailer with cutoffs before ``--as-of``; the list is
scored at ``--as-of`` (90 days before the data ends, so the outcome is observed). Printed:

* the share of selected customers whose play contradicts their segment (a win-back play for a new
  customer, a welcome play for an at-risk or high-value one), and the same share for the
  previous rule (the top reason's driver play, whatever its direction or the segment);
* the selection's expected value against "select everyone" and "select the top by score" at the
  same capacity (the number the default selection picks), by the model's expected value and by
  the realised value (``score.value`` or the customer's value feature for each customer who
  became VIP within the horizon, minus the contact cost);
* the channel mix of the treatment group and the rows left out, by reason.

    python benchmarks/bench_plays.py [--customers 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--customers", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--as-of", default="2024-10-01")
    args = ap.parse_args()

    from vipml import load_tables
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.datasets import make_retailer
    from vipml.labels import vip_conversion_labels
    from vipml.plays import contradicts
    from vipml.score import conversion_value, score
    from vipml.train import train

    tables = load_tables(make_retailer(args.customers, seed=args.seed).tables())[0]
    as_of = pd.Timestamp(args.as_of, tz="UTC")
    cfg = load_config(
        None,
        labels={"horizon_days": 90},
        train={"n_cutoffs": 4, "test_cutoff": str((as_of - pd.Timedelta(days=90)).date())},
        tracking={"enabled": False},
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = load_bundle(save_bundle(train(tables, cfg), tables=tables, config=cfg, out=tmp))
        trained = time.perf_counter() - started
        started = time.perf_counter()
        result = score(tables, bundle, as_of=as_of)
        scored = time.perf_counter() - started
    t = result.targets
    sel = t[t["selected"]]
    n = len(sel)

    # the previous rule: the top reason's driver play (score.driver_plays), at-risk and
    # high-value customers excepted, else the segment's play
    sc = cfg.score
    old_theme = np.full(len(t), "", dtype=object)
    top = _top_driver(t, bundle, tables, as_of, cfg)
    for prefix in sc.driver_plays:
        hit = (
            pd.Series(top).astype(str).str.startswith(prefix).to_numpy()
            & ~t["segment"].isin(["at_risk", "high_value"]).to_numpy()
        )
        old_theme[hit] = "win_back" if prefix in ("recency", "days_since_last_visit") else "other"

    labels = vip_conversion_labels(tables, as_of=as_of, horizon_days=90, config=cfg)
    became = labels["label"].reindex(t["customer_id"].to_numpy()).fillna(0).to_numpy()
    from vipml.features import build_features

    X = build_features(tables, as_of=as_of, config=cfg).reindex(t["customer_id"].to_numpy())
    value = conversion_value(X, sc)
    realised = became * value - sc.cost
    inside = (t["in_population"] & (t["channel"] != "")).to_numpy()
    ev = t["expected_value"].to_numpy()
    by_score = np.argsort(-np.where(inside, t["score"].fillna(-1).to_numpy(), -np.inf))[:n]
    chosen = t["selected"].to_numpy()
    out = {
        "customers": args.customers,
        "rows": len(t),
        "selected": n,
        "train_s": round(trained, 1),
        "score_s": round(scored, 2),
        "contradicting_share_selected": float(
            contradicts(sel["segment"].to_numpy(), sel["play_theme"].to_numpy()).mean()
        ),
        "contradicting_share_previous_rule_new": float(
            (old_theme[(t["segment"] == "new").to_numpy()] == "win_back").mean()
        ),
        "expected_value": {
            "selection": float(ev[chosen].sum()),
            "by_score_same_capacity": float(ev[by_score].sum()),
            "everyone": float(np.nansum(ev[inside])),
        },
        "realised_value": {
            "selection": float(realised[chosen].sum()),
            "by_score_same_capacity": float(realised[by_score].sum()),
            "everyone": float(realised[inside].sum()),
        },
        "channels": sel.loc[sel["group"] == "treatment", "channel"].value_counts().to_dict(),
        "left_out": t.loc[t["left_out"] != "", "left_out"].value_counts().to_dict(),
        "drivers": t.loc[t["in_population"], "driver_direction"].value_counts().to_dict(),
    }
    print(json.dumps(out, indent=2, default=int))


def _top_driver(t, bundle, tables, as_of, cfg):
    """The feature behind each row's first reason (the previous rule's driver)."""
    from vipml.features import build_features
    from vipml.model import prepare_matrix
    from vipml.score import contributions, reasons

    X = build_features(tables, as_of=as_of, config=cfg)
    M = prepare_matrix(X, bundle.features, bundle.categories)
    why = reasons(bundle, M, X, bundle.spec, contrib=contributions(bundle, M)[0])
    top = pd.Series(why["_driver_1"], index=X.index)
    return top.reindex(t["customer_id"].to_numpy()).fillna("").to_numpy()


if __name__ == "__main__":
    main()
