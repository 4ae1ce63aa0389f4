"""What training, bundles and scoring share: the feature matrix, calibrators and drift references.

Training fits them; bundles store them as plain numbers; scoring reads them back. Scoring imports
this module, never :mod:`vipml.train`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

from vipml.errors import DataError, NotFittedError
from vipml.features.registry import FeatureSpec


def prepare_matrix(
    X: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Columns in training order; categorical ones as pandas categories fixed at training."""
    missing = [c for c in features if c not in X]
    if missing:
        extra = sorted(set(X.columns) - set(features))
        raise DataError(
            f"the features do not match the model: missing {', '.join(sorted(missing)[:5])}"
            + (f"; not seen in training: {', '.join(extra[:5])}" if extra else "")
            + "\nFix: build features with the config the model was trained with"
        )
    M = X[features].copy()
    for col, cats in categories.items():
        M[col] = pd.Categorical(M[col].astype("object"), categories=cats)
    return M


class Calibrator:
    """Isotonic or Platt calibration of raw scores, serialisable as plain numbers."""

    def __init__(self, method: str = "isotonic") -> None:
        self.method = method

    def fit(self, score: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on validation scores and labels."""
        score = np.asarray(score, dtype=np.float64)
        if self.method == "isotonic":
            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(score, y)
            self.x_, self.y_ = iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist()
        elif self.method == "platt":
            lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(score)[:, None], y)
            self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return self

    def predict(self, score: np.ndarray) -> np.ndarray:
        """Calibrated probabilities."""
        score = np.asarray(score, dtype=np.float64)
        if self.method == "isotonic":
            if not hasattr(self, "x_"):
                raise NotFittedError("Calibrator is not fitted: call fit(score, y) first")
            # a slope of 1e-6 across the fitted range keeps the model's order inside isotonic
            # steps (no ties in a ranked list); the probabilities move by less than 1e-6
            lo, hi = self.x_[0], self.x_[-1]
            tilt = 1e-6 * (np.clip(score, lo, hi) - lo) / (hi - lo) if hi > lo else 0.0
            return np.clip(np.interp(score, self.x_, self.y_) + tilt, 0.0, 1.0)
        if self.method == "platt":
            if not hasattr(self, "a_"):
                raise NotFittedError("Calibrator is not fitted: call fit(score, y) first")
            return 1.0 / (1.0 + np.exp(-(self.a_ * _logit(score) + self.b_)))
        return score

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers, for a JSON file."""
        data: dict[str, Any] = {"method": self.method}
        if self.method == "isotonic":
            data.update(x=self.x_, y=self.y_)
        elif self.method == "platt":
            data.update(a=self.a_, b=self.b_)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        """Read back :meth:`to_dict`."""
        out = cls(data["method"])
        if out.method == "isotonic":
            out.x_, out.y_ = list(data["x"]), list(data["y"])
        elif out.method == "platt":
            out.a_, out.b_ = float(data["a"]), float(data["b"])
        return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def choose_calibration(
    score: np.ndarray, y: np.ndarray, method: str, seed: int
) -> tuple[Calibrator, dict[str, float]]:
    """Isotonic or Platt by 3-fold cross-validated Brier score on the validation fold."""
    methods = ["isotonic", "platt"] if method == "auto" else [method]
    briers: dict[str, float] = {}
    if method == "auto" and y.sum() >= 6 and (len(y) - y.sum()) >= 6:
        folds = StratifiedKFold(3, shuffle=True, random_state=seed)
        for m in methods:
            pred = np.zeros(len(y))
            for fit_idx, test_idx in folds.split(score, y):
                pred[test_idx] = (
                    Calibrator(m).fit(score[fit_idx], y[fit_idx]).predict(score[test_idx])
                )
            briers[m] = float(brier_score_loss(y, pred))
        best = min(briers, key=lambda k: (briers[k], k))
    else:
        best = methods[0]
    return Calibrator(best).fit(score, y), briers


def drift_reference(X: pd.DataFrame, spec: FeatureSpec, bins: int = 10) -> dict[str, Any]:
    """Per feature, the training distribution that scoring compares against: decile edges and
    shares for numbers (missing values are a bin of their own), value shares for categories."""
    ref: dict[str, Any] = {}
    for f in spec.features:
        if f.name not in X:
            continue
        col = X[f.name]
        if f.kind == "categorical":
            shares = col.astype("str").fillna("<missing>").value_counts(normalize=True)
            ref[f.name] = {
                "kind": "categorical",
                "shares": {str(k): float(v) for k, v in shares.items()},
            }
            continue
        values = col.to_numpy(dtype=np.float64)
        present = values[~np.isnan(values)]
        edges = (
            np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
            if len(present)
            else np.array([])
        )
        ref[f.name] = {
            "kind": "numeric",
            "edges": edges.tolist(),
            "shares": _bin_shares(values, edges).tolist(),
        }
    return ref


def _bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of values per bin (``len(edges) + 1`` bins), then the share missing."""
    missing = np.isnan(values)
    counts = np.bincount(
        np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1
    )
    out = np.append(counts, missing.sum()).astype(np.float64)
    return out / max(len(values), 1)


def population_stability(reference: dict[str, Any], X: pd.DataFrame) -> pd.Series:
    """Population stability index of each feature against its training distribution."""
    eps = 1e-4
    out = {}
    for name, ref in reference.items():
        if name not in X:
            continue
        if ref["kind"] == "categorical":
            now = X[name].astype("str").fillna("<missing>").value_counts(normalize=True)
            keys = sorted(set(ref["shares"]) | set(now.index))
            expected = np.array([ref["shares"].get(k, 0.0) for k in keys])
            actual = np.array([float(now.get(k, 0.0)) for k in keys])
        else:
            expected = np.asarray(ref["shares"])
            actual = _bin_shares(X[name].to_numpy(dtype=np.float64), np.asarray(ref["edges"]))
        e, a = np.clip(expected, eps, None), np.clip(actual, eps, None)
        out[name] = float(np.sum((a - e) * np.log(a / e)))
    return pd.Series(out, name="psi").sort_values(ascending=False)
