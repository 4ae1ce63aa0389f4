"""Time-ordered training: snapshots at several cutoffs, LightGBM, calibration, baselines, metrics.

The cutoffs are spaced at least one horizon apart, so the label window of a cutoff ends before the
next cutoff begins: no label window overlaps a later fold's features. The latest cutoff is the
test fold, the one before it the validation fold (early stopping and calibration), the others
train. Two baselines are trained and scored on the same split: an RFM heuristic and a logistic
regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vipml.config import Config, as_config
from vipml.errors import DataError
from vipml.features import build_snapshots
from vipml.features.registry import Feature, FeatureSpec
from vipml.io import Tables
from vipml.labels import churn_labels, data_end, data_span, upsell_labels, vip_conversion_labels
from vipml.metrics import curve_points, evaluate
from vipml.model import (  # noqa: F401  (re-exported: the public names stay importable here)
    Calibrator,
    choose_calibration,
    drift_reference,
    population_stability,
    prepare_matrix,
)
from vipml.windows import as_cutoff, as_cutoffs


@dataclass
class Plan:
    """Cutoffs and horizon of a training run, and what had to give way."""

    cutoffs: list[pd.Timestamp]
    horizon_days: int
    notes: list[str] = field(default_factory=list)
    horizons: list[int] | None = None  # per cutoff, when the earlier folds use a shorter one
    fold_map: dict[str, list[pd.Timestamp]] | None = None  # set when folds are not by cutoff

    def horizon_at(self, cutoff: pd.Timestamp) -> int:
        """The label horizon used at a cutoff."""
        if self.horizons is None:
            return self.horizon_days
        return self.horizons[self.cutoffs.index(cutoff)]

    @property
    def folds(self) -> dict[str, list[pd.Timestamp]]:
        """train / valid / test cutoffs."""
        if self.fold_map is not None:
            return self.fold_map
        return {"train": self.cutoffs[:-2], "valid": [self.cutoffs[-2]], "test": [self.cutoffs[-1]]}


def plan_cutoffs(tables: Tables, config: Config | str | None = None) -> Plan:
    """Cutoffs for training, the latest one a horizon before the data ends.

    When the history is too short for ``n_cutoffs`` cutoffs a horizon apart, the plan keeps the
    cutoffs that fit; when fewer than three fit, it shortens the horizon to the longest that
    gives three, and says so in ``notes``.
    """
    config = as_config(config)
    tc = config.train
    horizon = config.labels.horizon_days
    notes: list[str] = []
    if tc.cutoffs:
        cutoffs = as_cutoffs(tc.cutoffs)
        if len(cutoffs) < 3:
            raise DataError(
                f"train.cutoffs lists {len(cutoffs)} dates; train, validation and test need 3"
            )
        gaps = np.diff([c.value for c in cutoffs]) / 86_400e9
        if (gaps < horizon).any():
            raise DataError(
                f"train.cutoffs are {int(gaps.min())} days apart, less than the {horizon}-day horizon: "
                "a label window would overlap the next fold's features.\n"
                "Fix: space the cutoffs at least labels.horizon_days apart, or shorten the horizon"
            )
        return Plan(cutoffs, horizon, notes)
    start, end = data_span(tables)
    if end is None or start is None:
        raise DataError("no dated rows: cannot plan training cutoffs")
    first_allowed = start + pd.Timedelta(days=tc.min_history_days)
    if tc.test_cutoff:
        test = as_cutoff(tc.test_cutoff, name="train.test_cutoff")
        return _plan_with_test(test, first_allowed, end, horizon, tc)
    while True:
        step = tc.step_days or horizon
        if step < horizon:
            raise DataError(
                f"train.step_days ({step}) is shorter than labels.horizon_days ({horizon})"
            )
        last = (
            as_cutoff(tc.last_cutoff)
            if tc.last_cutoff
            else (end - pd.Timedelta(days=horizon)).ceil("D")
        )
        cutoffs = [last - pd.Timedelta(days=step * k) for k in range(tc.n_cutoffs)][::-1]
        fit = [c for c in cutoffs if c >= first_allowed]
        if len(fit) >= 3 or horizon <= 7:
            break
        horizon = max(7, int(horizon * 0.8))
    if len(fit) < 3:
        raise DataError(
            f"the data ({start:%Y-%m-%d} .. {end:%Y-%m-%d}) is too short for three cutoffs a horizon apart.\n"
            "Fix: give more history, or set labels.horizon_days and train.step_days shorter"
        )
    if horizon != config.labels.horizon_days:
        notes.append(
            f"horizon shortened from {config.labels.horizon_days} to {horizon} days: the history "
            f"({start:%Y-%m-%d} .. {end:%Y-%m-%d}) is too short for three cutoffs with the longer one"
        )
    if len(fit) < tc.n_cutoffs:
        notes.append(f"{len(fit)} of {tc.n_cutoffs} cutoffs fit in the history")
    return Plan(fit, horizon, notes)


def _plan_with_test(
    test: pd.Timestamp, first_allowed: pd.Timestamp, end: pd.Timestamp, horizon: int, tc: Any
) -> Plan:
    """A fixed test cutoff with the full horizon; the earlier cutoffs a shorter horizon apart so
    that every earlier label window ends by the test cutoff.

    With ``train.fold_horizon_days`` the validation cutoff is that many days before the test and
    the training cutoffs end that many days before the validation one, ``train.step_days`` apart
    (training windows may overlap each other, never a later fold)."""
    n_cutoffs = tc.n_cutoffs
    if test + pd.Timedelta(days=horizon) > end + pd.Timedelta(days=1):
        raise DataError(
            f"train.test_cutoff {test:%Y-%m-%d} plus {horizon} days runs past the data's end "
            f"({end:%Y-%m-%d}).\nFix: an earlier test_cutoff or a shorter labels.horizon_days"
        )
    span = (test - first_allowed) / pd.Timedelta(days=1)
    if tc.fold_horizon_days:
        h = tc.fold_horizon_days
        valid = test - pd.Timedelta(days=h)
        step_train = tc.step_days or h
        train_cuts = []
        t = valid - pd.Timedelta(days=h)
        while t >= first_allowed and len(train_cuts) < max(n_cutoffs - 2, 1):
            train_cuts.append(t)
            t -= pd.Timedelta(days=step_train)
        if not train_cuts:
            raise DataError(
                f"no training cutoff fits {h} days before the validation cutoff {valid:%Y-%m-%d}.\n"
                "Fix: a shorter train.fold_horizon_days"
            )
        cuts = [*train_cuts[::-1], valid, test]
        note = (
            f"training and validation cutoffs use a {h}-day horizon; the test cutoff "
            f"{test:%Y-%m-%d} keeps {horizon} days"
        )
        return Plan(
            cuts, horizon, [note] if h < horizon else [], horizons=[h] * (len(cuts) - 1) + [horizon]
        )
    before = max(n_cutoffs - 1, 2)
    step = 0
    while before >= 2:
        step = min(horizon, int(span // before))
        if step >= 7:
            break
        before -= 1
    if before < 2:
        raise DataError(
            f"the history before train.test_cutoff ({test:%Y-%m-%d}) is {int(span)} days: too short "
            "for a training and a validation cutoff.\nFix: a later test_cutoff, or less "
            "train.min_history_days"
        )
    earlier = [test - pd.Timedelta(days=step * k) for k in range(before, 0, -1)]
    notes = []
    if step < horizon:
        notes.append(
            f"training and validation cutoffs ({', '.join(f'{c:%Y-%m-%d}' for c in earlier)}) use a "
            f"{step}-day horizon: the history before {test:%Y-%m-%d} is too short for {horizon} "
            f"days; the test cutoff keeps {horizon} days"
        )
    return Plan([*earlier, test], horizon, notes, horizons=[step] * len(earlier) + [horizon])


def labels_for(
    tables: Tables, task: str, *, as_of: pd.Timestamp, horizon_days: int, config: Config
) -> pd.Series:
    """The task's labels at one cutoff (index customer_id)."""
    if task == "vip":
        return vip_conversion_labels(tables, as_of=as_of, horizon_days=horizon_days, config=config)[
            "label"
        ]
    if task == "churn":
        return churn_labels(tables, as_of=as_of, horizon_days=horizon_days)["label"]
    raise DataError(f"unknown task '{task}' (vip, churn)")


