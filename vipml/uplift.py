"""Uplift: the incremental effect of an offer, its learners and its evaluation.

An uplift model estimates, per customer, P(outcome | treated) - P(outcome | not treated): who
the offer persuades, as opposed to who would buy anyway. Two learners on LightGBM:

* :class:`TwoModelUplift`: one classifier per group, uplift = the difference of their
  probabilities;
* :class:`TransformedOutcomeUplift`: class transformation generalised to any treatment share, a
  regression of ``z = y (t - e) / (e (1 - e))`` whose expectation given X is the uplift.

Evaluation follows scikit-uplift's order of arguments, ``(y_true, uplift, treatment)``: the Qini
curve and coefficient, the uplift curve and its area (AUUC), and the uplift among the top k.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vipml.errors import DataError, NotFittedError


def _uplift_inputs(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, ...]:
    y, u, t = (np.asarray(a, dtype=np.float64) for a in (y_true, uplift, treatment))
    if not (len(y) == len(u) == len(t)):
        raise DataError(
            f"y_true, uplift and treatment differ in length: {len(y)}, {len(u)}, {len(t)}"
        )
    if t.sum() == 0 or t.sum() == len(t):
        raise DataError(
            f"uplift needs treated and control rows; found {int(t.sum())} treated of {len(t)}.\n"
            "Fix: evaluate on a sample that holds both groups"
        )
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
    """Treated rate minus control rate among the top share ``k`` by uplift."""
    y, t = _uplift_inputs(y_true, uplift, treatment)
    top = max(1, math.ceil(k * len(y)))
    yt, tt = y[:top], t[:top]
    if tt.sum() == 0 or tt.sum() == top:
        return math.nan
    return float(yt[tt == 1].mean() - yt[tt == 0].mean())


class TwoModelUplift:
    """Two LightGBM classifiers, one per group; uplift = P(y | treated) - P(y | control).

    scikit-learn conventions: ``fit`` returns self; learned state ends in ``_``.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        num_leaves: int = 15,
        learning_rate: float = 0.05,
        n_estimators: int = 300,
        min_child_samples: int = 50,
    ) -> None:
        self.seed = seed
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_samples = min_child_samples

    def _params(self) -> dict[str, object]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "random_state": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "n_jobs": 2,
            "verbose": -1,
        }

    def _model(self) -> object:
        import lightgbm as lgb

        return lgb.LGBMClassifier(**self._params())

    def fit(self, X: pd.DataFrame, y: np.ndarray, treatment: np.ndarray) -> TwoModelUplift:
        """Fit one model on the treated rows and one on the control rows."""
        t = np.asarray(treatment).astype(bool)
        y = np.asarray(y)
        self.treated_ = self._model().fit(X[t], y[t])
        self.control_ = self._model().fit(X[~t], y[~t])
        self.feature_names_in_ = list(X.columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated uplift per row."""
        if not hasattr(self, "treated_"):
            raise NotFittedError("TwoModelUplift is not fitted: call fit(X, y, treatment) first")
        return self.treated_.predict_proba(X)[:, 1] - self.control_.predict_proba(X)[:, 1]


class TransformedOutcomeUplift(TwoModelUplift):
    """Class transformation generalised to any treatment share: a LightGBM regression of
    ``y * (t - e) / (e * (1 - e))``, whose expectation is the uplift (``e`` the treated share)."""

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, treatment: np.ndarray
    ) -> TransformedOutcomeUplift:
        """Fit the regression of the transformed outcome."""
        import lightgbm as lgb

        t = np.asarray(treatment, dtype=np.float64)
        e = t.mean()
        if not 0 < e < 1:
            raise DataError(
                f"uplift needs treated and control rows; found {int(t.sum())} treated of {len(t)}.\n"
                "Fix: train on offers that hold both groups (offers.group: treatment / control)"
            )
        z = np.asarray(y, dtype=np.float64) * (t - e) / (e * (1 - e))
        self.treatment_share_ = float(e)
        self.model_ = lgb.LGBMRegressor(**self._params()).fit(X, z)
        self.feature_names_in_ = list(X.columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated uplift per row."""
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "TransformedOutcomeUplift is not fitted: call fit(X, y, treatment) first"
            )
        return self.model_.predict(X)
