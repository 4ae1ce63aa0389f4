"""Expected value per customer: spend and purchase days over the horizon, when the next order
comes, whether the customer is still alive, and the 12-month customer lifetime value.

Trained with the bundle, on the same snapshots and time-ordered folds as the score model, but on
every customer known at each cutoff (VIPs included: they make most of the value). Targets, read
from ``[T, T + horizon)`` only (features stay strictly before ``T``):

* ``spend``: net spend in the window, floored at 0;
* ``orders``: purchase days (UTC calendar days with a purchase) in the window.

Two spend models are fitted on the training fold and the one with the lower Poisson deviance on
the validation fold is kept (``value.spend_model: auto``):

* ``hurdle``: P(any purchase) from a binary LightGBM times the spend when buying from a LightGBM
  with a gamma objective fitted on the buyers;
* ``tweedie``: one LightGBM with a Tweedie objective (variance power 1.3).

Purchase days come from a LightGBM with a Poisson objective. BG/NBD + Gamma-Gamma then may
enter each prediction at the models' own horizon (:func:`horizon_base`: the expected purchase
days over the horizon from :func:`timing`'s BG/NBD fit, from purchases before the cutoff, times
the Gamma-Gamma value of a purchase day for spend), in one of two ways measured on the validation
fold (:func:`choose_btyd_mode`): a blend ``w x LightGBM + (1 - w) x BTYD`` (LightGBM's weight
``w`` with the lowest Poisson deviance; BTYD as it is: it predicts the label's horizon), or a
LightGBM boosted from BTYD (Poisson, for spend Tweedie, started at ``log BTYD``: the prediction
is ``exp(raw score + log BTYD)``, early stopping deciding how far the trees move it). The way
with the lower validation deviance is kept when it cuts LightGBM's alone by 1% at least
(``value.with_btyd: auto``), else LightGBM alone (``value.blend: false`` skips both). Bundles
from before blend with a BTYD feature of the labels' horizon, times a scale.

The interval of ``expected_spend`` (``spend_low``, ``spend_high``, coverage ``value.interval``)
is split-conformal by bins: the validation fold is cut into ten equal-count bins of predicted
spend and each bin keeps the quantiles of actual / predicted spend (the upper bound at least the
expected spend: where most customers of a bin buy nothing, both quantiles are 0). The test fold
measures the chosen model (total error, MAE, Spearman, normalised Gini, interval coverage), each
way of taking in BTYD, and BG/NBD + Gamma-Gamma at the horizon on the same rows.
The shipped models are then refit on every cutoff whose window has ended, with the tree counts
chosen on validation.

At scoring time (:func:`timing`), BG/NBD is fitted on purchase days before the cutoff to give
``p_alive``, the ``next_order_at`` date (the customer's own mean gap between purchase days,
shrunk toward the BG/NBD posterior cycle ``7 (alpha + T) / (r + x)`` days: ``(x gap + k cycle) /
(x + k)``; from the last purchase day, rolled forward by whole cycles to the cutoff or later) and
the ratio of expected purchase days over 365 days to those over the horizon, which turns
``expected_spend`` into ``clv_12m = value.margin x expected_spend x ratio``. The fit is the BTYD
family's (:func:`vipml.features.btyd.fit_bgnbd_population`: the same purchase days, the buyers
whose ids hash lowest when there are too many, in the order of their values), so it is the same
for the whole population and for buckets of it (:func:`timing` takes the population's fit and a
bucket's :func:`purchase_summary`), and after the features were built scoring reads that fit
back instead of fitting the same buyers again.

The weight ``k`` is chosen at training among :data:`CYCLE_PRIORS` (:func:`choose_cycle_prior`):
the one whose dates fall closest to the first purchase in the label windows of the four newest
cutoffs that end by the test cutoff, over repeat buyers; bundles from before the choice use 2.

This module sits beside :mod:`vipml.model`: training fits it, bundles store it as LightGBM text
and JSON, scoring reads it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from vipml.errors import DataError
from vipml.features.btyd import (
    WEEK_DAYS,
    bgnbd_expected,
    bgnbd_p_alive,
    fit_bgnbd_population,
)
from vipml.io import Tables, order_values, positions
from vipml.model import prepare_matrix
from vipml.windows import DAY_US, to_us

VALUE_COLUMNS = [
    "expected_spend", "spend_low", "spend_high", "expected_orders", "p_alive", "next_order_at",
    "clv_12m",
]  # fmt: skip
TWEEDIE_POWER = 1.3
BINS = 10
CYCLE_PRIOR = 2.0  # weight of the BG/NBD cycle, in repeat purchases, against the customer's own
# (bundles that predate the choice at training load with it)
# the weights training chooses among (above 0: a one-time buyer has no gap of its own, and its
# cycle is then the BG/NBD one)
CYCLE_PRIORS = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CYCLE_CUTOFFS = 4  # the newest cutoffs whose windows choose it (one BG/NBD fit per weight each)
MAX_TREES = 300  # per value model; early stopping usually ends sooner
# the BG/NBD + Gamma-Gamma features bundles from before blend with (of the labels' horizon)
BLEND_COLUMNS = {"spend": "btyd_expected_spend", "orders": "btyd_expected_orders"}
BLEND_WEIGHTS = tuple(np.round(np.linspace(0.0, 1.0, 21), 2))  # LightGBM's share
BLEND_MIN_GAIN = 0.01  # a blend must cut the validation deviance by 1% (else: noise, kept alone)
# the blend "column" of BG/NBD + Gamma-Gamma at the value models' own horizon (not a feature:
# computed from the timing's BG/NBD fit, see horizon_base)
HORIZON_BASE = "btyd_at_horizon"
ORDER_VALUE = "btyd_expected_order_value"  # Gamma-Gamma's expected value of a purchase day
BASE_FLOOR = 1e-6  # BTYD predictions are floored here before their log starts a boosted model
BTYD_MODES = ("lightgbm", "blend", "boost")  # how BG/NBD + GG enters a value model
DAY = pd.Timedelta(days=1)


# ---------------------------------------------------------------- targets
def value_labels(
    tables: Tables, *, as_of: pd.Timestamp, horizon_days: int, customers: pd.Index
) -> pd.DataFrame:
    """Per customer: ``spend`` (net spend in ``[as_of, as_of + horizon)``, floored at 0) and
    ``orders`` (purchase days in that window). Rows outside the window are never read."""
    out = pd.DataFrame({"spend": 0.0, "orders": 0.0}, index=customers)
    orders = tables.orders
    if orders is None or not len(orders) or not len(customers):
        return out
    end = as_of + pd.Timedelta(days=horizon_days)
    t = orders["ordered_at"]
    rows = orders[((t >= as_of) & (t < end)).to_numpy()]
    if not len(rows):
        return out
    vals = order_values(rows)
    codes = customers.get_indexer(rows["customer_id"])
    ok = codes >= 0
    net = np.bincount(codes[ok], weights=vals["net"][ok], minlength=len(customers))
    out["spend"] = np.maximum(net, 0.0)
    buy = ok & vals["purchase"]
    day = np.asarray(to_us(rows["ordered_at"]))[buy] // DAY_US
    pairs = np.unique(np.stack([codes[buy].astype(np.int64), day], axis=1), axis=0)
    out["orders"] = np.bincount(pairs[:, 0], minlength=len(customers)).astype(np.float64)
    return out


# ---------------------------------------------------------------- measures
def normalised_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of ``predicted`` as a ranking of ``actual``, over that of the perfect ranking (1 is
    perfect, 0 random). Ties in ``predicted`` share their credit (mean of their actuals)."""
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if not len(a) or a.sum() <= 0:
        return math.nan

    def gini(score: np.ndarray) -> float:
        # tied scores take the mean of their actuals, so the order among ties does not count
        s = pd.Series(a).groupby(score).transform("mean").to_numpy()
        order = np.lexsort((-s, -score))
        cum = np.cumsum(s[order]) / a.sum()
        return float(cum.sum() / len(a) - (len(a) + 1) / (2 * len(a)))

    return gini(p) / gini(a)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    ra = pd.Series(np.asarray(a, dtype=np.float64)).rank().to_numpy()
    rb = pd.Series(np.asarray(b, dtype=np.float64)).rank().to_numpy()
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def value_measures(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Total (aggregate) error, MAE, RMSE, Spearman and normalised Gini of per-customer
    predictions."""
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    total = a.sum()
    return {
        "rows": float(len(a)),
        "actual_total": float(total),
        "predicted_total": float(p.sum()),
        "total_error": float(p.sum() / total - 1) if total > 0 else math.nan,
        "mae": float(np.abs(p - a).mean()) if len(a) else math.nan,
        "rmse": float(np.sqrt(((p - a) ** 2).mean())) if len(a) else math.nan,
        "spearman": spearman(a, p),
        "gini": normalised_gini(a, p),
    }


def decile_table(actual: np.ndarray, predicted: np.ndarray, bins: int = BINS) -> pd.DataFrame:
    """Customers cut into ``bins`` equal-count groups by prediction (1 = highest): mean predicted
    and mean actual per group."""
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    order = np.argsort(-p, kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, min(bins, max(len(a), 1))), start=1):
        if len(part):
            rows.append(
                {
                    "decile": k,
                    "customers": len(part),
                    "predicted": float(p[part].mean()),
                    "actual": float(a[part].mean()),
                }
            )
    return pd.DataFrame(rows)


def poisson_deviance(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean Poisson deviance (a proper score for an expected value; predictions floored at 1e-9)."""
    a = np.asarray(actual, dtype=np.float64)
    p = np.maximum(np.asarray(predicted, dtype=np.float64), 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(a > 0, a * np.log(a / p), 0.0)
    return float(np.mean(2 * (term - (a - p))))


def distribution(values: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """A numeric drift reference (as :func:`vipml.model.drift_reference` keeps one): decile
    edges and the share of values per bin, then the share missing."""
    v = np.asarray(values, dtype=np.float64)
    present = v[~np.isnan(v)]
    edges = (
        np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1]))
        if len(present)
        else np.array([])
    )
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1)
    shares = np.append(counts, len(v) - len(present)) / max(len(v), 1)
    return {"kind": "numeric", "edges": edges.tolist(), "shares": shares.tolist()}