def build_dataset(
    tables: Tables, plan: Plan, config: Config, *, progress: bool = False
) -> tuple[pd.DataFrame, pd.Series]:
    """Features at every cutoff joined to the labels: index (as_of, customer_id)."""
    feats = build_snapshots(tables, cutoffs=plan.cutoffs, config=config, progress=progress)
    parts = []
    for t in plan.cutoffs:
        y = labels_for(
            tables, config.train.task, as_of=t, horizon_days=plan.horizon_at(t), config=config
        )
        y.index = pd.MultiIndex.from_arrays([pd.DatetimeIndex([t] * len(y), name="as_of"), y.index])
        parts.append(y)
    y = pd.concat(parts).rename("label")
    joined = feats.join(y, how="inner")
    X = joined.drop(columns="label")
    X.attrs = feats.attrs
    return X, joined["label"].astype(np.int8)


OFFER_FEATURES = (
    Feature(
        "offer_type",
        "offer",
        "offers",
        "Type of the offer",
        "오퍼 유형",
        unit="category",
        fill=None,
        kind="categorical",
    ),
    Feature(
        "offer_category",
        "offer",
        "offers",
        "Category of the offer",
        "오퍼 카테고리",
        unit="category",
        fill=None,
        kind="categorical",
    ),
    Feature(
        "offer_channel",
        "offer",
        "offers",
        "Channel the offer was sent on",
        "오퍼 발송 채널",
        unit="category",
        fill=None,
        kind="categorical",
    ),
    Feature(
        "offer_discount_pct",
        "offer",
        "offers",
        "Discount of the offer (%)",
        "오퍼 할인율(%)",
        unit="percent",
        fill=None,
    ),
)


