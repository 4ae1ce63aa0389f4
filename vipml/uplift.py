"""Uplift: the incremental effect of an offer, its learners and its evaluation.

An uplift model estimates, per customer and per offer (arm), E[outcome | arm] -
E[outcome | control]: who an offer persuades, as opposed to who would buy anyway, and which
offer persuades them most. Learners on LightGBM, each honouring the config's ``train``
settings (leaves, learning rate, rows per leaf, feature and bagging fractions, L2) with early
stopping on a validation split:

* :class:`SLearnerUplift`: one model with the arm as a feature; uplift = f(x, arm) -
  f(x, control);
* :class:`TwoModelUplift` (T-learner): one model per arm and one for control;
* :class:`XLearnerUplift`: the T-learner's imputed effects regressed per group, blended by the
  arm's share;
* :class:`TransformedOutcomeUplift`: a regression of ``z = y (t - e) / (e (1 - e))`` per arm,
  ``e`` the arm's share against control (the propensity weight when arms are unequal);
* :class:`ShrunkSLearnerUplift` and :class:`BaggedSLearnerUplift`: S-learners blended per arm
  with a homogeneous effect (a constant shift of the log-odds) where out-of-fold Qini shows the
  blend ranks better; the bagged one averages seeded S-learners fitted on all the rows with a
  penalised logistic model of arm x feature terms.

Treatment is an arm label per row (``control`` marks the control group) or 0/1. ``predict``
returns one column per arm (a frame); a learner fitted on a 0/1 treatment returns one array, as
before. Outcomes are binary (accepted, clicked, opened: probabilities) or continuous (revenue in
the acceptance window: a regression). :func:`make_learner` builds the configured learner
(``train.uplift_learner``).

Evaluation follows scikit-uplift's order of arguments, ``(y_true, uplift, treatment)``:
:func:`qini_auc_score` and :func:`uplift_auc_score` are normalised as scikit-uplift does (the
area above the random line over that of the perfect ranking); :func:`qini_coefficient` and
:func:`auuc` keep vipml's earlier normalisation (by rows and the total incremental outcome, by
rows squared). :func:`uplift_by_percentile` gives the uplift per decile, :func:`random_band`
the Qini curves of random rankings, and :func:`repeated_splits` repeats a train/test split over
seeds with the mean, standard deviation and a bootstrap interval.

``train.task: uplift`` trains a learner on offers with a treatment and a control group
(:func:`train_uplift`): one row per offer, the customer's features as of the start of the send
day or week, outcome = the configured response within ``labels.acceptance_days`` (or the revenue
in that window with ``train.uplift_outcome: revenue``). The arm of an offer comes from
``train.arm_column`` (an offers column such as ``category``, ``offer_type`` or ``campaign_id``;
default: one arm, ``treatment``). :func:`save_uplift_bundle` writes ``uplift-<YYYYmmdd-HHMMSS>/``
atomically: the LightGBM boosters as text (``models`` in ``bundle.json`` names each file),
``feature_spec.json``, ``config.json``, ``metrics.json`` (normalised Qini and AUUC, uplift at
30% and the earlier coefficient on the test fold, beside a response model and a random ranking),
``qini.json`` (the test fold's Qini curve and its random band) and ``bundle.json`` (task
``uplift``, learner, arms, control arm, outcome, cost per arm, notes, fingerprint).

Loading (:func:`load_uplift_bundle`) reads text and JSON only.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vipml.bundle import fingerprint, spec_json, write_folder, write_json
from vipml.config import Config, as_config, config_record
from vipml.errors import ConfigError, DataError, NotFittedError
from vipml.features.registry import FeatureSpec
from vipml.integrity import seal
from vipml.io import Tables
from vipml.model import prepare_matrix

if TYPE_CHECKING:  # loading a bundle and scoring do not import training
    from vipml.train import Plan

LEARNER_NAMES = (
    "s_learner", "two_model", "x_learner", "transformed_outcome", "shrunk_s_learner",
    "bagged_s_learner",
)  # fmt: skip
CONTROL = "control"
ARM_FEATURE = "_arm"


def _check_groups(y: np.ndarray, u: np.ndarray, t: np.ndarray) -> None:
    """Equal lengths, and both treated and control rows."""
    if not (len(y) == len(u) == len(t)):
        raise DataError(
            f"y_true, uplift and treatment differ in length: {len(y)}, {len(u)}, {len(t)}"
        )
    if t.sum() == 0 or t.sum() == len(t):
        raise DataError(
            f"uplift needs treated and control rows; found {int(t.sum())} treated of {len(t)}.\n"
            "Fix: evaluate on a sample that holds both groups"
        )


def _uplift_inputs(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, ...]:
    y, u, t = (np.asarray(a, dtype=np.float64) for a in (y_true, uplift, treatment))
    _check_groups(y, u, t)
    order = np.argsort(-u, kind="stable")
    return y[order], t[order]


def qini_curve(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: for the top k rows by uplift, treated conversions minus control conversions
    scaled to the treated count. Returns (k, qini) with k = 0 .. n."""
    y, t = _uplift_inputs(y_true, uplift, treatment)
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * (1 - t))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = y_t - np.where(n_c > 0, y_c * n_t / np.where(n_c > 0, n_c, 1), 0.0)
    return np.arange(len(y) + 1), np.concatenate([[0.0], q])