def order_amounts(orders: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp):
    """Amounts of the purchase rows in ``[start, end)``."""
    if orders is None or not len(orders):
        return np.array([])
    t = orders["ordered_at"]
    rows = orders[((t >= start) & (t < end)).to_numpy()]
    vals = order_values(rows)
    return vals["gross"][vals["purchase"]]


# ---------------------------------------------------------------- the model
@dataclass
class ValueModel:
    """LightGBM models of spend and purchase days over the horizon, with a binned interval."""

    kind: str  # hurdle | tweedie
    boosters: dict[str, lgb.Booster]
    features: list[str]
    categories: dict[str, list[str]]
    horizon_days: int
    interval: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    cycle_prior: float = CYCLE_PRIOR  # next_order_at's weight of the BG/NBD cycle (chosen)
    # per target (spend, orders): {"column", "weight", "scale"} of the blend with BG/NBD + GG
    blend: dict[str, dict[str, Any]] = field(default_factory=dict)
    # per target boosted from BG/NBD + GG at the horizon: {"fallback"} (the start of customers
    # BTYD says nothing about); the booster's raw score is added to log(BTYD)
    boost: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def needs_base(self) -> bool:
        """Whether predictions read BG/NBD + Gamma-Gamma at the horizon (:func:`horizon_base`)."""
        return bool(self.boost) or any(b["column"] == HORIZON_BASE for b in self.blend.values())

    def predict(
        self,
        X: pd.DataFrame,
        matrix: pd.DataFrame | None = None,
        base: Mapping[str, np.ndarray] | None = None,
    ) -> pd.DataFrame:
        """``expected_spend``, ``spend_low``, ``spend_high`` and ``expected_orders`` per row.
        ``matrix``: ``X`` already prepared for another model (scoring's main model), used when it
        holds these models' features with the same categories, so it is not prepared twice.
        ``base``: BG/NBD + Gamma-Gamma at the horizon per row (:func:`horizon_base`), needed
        when the models are blended with it or boosted from it (:attr:`needs_base`)."""
        if self.needs_base and base is None:
            raise ValueError("these value models need BG/NBD + Gamma-Gamma at the horizon (base)")
        M = matrix if self.fits(matrix) else prepare_matrix(X, self.features, self.categories)
        if self.kind == "hurdle":
            spend = self.boosters["buy"].predict(M) * self.boosters["amount"].predict(M)
        else:
            spend = self._raw("spend", M, base)
        spend = _blended(self.blend, "spend", np.maximum(spend, 0.0), M, base)
        low, high = self.bounds(spend)
        orders = _blended(
            self.blend, "orders", np.maximum(self._raw("orders", M, base), 0.0), M, base
        )
        return pd.DataFrame(
            {
                "expected_spend": spend,
                "spend_low": low,
                "spend_high": high,
                "expected_orders": orders,
            },
            index=X.index,
        )

    def _raw(
        self, target: str, M: pd.DataFrame, base: Mapping[str, np.ndarray] | None
    ) -> np.ndarray:
        """The booster of ``target`` (``spend``: the Tweedie one) on ``M``: its prediction, or,
        when boosted from BTYD, ``exp(raw score + log BTYD)``."""
        b = self.boosters[target]
        if target not in self.boost:
            return b.predict(M)
        start = boost_start(base[target], float(self.boost[target]["fallback"]))
        return np.exp(b.predict(M, raw_score=True) + start)

    def fits(self, matrix: pd.DataFrame | None) -> bool:
        """Whether a prepared ``matrix`` is this model's own: the same features, in order, with
        the same category codes."""
        if matrix is None or list(matrix.columns) != list(self.features):
            return False
        for name in self.features:
            dtype = matrix[name].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                if name not in self.categories or list(dtype.categories) != list(
                    self.categories[name]
                ):
                    return False
            elif name in self.categories:
                return False
        return True

    def bounds(self, spend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The interval of each prediction: its bin's quantiles of actual / predicted."""
        edges = np.asarray(self.interval["edges"], dtype=np.float64)
        b = np.searchsorted(edges, spend, side="right")
        lo = np.asarray(self.interval["low"], dtype=np.float64)[b]
        hi = np.asarray(self.interval["high"], dtype=np.float64)[b]
        # where most customers of a bin buy nothing the quantiles give [0, 0]; the upper bound
        # is raised to the expected spend so the interval holds it (coverage can only rise)
        return spend * lo, np.maximum(spend * hi, spend)

    def to_folder(self, folder: Path) -> None:
        """Write ``value_<name>.txt`` per booster and ``value.json``."""
        import json

        for name, b in self.boosters.items():
            (folder / f"value_{name}.txt").write_text(b.model_to_string(), encoding="utf-8")
        data = {
            "kind": self.kind,
            "models": sorted(self.boosters),
            "features": self.features,
            "categories": self.categories,
            "horizon_days": self.horizon_days,
            "interval": self.interval,
            "cycle_prior": self.cycle_prior,
            "blend": self.blend,
            "boost": self.boost,
            "info": self.info,
        }
        (folder / "value.json").write_text(
            json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )

    @classmethod
    def from_folder(cls, folder: Path) -> ValueModel | None:
        """Read back :meth:`to_folder` (None when the bundle has no value models)."""
        from vipml.integrity import booster, read_json, read_model_text

        if not (folder / "value.json").is_file():
            return None
        data = read_json(folder, "value.json")
        try:
            names = [str(n) for n in data["models"]]
            kind = str(data["kind"])
            features = [str(f) for f in data["features"]]
            interval = {
                "level": float(data["interval"]["level"]),
                "edges": [float(v) for v in data["interval"]["edges"]],
                "low": [float(v) for v in data["interval"]["low"]],
                "high": [float(v) for v in data["interval"]["high"]],
            }
            horizon = int(data["horizon_days"])
            categories = {
                str(k): [str(c) for c in v] for k, v in data.get("categories", {}).items()
            }
            info = dict(data.get("info", {}))
            prior = float(data.get("cycle_prior", CYCLE_PRIOR))  # older bundles: the default
            mix = {  # older bundles: no blend
                str(k): {
                    "column": str(v["column"]),
                    "weight": float(v["weight"]),
                    "scale": float(v["scale"]),
                }
                for k, v in data.get("blend", {}).items()
            }
            boost = {  # older bundles: none boosted
                str(k): {"fallback": float(v["fallback"])} for k, v in data.get("boost", {}).items()
            }
            ref = info.get("spend_reference", {})
            for name in ("order_amount", "customer_spend"):
                if name in ref:  # what the monitor reads: plain finite numbers
                    edges = [float(v) for v in ref[name]["edges"]]
                    shares = [float(v) for v in ref[name]["shares"]]
                    if len(shares) != len(edges) + 2 or not all(
                        math.isfinite(v) for v in edges + shares
                    ):
                        raise ValueError(name)
            if not isinstance(info.get("test", {}), dict):
                raise ValueError("test")
            ok = (
                horizon > 0
                and kind in ("hurdle", "tweedie")
                and set(names)
                == ({"buy", "amount", "orders"} if kind == "hurdle" else {"spend", "orders"})
                and len(interval["low"]) == len(interval["high"]) == len(interval["edges"]) + 1
                and math.isfinite(prior)
                and prior >= 0
                and set(mix) <= {"spend", "orders"}
                and set(boost) <= ({"spend", "orders"} if kind == "tweedie" else {"orders"})
                and all(math.isfinite(v["fallback"]) and v["fallback"] >= 0 for v in boost.values())
                and all(
                    (b["column"] in features or b["column"] == HORIZON_BASE)
                    and 0 <= b["weight"] <= 1
                    and math.isfinite(b["scale"])
                    and b["scale"] >= 0
                    for b in mix.values()
                )
                and all(math.isfinite(v) and v >= 0 for v in interval["low"] + interval["high"])
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            ok = False
        if not ok:
            from vipml.integrity import BundleError

            raise BundleError(
                "bundle file value.json: does not describe the expected-value models\n"
                "Fix: use the bundle folder as vipml train wrote it, or train the model again"
            )
        boosters = {
            n: booster(read_model_text(folder, f"value_{n}.txt", n_features=len(features)), n)
            for n in names
        }
        return cls(
            kind=kind,
            boosters=boosters,
            features=features,
            categories=categories,
            horizon_days=horizon,
            interval=interval,
            info=info,
            cycle_prior=prior,
            blend=mix,
            boost=boost,
        )


def _blended(
    mix: dict[str, dict[str, Any]],
    target: str,
    pred: np.ndarray,
    M: pd.DataFrame,
    base: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    b = mix.get(target)
    if not b:
        return pred
    if b["column"] == HORIZON_BASE:
        if base is None:
            raise ValueError("this blend needs BG/NBD + Gamma-Gamma at the horizon (base)")
        values = np.asarray(base[target], dtype=np.float64)
    else:  # bundles from before: a BTYD feature (of the labels' horizon), scaled
        values = pd.to_numeric(M[b["column"]], errors="coerce").to_numpy(dtype=np.float64)
    return blend(pred, values, float(b["weight"]), float(b["scale"]))


def horizon_base(frame: pd.DataFrame | None, expected_days: np.ndarray) -> dict[str, np.ndarray]:
    """BG/NBD + Gamma-Gamma at the value models' horizon, per row: ``orders`` the expected
    purchase days over the horizon (:func:`timing`'s ``expected_days``), ``spend`` those times
    Gamma-Gamma's expected value of a purchase day (the ``btyd_expected_order_value`` column of
    ``frame``, which does not depend on the horizon; NaN without it). NaN: BTYD says nothing."""
    days = np.asarray(expected_days, dtype=np.float64)
    if frame is not None and ORDER_VALUE in frame:
        value = pd.to_numeric(frame[ORDER_VALUE], errors="coerce").to_numpy(dtype=np.float64)
    else:
        value = np.full(len(days), np.nan)
    return {"orders": days, "spend": days * value}


def boost_start(base: np.ndarray, fallback: float) -> np.ndarray:
    """The start (log scale) of a model boosted from BTYD: ``log(max(BTYD, BASE_FLOOR))``, with
    ``fallback`` where BTYD is missing."""
    b = np.asarray(base, dtype=np.float64)
    return np.log(np.maximum(np.where(np.isfinite(b), b, fallback), BASE_FLOOR))


def blend(pred: np.ndarray, base: np.ndarray, weight: float, scale: float) -> np.ndarray:
    """``weight x pred + (1 - weight) x scale x base``, floored at 0; ``pred`` alone where
    ``base`` is missing (a customer the BTYD models say nothing about)."""
    p = np.asarray(pred, dtype=np.float64)
    b = np.asarray(base, dtype=np.float64)
    known = np.isfinite(b)
    mixed = weight * p + (1.0 - weight) * scale * np.where(known, b, 0.0)
    return np.maximum(np.where(known, mixed, p), 0.0)


def choose_blend(
    actual: np.ndarray, pred: np.ndarray, base: np.ndarray, scale: float | None = None
) -> dict[str, float]:
    """The ``weight`` of LightGBM (:data:`BLEND_WEIGHTS`) with the lowest Poisson deviance on
    the validation rows given; weight 1 (LightGBM alone) unless the best blend cuts the deviance
    by :data:`BLEND_MIN_GAIN` of LightGBM's at least. The ``scale`` of the BTYD prediction is
    the one given (1: BTYD of the label's horizon as it is), by default the ratio of the actual
    total to the BTYD total on those rows (which puts a BTYD feature of another horizon on the
    label's horizon)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(base, dtype=np.float64)
    known = np.isfinite(b)
    alone = poisson_deviance(a, pred)
    best = {"weight": 1.0, "scale": 1.0, "deviance": alone, "lightgbm_deviance": alone}
    total = float(b[known].sum())
    if not known.any() or total <= 0:
        return best
    ratio = float(a[known].sum()) / total if scale is None else float(scale)
    devs = [poisson_deviance(a, blend(pred, b, float(w), ratio)) for w in BLEND_WEIGHTS[:-1]]
    k = int(np.argmin(devs))
    if devs[k] < alone * (1 - BLEND_MIN_GAIN):
        best.update(weight=float(BLEND_WEIGHTS[k]), scale=ratio, deviance=devs[k])
    else:
        best["best_blend"] = {"weight": float(BLEND_WEIGHTS[k]), "deviance": devs[k]}
    return best


def _params(base: dict[str, Any], objective: str) -> dict[str, Any]:
    p = {k: v for k, v in base.items() if k != "objective"}
    p["objective"] = objective
    p["num_threads"] = 1  # small data: one thread is as fast, and steady on a busy machine
    if objective == "tweedie":
        p["tweedie_variance_power"] = TWEEDIE_POWER
    return p


def _train(
    params: dict[str, Any],
    M: pd.DataFrame,
    y: np.ndarray,
    fit: np.ndarray,
    valid: np.ndarray | None,
    rounds: int,
    stop: int,
    categories: dict[str, list[str]],
    init: np.ndarray | None = None,
) -> lgb.Booster:
    """A booster on the rows ``fit`` (early stopping on ``valid``); ``init``: per row, the
    start of each prediction on the raw (log) scale, instead of the mean."""
    cats = list(categories) or "auto"
    data = lgb.Dataset(
        M[fit],
        y[fit],
        categorical_feature=cats,
        free_raw_data=False,
        init_score=None if init is None else init[fit],
    )
    if valid is None or not valid.any():
        return lgb.train(params, data, num_boost_round=rounds)
    check = lgb.Dataset(
        M[valid], y[valid], reference=data, init_score=None if init is None else init[valid]
    )
    return lgb.train(
        params,
        data,
        num_boost_round=rounds,
        valid_sets=[check],
        callbacks=[lgb.early_stopping(stop, verbose=False)],
    )


def _trees(b: lgb.Booster) -> int:
    return int(b.best_iteration or b.current_iteration())


def _spend_models(
    kind: str,
    params: dict[str, Any],
    M: pd.DataFrame,
    spend: np.ndarray,
    fit: np.ndarray,
    valid: np.ndarray | None,
    rounds: int | dict[str, int],
    stop: int,
    categories: dict[str, list[str]],
) -> dict[str, lgb.Booster]:
    def n(name: str) -> int:
        return rounds[name] if isinstance(rounds, dict) else rounds

    if kind == "tweedie":
        return {
            "spend": _train(
                _params(params, "tweedie"), M, spend, fit, valid, n("spend"), stop, categories
            )
        }
    bought = (spend > 0).astype(np.float64)
    buyers = fit & (spend > 0)
    vbuyers = None if valid is None else valid & (spend > 0)
    return {
        "buy": _train(_params(params, "binary"), M, bought, fit, valid, n("buy"), stop, categories),
        "amount": _train(
            _params(params, "gamma"), M, spend, buyers, vbuyers, n("amount"), stop, categories
        ),
    }


def _spend_predict(kind: str, boosters: dict[str, lgb.Booster], M: pd.DataFrame) -> np.ndarray:
    if kind == "tweedie":
        b = boosters["spend"]
        return np.maximum(b.predict(M, num_iteration=b.best_iteration or None), 0.0)
    buy, amount = boosters["buy"], boosters["amount"]
    return buy.predict(M, num_iteration=buy.best_iteration or None) * amount.predict(
        M, num_iteration=amount.best_iteration or None
    )


def conformal_bins(
    actual: np.ndarray, predicted: np.ndarray, level: float, bins: int = BINS
) -> dict[str, Any]:
    """Per equal-count bin of predictions, the quantiles of actual / predicted that hold
    ``level`` of the rows between them (the interval is prediction x those)."""
    p = np.maximum(np.asarray(predicted, dtype=np.float64), 1e-9)
    a = np.asarray(actual, dtype=np.float64)
    if len(p) < bins * 5:
        bins = max(1, len(p) // 5)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1])) if bins > 1 else []
    edges = np.asarray(edges, dtype=np.float64)
    b = np.searchsorted(edges, p, side="right")
    q_lo, q_hi = (1 - level) / 2, 1 - (1 - level) / 2
    low, high = [], []
    for k in range(len(edges) + 1):
        r = a[b == k] / p[b == k]
        if not len(r):
            r = a / p
        low.append(float(np.quantile(r, q_lo, method="inverted_cdf")))
        high.append(float(np.quantile(r, q_hi, method="higher")))
    return {"level": level, "edges": edges.tolist(), "low": low, "high": high}


def fit_value_model(
    feats: pd.DataFrame,
    targets: pd.DataFrame,
    *,
    folds: dict[str, list[pd.Timestamp]],
    ship: list[pd.Timestamp],
    features: list[str],
    categories: dict[str, list[str]],
    params: dict[str, Any],
    rounds: int,
    stop: int,
    horizon_days: int,
    config: Any,
    tables: Tables | None = None,
) -> ValueModel:
    """Fit, choose and measure the value models on snapshot rows (index ``as_of``,
    ``customer_id``) and their ``targets`` (``spend``, ``orders``); refit the choice on the
    ``ship`` cutoffs. With ``tables``, ``next_order_at``'s weight of the BG/NBD cycle is chosen
    on the windows of the :data:`CYCLE_CUTOFFS` newest cutoffs that end by the test cutoff
    (:func:`choose_cycle_prior`);
    without, it stays :data:`CYCLE_PRIOR`.

    Raises
    ------
    DataError
        When a fold has no customer who bought in its window.
    """
    vc = config.value
    rounds = min(rounds, MAX_TREES)
    when = feats.index.get_level_values("as_of")
    masks = {k: np.asarray(when.isin(v)) for k, v in folds.items()}
    spend = targets["spend"].to_numpy(dtype=np.float64)
    days = targets["orders"].to_numpy(dtype=np.float64)
    for name, m in masks.items():
        if not m.any() or (spend[m] > 0).sum() < 5:
            raise DataError(
                f"the expected-value models need buyers in every fold: the {name} fold "
                f"({', '.join(f'{c:%Y-%m-%d}' for c in folds[name])}) has "
                f"{int((spend[m] > 0).sum())} customers who bought in their window.\n"
                "Fix: give more history or a longer labels.horizon_days, or value.enabled: false"
            )
    M = prepare_matrix(feats, features, categories)
    fit, valid, test = masks["train"], masks["valid"], masks["test"]
    kinds = ["hurdle", "tweedie"] if vc.spend_model == "auto" else [vc.spend_model]
    fitted, deviance = {}, {}
    for kind in kinds:
        fitted[kind] = _spend_models(kind, params, M, spend, fit, valid, rounds, stop, categories)
        deviance[kind] = poisson_deviance(
            spend[valid], _spend_predict(kind, fitted[kind], M[valid])
        )
    kind = min(deviance, key=lambda k: (deviance[k], k))
    chosen = fitted[kind]
    orders_b = _train(_params(params, "poisson"), M, days, fit, valid, rounds, stop, categories)
    # BG/NBD + Gamma-Gamma at the horizon, as of each row's cutoff (purchases before it only)
    base = training_base(feats, tables, horizon_days) if vc.blend and tables is not None else None
    actuals = {"spend": spend, "orders": days}
    plain = {"spend": _spend_predict(kind, chosen, M), "orders": _predict(orders_b, M)}
    ways = {
        t: _btyd_candidates(
            t, actuals[t], plain[t], None if base is None else base[t], M, fit, valid,
            params, rounds, stop, categories,
        )
        for t in actuals
    }  # fmt: skip
    modes = {t: choose_btyd_mode(ways[t], vc.with_btyd if vc.blend else "lightgbm") for t in ways}
    mix = {
        t: {"column": HORIZON_BASE, "weight": ways[t]["blend"]["weight"], "scale": 1.0}
        for t, m in modes.items()
        if m == "blend"
    }
    boost = {
        t: {"fallback": ways[t]["boost"]["fallback"]} for t, m in modes.items() if m == "boost"
    }
    if "spend" in boost:  # the boosted spend model is a Tweedie one
        kind, chosen = "tweedie", {"spend": ways["spend"]["boost"]["booster"]}
    if "orders" in boost:
        orders_b = ways["orders"]["boost"]["booster"]
    final = {t: ways[t][modes[t]]["pred"] for t in ways}
    interval = conformal_bins(spend[valid], final["spend"][valid], vc.interval)
    evaluated = ValueModel(kind, {**chosen, "orders": orders_b}, features, categories,
                           horizon_days, interval)  # fmt: skip
    pred_test = final["spend"][test]
    low, high = evaluated.bounds(pred_test)
    measured: dict[str, Any] = {
        "spend": value_measures(spend[test], pred_test),
        "orders": value_measures(days[test], final["orders"][test]),
    }
    measured["spend_deciles"] = decile_table(spend[test], pred_test).to_dict(orient="list")
    measured["spend"]["interval_coverage"] = float(
        ((spend[test] >= low - 1e-9) & (spend[test] <= high + 1e-9)).mean()
    )
    for col, target in (("btyd_expected_spend", "spend"), ("btyd_expected_orders", "orders")):
        if base is not None and np.isfinite(base[target][test]).any():  # at the horizon
            values = np.nan_to_num(base[target][test], nan=0.0)
        elif col in feats:  # without the tables: the feature (of the labels' horizon)
            values = np.nan_to_num(feats.loc[test, col].to_numpy(dtype=np.float64), nan=0.0)
        else:
            continue
        measured[f"bgnbd_{target}"] = value_measures(actuals[target][test], values)
    btyd_info = {
        t: {
            "mode": modes[t],
            "asked": vc.with_btyd if vc.blend else "lightgbm",
            "validation_deviance": {m: w["deviance"] for m, w in ways[t].items()},
            "test": {
                m: {
                    **value_measures(actuals[t][test], w["pred"][test]),
                    "deviance": poisson_deviance(actuals[t][test], w["pred"][test]),
                }
                for m, w in ways[t].items()
            },
            **({"blend_weight": ways[t]["blend"]["weight"]} if "blend" in ways[t] else {}),
            **_base_ratio(actuals[t], base, t, valid),
            **({"boost_trees": _trees(ways[t]["boost"]["booster"])} if "boost" in ways[t] else {}),
        }
        for t in ways
    }  # fmt: skip
    blends = {
        t: {
            "column": HORIZON_BASE,
            "weight": ways[t]["blend"]["weight"] if modes[t] == "blend" else 1.0,
            "scale": 1.0,
            "deviance": ways[t][modes[t]]["deviance"],
            "lightgbm_deviance": ways[t]["lightgbm"]["deviance"],
            "best_blend": {
                "weight": ways[t]["blend"]["weight"],
                "deviance": ways[t]["blend"]["deviance"],
            },
        }
        for t in ways
        if "blend" in ways[t]
    }
    trees = {name: _trees(b) for name, b in {**chosen, "orders": orders_b}.items()}
    # shipped: the choice refit on every cutoff whose window has ended, same tree counts
    full = np.asarray(when.isin(ship))
    if "spend" in boost:
        start = boost_start(base["spend"], boost["spend"]["fallback"])
        shipped = {
            "spend": _train(
                _params(params, "tweedie"),
                M,
                spend,
                full,
                None,
                trees["spend"],
                stop,
                categories,
                start,
            )
        }
    else:
        shipped = _spend_models(kind, params, M, spend, full, None, trees, stop, categories)
    start = boost_start(base["orders"], boost["orders"]["fallback"]) if "orders" in boost else None
    shipped["orders"] = _train(
        _params(params, "poisson"), M, days, full, None, trees["orders"], stop, categories, start
    )
    info = {
        "spend_model": kind,
        "choice": f"lowest Poisson deviance on the validation fold among {', '.join(kinds)}"
        + ("; then boosted from BG/NBD + Gamma-Gamma (Tweedie)" if "spend" in boost else ""),
        "validation_deviance": deviance,
        "blend": blends,
        "btyd": btyd_info,
        "trees": trees,
        "test": measured,
        "folds": {k: [c.isoformat() for c in v] for k, v in folds.items()},
        "test_cutoffs": [c.isoformat() for c in folds["test"]],
        "shipped_cutoffs": [c.isoformat() for c in ship],
        "rows": int(full.sum()),
        "interval": f"{vc.interval:.0%} split-conformal by {len(interval['low'])} bins of "
        "predicted spend on the validation fold",
    }
    prior = CYCLE_PRIOR
    if tables is not None:
        step = pd.Timedelta(days=horizon_days)
        first_test = min(folds["test"])
        earlier = {c for c in [*folds["train"], *folds["valid"], *ship] if c + step <= first_test}
        prior, info["next_order"] = choose_cycle_prior(
            tables,
            sorted(earlier)[-CYCLE_CUTOFFS:],
            horizon_days=horizon_days,
            test=list(folds["test"]),
        )
    return ValueModel(
        kind,
        shipped,
        features,
        categories,
        horizon_days,
        interval,
        info,
        prior,
        blend=mix,
        boost=boost,
    )


def _base_ratio(
    actual: np.ndarray, base: Mapping[str, np.ndarray] | None, target: str, valid: np.ndarray
) -> dict[str, float]:
    """For the record: the actual total over the BTYD total on the validation rows BTYD knows
    (1: BTYD at the horizon holds the level; the blend uses it as it is)."""
    if base is None:
        return {}
    b = base[target][valid]
    known = np.isfinite(b)
    total = float(b[known].sum())
    return {"btyd_total_ratio": float(actual[valid][known].sum()) / total} if total > 0 else {}


def _predict(b: lgb.Booster, M: pd.DataFrame) -> np.ndarray:
    return np.maximum(b.predict(M, num_iteration=b.best_iteration or None), 0.0)


def training_base(feats: pd.DataFrame, tables: Tables, horizon_days: int) -> dict[str, np.ndarray]:
    """:func:`horizon_base` for snapshot rows (index ``as_of``, ``customer_id``): at each
    cutoff, :func:`timing`'s expected purchase days over the horizon, from BG/NBD fitted on the
    purchase days before the cutoff of that cutoff's customers (as scoring fits it), and the
    rows' Gamma-Gamma value of a purchase day."""
    when = feats.index.get_level_values("as_of")
    who = feats.index.get_level_values("customer_id")
    days = np.full(len(feats), np.nan)
    for c in pd.unique(when):
        rows = np.flatnonzero(when == c)
        ids = pd.Index(who[rows], name="customer_id")
        t = timing(tables, as_of=pd.Timestamp(c), customers=ids, horizon_days=horizon_days)
        days[rows] = t["expected_days"].to_numpy(dtype=np.float64)
    return horizon_base(feats, days)


def _btyd_candidates(
    target: str,
    actual: np.ndarray,
    plain: np.ndarray,
    base: np.ndarray | None,
    M: pd.DataFrame,
    fit: np.ndarray,
    valid: np.ndarray,
    params: dict[str, Any],
    rounds: int,
    stop: int,
    categories: dict[str, list[str]],
) -> dict[str, dict[str, Any]]:
    """The ways BG/NBD + Gamma-Gamma at the horizon (``base``) may enter the model of
    ``target``, each with its prediction on every row and its Poisson deviance on ``valid``:
    ``lightgbm`` (``plain`` alone), ``blend`` (LightGBM's weight of :data:`BLEND_WEIGHTS` with
    the lowest validation deviance, BTYD as it is) and ``boost`` (a Poisson, for spend Tweedie,
    LightGBM started at ``log BTYD``, early stopping on ``valid`` deciding how far it moves)."""
    out = {"lightgbm": {"deviance": poisson_deviance(actual[valid], plain[valid]), "pred": plain}}
    if base is None or not np.isfinite(base[valid]).any() or not np.isfinite(base[fit]).any():
        return out
    devs = [
        poisson_deviance(actual[valid], blend(plain[valid], base[valid], float(w), 1.0))
        for w in BLEND_WEIGHTS[:-1]
    ]
    k = int(np.argmin(devs))
    w = float(BLEND_WEIGHTS[k])
    out["blend"] = {"deviance": devs[k], "weight": w, "pred": blend(plain, base, w, 1.0)}
    missing = fit & ~np.isfinite(base)
    fallback = float(actual[missing].mean()) if missing.any() else float(actual[fit].mean())
    start = boost_start(base, fallback)
    objective = "poisson" if target == "orders" else "tweedie"
    b = _train(_params(params, objective), M, actual, fit, valid, rounds, stop, categories, start)
    raw = b.predict(M, raw_score=True, num_iteration=b.best_iteration or None)
    pred = np.exp(raw + start)
    out["boost"] = {
        "deviance": poisson_deviance(actual[valid], pred[valid]),
        "fallback": fallback,
        "pred": pred,
        "booster": b,
    }
    return out


def choose_btyd_mode(ways: Mapping[str, Mapping[str, Any]], asked: str = "auto") -> str:
    """How BG/NBD + Gamma-Gamma enters a value model (:data:`BTYD_MODES`): ``asked`` when it
    is one of the ``ways`` measured, and for ``auto`` the blend or the boosted model with the
    lower validation deviance, kept only when it cuts LightGBM's alone by
    :data:`BLEND_MIN_GAIN` at least (else LightGBM alone)."""
    if asked != "auto":
        return asked if asked in ways else "lightgbm"
    others = [m for m in ("blend", "boost") if m in ways]
    if not others:
        return "lightgbm"
    best = min(others, key=lambda m: (ways[m]["deviance"], m))
    alone = ways["lightgbm"]["deviance"]
    return best if ways[best]["deviance"] < alone * (1 - BLEND_MIN_GAIN) else "lightgbm"


# ---------------------------------------------------------------- next order: the cycle weight
def first_purchase_day(
    orders: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp, customers: pd.Index
) -> np.ndarray:
    """Per customer, the first UTC purchase day in ``[start, end)`` as days since 1970-01-01
    (NaN: no purchase there). Rows outside the window are never read."""
    out = np.full(len(customers), np.nan)
    if orders is None or not len(orders) or not len(customers):
        return out
    t = orders["ordered_at"]
    rows = orders[((t >= start) & (t < end)).to_numpy()]
    if not len(rows):
        return out
    vals = order_values(rows)
    codes = customers.get_indexer(rows["customer_id"])
    keep = (codes >= 0) & vals["purchase"]
    day = np.asarray(to_us(rows["ordered_at"]))[keep] // DAY_US
    first = np.full(len(customers), np.iinfo(np.int64).max)
    np.minimum.at(first, codes[keep], day)
    bought = first < np.iinfo(np.int64).max
    out[bought] = first[bought]
    return out


def next_order_errors(
    tables: Tables,
    cutoffs: list[pd.Timestamp],
    *,
    horizon_days: int,
    priors: tuple[float, ...] = CYCLE_PRIORS,
) -> pd.DataFrame:
    """For each candidate weight of the BG/NBD cycle (``prior``): the mean absolute error, in
    days, of :func:`timing`'s ``next_order_at`` at each cutoff against the customer's first
    purchase day in ``[cutoff, cutoff + horizon)``, over the repeat buyers (two purchase days or
    more before the cutoff) who bought in that window, pooled over ``cutoffs``.

    Features (the dates) read rows before each cutoff, the target rows inside its window only.
    Columns: ``prior``, ``mae_days``, ``median_days``, ``customers``.
    """
    orders = tables.orders
    errors: dict[float, list[np.ndarray]] = {p: [] for p in priors}
    epoch = pd.Timestamp("1970-01-01", tz="UTC")
    for c in sorted(cutoffs):
        if orders is None or not len(orders):
            break
        before = orders["customer_id"][(orders["ordered_at"] < c).to_numpy()]
        ids = pd.Index(np.unique(before.astype(str).to_numpy()), name="customer_id")
        if not len(ids):
            continue
        first = first_purchase_day(orders, c, c + pd.Timedelta(days=horizon_days), ids)
        repeat = purchase_summary(orders, c, ids)["x"].to_numpy() > 0
        use = repeat & np.isfinite(first)
        if not use.any():
            continue
        for p in priors:
            t = timing(tables, as_of=c, customers=ids, horizon_days=horizon_days, prior=p)
            nxt = ((t["next_order_at"] - epoch) / DAY).to_numpy(dtype=np.float64)
            err = np.abs(nxt[use] - first[use])
            errors[p].append(err[np.isfinite(err)])
    rows = []
    for p in priors:
        err = np.concatenate(errors[p]) if errors[p] else np.array([])
        rows.append(
            {
                "prior": float(p),
                "mae_days": float(err.mean()) if len(err) else math.nan,
                "median_days": float(np.median(err)) if len(err) else math.nan,
                "customers": int(len(err)),
            }
        )
    return pd.DataFrame(rows)


def _by_prior(table: pd.DataFrame) -> dict[str, float]:
    return {f"{p:g}": float(v) for p, v in zip(table["prior"], table["mae_days"], strict=True)}


def choose_cycle_prior(
    tables: Tables,
    cutoffs: list[pd.Timestamp],
    *,
    horizon_days: int,
    test: list[pd.Timestamp] | None = None,
    priors: tuple[float, ...] = CYCLE_PRIORS,
) -> tuple[float, dict[str, Any]]:
    """``next_order_at``'s weight of the BG/NBD cycle against the customer's own mean gap, chosen
    on the label windows of ``cutoffs`` (training data: every window ends by the test cutoff) by
    the lowest :func:`next_order_errors`; :data:`CYCLE_PRIOR` when no repeat buyer bought in any
    window. With ``test``, the same errors on the test fold's windows for the chosen weight and
    the default, for the record (never used to choose)."""
    table = next_order_errors(tables, cutoffs, horizon_days=horizon_days, priors=priors)
    found = table[table["customers"] > 0]
    if len(found):
        best = found.sort_values(["mae_days", "prior"], kind="stable").iloc[0]
        prior = float(best["prior"])
        how = (
            "lowest mean absolute error (days) of next_order_at against the first purchase in "
            f"the {horizon_days}-day window, over {int(best['customers'])} repeat buyers at the "
            "training cutoffs"
        )
    else:
        prior = CYCLE_PRIOR
        how = "default: no repeat buyer bought in a training window"
    info: dict[str, Any] = {
        "cycle_prior": prior,
        "choice": how,
        "cutoffs": [c.isoformat() for c in sorted(cutoffs)],
        "training_mae_days": _by_prior(table),
        "training_customers": int(table["customers"].max()) if len(table) else 0,
    }
    if len(found):
        info["training_mae_days_chosen"] = float(best["mae_days"])
    if test:  # the chosen weight and the default
        both = tuple(sorted({prior, CYCLE_PRIOR}))
        on_test = next_order_errors(tables, test, horizon_days=horizon_days, priors=both)
        info["test_mae_days"] = _by_prior(on_test)
        info["test_customers"] = int(on_test["customers"].max())
        info["test_mae_days_chosen"] = info["test_mae_days"][f"{prior:g}"]
    return prior, info


# ---------------------------------------------------------------- timing (BG/NBD at the cutoff)
SUMMARY_KEYS = ("days", "x", "t_x", "T", "last")  # per customer; see purchase_summary
HIDDEN = tuple(f"_value_{k}" for k in SUMMARY_KEYS)  # as columns beside a bucket's features
EPOCH = pd.Timestamp("1970-01-01", tz="UTC")


def purchase_summary(orders: pd.DataFrame | None, as_of: pd.Timestamp, customers: pd.Index):
    """Per customer, from purchase days before ``as_of`` (the cutoff instant excluded): repeat
    days ``x``, weeks from the first to the last day ``t_x`` and from the first day to ``as_of``
    ``T``, the last purchase day ``last`` (UTC midnight) and ``days`` bought.

    A purchase day is the BTYD family's (:func:`vipml.features.btyd.purchase_days`): a UTC
    calendar day with at least one purchase row (:func:`vipml.io.order_values`: a positive
    amount, not cancelled, also when later returned) strictly before ``as_of``; ``x``, ``t_x``
    and ``T`` are computed by the same expressions as :func:`vipml.features.btyd.day_summary`,
    so both give the same bits and the same BG/NBD fit."""
    n = len(customers)
    out = pd.DataFrame(
        {"days": np.zeros(n), "x": np.zeros(n), "t_x": np.zeros(n), "T": np.zeros(n)},
        index=customers,
    )
    out["last"] = pd.Series(pd.NaT, index=customers, dtype="datetime64[us, UTC]")
    if orders is None or not len(orders):
        return out
    before = (orders["ordered_at"] < as_of).to_numpy()
    vals = order_values(orders)
    buy = np.flatnonzero(before & vals["purchase"])
    if not len(buy):
        return out
    codes = positions(customers, orders["customer_id"].iloc[buy])
    keep = codes >= 0
    if not keep.any():
        return out
    day = np.asarray(to_us(orders["ordered_at"].iloc[buy]))[keep] // DAY_US
    c = codes[keep].astype(np.int64)
    # one sort of a single int64 key (customer, day): the distinct purchase days
    low = int(day.min())
    span = int(day.max()) - low + 1
    key = np.sort(c * span + (day - low))
    key = key[np.r_[True, key[1:] != key[:-1]]]
    c, d = key // span, key % span + low
    n_days = np.bincount(c, minlength=n).astype(np.float64)
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, c, d)
    np.maximum.at(last, c, d)
    has = n_days > 0
    out["days"] = n_days
    out["x"] = np.maximum(n_days - 1, 0)
    out["t_x"] = np.where(has, (last - first) / WEEK_DAYS, 0.0)
    out["T"] = np.where(has, (to_us(as_of) / DAY_US - first) / WEEK_DAYS, 0.0)
    stamp = pd.to_datetime(np.where(has, last, 0), unit="D", utc=True)
    out["last"] = pd.Series(stamp, index=customers).where(has)
    return out


def summary_columns(s: pd.DataFrame) -> dict[str, np.ndarray]:
    """:func:`purchase_summary` as float64 columns named :data:`HIDDEN` (``last`` as the UTC day
    number, NaN for no purchase): what a bucket hands over beside its features."""
    out = {f"_value_{k}": s[k].to_numpy(dtype=np.float64) for k in SUMMARY_KEYS[:-1]}
    out["_value_last"] = _day_numbers(s["last"])
    return out


def summary_from_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The :func:`purchase_summary` held in a frame's :data:`HIDDEN` columns (its index kept)."""
    out = pd.DataFrame(
        {k: frame[f"_value_{k}"].to_numpy(dtype=np.float64) for k in SUMMARY_KEYS},
        index=frame.index,
    )
    out["days"] = np.nan_to_num(out["days"].to_numpy(), nan=0.0)
    return out


def _day_numbers(last: pd.Series) -> np.ndarray:
    """UTC day numbers (days since 1970-01-01) of purchase-day stamps, or of day numbers."""
    if pd.api.types.is_datetime64_any_dtype(last):
        return ((last - EPOCH) / DAY).to_numpy(dtype=np.float64)
    return np.asarray(last, dtype=np.float64)


def timing_fit(summary: pd.DataFrame, customers: pd.Index | None = None) -> dict[str, Any]:
    """The population's BG/NBD parameters (``{"bgnbd": (r, alpha, a, b) or None}``) from the
    :func:`purchase_summary` of every customer: fitted on the buyers as the BTYD family fits
    them (:func:`vipml.features.btyd.fit_bgnbd_population`), so the parameters do not depend on
    the order of the customers nor on buckets, and equal the BTYD features' fit."""
    ids = summary.index if customers is None else customers
    has = summary["days"].to_numpy(dtype=np.float64) > 0
    if not has.any():
        return {"bgnbd": None}
    s = {k: summary[k].to_numpy(dtype=np.float64)[has] for k in ("x", "t_x", "T")}
    return {"bgnbd": fit_bgnbd_population(s, np.asarray(ids, dtype=object)[has])}


def timing(
    tables: Tables | None,
    *,
    as_of: pd.Timestamp,
    customers: pd.Index,
    horizon_days: int,
    span_days: float = 365.0,
    prior: float = CYCLE_PRIOR,
    fit: Mapping[str, Any] | np.ndarray | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``p_alive``, ``next_order_at``, ``clv_ratio`` (expected purchase days over
    ``span_days`` / over the horizon) and ``expected_days`` (expected purchase days over the
    horizon; NaN for customers without a purchase or without a fit) per customer, from BG/NBD
    fitted on purchase days before ``as_of``.

    ``summary`` is the customers' :func:`purchase_summary` when already known (then ``tables``
    is not read); ``fit`` the population's parameters (:func:`timing_fit`, or the BTYD family's
    fit of the same cutoff: ``{"bgnbd": ...}``) when the customers are a part of it (a bucket).
    By default both come from ``tables`` and ``customers``.
    Customers without a purchase have no ``next_order_at`` and a ``p_alive`` of NaN; when too
    few customers bought to fit, ``p_alive`` is NaN and the cycle is the customer's own."""
    if summary is None:
        if tables is None:
            raise ValueError("timing needs the tables or the customers' purchase summary")
        s = purchase_summary(tables.orders, as_of, customers)
    else:
        s = summary if summary.index.equals(customers) else summary.reindex(customers)
        s = s.assign(days=np.nan_to_num(s["days"].to_numpy(dtype=np.float64), nan=0.0))
    has = s["days"].to_numpy() > 0
    x, tx, T = (s[c].to_numpy(dtype=np.float64) for c in ("x", "t_x", "T"))
    if fit is None:
        fit = timing_fit(s, customers)
    params = fit.get("bgnbd") if isinstance(fit, Mapping) else fit
    params = None if params is None else np.asarray(params, dtype=np.float64)
    n = len(customers)
    p_alive = np.full(n, np.nan)
    expected = np.full(n, np.nan)
    ratio = np.full(n, span_days / horizon_days)
    own = np.where(x > 0, tx * WEEK_DAYS / np.maximum(x, 1), np.nan)
    if params is not None:
        r, alpha = params[0], params[1]
        p_alive = np.where(has, bgnbd_p_alive(params, x, tx, T), np.nan)
        e_h = bgnbd_expected(params, x, tx, T, horizon_days / WEEK_DAYS)
        e_y = bgnbd_expected(params, x, tx, T, span_days / WEEK_DAYS)
        ok = has & np.isfinite(e_h) & np.isfinite(e_y) & (e_h > 0)
        expected = np.where(has & np.isfinite(e_h), e_h, np.nan)
        ratio = np.where(ok, e_y / np.where(ok, e_h, 1.0), ratio)
        cycle_btyd = WEEK_DAYS * (alpha + T) / (r + x)
        cycle = (np.nan_to_num(own) * x + prior * cycle_btyd) / (x + prior)
    else:
        cycle = own
    cycle = np.where(np.isfinite(cycle) & (cycle > 0), cycle, np.nan)
    last_days = _day_numbers(s["last"])
    cut = (as_of - EPOCH) / DAY
    with np.errstate(invalid="ignore"):
        steps = np.maximum(np.ceil((cut - last_days) / cycle), 1.0)
    nxt = np.round(last_days + steps * cycle)
    nxt = np.where(has & np.isfinite(nxt), nxt, np.nan)
    stamp = pd.Series(pd.to_datetime(np.nan_to_num(nxt), unit="D", utc=True), index=customers)
    return pd.DataFrame(
        {
            "p_alive": p_alive,
            "next_order_at": stamp.where(~np.isnan(nxt)),
            "clv_ratio": ratio,
            "expected_days": expected,
        },
        index=customers,
    )


def customer_value(
    model: ValueModel,
    X: pd.DataFrame,
    tables: Tables | None,
    *,
    as_of: pd.Timestamp,
    margin: float,
    matrix: pd.DataFrame | None = None,
    fit: Mapping[str, Any] | np.ndarray | None = None,
    summary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The :data:`VALUE_COLUMNS` for the customers of ``X`` (index ``customer_id``) at ``as_of``
    (``matrix``: ``X`` as already prepared for the main model, see :meth:`ValueModel.predict`).

    ``fit`` and ``summary`` as in :func:`timing`: a bucket of customers gives its purchase
    summary and the population's fit (the bucketed engines), so that its rows equal those of
    the whole population scored at once."""
    ids = pd.Index(X.index, name="customer_id")
    t = timing(
        tables,
        as_of=as_of,
        customers=ids,
        horizon_days=model.horizon_days,
        prior=model.cycle_prior,
        fit=fit,
        summary=summary,
    )
    base = horizon_base(X, t["expected_days"].to_numpy()) if model.needs_base else None
    out = model.predict(X, matrix, base=base)
    out["p_alive"] = t["p_alive"].to_numpy()
    out["next_order_at"] = t["next_order_at"].array  # positional; no Timestamp objects
    out["clv_12m"] = margin * out["expected_spend"].to_numpy() * t["clv_ratio"].to_numpy()
    return out[VALUE_COLUMNS]