def build_offer_dataset(
    tables: Tables, config: Config, *, progress: bool = False, include_control: bool = False
) -> tuple[pd.DataFrame, pd.Series, dict[str, np.ndarray], Plan]:
    """One row per offer sent: the customer's features as of the start of the send day or week,
    the offer's own attributes, and whether it was accepted in time. With ``include_control``
    the held-out offers come too (their outcome: accepted anyway), for uplift models.

    Folds follow the send time (the last fifth of the send weeks test, the fifth before validate,
    the rest train, each fold's acceptance windows closing before the next fold starts); when all
    offers went out within three weeks or fewer, a seeded random split is used and noted.
    """
    lc = config.labels
    offers = tables.offers
    if offers is None:
        raise DataError("the upsell task needs an offers table")
    start = offers["sent_at"].min()
    end = (
        as_cutoff(lc.observed_until, name="labels.observed_until")
        if lc.observed_until
        else data_end(tables)
    )
    last_send = end - pd.Timedelta(days=lc.acceptance_days) + pd.Timedelta(days=1)
    labels = upsell_labels(
        tables,
        start=start.floor("D"),
        end=last_send.ceil("D"),
        acceptance_days=lc.acceptance_days,
        event=lc.offer_event,
        check=False,
        include_control=include_control,
    )
    labels = labels[labels["sent_at"] < last_send].reset_index(drop=True)
    if labels.empty:
        raise DataError(
            "no offers were sent early enough for their acceptance window to be observed"
        )
    day = labels["sent_at"].dt.floor("D")
    labels["as_of"] = (
        day - pd.to_timedelta(day.dt.day_of_week, unit="D") if lc.offer_cutoff == "week" else day
    )
    cutoffs = sorted(labels["as_of"].unique())
    wanted = labels.groupby("as_of")["customer_id"].agg(lambda s: list(pd.unique(s))).to_dict()
    feats = build_snapshots(tables, cutoffs=cutoffs, config=config, progress=progress, only=wanted)
    spec = FeatureSpec.from_dict(feats.attrs["feature_spec"])
    key = pd.MultiIndex.from_arrays([labels["as_of"], labels["customer_id"]])
    X = feats.reindex(key)
    X.index = pd.MultiIndex.from_arrays(
        [labels["as_of"], labels["offer_id"]], names=["as_of", "offer_id"]
    )
    known = X.notna().any(axis=1).to_numpy() if len(X.columns) else np.ones(len(X), bool)
    attrs = {
        "offer_type": "offer_type",
        "offer_category": "category",
        "offer_channel": "channel",
        "offer_discount_pct": "discount_pct",
    }
    added = []
    for name, column in attrs.items():
        if column in labels:
            values = labels[column].to_numpy()
            X[name] = (
                pd.array(values, dtype="str")
                if name != "offer_discount_pct"
                else values.astype(float)
            )
            added.append(next(f for f in OFFER_FEATURES if f.name == name))
    spec.features.extend(added)
    spec.families.append("offer")
    X.attrs["feature_spec"] = spec.to_dict()
    y = pd.Series(labels["label"].to_numpy(), index=X.index, name="label").astype(np.int8)
    X, y = X[known], y[known]
    sent = labels.loc[known, "sent_at"].reset_index(drop=True)
    weeks = sorted(X.index.get_level_values("as_of").unique())
    notes: list[str] = []
    n = len(X)
    if len(weeks) > 3:
        k = max(1, round(len(weeks) * 0.2))
        test_start, valid_start = weeks[-k], weeks[-2 * k]
        gap = pd.Timedelta(days=lc.acceptance_days)
        when = X.index.get_level_values("as_of")
        masks = {
            "train": np.asarray((when < valid_start) & (sent + gap <= valid_start).to_numpy()),
            "valid": np.asarray(
                (when >= valid_start) & (when < test_start) & (sent + gap <= test_start).to_numpy()
            ),
            "test": np.asarray(when >= test_start),
        }
        dropped = n - sum(int(m.sum()) for m in masks.values())
        if dropped:
            notes.append(
                f"{dropped:,} offers whose acceptance window reaches into the next fold are left out"
            )
    else:
        rng = np.random.default_rng(config.seed)
        draw = rng.random(n)
        masks = {"train": draw < 0.6, "valid": (draw >= 0.6) & (draw < 0.8), "test": draw >= 0.8}
        notes.append(
            f"all offers were sent within {len(weeks)} week(s): no time order to split on, so a seeded "
            "random split (60/20/20) is used"
        )
    when = X.index.get_level_values("as_of")
    fold_map = {k: sorted(set(when[m])) for k, m in masks.items()}
    plan = Plan(list(weeks), lc.acceptance_days, notes, fold_map=fold_map)
    return X, y, masks, plan


