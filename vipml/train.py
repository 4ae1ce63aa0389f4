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
from vipml.features.btyd import BTYD_BASELINE
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
from vipml.value import (
    ValueModel,
    distribution,
    fit_value_model,
    order_amounts,
    value_labels,
)
from vipml.windows import as_cutoff, as_cutoffs


@dataclass
class Plan:
    """Cutoffs and horizon of a training run, and what had to give way.

    ``cutoffs`` are the evaluation cutoffs (train, then validation, then test); ``refit`` maps
    each cutoff the shipped model is refit on to its label horizon (empty: no refit).
    """

    cutoffs: list[pd.Timestamp]
    horizon_days: int
    notes: list[str] = field(default_factory=list)
    horizons: list[int] | None = None  # per cutoff, when the earlier folds use a shorter one
    fold_map: dict[str, list[pd.Timestamp]] | None = None  # set when folds are not by cutoff
    refit: dict[pd.Timestamp, int] = field(default_factory=dict)
    requested_horizon: int | None = None

    def horizon_at(self, cutoff: pd.Timestamp) -> int:
        """The label horizon used at a cutoff."""
        if cutoff not in self.cutoffs and cutoff in self.refit:
            return self.refit[cutoff]
        if self.horizons is None:
            return self.horizon_days
        return self.horizons[self.cutoffs.index(cutoff)]

    @property
    def all_cutoffs(self) -> list[pd.Timestamp]:
        """Evaluation and refit cutoffs together, oldest first."""
        return sorted(set(self.cutoffs) | set(self.refit))

    @property
    def trained_horizon(self) -> int:
        """The horizon the training labels use (the shipped model's, when it is refit)."""
        if self.fold_map is not None:
            return self.horizon_days
        cuts = list(self.refit) or self.folds["train"]
        hs = [self.horizon_at(c) for c in cuts]
        return max(set(hs), key=lambda h: (hs.count(h), h))

    @property
    def folds(self) -> dict[str, list[pd.Timestamp]]:
        """train / valid / test cutoffs."""
        if self.fold_map is not None:
            return self.fold_map
        return {"train": self.cutoffs[:-2], "valid": [self.cutoffs[-2]], "test": [self.cutoffs[-1]]}


def _days(a: pd.Timestamp, b: pd.Timestamp) -> float:
    return (a - b) / pd.Timedelta(days=1)


def _grid(newest: pd.Timestamp, oldest: pd.Timestamp, step: int) -> list[pd.Timestamp]:
    """Cutoffs ``step`` days apart from ``newest`` back to no earlier than ``oldest``."""
    out, t = [], newest
    while t >= oldest:
        out.append(t)
        t -= pd.Timedelta(days=step)
    return out[::-1]


def _strict(config: Config, used: int, why: str) -> None:
    if config.train.strict_horizon and used != config.labels.horizon_days:
        raise DataError(
            f"labels.horizon_days is {config.labels.horizon_days} but {why}, so training would "
            f"use {used} days, and train.strict_horizon is set.\nFix: give more history, a "
            "shorter labels.horizon_days, or train.strict_horizon: false (the horizon used is "
            "then recorded in the bundle and the target list)"
        )


