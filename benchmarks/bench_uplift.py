"""Uplift on Hillstrom over repeated random splits: vipml's learners beside a plain S-learner,
a response model and random targeting.

Protocol: for each seed, ``train_test_split(test_size=0.3, random_state=seed,
stratify=2 * treated + outcome)``; arms Womens vs No E-Mail, Mens vs No E-Mail and any e-mail vs
No E-Mail; outcomes visit, conversion and spend; scikit-uplift's normalised Qini
(``qini_auc_score``) on the test rows. Features: the file's customer columns (recency, history,
mens, womens, newbie, zip_code, channel, history_segment). Prints and writes per-split rows and
the summary (mean, sd, standard error, bootstrap 95% interval of the mean).

    python benchmarks/bench_uplift.py [--seeds 0-9] [--arms womens,mens,any]
        [--outcomes visit,conversion,spend] [--learners s_learner,two_model,...] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FEATURES = ["recency", "history", "mens", "womens", "newbie"]
CATEGORICAL = ["zip_code", "channel", "history_segment"]
ARMS = {
    "womens": ["Womens E-Mail"],
    "mens": ["Mens E-Mail"],
    "any": ["Womens E-Mail", "Mens E-Mail"],
}
BASELINE = {  # the plain S-learner of the acceptance protocol
    "n_estimators": 200,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 100,
}


def hillstrom(data_dir: Path, arm: str) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """The rows of one comparison: features, outcomes and 0/1 treatment."""
    raw = pd.read_csv(data_dir / "hillstrom.csv")
    raw = raw[raw["segment"].isin([*ARMS[arm], "No E-Mail"])].reset_index(drop=True)
    X = raw[FEATURES].astype(np.float64)
    for c in CATEGORICAL:
        X[c] = raw[c].astype("category")
    t = (raw["segment"] != "No E-Mail").to_numpy().astype(int)
    return X, raw[["visit", "conversion", "spend"]], t


def _lgb(binary: bool, seed: int, **params):
    import lightgbm as lgb

    cls = lgb.LGBMClassifier if binary else lgb.LGBMRegressor
    return cls(
        random_state=seed, deterministic=True, force_col_wise=True, n_jobs=2, verbose=-1, **params
    )


def baseline_s(Xf, yf, tf, Xt, seed):
    """LightGBM with the treatment as a feature (200 trees, rate 0.03, 15 leaves, 100 per leaf)."""
    binary = bool(np.isin(yf, (0, 1)).all())
    m = _lgb(binary, seed, **BASELINE).fit(Xf.assign(treated=tf), yf)
    pred = (lambda Z: m.predict_proba(Z)[:, 1]) if binary else m.predict
    return pred(Xt.assign(treated=1)) - pred(Xt.assign(treated=0))


def response(Xf, yf, tf, Xt, seed):
    """P(outcome | treated): LightGBM on the treated rows (the baseline's settings)."""
    binary = bool(np.isin(yf, (0, 1)).all())
    m = _lgb(binary, seed, **BASELINE).fit(Xf[tf == 1], yf[tf == 1])
    return m.predict_proba(Xt)[:, 1] if binary else m.predict(Xt)


def random_ranking(Xf, yf, tf, Xt, seed):
    return np.random.default_rng(seed + 1000).random(len(Xt))


def library(kind: str, config):
    from vipml.uplift import LEARNERS

    def rank(Xf, yf, tf, Xt, seed):
        learner = LEARNERS[kind].from_config(config, seed=seed)
        return learner.fit(Xf, yf, tf).predict(Xt)

    return rank


def run(
    data_dir: Path,
    *,
    seeds: list[int],
    arms: list[str],
    outcomes: list[str],
    learners: list[str],
    config_path: Path | None = None,
    log=print,
    out: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-split rows and the summary for every arm x outcome."""
    from vipml.config import load_config
    from vipml.uplift import repeated_splits

    config = load_config(config_path or ROOT / "configs" / "hillstrom-uplift.yaml")
    rankers = {f"vipml_{k}": library(k, config) for k in learners}
    rankers |= {"s_baseline": baseline_s, "response": response, "random": random_ranking}
    per, summ = [], []
    for arm in arms:
        X, Y, t = hillstrom(data_dir, arm)
        for outcome in outcomes:
            started = time.perf_counter()
            p, s = repeated_splits(X, Y[outcome].to_numpy(), t, rankers, seeds=seeds)
            per.append(p.assign(arm=arm, outcome=outcome))
            summ.append(s.assign(arm=arm, outcome=outcome))
            if out is not None:  # each comparison as it completes
                out.mkdir(parents=True, exist_ok=True)
                per[-1].to_csv(out / f"per_split_{arm}_{outcome}.csv", index=False)
            log(
                f"{arm:>6} {outcome:<10} "
                + "  ".join(f"{k} {v:.4f}" for k, v in s["qini_mean"].items())
                + f"  ({time.perf_counter() - started:.0f} s)"
            )
    return pd.concat(per, ignore_index=True), pd.concat(summ)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-9", help="a range a-b or a list 0,1,2")
    parser.add_argument("--arms", default="womens,mens,any")
    parser.add_argument("--outcomes", default="visit,conversion,spend")
    parser.add_argument("--learners", default="s_learner,two_model,x_learner,transformed_outcome")
    parser.add_argument("--config", default=None)
    parser.add_argument("--out", default=str(HERE / ".uplift"))
    args = parser.parse_args()
    if "-" in args.seeds:
        a, b = args.seeds.split("-")
        seeds = list(range(int(a), int(b) + 1))
    else:
        seeds = [int(s) for s in args.seeds.split(",")]
    data_dir = Path(os.environ.get("VIPML_DATA_DIR", ROOT.parent / "shared" / "data"))
    started = time.perf_counter()
    out = Path(args.out)
    per, summary = run(
        data_dir,
        out=out,
        seeds=seeds,
        arms=args.arms.split(","),
        outcomes=args.outcomes.split(","),
        learners=args.learners.split(","),
        config_path=Path(args.config) if args.config else None,
    )
    out.mkdir(parents=True, exist_ok=True)
    per.to_csv(out / "per_split.csv", index=False)
    summary.to_csv(out / "summary.csv")
    cols = ["arm", "outcome", "qini_mean", "qini_sd", "qini_se", "qini_low", "qini_high"]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(summary[cols].round(4).to_string())
    print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "out": str(out)}))


if __name__ == "__main__":
    main()
