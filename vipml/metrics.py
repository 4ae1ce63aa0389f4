"""Model-quality measures for ranked target lists: discrimination, lift, calibration.

All take ``(y_true, score)``; ``y_true`` is 0/1. Ties in ``score`` are broken by position, so
"top k%" is always exactly ``ceil(k% x n)`` rows.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

TOP = (0.05, 0.10, 0.20)


def _check(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"y_true has {len(y)} rows but score has {len(s)}")
    return y, s


def lift_capture(y_true: np.ndarray, score: np.ndarray, share: float) -> tuple[float, float]:
    """Lift (positive rate in the top ``share`` / overall rate) and capture (share of all
    positives found there). NaN when there is no positive."""
    y, s = _check(y_true, score)
    if not len(y) or y.sum() == 0:
        return math.nan, math.nan
    k = max(1, math.ceil(share * len(y)))
    top = np.argsort(-s, kind="stable")[:k]
    rate = y[top].mean()
    return float(rate / y.mean()), float(y[top].sum() / y.sum())


def ties_at_top(score: np.ndarray, share: float = 0.10) -> tuple[int, float]:
    """How finely a score separates rows: the number of distinct values, and the share of all
    rows tied with the row at the top-``share`` boundary (0 when the boundary is clean). NaN
    scores (rows not scored) are left out."""
    s = np.asarray(score, dtype=np.float64)
    s = s[~np.isnan(s)]
    if not len(s):
        return 0, math.nan
    k = max(1, math.ceil(share * len(s)))
    boundary = np.sort(s)[::-1][k - 1]
    tied = int((s == boundary).sum())
    return int(len(np.unique(s))), float(tied / len(s)) if tied > 1 else 0.0


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean predicted| over equal-count bins, weighted by bin size."""
    y, p = _check(y_true, prob)
    if not len(y):
        return math.nan
    order = np.argsort(p, kind="stable")
    err = 0.0
    for part in np.array_split(order, min(bins, len(y))):
        if len(part):
            err += len(part) * abs(y[part].mean() - p[part].mean())
    return float(err / len(y))


def evaluate(
    y_true: np.ndarray, score: np.ndarray, *, probabilities: bool = True
) -> dict[str, float]:
    """ROC AUC, PR AUC, lift and capture at 5/10/20%, and (for probabilities) Brier and ECE."""
    y, s = _check(y_true, score)
    both = len(np.unique(y)) == 2
    out = {
        "rows": float(len(y)),
        "positives": float(y.sum()),
        "base_rate": float(y.mean()) if len(y) else math.nan,
        "roc_auc": float(roc_auc_score(y, s)) if both else math.nan,
        "pr_auc": float(average_precision_score(y, s)) if both else math.nan,
    }
    for share in TOP:
        lift, capture = lift_capture(y, s, share)
        pct = int(round(share * 100))
        out[f"lift_{pct}"] = lift
        out[f"capture_{pct}"] = capture
    out["distinct_scores"], out["tied_top_10"] = (float(v) for v in ties_at_top(s, 0.10))
    if probabilities:
        out["brier"] = float(brier_score_loss(y, np.clip(s, 0, 1))) if len(y) else math.nan
        out["ece"] = expected_calibration_error(y, s)
    return out


def curve_points(
    y_true: np.ndarray, score: np.ndarray, *, probabilities: bool = True, points: int = 50
) -> dict[str, list[float]]:
    """Compact curves for plots: ROC (``fpr``, ``tpr``), gains (``contacted`` share of rows,
    ``captured`` share of positives) and, for probabilities, calibration over ten equal-count bins
    (``predicted``, ``observed``, ``bin_rows``). At most ``points`` + 1 points a curve."""
    y, s = _check(y_true, score)
    out: dict[str, list[float]] = {}
    if not len(y) or len(np.unique(y)) < 2:
        return out
    order = np.argsort(-s, kind="stable")
    hits = np.cumsum(y[order])
    n, pos = len(y), hits[-1]
    # ROC at the distinct thresholds, thinned to at most `points` steps
    last = np.r_[np.flatnonzero(np.diff(s[order]) != 0), n - 1]
    tpr = np.r_[0.0, hits[last] / pos]
    fpr = np.r_[0.0, (last + 1 - hits[last]) / (n - pos)]
    keep = np.unique(np.linspace(0, len(tpr) - 1, min(points + 1, len(tpr))).round().astype(int))
    out["fpr"], out["tpr"] = fpr[keep].round(5).tolist(), tpr[keep].round(5).tolist()
    share = np.linspace(0, 1, points + 1)
    k = np.ceil(share * n).astype(int)
    out["contacted"] = share.round(5).tolist()
    out["captured"] = np.where(k > 0, hits[np.maximum(k - 1, 0)] / pos, 0.0).round(5).tolist()
    if probabilities:
        parts = np.array_split(np.argsort(s, kind="stable"), min(10, n))
        out["predicted"] = [round(float(s[p].mean()), 5) for p in parts if len(p)]
        out["observed"] = [round(float(y[p].mean()), 5) for p in parts if len(p)]
        out["bin_rows"] = [int(len(p)) for p in parts if len(p)]
    return out