def qini_coefficient(y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """Area between the Qini curve and the random-targeting line, divided by the number of rows
    (0 for random targeting; higher is better)."""
    k, q = qini_curve(y_true, uplift, treatment)
    random_line = q[-1] * k / k[-1]
    return float(np.trapezoid(q - random_line, k) / k[-1] / max(abs(q[-1]), 1e-12))


def uplift_curve(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: (treated rate - control rate) among the top k rows, times k."""
    y, t = _uplift_inputs(y_true, uplift, treatment)
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n_t > 0, np.cumsum(y * t) / np.where(n_t > 0, n_t, 1), 0.0) - np.where(
            n_c > 0, np.cumsum(y * (1 - t)) / np.where(n_c > 0, n_c, 1), 0.0
        )
    k = np.arange(1, len(y) + 1)
    return np.concatenate([[0], k]), np.concatenate([[0.0], rate * k])


def auuc(y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """Area under the uplift curve over the unit square (rows as a share, uplift x share):
    the uplift of the whole population halved for random targeting; higher is better."""
    k, u = uplift_curve(y_true, uplift, treatment)
    return float(np.trapezoid(u, k) / k[-1] ** 2)


def uplift_at_k(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, k: float = 0.3
) -> float:
    """Treated rate minus control rate among the top share ``k`` by uplift (tied scores in
    scikit-uplift's order)."""
    _uplift_inputs(y_true, uplift, treatment)
    order = np.argsort(np.asarray(uplift, dtype=np.float64), kind="mergesort")[::-1]
    y = np.asarray(y_true, dtype=np.float64)[order]
    t = np.asarray(treatment, dtype=np.float64)[order]
    top = max(1, math.ceil(k * len(y)))
    yt, tt = y[:top], t[:top]
    if tt.sum() == 0 or tt.sum() == top:
        return math.nan
    return float(yt[tt == 1].mean() - yt[tt == 0].mean())


# --------------------------------------------------------------- scikit-uplift's normalisation


def _binary_treatment(treatment: np.ndarray) -> np.ndarray:
    t = np.asarray(treatment, dtype=np.float64)
    if not np.isin(t, (0.0, 1.0)).all():
        raise DataError(
            f"treatment must be 0/1 per row; found values {sorted(set(np.unique(t)) - {0.0, 1.0})[:5]}"
        )
    return t


def _threshold_curve(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, kind: str
) -> tuple[np.ndarray, np.ndarray]:
    """Qini or uplift curve evaluated where the score changes (tied scores form one step), as
    scikit-uplift does."""
    y = np.asarray(y_true, dtype=np.float64)
    u = np.asarray(uplift, dtype=np.float64)
    t = _binary_treatment(treatment)
    _check_groups(y, u, t)
    order = np.argsort(u, kind="mergesort")[::-1]
    y, u, t = y[order], u[order], t[order]
    ends = np.r_[np.flatnonzero(np.diff(u)), len(u) - 1]
    n_t = np.cumsum(t)[ends]
    y_t = np.cumsum(y * t)[ends]
    y_c = np.cumsum(y * (1 - t))[ends]
    n_all = (ends + 1).astype(np.float64)
    n_c = n_all - n_t
    if kind == "qini":
        values = y_t - y_c * np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    else:
        values = (
            np.divide(y_t, n_t, out=np.zeros_like(y_t), where=n_t != 0)
            - np.divide(y_c, n_c, out=np.zeros_like(y_c), where=n_c != 0)
        ) * n_all
    return np.r_[0.0, n_all], np.r_[0.0, values]


def perfect_qini_curve(y_true: np.ndarray, treatment: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve of the perfect ranking (treated responders first, control responders last),
    negative effects allowed, as scikit-uplift's ``perfect_qini_curve``."""
    y = np.asarray(y_true, dtype=np.float64)
    t = _binary_treatment(treatment)
    return _threshold_curve(y, y * t - y * (1 - t), t, "qini")


def perfect_uplift_curve(
    y_true: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The uplift curve of the perfect ranking, as scikit-uplift's ``perfect_uplift_curve``."""
    y = np.asarray(y_true, dtype=np.float64)
    t = _binary_treatment(treatment)
    control_responders = np.sum((y > 0) & (t == 0))
    treated_non_responders = np.sum((y == 0) & (t == 1))
    summand = y if control_responders > treated_non_responders else t
    return _threshold_curve(y, 2 * (y == t) + summand, t, "uplift")


def _normalised(actual, perfect) -> float:
    (xa, ya), (xp, yp) = actual, perfect
    base = np.trapezoid([0.0, yp[-1]], [0.0, xp[-1]])
    best = np.trapezoid(yp, xp) - base
    if best == 0:
        return math.nan
    return float((np.trapezoid(ya, xa) - base) / best)


def qini_auc_score(y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """Qini coefficient normalised as scikit-uplift's ``qini_auc_score``: the area between the
    Qini curve and the random line over that of the perfect ranking (0 random, 1 perfect)."""
    return _normalised(
        _threshold_curve(y_true, uplift, treatment, "qini"), perfect_qini_curve(y_true, treatment)
    )


def uplift_auc_score(y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """Area under the uplift curve normalised as scikit-uplift's ``uplift_auc_score``."""
    return _normalised(
        _threshold_curve(y_true, uplift, treatment, "uplift"),
        perfect_uplift_curve(y_true, treatment),
    )


def uplift_by_percentile(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, *, bins: int = 10
) -> pd.DataFrame:
    """Rows, treated and control outcome rates and their difference per bin of the predicted
    uplift (highest first), as scikit-uplift's ``uplift_by_percentile`` with ``strategy='by_group'``
    (bins cut within each group)."""
    y = np.asarray(y_true, dtype=np.float64)
    u = np.asarray(uplift, dtype=np.float64)
    t = _binary_treatment(treatment)
    rows = []
    parts = {}
    for g in (1.0, 0.0):
        idx = np.flatnonzero(t == g)
        idx = idx[np.argsort(u[idx], kind="mergesort")[::-1]]
        parts[g] = np.array_split(idx, bins)
    for b in range(bins):
        it, ic = parts[1.0][b], parts[0.0][b]
        rt = float(y[it].mean()) if len(it) else math.nan
        rc = float(y[ic].mean()) if len(ic) else math.nan
        rows.append(
            {
                "percentile": f"{100 * b // bins}-{100 * (b + 1) // bins}",
                "n_treatment": len(it),
                "n_control": len(ic),
                "response_rate_treatment": rt,
                "response_rate_control": rc,
                "uplift": rt - rc,
            }
        )
    return pd.DataFrame(rows).set_index("percentile")


def random_band(
    y_true: np.ndarray,
    treatment: np.ndarray,
    *,
    n: int = 200,
    seed: int = 0,
    points: int = 101,
    level: float = 0.9,
) -> dict[str, Any]:
    """Qini curves of ``n`` seeded random rankings on the same rows: the band a ranking must leave
    to be told from chance.

    Returns
    -------
    dict
        ``share`` (the targeted share of rows, ``points`` steps), ``low`` and ``high`` (the
        ``level`` band of the Qini curve, as a share of the population's total incremental
        outcome), ``qini_low`` / ``qini_high`` (the band of :func:`qini_auc_score`) and
        ``qini_sd`` (its standard deviation over random rankings).
    """
    y = np.asarray(y_true, dtype=np.float64)
    t = _binary_treatment(treatment)
    m = len(y)
    rng = np.random.default_rng(seed)
    perm = np.argsort(rng.random((n, m)), axis=1)  # one random order per row of perm
    ys, ts = y[perm], t[perm]
    n_t = np.cumsum(ts, axis=1)
    n_c = np.arange(1, m + 1)[None, :] - n_t
    y_t, y_c = np.cumsum(ys * ts, axis=1), np.cumsum(ys * (1 - ts), axis=1)
    q = y_t - y_c * np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c != 0)
    q = np.concatenate([np.zeros((n, 1)), q], axis=1)
    k = np.arange(m + 1, dtype=np.float64)
    xp, yp = perfect_qini_curve(y, t)
    base = np.trapezoid([0.0, yp[-1]], [0.0, xp[-1]])
    best = np.trapezoid(yp, xp) - base
    scores = (np.trapezoid(q, k, axis=1) - base) / best
    grid = np.round(np.linspace(0, m, points)).astype(int)
    total = q[0, -1] if q[0, -1] != 0 else 1.0
    lo, hi = (1 - level) / 2, 1 - (1 - level) / 2
    return {
        "share": (grid / m).tolist(),
        "low": (np.quantile(q[:, grid], lo, axis=0) / total).tolist(),
        "high": (np.quantile(q[:, grid], hi, axis=0) / total).tolist(),
        "qini_low": float(np.quantile(scores, lo)),
        "qini_high": float(np.quantile(scores, hi)),
        "qini_sd": float(scores.std(ddof=1)),
        "level": level,
        "rankings": n,
    }


def qini_points(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, *, points: int = 101
) -> dict[str, list[float]]:
    """A Qini curve on a grid of targeted shares, as a share of the total incremental outcome
    (for charts)."""
    x, q = _threshold_curve(y_true, uplift, treatment, "qini")
    m = x[-1]
    grid = np.linspace(0, m, points)
    total = q[-1] if q[-1] != 0 else 1.0
    return {"share": (grid / m).tolist(), "qini": (np.interp(grid, x, q) / total).tolist()}


# --------------------------------------------------------------------------- learners


def _arm_codes(treatment: Any, control: Any) -> tuple[np.ndarray, list[str], bool]:
    """Arm codes (0 control, 1.. the arms in sorted order), the arm names, and whether the
    treatment was given as 0/1."""
    t = np.asarray(treatment)
    if t.dtype == bool or (np.issubdtype(t.dtype, np.number) and np.isin(t, (0, 1)).all()):
        return t.astype(np.int64), ["treatment"], True
    labels = pd.Series(t, dtype="object").astype("str")
    control = str(control)
    arms = sorted(set(labels.unique()) - {control})
    if not arms or not (labels == control).any():
        raise DataError(
            f"uplift needs control rows (label '{control}') and at least one other arm; found "
            f"{', '.join(sorted(labels.unique())[:5]) or 'no rows'}.\n"
            "Fix: set train.control_arm to the control group's label"
        )
    codes = pd.Index([control, *arms]).get_indexer(labels)
    return codes.astype(np.int64), arms, False


class _Learner:
    """What every uplift learner shares: LightGBM parameters, early stopping on a seeded
    validation split, arm handling, and prediction from the boosters alone (so a bundle read
    back from text predicts the same)."""

    kind = ""

    def __init__(
        self,
        *,
        seed: int = 0,
        num_leaves: int = 7,
        learning_rate: float = 0.05,
        n_estimators: int = 1000,
        min_child_samples: int = 100,
        early_stopping_rounds: int | None = 50,
        feature_fraction: float = 1.0,
        bagging_fraction: float = 1.0,
        lambda_l2: float = 0.0,
        validation_share: float = 0.2,
        control: Any = CONTROL,
        n_jobs: int = 2,
    ) -> None:
        self.seed = seed
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.validation_share = validation_share
        self.control = control
        self.n_jobs = n_jobs

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments (for logging)."""
        keys = (
            "seed", "num_leaves", "learning_rate", "n_estimators", "min_child_samples",
            "early_stopping_rounds", "feature_fraction", "bagging_fraction", "lambda_l2",
            "validation_share", "control",
        )  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    @classmethod
    def from_config(cls, config: Config | str | None = None, **overrides: Any) -> _Learner:
        """The learner with the config's ``train`` settings and seed."""
        config = as_config(config)
        tc = config.train
        params = {
            "seed": config.seed,
            "num_leaves": tc.num_leaves,
            "learning_rate": tc.learning_rate,
            "n_estimators": tc.n_estimators,
            "min_child_samples": tc.min_child_samples,
            "early_stopping_rounds": tc.early_stopping_rounds if tc.uplift_early_stopping else None,
            "feature_fraction": tc.feature_fraction,
            "bagging_fraction": tc.bagging_fraction,
            "lambda_l2": tc.lambda_l2,
            "control": tc.control_arm,
        }
        params.update(overrides)
        return cls(**params)

    # ---------------------------------------------------------------- LightGBM
    def _params(self, objective: str) -> dict[str, Any]:
        return {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": self.n_jobs,
            "verbose": -1,
        }

    def _validation(self, n: int, strata: np.ndarray) -> np.ndarray:
        """A seeded validation mask, stratified by arm and outcome."""
        if not self.early_stopping_rounds or self.validation_share <= 0:
            return np.zeros(n, dtype=bool)
        # a stream of its own: the bare seed's stream may be what generated the data
        draw = np.random.default_rng((self.seed, 0x5EED)).random(n)
        valid = np.zeros(n, dtype=bool)
        for s in np.unique(strata):
            idx = np.flatnonzero(strata == s)
            take = idx[
                np.argsort(draw[idx], kind="stable")[: int(len(idx) * self.validation_share)]
            ]
            valid[take] = True
        return valid

    def _boost(
        self, X: pd.DataFrame, target: np.ndarray, objective: str, valid: np.ndarray, **extra: Any
    ) -> Any:
        import lightgbm as lgb

        fit = ~valid
        params = self._params(objective) | extra
        train_set = lgb.Dataset(X[fit], target[fit], free_raw_data=True)
        if valid.any() and self.early_stopping_rounds:
            valid_set = lgb.Dataset(X[valid], target[valid], reference=train_set)
            booster = lgb.train(
                params,
                train_set,
                num_boost_round=self.n_estimators,
                valid_sets=[valid_set],
                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            )
            if booster.best_iteration > 0:
                booster = booster.model_from_string(
                    booster.model_to_string(num_iteration=booster.best_iteration)
                )
            return booster
        return lgb.train(params, train_set, num_boost_round=self.n_estimators)

    def _objective(self) -> str:
        return "binary" if self.binary_outcome_ else "regression"

    # ---------------------------------------------------------------- fit / predict
    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        treatment: Any,
        *,
        validation: np.ndarray | None = None,
    ) -> _Learner:
        """Fit on rows with an outcome and an arm (0/1, or labels with ``control``).

        ``validation``, a boolean mask, names the rows for early stopping (default: a seeded
        ``validation_share`` of each arm x outcome)."""
        y = np.asarray(y, dtype=np.float64)
        if len(y) != len(X):
            raise DataError(f"X has {len(X):,} rows but y {len(y):,}")
        codes, arms, binary_t = _arm_codes(treatment, self.control)
        self.arms_ = arms
        self.binary_treatment_ = binary_t
        self.binary_outcome_ = bool(np.isin(y, (0.0, 1.0)).all())
        self.feature_names_in_ = list(X.columns)
        counts = np.bincount(codes, minlength=len(arms) + 1)
        if (counts == 0).any():
            empty = [([CONTROL] + arms)[i] for i in np.flatnonzero(counts == 0)]
            raise DataError(f"uplift needs rows of every arm; none for {', '.join(empty)}")
        self.shares_ = {
            a: float(counts[i + 1] / (counts[i + 1] + counts[0])) for i, a in enumerate(arms)
        }
        if validation is None:
            validation = self._validation(len(y), codes * 2 + (y > 0))
        self.models_ = {}
        self._fit(X.reset_index(drop=True), y, codes, np.asarray(validation, dtype=bool))
        self.best_iterations_ = {k: int(b.current_iteration()) for k, b in self.models_.items()}
        return self

    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit(X, y, treatment) first"
            )

    def predict_arms(self, X: pd.DataFrame) -> pd.DataFrame:
        """Estimated uplift of every arm against control: one column per arm."""
        self._check()
        values = self._predict(X)
        return pd.DataFrame(values, columns=self.arms_, index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray | pd.DataFrame:
        """Estimated uplift: one column per arm (a frame), or one array when fitted on 0/1."""
        arms = self.predict_arms(X)
        return arms.iloc[:, 0].to_numpy() if self.binary_treatment_ else arms

    def _raw(self, name: str, X: pd.DataFrame) -> np.ndarray:
        return self.models_[name].predict(X)

    def contributions(self, X: pd.DataFrame, arm: int) -> np.ndarray:
        """Per-feature contributions to arm ``arm``'s uplift (LightGBM's TreeSHAP, on the raw
        scale of the models: log-odds for a binary outcome), n x features."""
        self._check()
        return self._contrib(X, arm)[:, : len(self.feature_names_in_)]

    def _c(self, name: str, X: pd.DataFrame) -> np.ndarray:
        return self.models_[name].predict(X, pred_contrib=True)[:, :-1]

    # implemented per learner
    def _fit(self, X, y, codes, valid) -> None:  # pragma: no cover
        raise NotImplementedError

    def _predict(self, X) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _contrib(self, X, arm) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """What a bundle stores besides the boosters."""
        return {
            "arms": self.arms_,
            "binary_treatment": self.binary_treatment_,
            "binary_outcome": self.binary_outcome_,
            "shares": self.shares_,
            "features": self.feature_names_in_,
            "params": {k: v for k, v in self.get_params().items() if k != "control"},
            "best_iterations": self.best_iterations_,
        }

    @classmethod
    def _restore(cls, models: dict[str, Any], state: dict[str, Any], control: Any) -> _Learner:
        self = cls(**{**state.get("params", {}), "control": control})
        self.models_ = models
        self.arms_ = list(state["arms"])
        self.binary_treatment_ = bool(state.get("binary_treatment", True))
        self.binary_outcome_ = bool(state.get("binary_outcome", True))
        self.shares_ = dict(state.get("shares", {}))
        self.feature_names_in_ = list(state["features"])
        self.best_iterations_ = dict(state.get("best_iterations", {}))
        return self


class SLearnerUplift(_Learner):
    """One LightGBM model with the arm as a categorical feature; uplift of an arm =
    f(x, arm) - f(x, control) (probabilities for a binary outcome)."""

    kind = "s_learner"

    def _with_arm(self, X: pd.DataFrame, code: int | np.ndarray) -> pd.DataFrame:
        names = [str(CONTROL), *self.arms_]
        values = np.broadcast_to(np.asarray(code), (len(X),))
        M = X.copy()
        M[ARM_FEATURE] = pd.Categorical.from_codes(values, categories=names)
        return M

    def _fit(self, X, y, codes, valid) -> None:
        self.models_["model"] = self._boost(self._with_arm(X, codes), y, self._objective(), valid)

    def _predict(self, X) -> np.ndarray:
        base = self._raw("model", self._with_arm(X, 0))
        return np.column_stack(
            [self._raw("model", self._with_arm(X, i + 1)) - base for i in range(len(self.arms_))]
        )

    def _contrib(self, X, arm) -> np.ndarray:
        return self._c("model", self._with_arm(X, arm + 1)) - self._c("model", self._with_arm(X, 0))


class TwoModelUplift(_Learner):
    """The T-learner: one LightGBM model per arm and one for control; uplift = the difference of
    their predictions.

    scikit-learn conventions: ``fit`` returns self; learned state ends in ``_``.
    """

    kind = "two_model"

    def _fit(self, X, y, codes, valid) -> None:
        for i, name in enumerate(["control", *[f"arm_{j}" for j in range(len(self.arms_))]]):
            rows = codes == i
            self.models_[name] = self._boost(X[rows], y[rows], self._objective(), valid[rows])

    def _predict(self, X) -> np.ndarray:
        base = self._raw("control", X)
        return np.column_stack([self._raw(f"arm_{i}", X) - base for i in range(len(self.arms_))])

    def _contrib(self, X, arm) -> np.ndarray:
        return self._c(f"arm_{arm}", X) - self._c("control", X)

    def _model(self) -> Any:
        """A LightGBM classifier with this learner's settings (a response model beside it)."""
        import lightgbm as lgb

        return lgb.LGBMClassifier(
            n_estimators=min(self.n_estimators, 300),
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.seed,
            deterministic=True,
            force_col_wise=True,
            n_jobs=self.n_jobs,
            verbose=-1,
        )


class XLearnerUplift(TwoModelUplift):
    """The X-learner (Künzel et al. 2019): the T-learner's models impute each row's effect
    (treated: y - mu_control(x); control: mu_arm(x) - y), two regressions learn it per group, and
    their predictions blend by the arm's share ``e``: tau = e tau_control + (1 - e) tau_arm."""

    kind = "x_learner"

    def _fit(self, X, y, codes, valid) -> None:
        super()._fit(X, y, codes, valid)
        mu_c = self._raw("control", X)
        ctrl = codes == 0
        for i in range(len(self.arms_)):
            arm = codes == i + 1
            d_arm = y[arm] - mu_c[arm]
            d_ctrl = self._raw(f"arm_{i}", X[ctrl]) - y[ctrl]
            self.models_[f"tau_arm_{i}"] = self._boost(X[arm], d_arm, "regression", valid[arm])
            self.models_[f"tau_control_{i}"] = self._boost(
                X[ctrl], d_ctrl, "regression", valid[ctrl]
            )

    def _predict(self, X) -> np.ndarray:
        cols = []
        for i, arm in enumerate(self.arms_):
            e = self.shares_[arm]
            cols.append(
                e * self._raw(f"tau_control_{i}", X) + (1 - e) * self._raw(f"tau_arm_{i}", X)
            )
        return np.column_stack(cols)

    def _contrib(self, X, arm) -> np.ndarray:
        e = self.shares_[self.arms_[arm]]
        return e * self._c(f"tau_control_{arm}", X) + (1 - e) * self._c(f"tau_arm_{arm}", X)


class TransformedOutcomeUplift(_Learner):
    """Class transformation generalised to any treatment share: per arm, a LightGBM regression of
    ``y * (t - e) / (e * (1 - e))`` on that arm's and the control rows, whose expectation is the
    uplift; ``e``, the arm's share against control, is the propensity weight that keeps the
    estimate unbiased when the groups are unequal."""

    kind = "transformed_outcome"

    def _fit(self, X, y, codes, valid) -> None:
        for i, arm in enumerate(self.arms_):
            rows = (codes == 0) | (codes == i + 1)
            t = (codes[rows] == i + 1).astype(np.float64)
            e = self.shares_[arm]
            z = y[rows] * (t - e) / (e * (1 - e))
            self.models_[f"arm_{i}"] = self._boost(X[rows], z, "regression", valid[rows])
        self.treatment_share_ = self.shares_[self.arms_[0]]

    def _predict(self, X) -> np.ndarray:
        return np.column_stack([self._raw(f"arm_{i}", X) for i in range(len(self.arms_))])

    def _contrib(self, X, arm) -> np.ndarray:
        return self._c(f"arm_{arm}", X)


class ShrunkSLearnerUplift(SLearnerUplift):
    """The S-learner shrunk toward a homogeneous effect, cross-fitted: the weight of the shrinkage
    is chosen on out-of-fold predictions of the training rows, and the fold models are averaged.

    Two models read the arm as a feature: the S-learner (trees may split on the arm anywhere, so
    the effect can vary freely with x) and a homogeneous model (LightGBM's interaction
    constraints keep the arm out of every tree that splits on x, so the arm shifts the log-odds
    by a constant; for a non-negative revenue the log of the mean, with a Poisson objective). The
    homogeneous model's uplift, ``sigmoid(logit p0(x) + delta) - p0(x)``, ranks customers by
    their own propensity: right where an offer multiplies it, and stable where the S-learner's
    difference of two predictions is noise.

    The training rows are split into ``folds`` seeded folds (stratified by arm and outcome);
    per fold, both models train on the other folds and stop early on this one, and predict it.
    Per arm, uplift = ``w * s_learner + (1 - w) * homogeneous`` with ``w`` in {1, 0.75, 0.5,
    0.25, 0} the one whose out-of-fold predictions have the best normalised Qini over all the
    training rows (never the test fold; a tie keeps the larger ``w``). Predictions average the fold models (a bagging that
    also steadies the uplift's ranking). A ``validation`` mask given to ``fit`` is not used: the
    folds take its place."""

    kind = "shrunk_s_learner"
    WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
    FOLDS = 3
    MARGIN = 0.0  # a blend must beat w = 1's out-of-fold Qini by this share of it

    def _homogeneous_objective(self, y: np.ndarray) -> str | None:
        if self.binary_outcome_:
            return "binary"
        return "poisson" if (y >= 0).all() and (y > 0).any() else None

    def _folds(self, codes: np.ndarray, y: np.ndarray) -> np.ndarray:
        """A seeded fold number per row, each arm x outcome spread evenly over the folds."""
        strata = codes * 2 + (y > 0)
        draw = np.random.default_rng((self.seed, 0xF01D)).random(len(y))
        fold = np.zeros(len(y), dtype=np.int64)
        for s in np.unique(strata):
            idx = np.flatnonzero(strata == s)
            fold[idx[np.argsort(draw[idx], kind="stable")]] = np.arange(len(idx)) % self.FOLDS
        return fold

    def _fit(self, X, y, codes, valid) -> None:
        M = self._with_arm(X, codes)
        objective = self._homogeneous_objective(y)
        arm_index = M.columns.get_loc(ARM_FEATURE)
        others = [i for i in range(M.shape[1]) if i != arm_index]
        fold = self._folds(codes, y)
        het = np.zeros((len(y), len(self.arms_)))
        hom = np.zeros_like(het)
        self.folds_ = self.FOLDS
        for k in range(self.FOLDS):
            held = fold == k
            # the held-out fold is never trained on: early stopping and prediction only
            self.models_[f"model_{k}"] = self._boost(M, y, self._objective(), held)
            het[held] = self._fold_uplift("model", k, X[held])
            if objective is not None:
                self.models_[f"homogeneous_{k}"] = self._boost(
                    M, y, objective, held, interaction_constraints=[[arm_index], others]
                )
                hom[held] = self._fold_uplift("homogeneous", k, X[held])
        self.weights_, _ = self._choose_weights(y, codes, het, hom, objective is not None)

    def _choose_weights(
        self, y: np.ndarray, codes: np.ndarray, het: np.ndarray, hom: np.ndarray, blend: bool
    ) -> tuple[dict[str, float], dict[str, dict[str, list[float]]]]:
        """Per arm, the weight whose blend has the best out-of-fold Qini over that arm's and the
        control rows (a tie keeps the larger weight), and the Qini of every weight. Without a
        scale on which an effect is homogeneous (``blend`` false) every arm keeps 1."""
        weights: dict[str, float] = {}
        choice: dict[str, dict[str, list[float]]] = {}
        for i, arm in enumerate(self.arms_):
            if not blend:
                weights[arm] = 1.0
                continue
            keep = np.isin(codes, (0, i + 1))
            t = (codes[keep] == i + 1).astype(int)
            h, o = het[keep, i], hom[keep, i]
            scores = [qini_auc_score(y[keep], w * h + (1 - w) * o, t) for w in self.WEIGHTS]
            scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
            best = int(np.argmax(scores))
            if scores[best] <= scores[0] + self.MARGIN * abs(scores[0]):
                best = 0  # within the margin of the S-learner alone: keep it
            weights[arm] = float(self.WEIGHTS[best])
            choice[arm] = {"qini": [float(v) for v in scores]}
        return weights, choice

    def _fold_uplift(self, name: str, k: int, X) -> np.ndarray:
        return self._booster_uplift(self.models_[f"{name}_{k}"], X)

    def _booster_uplift(self, booster: Any, X) -> np.ndarray:
        """One booster's uplift of every arm: f(x, arm) - f(x, control)."""
        base = booster.predict(self._with_arm(X, 0))
        return np.column_stack(
            [booster.predict(self._with_arm(X, i + 1)) - base for i in range(len(self.arms_))]
        )

    def _mean_uplift(self, name: str, X) -> np.ndarray:
        return np.mean([self._fold_uplift(name, k, X) for k in range(self.folds_)], axis=0)

    def _heterogeneous(self, X) -> np.ndarray:
        """The uplift the homogeneous effect is blended with, every arm."""
        return self._mean_uplift("model", X)

    def _predict(self, X) -> np.ndarray:
        het = self._heterogeneous(X)
        if "homogeneous_0" not in self.models_:
            return het
        w = np.array([self.weights_[a] for a in self.arms_])
        return w * het + (1 - w) * self._mean_uplift("homogeneous", X)

    def _mean_contrib(self, name: str, X, arm: int) -> np.ndarray:
        on, off = self._with_arm(X, arm + 1), self._with_arm(X, 0)
        return np.mean(
            [self._c(f"{name}_{k}", on) - self._c(f"{name}_{k}", off) for k in range(self.folds_)],
            axis=0,
        )

    def _heterogeneous_contrib(self, X, arm) -> np.ndarray:
        return self._mean_contrib("model", X, arm)

    def _contrib(self, X, arm) -> np.ndarray:
        het = self._heterogeneous_contrib(X, arm)
        if "homogeneous_0" not in self.models_:
            return het
        w = self.weights_[self.arms_[arm]]
        return w * het + (1 - w) * self._mean_contrib("homogeneous", X, arm)

    def _state(self) -> dict[str, Any]:
        return {**super()._state(), "weights": self.weights_, "folds": self.folds_}

    @classmethod
    def _restore(cls, models, state, control) -> _Learner:
        self = super()._restore(models, state, control)
        self.weights_ = {str(k): float(v) for k, v in state["weights"].items()}
        self.folds_ = int(state["folds"])
        return self


class _LinearUplift:
    """A penalised GLM with arm x feature terms: logistic for a binary outcome, linear otherwise.

    The features become columns a linear model can read: a numeric feature by its position among
    the training values (``GRID`` quantiles, so scale and heavy tails do not matter), with a
    column flagging missing values where the training rows have any; a categorical feature one
    column per level seen on at least ``min_count`` rows (at most ``MAX_LEVELS``); every column
    standardised on the training rows. The model reads ``[z, arm, arm x z]`` (one arm column and
    one block per arm; control is all zeros) with an L2 penalty ``lam`` on every coefficient but
    the intercept (default: the number of feature columns, so that a wide feature set, whose
    many arm x feature terms would otherwise fit noise, is held back more), fitted by Newton's
    method. The uplift of arm ``a`` is ``g(z, a) - g(z, control)``; its log-odds (or mean) difference is linear in ``z``, which is what lets it
    carry an effect that grows smoothly with a feature, where trees need many splits on a noisy
    difference. Its state is plain numbers (a bundle keeps it as JSON)."""

    GRID = 33
    MAX_LEVELS = 30

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    # ---------------------------------------------------------------- design
    @classmethod
    def _terms(cls, X: pd.DataFrame, min_count: int) -> list[dict[str, Any]]:
        terms: list[dict[str, Any]] = []
        categorical = [
            c
            for c in X.columns
            if isinstance(X[c].dtype, pd.CategoricalDtype) or X[c].dtype == object
        ]
        numeric = {
            c: pd.to_numeric(X[c], errors="coerce") for c in X.columns if c not in categorical
        }
        for name in X.columns:
            col = X[name]
            if name in categorical:
                if cls._bins_of(col, numeric):
                    continue  # its levels only bin a numeric feature the model reads already
                counts = col.astype("string").value_counts(dropna=True)
                counts = counts[counts >= min_count]
                if len(counts) == 0 or (len(counts) == 1 and counts.iloc[0] == len(col)):
                    continue
                order = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
                for level, _ in order[: cls.MAX_LEVELS]:
                    terms.append({"feature": str(name), "kind": "level", "level": str(level)})
                continue
            values = numeric[name].to_numpy(dtype=np.float64)
            seen = values[np.isfinite(values)]
            if seen.size:
                grid = np.unique(np.quantile(seen, np.linspace(0.0, 1.0, cls.GRID)))
                if grid.size > 1:
                    terms.append({"feature": str(name), "kind": "num", "grid": grid.tolist()})
            if (~np.isfinite(values)).any() and seen.size:
                terms.append({"feature": str(name), "kind": "missing"})
        return terms

    @staticmethod
    def _bins_of(col: pd.Series, numeric: dict[Any, pd.Series]) -> bool:
        """Whether the levels of ``col`` cover disjoint ranges of one numeric feature."""
        levels = col.astype("string")
        for values in numeric.values():
            both = levels.notna() & values.notna()
            if both.sum() == 0:
                continue
            span = values[both].groupby(levels[both]).agg(["min", "max"]).sort_values("min")
            if len(span) > 1 and (span["max"].to_numpy()[:-1] < span["min"].to_numpy()[1:]).all():
                return True
        return False

    @staticmethod
    def _raw_columns(terms: list[dict[str, Any]], X: pd.DataFrame) -> np.ndarray:
        Z = np.zeros((len(X), len(terms)))
        read: dict[str, Any] = {}  # each feature converted once, however many columns it has
        for j, term in enumerate(terms):
            name = term["feature"]
            if term["kind"] == "level":
                if name not in read:
                    read[name] = X[name].astype("string")
                Z[:, j] = (read[name] == term["level"]).fillna(False).to_numpy(bool)
                continue
            if name not in read:
                read[name] = pd.to_numeric(X[name], errors="coerce").to_numpy(dtype=np.float64)
            values = read[name]
            missing = ~np.isfinite(values)
            if term["kind"] == "missing":
                Z[:, j] = missing
                continue
            grid = np.asarray(term["grid"])
            Z[:, j] = np.interp(
                np.where(missing, grid[0], values), grid, np.linspace(0, 1, grid.size)
            )
            Z[missing, j] = 0.5
        return Z

    def design(self, X: pd.DataFrame) -> np.ndarray:
        """The standardised feature columns z of ``X``."""
        s = self.state
        return (self._raw_columns(s["terms"], X) - np.asarray(s["mean"])) / np.asarray(s["scale"])

    # ---------------------------------------------------------------- fit / predict
    @classmethod
    def fit(
        cls,
        X: pd.DataFrame,
        y: np.ndarray,
        codes: np.ndarray,
        n_arms: int,
        *,
        binary: bool,
        min_count: int = 100,
        lam: float | None = None,
    ) -> _LinearUplift:
        terms = cls._terms(X, min_count)
        Z = cls._raw_columns(terms, X)
        mean, scale = Z.mean(axis=0), Z.std(axis=0)
        keep = scale > 1e-12
        terms = [t for t, k in zip(terms, keep, strict=True) if k]
        Z = (Z[:, keep] - mean[keep]) / scale[keep]
        D = cls._full(Z, codes, n_arms)
        lam = float(max(1, Z.shape[1])) if lam is None else float(lam)
        coef = _penalised_glm(D, np.asarray(y, dtype=np.float64), binary=binary, lam=lam)
        return cls(
            {
                "terms": terms,
                "mean": mean[keep].tolist(),
                "scale": scale[keep].tolist(),
                "coef": coef.tolist(),
                "binary": bool(binary),
                "arms": int(n_arms),
            }
        )

    @staticmethod
    def _full(Z: np.ndarray, codes: np.ndarray | int, n_arms: int) -> np.ndarray:
        """``[1, z, arm, arm x z]`` for every arm; control (code 0) has zeros in the arm blocks."""
        n, p = Z.shape
        codes = np.broadcast_to(np.asarray(codes), (n,))
        A = (codes[:, None] == np.arange(1, n_arms + 1)[None, :]).astype(np.float64)
        inter = (A[:, :, None] * Z[:, None, :]).reshape(n, n_arms * p)
        return np.column_stack([np.ones(n), Z, A, inter])

    def _parts(self) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        coef = np.asarray(self.state["coef"])
        k = int(self.state["arms"])
        p = len(self.state["terms"])
        return coef[0], coef[1 : 1 + p], coef[1 + p : 1 + p + k], coef[1 + p + k :].reshape(k, p)

    def uplift(self, X: pd.DataFrame) -> np.ndarray:
        """Per arm (columns), g(z, arm) - g(z, control): probabilities for a binary outcome."""
        Z = self.design(X)
        b0, bz, ba, g = self._parts()
        base = b0 + Z @ bz
        effect = ba[None, :] + Z @ g.T
        if not self.state["binary"]:
            return effect
        return _sigmoid(base[:, None] + effect) - _sigmoid(base)[:, None]

    def contributions(self, X: pd.DataFrame, arm: int, features: list[str]) -> np.ndarray:
        """Per feature, its share of arm ``arm``'s effect on the model's scale (log-odds for a
        binary outcome): the arm x feature terms times the customer's standardised columns (a
        linear model's SHAP values against the training mean)."""
        Z = self.design(X)
        g = self._parts()[3][arm]
        out = np.zeros((len(X), len(features)))
        where = {f: i for i, f in enumerate(features)}
        for j, term in enumerate(self.state["terms"]):
            out[:, where[term["feature"]]] += g[j] * Z[:, j]
        return out


def _checked_linear(state: Any) -> dict[str, Any]:
    """A linear member's state as a bundle keeps it, checked before use (a bundle is untrusted)."""
    if not isinstance(state, dict):
        raise TypeError("linear: not an object")
    terms, arms = state["terms"], int(state["arms"])
    if not isinstance(terms, list) or arms < 1:
        raise ValueError("linear: terms or arms malformed")
    for term in terms:
        if term["kind"] not in ("num", "missing", "level") or not isinstance(term["feature"], str):
            raise ValueError(f"linear: term {term!r} malformed")
        if term["kind"] == "num":
            grid = np.asarray(term["grid"], dtype=np.float64)
            if grid.size < 2 or not np.isfinite(grid).all() or (np.diff(grid) <= 0).any():
                raise ValueError(f"linear: the grid of {term['feature']} is not increasing")
        if term["kind"] == "level" and not isinstance(term["level"], str):
            raise ValueError(f"linear: a level of {term['feature']} is not text")
    p = len(terms)
    for key, size in (("mean", p), ("scale", p), ("coef", 1 + p + arms + arms * p)):
        values = np.asarray(state[key], dtype=np.float64)
        if values.shape != (size,) or not np.isfinite(values).all():
            raise ValueError(f"linear: {key} has not {size} finite numbers")
    if (np.asarray(state["scale"], dtype=np.float64) <= 0).any():
        raise ValueError("linear: scale has a value that is not positive")
    return {**state, "binary": bool(state["binary"]), "arms": arms}


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(v, -35.0, 35.0)))


def _penalised_glm(
    D: np.ndarray, y: np.ndarray, *, binary: bool, lam: float, iterations: int = 50
) -> np.ndarray:
    """Coefficients minimising the deviance plus ``lam / 2`` times the squared coefficients (the
    first column, the intercept, unpenalised): Newton's method for the logistic model, one exact
    step for least squares."""
    pen = np.full(D.shape[1], float(lam))
    pen[0] = 1e-8
    coef = np.zeros(D.shape[1])
    if binary:
        share = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
        coef[0] = math.log(share / (1 - share))
    for _ in range(iterations if binary else 1):
        eta = D @ coef
        mu = _sigmoid(eta) if binary else eta
        weight = mu * (1 - mu) if binary else np.ones_like(mu)
        gradient = D.T @ (y - mu) - pen * coef
        hessian = (D * weight[:, None]).T @ D + np.diag(pen)
        step = np.linalg.solve(hessian, gradient)
        coef += step
        if np.abs(step).max() < 1e-9:
            break
    return coef


class BaggedSLearnerUplift(ShrunkSLearnerUplift):
    """Seeded S-learners averaged with a penalised linear model of the effect, shrunk toward a
    homogeneous effect only where the training rows clearly show it ranks better.

    The uplift of ``n_bags`` S-learners, each fitted on all the training rows with its own seed
    (LightGBM's row and feature bagging at ``bagging_fraction`` and ``feature_fraction`` make
    them differ), is averaged: the difference of two predictions is noisy, and averaging seeded
    models steadies its ranking without the rows a held-out split would cost. Beside them, with
    weight ``linear_weight``, a logistic model (linear for revenue) with arm x feature terms and
    an L2 penalty (:class:`_LinearUplift`): an effect that grows smoothly with a feature is one
    coefficient to it, where trees fit it as many small steps of a noisy difference. Together
    they are the heterogeneous uplift.

    The homogeneous models (the arm shifts every customer's log-odds by one constant; see
    :class:`ShrunkSLearnerUplift`) come in per arm as ``w * heterogeneous + (1 - w) *
    homogeneous`` with ``w`` in {1, 0.75, 0.5, 0.25, 0}: the blend with the best normalised
    Qini on ``FOLDS`` seeded cross-fitted folds of the training rows (one S-learner, one
    homogeneous and one linear model per fold, each predicting the fold it did not see), if it
    beats ``w = 1`` by more than ``MARGIN`` (a tenth) of that Qini; smaller gains are within the
    folds' noise, and the heterogeneous uplift is kept. So an offer whose effect scales with the
    customer's propensity gets the homogeneous effect, and one that persuades some customers
    keeps its persuadables. The folds also early-stop (on the held-out fold, when
    ``early_stopping_rounds`` is set): the final models run the folds' mean best iteration. The
    fold models are not kept; the homogeneous models are not trained when every arm keeps
    ``w = 1``."""

    kind = "bagged_s_learner"
    FOLDS = 5
    MARGIN = 0.1

    def __init__(self, *, n_bags: int = 10, linear_weight: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_bags = n_bags
        self.linear_weight = linear_weight

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "n_bags": self.n_bags, "linear_weight": self.linear_weight}

    @classmethod
    def from_config(cls, config: Config | str | None = None, **overrides: Any) -> _Learner:
        config = as_config(config)
        tc = config.train
        own = {"n_bags": tc.uplift_bags, "linear_weight": tc.uplift_linear_weight}
        return super().from_config(config, **{**own, **overrides})

    def _linear(self, X, y, codes) -> _LinearUplift:
        return _LinearUplift.fit(
            X,
            y,
            codes,
            len(self.arms_),
            binary=self.binary_outcome_,
            min_count=max(1, int(self.min_child_samples)),
        )

    def _members(self) -> int:
        """Seeded models to average: one when nothing in LightGBM is random."""
        random = self.bagging_fraction < 1 or self.feature_fraction < 1
        return max(1, int(self.n_bags)) if random else 1

    def _fit(self, X, y, codes, valid) -> None:
        import lightgbm as lgb

        M = self._with_arm(X, codes)
        objective = self._homogeneous_objective(y)
        arm_index = M.columns.get_loc(ARM_FEATURE)
        others = [i for i in range(M.shape[1]) if i != arm_index]
        constraints = {"interaction_constraints": [[arm_index], others]}
        kinds = {"model": (self._objective(), {})}
        if objective is not None:
            kinds["homogeneous"] = (objective, constraints)
        fold = self._folds(codes, y)
        lw = float(self.linear_weight)
        oof = {name: np.zeros((len(y), len(self.arms_))) for name in [*kinds, "linear"]}
        best: dict[str, list[int]] = {name: [] for name in kinds}
        for k in range(self.FOLDS):
            held = fold == k
            for name, (obj, extra) in kinds.items():
                booster = self._boost(M, y, obj, held, **extra)  # chooses; not kept
                best[name].append(int(booster.current_iteration()))
                oof[name][held] = self._booster_uplift(booster, X[held])
            if lw > 0:
                fitted = self._linear(X[~held], y[~held], codes[~held])
                oof["linear"][held] = fitted.uplift(X[held])
        het = (1 - lw) * oof["model"] + lw * oof["linear"]
        self.weights_, self.choice_ = self._choose_weights(
            y, codes, het, oof.get("homogeneous", het), objective is not None
        )
        self.linear_ = self._linear(X, y, codes) if lw > 0 else None
        members = self._members()
        self.folds_ = members
        self.rounds_ = {}
        train_set = lgb.Dataset(M, y, free_raw_data=False)
        for name, (obj, extra) in kinds.items():
            if name == "homogeneous" and all(self.weights_[a] == 1.0 for a in self.arms_):
                continue  # unused by every arm
            rounds = (
                max(1, int(round(np.mean(best[name]))))
                if self.early_stopping_rounds
                else self.n_estimators
            )
            self.rounds_[name] = rounds
            for b in range(members):
                params = self._params(obj) | extra | {"seed": self.seed + 7919 * b}
                self.models_[f"{name}_{b}"] = lgb.train(params, train_set, num_boost_round=rounds)

    def _heterogeneous(self, X) -> np.ndarray:
        trees = self._mean_uplift("model", X)
        if self.linear_ is None:
            return trees
        lw = float(self.linear_weight)
        return (1 - lw) * trees + lw * self.linear_.uplift(X)

    def _heterogeneous_contrib(self, X, arm) -> np.ndarray:
        trees = self._mean_contrib("model", X, arm)
        if self.linear_ is None:
            return trees
        lw = float(self.linear_weight)
        linear = self.linear_.contributions(X, arm, self.feature_names_in_)
        linear = np.column_stack([linear, np.zeros((len(X), trees.shape[1] - linear.shape[1]))])
        return (1 - lw) * trees + lw * linear

    def _state(self) -> dict[str, Any]:
        return {
            **super()._state(),
            "rounds": self.rounds_,
            "choice": self.choice_,
            "linear": None if self.linear_ is None else self.linear_.state,
        }

    @classmethod
    def _restore(cls, models, state, control) -> _Learner:
        self = super()._restore(models, state, control)
        self.rounds_ = dict(state.get("rounds", {}))
        self.choice_ = dict(state.get("choice", {}))
        linear = state.get("linear")
        if linear is None:  # a bundle from before the linear member
            self.linear_, self.linear_weight = None, 0.0
            return self
        self.linear_ = _LinearUplift(_checked_linear(linear))
        unknown = {t["feature"] for t in linear["terms"]} - set(self.feature_names_in_)
        if unknown:
            raise ValueError(f"linear: terms of unknown features {sorted(unknown)[:5]}")
        return self


LEARNERS: dict[str, type[_Learner]] = {
    c.kind: c
    for c in (
        SLearnerUplift,
        TwoModelUplift,
        XLearnerUplift,
        TransformedOutcomeUplift,
        ShrunkSLearnerUplift,
        BaggedSLearnerUplift,
    )
}


def make_learner(config: Config | str | None = None, **overrides: Any) -> _Learner:
    """The learner ``train.uplift_learner`` names, with the config's ``train`` settings, seed and
    control arm (``overrides`` replace any of them)."""
    config = as_config(config)
    kind = config.train.uplift_learner
    if kind not in LEARNERS:  # the config's own validation stops this first
        raise ConfigError(
            f"train.uplift_learner '{kind}' is not a learner; allowed: {', '.join(LEARNERS)}"
        )
    return LEARNERS[kind].from_config(config, **overrides)


# --------------------------------------------------------------------------- evaluation


def uplift_report(
    y: np.ndarray, treatment: np.ndarray, rankings: dict[str, np.ndarray], *, k: float = 0.3
) -> pd.DataFrame:
    """Normalised Qini and AUUC (as scikit-uplift), uplift at ``k`` and vipml's earlier Qini
    coefficient of each ranking on the same rows.

    Parameters
    ----------
    y, treatment
        Outcomes (0/1, or an amount) and the group of each row (1 treated).
    rankings
        Name -> a score per row (higher: target first).
    k
        The top share for uplift at k.

    Returns
    -------
    pandas.DataFrame
        Index the ranking names; columns ``rows``, ``qini`` and ``auuc`` (scikit-uplift's
        ``qini_auc_score`` and ``uplift_auc_score``), ``uplift_at_{k}``, ``qini_coefficient``
        (area over rows x the total incremental outcome, vipml's earlier figure).
    """
    rows = {
        name: {
            "rows": float(len(y)),
            "qini": qini_auc_score(y, score, treatment),
            "auuc": uplift_auc_score(y, score, treatment),
            f"uplift_at_{round(k * 100)}": uplift_at_k(y, score, treatment, k),
            "qini_coefficient": qini_coefficient(y, score, treatment),
        }
        for name, score in rankings.items()
    }
    return pd.DataFrame(rows).T


def _bootstrap_interval(values: np.ndarray, *, seed: int, n: int = 2000, level: float = 0.95):
    rng = np.random.default_rng(seed)
    v = np.asarray(values, dtype=np.float64)
    means = v[rng.integers(0, len(v), (n, len(v)))].mean(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def summarise_splits(per_split: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Mean, standard deviation, standard error and a seeded bootstrap 95% interval of the mean
    of each metric per ranking, over the splits of :func:`repeated_splits`."""
    out = []
    metrics = [c for c in per_split.columns if c not in ("seed", "ranking")]
    for name, part in per_split.groupby("ranking", sort=False):
        row: dict[str, Any] = {"ranking": name, "splits": len(part)}
        for m in metrics:
            v = part[m].to_numpy(dtype=np.float64)
            row[f"{m}_mean"] = float(v.mean())
            row[f"{m}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
            row[f"{m}_se"] = row[f"{m}_sd"] / math.sqrt(len(v)) if len(v) > 1 else math.nan
            row[f"{m}_low"], row[f"{m}_high"] = _bootstrap_interval(v, seed=seed)
        out.append(row)
    return pd.DataFrame(out).set_index("ranking")


def repeated_splits(
    X: pd.DataFrame,
    y: np.ndarray,
    treatment: np.ndarray,
    rankers: dict[
        str, Callable[[pd.DataFrame, np.ndarray, np.ndarray, pd.DataFrame, int], np.ndarray]
    ],
    *,
    seeds: list[int] | range = range(10),
    test_size: float = 0.3,
    k: float = 0.3,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate rankings over repeated random splits: for each seed,
    ``train_test_split(test_size, random_state=seed, stratify=2 * treated + outcome)``, each ranker
    fits on the training rows and scores the test rows, and :func:`uplift_report` compares them.

    Parameters
    ----------
    X, y, treatment
        Features, outcome (0/1 or an amount; an amount stratifies by ``y > 0``) and 0/1 group.
    rankers
        Name -> ``f(X_fit, y_fit, t_fit, X_test, seed)`` returning a score per test row.

    Returns
    -------
    (per_split, summary)
        One row per seed and ranking; and :func:`summarise_splits` of it.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y, dtype=np.float64)
    t = np.asarray(treatment).astype(int)
    strata = 2 * t + (y > 0)
    rows = []
    for seed in seeds:
        fit, test = train_test_split(
            np.arange(len(y)), test_size=test_size, random_state=seed, stratify=strata
        )
        scores = {
            name: np.asarray(f(X.iloc[fit], y[fit], t[fit], X.iloc[test], seed), dtype=np.float64)
            for name, f in rankers.items()
        }
        report = uplift_report(y[test], t[test], scores, k=k)
        rows.append(report.rename_axis("ranking").reset_index().assign(seed=seed))
    per_split = pd.concat(rows, ignore_index=True)
    return per_split, summarise_splits(per_split)


# --------------------------------------------------------------------------- training and bundles


@dataclass
class UpliftResult:
    """What an uplift training run produced."""

    learner: _Learner
    kind: str
    spec: FeatureSpec
    features: list[str]
    categories: dict[str, list[str]]
    metrics: pd.DataFrame
    plan: Plan
    treatment_share: float
    notes: list[str] = field(default_factory=list)
    arms: list[str] = field(default_factory=list)
    control_arm: str = CONTROL
    outcome: str = "accepted"
    costs: dict[str, float] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    deciles: dict[str, Any] = field(default_factory=dict)

    def boosters(self) -> dict[str, Any]:
        """The LightGBM boosters by file name."""
        return {f"{name}.txt": b for name, b in self.learner.models_.items()}


def offer_arms(offers: pd.DataFrame, config: Config) -> pd.Series:
    """The arm of each offer: ``train.control_arm`` for held-out offers (``group: control``) and
    for offers whose ``train.arm_column`` value is the control arm; otherwise that column's
    value, or ``treatment`` when no arm column is configured. Indexed by ``offer_id``."""
    tc = config.train
    control = tc.control_arm
    held = (
        (offers["group"].astype("object") == "control").to_numpy()
        if "group" in offers
        else np.zeros(len(offers), dtype=bool)
    )
    if tc.arm_column:
        if tc.arm_column not in offers:
            raise ConfigError(
                f"train.arm_column '{tc.arm_column}' is not a column of the offers table (found: "
                f"{', '.join(sorted(offers.columns)[:12])}).\nFix: name an offers column such as "
                "offer_type, campaign_id or category, or keep it in tables.offers.keep"
            )
        arm = offers[tc.arm_column].astype("object")
        missing = arm.isna().to_numpy() & ~held
        if missing.any():
            raise DataError(
                f"table 'offers', column '{tc.arm_column}' (train.arm_column): "
                f"{int(missing.sum()):,} offers sent have no arm, e.g. offers "
                f"{', '.join(offers.loc[missing, 'offer_id'].astype(str).head(5))}.\n"
                "Fix: give every offer sent its arm, or map the column in the config"
            )
        arm = arm.where(arm.isna(), arm.astype("str"))
    else:
        arm = pd.Series("treatment", index=offers.index, dtype="object")
    arm = arm.where(~held, control)
    return pd.Series(arm.to_numpy(dtype=object), index=offers["offer_id"].to_numpy(), name="arm")


def window_revenue(tables: Tables, rows: pd.DataFrame, days: int, column: str | None) -> np.ndarray:
    """Revenue of each offer's customer in ``[sent_at, sent_at + days)``: from the offers column
    ``column`` when given (e.g. Hillstrom's ``spend``), else the orders' amounts."""
    offers = tables.offers
    if column:
        if column not in offers:
            raise ConfigError(
                f"train.revenue_column '{column}' is not a column of the offers table.\n"
                "Fix: keep it (tables.offers.keep) or leave it unset to read revenue from orders"
            )
        values = pd.to_numeric(offers.set_index("offer_id")[column], errors="coerce")
        return values.reindex(rows["offer_id"]).fillna(0.0).to_numpy(dtype=np.float64)
    orders = tables.orders
    if orders is None or orders.empty:
        raise DataError(
            "train.uplift_outcome 'revenue' needs orders (or train.revenue_column, an offers "
            "column holding each offer's revenue in the window)"
        )
    keys = rows[["offer_id", "customer_id", "sent_at"]]
    joined = keys.merge(orders[["customer_id", "ordered_at", "amount"]], on="customer_id")
    inside = (joined["ordered_at"] >= joined["sent_at"]) & (
        joined["ordered_at"] < joined["sent_at"] + pd.Timedelta(days=days)
    )
    total = joined[inside].groupby("offer_id")["amount"].sum()
    return total.reindex(rows["offer_id"]).fillna(0.0).to_numpy(dtype=np.float64)


def train_uplift(
    tables: Tables, config: Config | str | None = None, *, progress: bool = False
) -> UpliftResult:
    """Train the configured uplift learner on the offers and evaluate it on the test fold.

    Folds are the upsell task's (by send time, or a seeded random split when every offer went
    out within three weeks); the learner fits on the training fold with early stopping on the
    validation fold, and the test fold compares it, arm by arm, with a response model (LightGBM
    on the arm's offers, P(outcome)) and a seeded random ranking.

    Parameters
    ----------
    tables
        Offers with a control group (``group: control`` or ``train.control_arm`` in
        ``train.arm_column``) and the tables the features need.
    config
        ``train.uplift_learner``, ``train.arm_column``, ``train.control_arm``,
        ``train.uplift_outcome``, the LightGBM settings of ``train``, ``labels.acceptance_days``
        and ``labels.offer_event``, the feature settings and ``seed``.
    progress
        Draw a progress bar while features are built.

    Returns
    -------
    UpliftResult

    Raises
    ------
    DataError
        When the offers have no control group, or a fold lacks an arm's or the control offers.
    """
    from vipml.train import OFFER_FEATURES, build_offer_dataset

    config = as_config(config)
    tc = config.train
    offers = tables.offers
    if offers is None or offers.empty:
        raise DataError(
            "the uplift task needs an offers table with a control group; this data has no "
            "offers.\nFix: give offers (offer_id, customer_id, sent_at, offer_type, group)"
        )
    arm_of = offer_arms(offers, config)
    if not (arm_of == tc.control_arm).any():
        raise DataError(
            "the uplift task needs offers with a control group (offers.group: treatment / "
            f"control, or train.control_arm '{tc.control_arm}' in train.arm_column); none is held "
            "out.\nFix: hold out a random control group when sending, or map the column in "
            "tables.offers.columns.group"
        )
    X, y, masks, plan = build_offer_dataset(tables, config, progress=progress, include_control=True)
    if X.empty:
        raise DataError(
            f"none of the {len(offers):,} offers went to a customer known before it was sent "
            "(no sign-up, order, event or earlier offer), so no offer has features.\nFix: give "
            "the customers' sign-up dates or history, or set undated_customers_known: true when "
            "the customers table lists existing customers without dates"
        )
    offer_ids = X.index.get_level_values("offer_id")
    arm = arm_of.reindex(offer_ids).to_numpy(dtype=object)
    outcome = tc.uplift_outcome if tc.uplift_outcome == "revenue" else config.labels.offer_event
    if tc.uplift_outcome == "revenue":
        rows = offers.set_index("offer_id").reindex(offer_ids)[["customer_id", "sent_at"]]
        y = pd.Series(
            window_revenue(
                tables,
                rows.reset_index(),
                config.labels.acceptance_days,
                tc.revenue_column,
            ),
            index=X.index,
        )
    spec = FeatureSpec.from_dict(X.attrs["feature_spec"])
    offer_columns = {f.name for f in OFFER_FEATURES}
    spec.features[:] = [f for f in spec.features if f.name not in offer_columns]
    features = [c for c in spec.names if c in X]
    fit = masks["train"] | masks["valid"]
    test = masks["test"]
    arms = sorted(set(arm) - {tc.control_arm})
    ctrl = arm == tc.control_arm
    for name, mask in (("training", fit), ("test", test)):
        for a in arms:
            n_a, n_c = int((mask & (arm == a)).sum()), int((mask & ctrl).sum())
            if not (n_a and n_c):
                raise DataError(
                    f"the {name} offers hold {n_a:,} offers of arm '{a}' and {n_c:,} control "
                    "offers; uplift needs both.\nFix: give more offers with a held-out control group"
                )
    categories = {
        c: sorted(X.loc[fit, c].dropna().astype("str").unique().tolist()) for c in spec.categorical
    }
    M = prepare_matrix(X, features, categories)
    learner = make_learner(config)
    treatment = arm if tc.arm_column else (~ctrl).astype(int)
    learner.fit(M[fit], y[fit].to_numpy(), treatment[fit], validation=masks["valid"][fit])
    u = learner.predict_arms(M[test])
    rng = np.random.default_rng(config.seed)
    noise = rng.random(int(test.sum()))
    tables_out, curves, deciles = [], {}, {}
    y_test, arm_test = y[test].to_numpy(dtype=np.float64), arm[test]
    import lightgbm as lgb

    for a in arms:
        rows = (arm_test == a) | (arm_test == tc.control_arm)
        t_rows = (arm_test[rows] == a).astype(int)
        resp_rows = fit & (arm == a)
        resp_model = (lgb.LGBMClassifier if learner.binary_outcome_ else lgb.LGBMRegressor)(
            n_estimators=200,
            learning_rate=tc.learning_rate,
            num_leaves=tc.num_leaves,
            min_child_samples=tc.min_child_samples,
            random_state=config.seed,
            deterministic=True,
            force_col_wise=True,
            n_jobs=2,
            verbose=-1,
        ).fit(M[resp_rows], y[resp_rows].to_numpy())
        Mt = M[test][rows]
        response = (
            resp_model.predict_proba(Mt)[:, 1]
            if learner.binary_outcome_
            else resp_model.predict(Mt)
        )
        ranks = {"uplift": u[a].to_numpy()[rows], "response": response, "random": noise[rows]}
        rep = uplift_report(y_test[rows], t_rows, ranks)
        rep.index = [n if len(arms) == 1 else f"{n}.{a}" for n in rep.index]
        tables_out.append(rep)
        band = random_band(y_test[rows], t_rows, n=100, seed=config.seed)
        curves[a] = {
            "uplift": qini_points(y_test[rows], ranks["uplift"], t_rows),
            "response": qini_points(y_test[rows], ranks["response"], t_rows),
            "band": band,
        }
        deciles[a] = (
            uplift_by_percentile(y_test[rows], ranks["uplift"], t_rows)
            .reset_index()
            .to_dict(orient="list")
        )
    costs = {}
    if "cost" in offers:
        cost = pd.to_numeric(offers.set_index("offer_id")["cost"], errors="coerce").reindex(
            offer_ids
        )
        for a in arms:
            v = cost[arm == a].dropna()
            if len(v):
                costs[a] = float(v.mean())
    notes = list(plan.notes)
    return UpliftResult(
        learner=learner,
        kind=learner.kind,
        spec=spec,
        features=features,
        categories=categories,
        metrics=pd.concat(tables_out),
        plan=plan,
        treatment_share=float((~ctrl[fit]).mean()),
        notes=notes,
        arms=arms if tc.arm_column else ["treatment"],
        control_arm=tc.control_arm,
        outcome=outcome,
        costs=costs,
        curves=curves,
        deciles=deciles,
    )


@dataclass
class UpliftBundle:
    """An uplift model read back from its folder."""

    path: Path
    kind: str
    boosters: dict[str, Any]
    features: list[str]
    categories: dict[str, list[str]]
    info: dict[str, Any]
    metrics: pd.DataFrame
    config: dict[str, Any]
    learner: _Learner | None = None
    spec: FeatureSpec | None = None

    @property
    def version(self) -> str:
        """The bundle's folder name."""
        return self.path.name

    @property
    def arms(self) -> list[str]:
        """The tested arms (offers), in column order."""
        return list(self.info.get("arms", ["treatment"]))

    def matrix(self, X: pd.DataFrame) -> pd.DataFrame:
        """The feature frame as the models read it; missing columns are an error naming them."""
        missing = sorted(set(self.features) - set(X.columns))
        if missing:
            raise DataError(
                f"the data's features do not match uplift bundle {self.version}: missing "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}\n"
                "Fix: build features with the config the uplift model was trained with"
            )
        return prepare_matrix(X, self.features, self.categories)

    def predict_arms(self, X: pd.DataFrame) -> pd.DataFrame:
        """Estimated uplift of every arm: one column per arm."""
        out = self.learner.predict_arms(self.matrix(X))
        out.columns = self.arms
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray | pd.DataFrame:
        """Estimated uplift per row (one array for a single arm, else one column per arm)."""
        arms = self.predict_arms(X)
        return arms.iloc[:, 0].to_numpy() if len(self.arms) == 1 else arms


def save_uplift_bundle(
    result: UpliftResult,
    *,
    tables: Tables,
    config: Config,
    out: str | os.PathLike[str] = "models",
    now: datetime | None = None,
) -> Path:
    """Write an uplift bundle folder atomically and return its path."""
    from vipml import __version__

    now = now or datetime.now(UTC)
    models = {name: f"{name}.txt" for name in result.learner.models_}

    def write(tmp: Path) -> None:
        for name, file in models.items():
            booster = result.learner.models_[name]
            (tmp / file).write_text(booster.model_to_string(), encoding="utf-8")
        write_json(tmp / "feature_spec.json", spec_json(result))
        write_json(tmp / "config.json", config_record(config))
        write_json(tmp / "metrics.json", json.loads(result.metrics.to_json(orient="index")))
        write_json(tmp / "qini.json", {"curves": result.curves, "deciles": result.deciles})
        write_json(tmp / "bundle.json", info)

    info = {
        "task": "uplift",
        "learner": result.kind,
        "models": models,
        "learner_state": result.learner._state(),
        "arms": result.arms,
        "control_arm": result.control_arm,
        "arm_column": config.train.arm_column,
        "outcome": result.outcome,
        "costs": result.costs,
        "treatment_share": result.treatment_share,
        "acceptance_days": config.labels.acceptance_days,
        "offer_event": config.labels.offer_event,
        "folds": {k: [c.isoformat() for c in v] for k, v in result.plan.folds.items()},
        "notes": result.notes,
        "data_fingerprint": fingerprint(tables),
        "vipml_version": __version__,
        "created_at": now.isoformat(),
    }

    def sealed(tmp: Path) -> None:
        write(tmp)
        seal(tmp)  # checksums of every file written

    return write_folder(Path(out), f"uplift-{now:%Y%m%d-%H%M%S}", sealed)


_OLD_FILES = {  # bundles written before several arms: file -> model name
    "two_model": {"treated.txt": "arm_0", "control.txt": "control"},
    "transformed_outcome": {"model.txt": "arm_0"},
}


def load_uplift_bundle(path: str | os.PathLike[str]) -> UpliftBundle:
    """Read an uplift bundle folder (text and JSON only; no pickled code runs).

    Raises
    ------
    DataError
        When the folder is not a complete uplift bundle.
    """
    import warnings

    from vipml.integrity import booster, read_json, read_model_text, verify_checksums

    path = Path(path)
    info_file = path / "bundle.json"
    info = read_json(path, "bundle.json") if info_file.is_file() else {}
    if info.get("task") != "uplift":
        found = f"task '{info['task']}'" if "task" in info else "no bundle.json"
        raise DataError(
            f"{path} is not an uplift bundle ({found}).\nFix: train one with train.task: uplift "
            "and give its folder"
        )
    kind = info.get("learner", "two_model")
    if not isinstance(kind, str) or kind not in LEARNERS:
        raise DataError(
            f"bundle file bundle.json: unknown uplift learner {kind!r} (known: "
            f"{', '.join(LEARNERS)})\nFix: use the bundle folder as vipml train wrote it"
        )
    files = info.get("models") or {v: k for k, v in _OLD_FILES.get(kind, {}).items()}
    if (
        not isinstance(files, dict)
        or not files
        or not all(
            isinstance(k, str) and isinstance(v, str) and v.endswith(".txt") and Path(v).name == v
            for k, v in files.items()
        )
    ):
        raise DataError(
            "bundle file bundle.json: 'models' should map model names to .txt files of the "
            "bundle folder\nFix: use the bundle folder as vipml train wrote it"
        )
    needed = [*files.values(), "feature_spec.json", "config.json", "metrics.json"]
    missing = [f for f in needed if not (path / f).is_file()]
    if missing:
        raise DataError(f"{path} is not a complete uplift bundle (missing {', '.join(missing)})")
    for warning in verify_checksums(path, info, needed):
        warnings.warn(warning, stacklevel=2)
    spec = read_json(path, "feature_spec.json")
    features = list(spec["order"])
    # the S-learners read the arm as a feature
    extra = 1 if issubclass(LEARNERS[kind], SLearnerUplift) else 0
    boosters = {
        name: booster(read_model_text(path, f, n_features=len(features) + extra), f)
        for name, f in files.items()
    }
    state = info.get("learner_state") or {
        "arms": ["treatment"],
        "binary_treatment": True,
        "shares": {"treatment": info.get("treatment_share", 0.5)},
        "features": features,
    }
    try:
        learner = LEARNERS[kind]._restore(boosters, state, info.get("control_arm", CONTROL))
        info.setdefault("arms", state["arms"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise DataError(
            f"bundle file bundle.json: the learner's state cannot be read ({type(exc).__name__}: "
            f"{str(exc)[:200]})\nFix: use the bundle folder as vipml train wrote it"
        ) from None
    try:
        fspec = FeatureSpec.from_dict(
            {k: v for k, v in spec.items() if k not in ("categories", "order")}
        )
    except (KeyError, TypeError, ValueError):  # an older layout: reasons use column names
        fspec = None
    return UpliftBundle(
        path=path,
        kind=kind,
        boosters={files[name]: b for name, b in boosters.items()},
        features=features,
        categories={k: list(v) for k, v in spec["categories"].items()},
        info=info,
        metrics=pd.DataFrame(read_json(path, "metrics.json")).T,
        config=read_json(path, "config.json"),
        learner=learner,
        spec=fspec,
    )