def _month_start(when: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The first day of each timestamp's month (UTC)."""
    return pd.DatetimeIndex(when).tz_convert("UTC").normalize() - pd.to_timedelta(
        pd.DatetimeIndex(when).day - 1, unit="D"
    )


def rfm_score(X: pd.DataFrame) -> np.ndarray:
    """The RFM heuristic: mean percentile rank of recency (lower is better), orders and spend,
    ranked among the customers of the same cutoff."""
    cols = {"recency_days": False, "orders_all": True, "spend_all": True}
    missing = [c for c in cols if c not in X]
    if missing:
        raise DataError(f"the RFM baseline needs {', '.join(missing)} (the purchase family)")
    by = X.index.get_level_values("as_of") if "as_of" in X.index.names else np.zeros(len(X))
    ranks = [X[c].groupby(by).rank(pct=True, ascending=up).fillna(0.0) for c, up in cols.items()]
    return (sum(ranks) / len(ranks)).to_numpy()  # percentiles within each cutoff


@dataclass
class TrainResult:
    """What a training run produced."""

    booster: lgb.Booster
    calibrator: Calibrator
    spec: FeatureSpec
    categories: dict[str, list[str]]
    plan: Plan
    metrics: pd.DataFrame
    backtest: pd.DataFrame
    calibration_briers: dict[str, float]
    best_iteration: int
    features: list[str]
    reference: dict[str, Any] = field(default_factory=dict)
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities for a feature frame with the trained columns."""
        return self.calibrator.predict(
            self.booster.predict(prepare_matrix(X, self.features, self.categories))
        )


def _fold(X: pd.DataFrame, cutoffs: list[pd.Timestamp]) -> np.ndarray:
    return X.index.get_level_values("as_of").isin(cutoffs)


def train(
    tables: Tables | None,
    config: Config | str | None = None,
    *,
    progress: bool = False,
    dataset: tuple[pd.DataFrame, pd.Series, Plan] | None = None,
) -> TrainResult:
    """Train, calibrate and evaluate the configured task on time-ordered folds.

    ``dataset`` gives the snapshot rows, labels and plan already built (by Spark, say: a sample
    of them); ``tables`` is then not read.

    Raises
    ------
    DataError
        When a fold has fewer positives than ``train.min_positives`` (the message gives the
        counts and what to change) or the history is too short.
    """
    config = as_config(config)
    tc = config.train
    if tc.task == "uplift":
        raise DataError(
            "train.task 'uplift' trains two models, not one: use vipml.uplift.train_uplift "
            "(the vipml train command does)"
        )
    if tc.task == "upsell":
        X, y, masks, plan = build_offer_dataset(tables, config, progress=progress)
        folds = plan.folds
    elif dataset is not None:
        X, y, plan = dataset
        folds = plan.folds
        masks = {name: _fold(X, cuts) for name, cuts in folds.items()}
    else:
        plan = plan_cutoffs(tables, config)
        X, y = build_dataset(tables, plan, config, progress=progress)
        folds = plan.folds
        masks = {name: _fold(X, cuts) for name, cuts in folds.items()}
    spec = FeatureSpec.from_dict(X.attrs["feature_spec"])
    for name, mask in masks.items():
        positives = int(y[mask].sum())
        if positives < tc.min_positives:
            dates = folds[name]
            span = f"{dates[0]:%Y-%m-%d}" + (f" .. {dates[-1]:%Y-%m-%d}" if len(dates) > 1 else "")
            raise DataError(
                f"the {name} fold ({span}) has {positives} "
                f"positive labels among {int(mask.sum()):,} customers; at least {tc.min_positives} are needed.\n"
                "Fix: a longer labels.horizon_days, a broader VIP rule (vip.share), more cutoffs "
                "(train.n_cutoffs), or lower train.min_positives"
            )
    features = list(spec.names)
    categories = {
        c: sorted(X.loc[masks["train"], c].dropna().astype("str").unique().tolist())
        for c in spec.categorical
    }
    M = prepare_matrix(X, features, categories)
    params = {
        "objective": "binary",
        "learning_rate": tc.learning_rate,
        "num_leaves": tc.num_leaves,
        "min_child_samples": tc.min_child_samples,
        "feature_fraction": tc.feature_fraction,
        "bagging_fraction": tc.bagging_fraction,
        "bagging_freq": 1 if tc.bagging_fraction < 1 else 0,
        "lambda_l2": tc.lambda_l2,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": 2,
        "verbosity": -1,
    }
    train_set = lgb.Dataset(
        M[masks["train"]],
        y[masks["train"]],
        categorical_feature=list(categories) or "auto",
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(M[masks["valid"]], y[masks["valid"]], reference=train_set)
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=tc.n_estimators,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(tc.early_stopping_rounds, verbose=False)],
    )
    raw = booster.predict(M, num_iteration=booster.best_iteration)
    calibrator, briers = choose_calibration(
        raw[masks["valid"]], y[masks["valid"]].to_numpy(), tc.calibration, config.seed
    )
    prob = calibrator.predict(raw)

    # baselines, trained and scored on the same split
    rfm = rfm_score(X) if "recency_days" in X else np.full(len(X), np.nan)
    if tc.task == "churn":
        rfm = -rfm  # a strong RFM profile means a low risk of leaving
    numeric = [c for c in features if c not in categories]
    logreg = make_pipeline(
        SimpleImputer(strategy="median"),
        StandardScaler(),
        LogisticRegression(max_iter=2000, C=1.0, random_state=config.seed),
    )
    logreg.fit(X.loc[masks["train"], numeric], y[masks["train"]])
    lr = logreg.predict_proba(X[numeric])[:, 1]

    test = masks["test"]
    rows = {
        "model": evaluate(y[test], prob[test]),
        "logistic_regression": evaluate(y[test], lr[test]),
    }
    if not np.isnan(rfm).all():
        rows["rfm_heuristic"] = evaluate(y[test], rfm[test], probabilities=False)
    metrics = pd.DataFrame(rows).T
    curves = {"model": curve_points(y[test], prob[test])}
    curves["logistic_regression"] = curve_points(y[test], lr[test])
    if "rfm_heuristic" in rows:
        curves["rfm_heuristic"] = curve_points(y[test], rfm[test], probabilities=False)
    backtest = []
    for name, mask in masks.items():
        when = X.index.get_level_values("as_of")[mask]
        groups = _month_start(when) if tc.task == "upsell" else when
        for t in sorted(set(groups)):
            m = mask.copy()
            m[mask] = groups == t
            row = {"as_of": t, "fold": name, **evaluate(y[m], prob[m])}
            # the baselines on the same rows, beside the model
            for short, base, is_prob in (("lr", lr, True), ("rfm", rfm, False)):
                if not np.isnan(base[m]).all():
                    b = evaluate(y[m], base[m], probabilities=is_prob)
                    row[f"{short}_roc_auc"], row[f"{short}_pr_auc"] = b["roc_auc"], b["pr_auc"]
            backtest.append(row)
    return TrainResult(
        booster=booster,
        calibrator=calibrator,
        spec=spec,
        categories=categories,
        plan=plan,
        metrics=metrics,
        backtest=pd.DataFrame(backtest),
        calibration_briers=briers,
        best_iteration=int(booster.best_iteration or booster.current_iteration()),
        features=features,
        reference=drift_reference(X[masks["train"]], spec),
        curves=curves,
    )


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])