def plan_cutoffs(tables: Tables, config: Config | str | None = None) -> Plan:
    """Cutoffs for training: the test cutoff a horizon before the data ends, the validation
    cutoff a horizon before it, training cutoffs ``train.step_days`` apart (default a third of
    the horizon) ending a horizon before the validation cutoff and reaching back
    ``n_cutoffs - 3`` horizons. Training label windows may overlap each other; the validation
    and test folds have a horizon's gap before them.

    With ``train.refit`` the plan also lists the cutoffs of the shipped model: every cutoff
    ``step_days`` apart from the first training cutoff up to the newest one whose label window
    ends at the data's end.

    When the history is too short for the horizon, the plan shortens it to the longest that
    fits and says so in ``notes`` (an error with ``train.strict_horizon``).
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
        gaps = [_days(cutoffs[-1], cutoffs[-2]), _days(cutoffs[-2], cutoffs[-3])]
        if min(gaps) < horizon:
            raise DataError(
                f"train.cutoffs: the validation and test cutoffs are {int(min(gaps))} days after "
                f"the cutoff before them, less than the {horizon}-day horizon: a label window "
                "would overlap the next fold's features.\n"
                "Fix: space the last three cutoffs at least labels.horizon_days apart, or "
                "shorten the horizon"
            )
        refit = {c: horizon for c in cutoffs} if tc.refit else {}
        return Plan(cutoffs, horizon, notes, refit=refit, requested_horizon=horizon)
    start, end = data_span(tables)
    if end is None or start is None:
        raise DataError("no dated rows: cannot plan training cutoffs")
    first_allowed = start + pd.Timedelta(days=tc.min_history_days)
    if tc.test_cutoff:
        test = as_cutoff(tc.test_cutoff, name="train.test_cutoff")
        plan = _plan_with_test(test, first_allowed, end, horizon, tc)
        plan.requested_horizon = horizon
        _strict(config, plan.trained_horizon, "the training folds use a shorter horizon")
        return plan

    def newest(h: int) -> pd.Timestamp:
        if tc.last_cutoff:
            return as_cutoff(tc.last_cutoff, name="train.last_cutoff")
        return (end - pd.Timedelta(days=h)).ceil("D")

    h = horizon
    if newest(h) - pd.Timedelta(days=2 * h) < first_allowed:
        longest = int(_days(newest(0), first_allowed) // 3)
        while longest > 0 and newest(longest) - pd.Timedelta(days=2 * longest) < first_allowed:
            longest -= 1
        if longest < 7:
            raise DataError(
                f"the data ({start:%Y-%m-%d} .. {end:%Y-%m-%d}) is too short for a training, a "
                "validation and a test cutoff a horizon apart (at least 7 days).\n"
                "Fix: give more history, or lower train.min_history_days"
            )
        _strict(
            config,
            longest,
            f"the history ({start:%Y-%m-%d} .. {end:%Y-%m-%d}) holds three cutoffs a horizon "
            f"apart only with a horizon of {longest} days",
        )
        h = longest
        notes.append(
            f"horizon shortened from {horizon} to {h} days: the history "
            f"({start:%Y-%m-%d} .. {end:%Y-%m-%d}) is too short for three cutoffs with the longer one"
        )
    step = tc.step_days or max(1, h // 3)
    test = newest(h)
    valid = test - pd.Timedelta(days=h)
    last_train = valid - pd.Timedelta(days=h)
    oldest = max(first_allowed, last_train - pd.Timedelta(days=h * max(tc.n_cutoffs - 3, 0)))
    train_cuts = _grid(last_train, oldest, step)
    if first_allowed > last_train - pd.Timedelta(days=h * max(tc.n_cutoffs - 3, 0)):
        notes.append(
            f"training cutoffs start {train_cuts[0]:%Y-%m-%d}: the history before it is shorter "
            f"than train.n_cutoffs ({tc.n_cutoffs}) horizons"
        )
    refit: dict[pd.Timestamp, int] = {}
    if tc.refit:
        refit = {c: h for c in sorted({*_grid(test, train_cuts[0], step), *train_cuts, valid})}
    return Plan([*train_cuts, valid, test], h, notes, refit=refit, requested_horizon=horizon)


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
        refit: dict[pd.Timestamp, int] = {}
        if tc.refit:  # every cutoff whose h-day window ends by the data's end, and the test one
            newest = (end - pd.Timedelta(days=h)).ceil("D")
            refit = {c: h for c in _grid(newest, cuts[0], step_train)}
            refit.update({c: h for c in cuts[:-1]})
            refit[test] = horizon
        return Plan(
            cuts,
            horizon,
            [note] if h < horizon else [],
            horizons=[h] * (len(cuts) - 1) + [horizon],
            refit=dict(sorted(refit.items())),
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
    refit = {c: step for c in earlier} if tc.refit else {}
    if tc.refit:
        refit[test] = horizon
    notes = []
    if step < horizon:
        notes.append(
            f"training and validation cutoffs ({', '.join(f'{c:%Y-%m-%d}' for c in earlier)}) use a "
            f"{step}-day horizon: the history before {test:%Y-%m-%d} is too short for {horizon} "
            f"days; the test cutoff keeps {horizon} days"
        )
    return Plan(
        [*earlier, test],
        horizon,
        notes,
        horizons=[step] * len(earlier) + [horizon],
        refit=dict(sorted(refit.items())),
    )


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
    """Features at every cutoff (evaluation and refit) joined to the labels: index (as_of,
    customer_id)."""
    feats = build_snapshots(tables, cutoffs=plan.all_cutoffs, config=config, progress=progress)
    return _with_labels(tables, plan, config, feats)


def _with_labels(
    tables: Tables, plan: Plan, config: Config, feats: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series]:
    """Snapshot rows joined to the task's labels (the population's rows only)."""
    parts = []
    for t in plan.all_cutoffs:
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
            "no offers were sent early enough for their acceptance window to be observed: the "
            f"data end at {end:%Y-%m-%d} and the last send that counts is before "
            f"{last_send:%Y-%m-%d} (labels.acceptance_days {lc.acceptance_days}); the first "
            f"offer went out {start:%Y-%m-%d}.\nFix: set labels.observed_until to the date the "
            "outcomes are known up to (e.g. the end of the campaign's measurement window), or "
            "shorten labels.acceptance_days"
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
    evaluated: dict[str, Any] = field(default_factory=dict)  # what the measured model saw
    shipped: dict[str, Any] = field(default_factory=dict)  # what the shipped model saw
    value: ValueModel | None = None  # expected spend and purchase days over the horizon

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
    snapshots = None  # every known customer at every cutoff, for the expected-value models
    if tc.task == "upsell":
        X, y, masks, plan = build_offer_dataset(tables, config, progress=progress)
        folds = plan.folds
    elif dataset is not None:
        X, y, plan = dataset
        folds = plan.folds
        masks = {name: _fold(X, cuts) for name, cuts in folds.items()}
    else:
        plan = plan_cutoffs(tables, config)
        snapshots = build_snapshots(
            tables, cutoffs=plan.all_cutoffs, config=config, progress=progress
        )
        X, y = _with_labels(tables, plan, config, snapshots)
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

    evaluated_trees = int(booster.best_iteration or booster.current_iteration())

    # baselines, trained and scored on the same split
    rfm = rfm_score(X) if "recency_days" in X else np.full(len(X), np.nan)
    btyd = (
        X[BTYD_BASELINE].to_numpy(dtype=np.float64)
        if BTYD_BASELINE in X and tc.task == "vip"
        else np.full(len(X), np.nan)
    )
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
    if not np.isnan(btyd[test]).all():
        rows["bgnbd_gamma_gamma"] = evaluate(
            y[test], np.nan_to_num(btyd[test], nan=-1.0), probabilities=False
        )
    metrics = pd.DataFrame(rows).T
    curves = {"model": curve_points(y[test], prob[test])}
    curves["logistic_regression"] = curve_points(y[test], lr[test])
    if "rfm_heuristic" in rows:
        curves["rfm_heuristic"] = curve_points(y[test], rfm[test], probabilities=False)
    if "bgnbd_gamma_gamma" in rows:
        curves["bgnbd_gamma_gamma"] = curve_points(
            y[test], np.nan_to_num(btyd[test], nan=-1.0), probabilities=False
        )
    backtest = []
    for name, mask in masks.items():
        when = X.index.get_level_values("as_of")[mask]
        groups = _month_start(when) if tc.task == "upsell" else when
        for t in sorted(set(groups)):
            m = mask.copy()
            m[mask] = groups == t
            row = {"as_of": t, "fold": name, **evaluate(y[m], prob[m])}
            # the baselines on the same rows, beside the model
            for short, base, is_prob in (
                ("lr", lr, True),
                ("rfm", rfm, False),
                ("btyd", btyd, False),
            ):
                if not np.isnan(base[m]).all():
                    b = evaluate(y[m], np.nan_to_num(base[m], nan=-1.0), probabilities=is_prob)
                    row[f"{short}_roc_auc"], row[f"{short}_pr_auc"] = b["roc_auc"], b["pr_auc"]
            backtest.append(row)
    when = X.index.get_level_values("as_of")
    evaluated = {
        "cutoffs": {k: [c.isoformat() for c in v] for k, v in folds.items()},
        "rows": int(masks["train"].sum()),
        "positives": int(y[masks["train"]].sum()),
        "trees": evaluated_trees,
        "calibration": f"{calibrator.method}, fitted on the validation fold",
    }
    shipped = dict(evaluated, model="evaluated")
    newest = max(folds["train"]) if tc.task != "upsell" else None
    if plan.refit and tc.task in ("vip", "churn"):
        booster, calibrator, briers, shipped, probe = _refit(
            M, y, X, plan, params, categories, evaluated_trees, config
        )
        newest = max(plan.refit)
        if probe is not None:  # the shipped recipe, out of time: ranking only (its calibrator
            # is fitted on these very rows, so its Brier and ECE would flatter it)
            row = evaluate(y[test], probe, probabilities=False)
            metrics = pd.concat([metrics, pd.DataFrame({"refit_recipe": row}).T])
    if newest is not None:  # drift is measured against the newest snapshot the model saw
        reference = drift_reference(X[np.asarray(when == newest)], spec)
    else:
        reference = drift_reference(X[masks["train"]], spec)
    value, value_note = None, None
    if snapshots is not None and config.value.enabled and tc.task in ("vip", "churn"):
        value, value_note = _value_model(
            tables, snapshots, plan, features, categories, params, config
        )
    if value_note:
        plan.notes.append(value_note)
    return TrainResult(
        value=value,
        booster=booster,
        calibrator=calibrator,
        spec=spec,
        categories=categories,
        plan=plan,
        metrics=metrics,
        backtest=pd.DataFrame(backtest),
        calibration_briers=briers,
        best_iteration=int(booster.current_iteration())
        if plan.refit and tc.task in ("vip", "churn")
        else evaluated_trees,
        features=features,
        reference=reference,
        curves=curves,
        evaluated=evaluated,
        shipped=shipped,
    )


def _value_model(
    tables: Tables,
    snapshots: pd.DataFrame,
    plan: Plan,
    features: list[str],
    categories: dict[str, list[str]],
    params: dict[str, Any],
    config: Config,
) -> tuple[ValueModel | None, str | None]:
    """The expected-value models on every customer known at each cutoff whose ``horizon``-day
    window has ended; the score model's folds, each training window closing by the validation
    cutoff and the validation window by the test cutoff (no label overlaps a later fold)."""
    h = plan.trained_horizon
    step = pd.Timedelta(days=h)
    end = data_end(tables)
    folds = plan.folds
    valid, test = folds["valid"][-1], folds["test"][-1]
    use = {
        "train": [c for c in folds["train"] if c + step <= valid],
        "valid": [valid] if valid + step <= test else [],
        "test": [test] if end is not None and test + step <= end + pd.Timedelta(days=1) else [],
    }
    if not all(use.values()):
        short = ", ".join(k for k, v in use.items() if not v)
        return None, (
            f"no expected-value models: the {short} fold has no cutoff whose {h}-day window ends "
            "before the next fold"
        )
    ship = [
        c for c in plan.all_cutoffs if end is not None and c + step <= end + pd.Timedelta(days=1)
    ]
    cutoffs = sorted(set(ship) | {c for v in use.values() for c in v})
    when = snapshots.index.get_level_values("as_of")
    rows = snapshots[np.asarray(when.isin(cutoffs))]
    targets = []
    for t in cutoffs:
        ids = rows.loc[t].index if t in rows.index.get_level_values("as_of") else pd.Index([])
        lab = value_labels(tables, as_of=t, horizon_days=h, customers=pd.Index(ids))
        lab.index = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([t] * len(lab), name="as_of"), lab.index]
        )
        targets.append(lab)
    target = pd.concat(targets).reindex(rows.index)
    model = fit_value_model(
        rows,
        target,
        folds=use,
        ship=ship,
        features=features,
        categories=categories,
        params=params,
        rounds=config.train.n_estimators,
        stop=config.train.early_stopping_rounds,
        horizon_days=h,
        config=config,
        tables=tables,
    )
    # the spend distribution the shipped models saw, for the monitor: order amounts over the
    # horizon before the newest shipped cutoff, and customers' spend in that cutoff's window
    newest = max(ship)
    last = target.loc[newest] if newest in target.index.get_level_values("as_of") else None
    model.info["spend_reference"] = {
        "cutoff": newest.isoformat(),
        "order_amount": distribution(order_amounts(tables.orders, newest - step, newest)),
        "customer_spend": distribution(
            last["spend"].to_numpy() if last is not None else np.array([])
        ),
    }
    return model, None


def _refit(
    M: pd.DataFrame,
    y: pd.Series,
    X: pd.DataFrame,
    plan: Plan,
    params: dict[str, Any],
    categories: dict[str, list[str]],
    trees: int,
    config: Config,
) -> tuple[lgb.Booster, Calibrator, dict[str, float], dict[str, Any], np.ndarray | None]:
    """The shipped model: the evaluated recipe with the tree count chosen on validation, refit on
    every refit cutoff; its calibration is fitted out of time.

    Calibration: the same recipe is fitted on the refit cutoffs whose label windows end by the
    test cutoff, and its raw scores on the test fold (which it never saw) fit the calibrator; a
    calibrator fitted on scores of rows a model was trained on would be overconfident.
    """
    when = X.index.get_level_values("as_of")
    test = plan.folds["test"][-1]
    cuts = sorted(plan.refit)
    full = np.asarray(when.isin(cuts))

    def fit(mask: np.ndarray) -> lgb.Booster:
        data = lgb.Dataset(M[mask], y[mask], categorical_feature=list(categories) or "auto")
        return lgb.train(params, data, num_boost_round=trees)

    before = [c for c in cuts if c + pd.Timedelta(days=plan.horizon_at(c)) <= test]
    at_test = np.asarray(when == test)
    probe_scores = None
    if before and int(y[np.asarray(when.isin(before))].sum()) > 0:
        probe = fit(np.asarray(when.isin(before)))
        probe_scores = probe.predict(M[at_test])
        calibrator, briers = choose_calibration(
            probe_scores, y[at_test].to_numpy(), config.train.calibration, config.seed
        )
        how = (
            f"{calibrator.method}, fitted on the test fold ({test:%Y-%m-%d}) scores of the same "
            f"recipe trained on the {len(before)} refit cutoffs whose labels end by then "
            f"({before[0]:%Y-%m-%d} .. {before[-1]:%Y-%m-%d}): out of time"
        )
    else:  # pragma: no cover - a plan always has training cutoffs before the test one
        calibrator, briers = Calibrator("none"), {}
        how = "none: no refit cutoff ends before the test cutoff"
    booster = fit(full)
    shipped = {
        "model": "refit",
        "cutoffs": [c.isoformat() for c in cuts],
        "horizons": [plan.refit[c] for c in cuts],
        "rows": int(full.sum()),
        "positives": int(y[full].sum()),
        "trees": trees,
        "trees_from": "the validation fold's early stopping of the evaluated model",
        "calibration": how,
    }
    return booster, calibrator, briers, shipped, probe_scores


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])
