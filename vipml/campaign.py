"""Campaign measurement: the retailer's KPI formulas and treatment-vs-control analysis.

KPIs follow the domain's definitions exactly:

* customer retention rate CRR = (customers at period end - new customers in the period) /
  customers at period start x 100
* customer lifetime value CLV = monthly average purchase x retained months x margin - acquisition cost
* purchase conversion rate PCR = purchasing customers / visitors x 100
* repeat purchase rate RPR = customers with 2+ purchases / all customers x 100
* average order value AOV = revenue / number of orders
* upsell acceptance rate = customers who bought after an upsell offer / customers offered
* engagement: open rate, click-through rate (opened or clicked offers / offers sent)

The A/B functions take the outcomes of a treatment and a control group and return the
difference with a confidence interval and a p-value: a two-proportion z-test for rates, Welch's
t-test for means, and a seeded bootstrap for heavy-tailed revenue.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vipml.errors import DataError
from vipml.tables import Tables, order_values


def crr(customers_end: int, new_customers: int, customers_start: int) -> float:
    """Customer retention rate, in percent."""
    if customers_start <= 0:
        return math.nan
    return (customers_end - new_customers) / customers_start * 100


def clv(
    monthly_average_purchase: float, retained_months: float, margin: float, acquisition_cost: float
) -> float:
    """Customer lifetime value."""
    return monthly_average_purchase * retained_months * margin - acquisition_cost


def pcr(purchasing_customers: int, visitors: int) -> float:
    """Purchase conversion rate, in percent."""
    return purchasing_customers / visitors * 100 if visitors else math.nan


def rpr(customers_with_two_or_more: int, all_customers: int) -> float:
    """Repeat purchase rate, in percent."""
    return customers_with_two_or_more / all_customers * 100 if all_customers else math.nan


def aov(revenue: float, orders: int) -> float:
    """Average order value."""
    return revenue / orders if orders else math.nan


def period_kpis(tables: Tables, *, start: object, end: object) -> dict[str, float]:
    """The KPIs over ``[start, end)`` from the tables (orders, and events and offers if present)."""
    lo, hi = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
    orders = tables.orders
    if orders is None:
        raise DataError("period KPIs need an orders table")
    vals = order_values(orders)
    buy = vals["purchase"].astype(bool)
    t = orders["ordered_at"]
    inside = ((t >= lo) & (t < hi)).to_numpy() & buy
    before = (t < lo).to_numpy() & buy
    upto = (t < hi).to_numpy() & buy
    cust = orders["customer_id"]
    start_customers = cust[before].nunique()
    end_customers = cust[upto].nunique()
    first = t[buy].groupby(cust[buy]).min()
    new = int(((first >= lo) & (first < hi)).sum())
    per_customer = cust[inside].value_counts()
    out = {
        "customers_start": float(start_customers),
        "customers_end": float(end_customers),
        "new_customers": float(new),
        "crr": crr(end_customers, new, start_customers),
        "rpr": rpr(int((per_customer >= 2).sum()), int(len(per_customer))),
        "aov": aov(float(vals["gross"][inside].sum()), int(inside.sum())),
        "revenue": float(vals["net"][(t >= lo).to_numpy() & (t < hi).to_numpy()].sum()),
    }
    if tables.events is not None:
        ev = tables.events
        visitors = ev.loc[
            ((ev["occurred_at"] >= lo) & (ev["occurred_at"] < hi)).to_numpy(), "customer_id"
        ].unique()
        out["pcr"] = pcr(int(pd.Index(visitors).isin(per_customer.index).sum()), len(visitors))
    if tables.offers is not None:
        out.update(offer_kpis(tables.offers, start=lo, end=hi))
    return out


def offer_kpis(offers: pd.DataFrame, *, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float]:
    """Upsell acceptance, open and click rates of the offers sent (not held out) in the period."""
    sent = offers[((offers["sent_at"] >= start) & (offers["sent_at"] < end)).to_numpy()]
    if "group" in sent:
        sent = sent[(sent["group"] != "control").fillna(True).to_numpy()]
    out = {"offers_sent": float(len(sent))}
    customers = sent["customer_id"].nunique()
    if "accepted_at" in sent:
        accepted = sent.loc[sent["accepted_at"].notna().to_numpy(), "customer_id"].nunique()
        out["upsell_acceptance_rate"] = accepted / customers if customers else math.nan
    for event, name in (("opened", "open_rate"), ("clicked", "click_rate")):
        if f"{event}_at" in sent:
            out[name] = float(sent[f"{event}_at"].notna().mean()) if len(sent) else math.nan
    return out


@dataclass(frozen=True)
class Comparison:
    """Treatment against control for one outcome."""

    outcome: str
    method: str
    n_treatment: int
    n_control: int
    treatment: float
    control: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    relative_lift: float

    def to_dict(self) -> dict[str, object]:
        """A plain dict (one row of an A/B table)."""
        return asdict(self)


def _groups(y_t: np.ndarray, y_c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_t, y_c = np.asarray(y_t, dtype=np.float64), np.asarray(y_c, dtype=np.float64)
    if not len(y_t) or not len(y_c):
        raise DataError(
            f"an A/B comparison needs both groups; found {len(y_t)} treated and {len(y_c)} control rows.\n"
            "Fix: check the group column of the target list (treatment / control)"
        )
    return y_t, y_c


def compare_proportions(
    y_t: np.ndarray, y_c: np.ndarray, *, outcome: str = "conversion", alpha: float = 0.05
) -> Comparison:
    """Difference of two rates: Wald interval, two-sided z-test with the pooled rate."""
    y_t, y_c = _groups(y_t, y_c)
    p_t, p_c = y_t.mean(), y_c.mean()
    n_t, n_c = len(y_t), len(y_c)
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    z = stats.norm.ppf(1 - alpha / 2)
    pooled = (y_t.sum() + y_c.sum()) / (n_t + n_c)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = float(2 * stats.norm.sf(abs(p_t - p_c) / se0)) if se0 > 0 else math.nan
    return Comparison(
        outcome,
        "two-proportion z-test",
        n_t,
        n_c,
        float(p_t),
        float(p_c),
        float(p_t - p_c),
        float(p_t - p_c - z * se),
        float(p_t - p_c + z * se),
        p_value,
        float(p_t / p_c - 1) if p_c > 0 else math.nan,
    )


def compare_means(
    y_t: np.ndarray,
    y_c: np.ndarray,
    *,
    outcome: str = "revenue",
    alpha: float = 0.05,
    bootstrap: int = 0,
    seed: int = 0,
) -> Comparison:
    """Difference of two means: Welch's t-test; with ``bootstrap`` > 0, a seeded percentile
    bootstrap interval instead (for heavy-tailed revenue)."""
    y_t, y_c = _groups(y_t, y_c)
    m_t, m_c = y_t.mean(), y_c.mean()
    v_t, v_c = y_t.var(ddof=1) / len(y_t), y_c.var(ddof=1) / len(y_c)
    se = math.sqrt(v_t + v_c)
    df = (
        (v_t + v_c) ** 2 / (v_t**2 / (len(y_t) - 1) + v_c**2 / (len(y_c) - 1))
        if se > 0
        else math.inf
    )
    t_crit = stats.t.ppf(1 - alpha / 2, df)
    p_value = float(2 * stats.t.sf(abs(m_t - m_c) / se, df)) if se > 0 else math.nan
    lo, hi = m_t - m_c - t_crit * se, m_t - m_c + t_crit * se
    method = "Welch t-test"
    if bootstrap:
        rng = np.random.default_rng(seed)
        diffs = np.empty(bootstrap)
        for b in range(bootstrap):  # resamples, not customers: each draw is vectorised
            diffs[b] = rng.choice(y_t, len(y_t)).mean() - rng.choice(y_c, len(y_c)).mean()
        lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
        method = f"Welch t-test, bootstrap interval ({bootstrap} resamples)"
    return Comparison(
        outcome,
        method,
        len(y_t),
        len(y_c),
        float(m_t),
        float(m_c),
        float(m_t - m_c),
        float(lo),
        float(hi),
        p_value,
        float(m_t / m_c - 1) if m_c else math.nan,
    )


def sample_size(
    base_rate: float, minimum_effect: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Customers per group a two-sided test of two rates needs to detect ``minimum_effect``
    (an absolute difference) with the given power."""
    p1, p2 = base_rate, base_rate + minimum_effect
    z_a, z_b = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    p_bar = (p1 + p2) / 2
    num = (
        z_a * math.sqrt(2 * p_bar * (1 - p_bar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    ) ** 2
    return int(math.ceil(num / minimum_effect**2))


def minimum_detectable_effect(
    base_rate: float, n_per_group: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest absolute difference of rates a test with ``n_per_group`` per group detects."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * math.sqrt(2 * base_rate * (1 - base_rate) / n_per_group))


# --------------------------------------------------------------------------- uplift


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
            from vipml.errors import NotFittedError

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
        z = np.asarray(y, dtype=np.float64) * (t - e) / (e * (1 - e))
        self.model_ = lgb.LGBMRegressor(**self._params()).fit(X, z)
        self.treated_ = True
        self.feature_names_in_ = list(X.columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated uplift per row."""
        if not hasattr(self, "model_"):
            from vipml.errors import NotFittedError

            raise NotFittedError(
                "TransformedOutcomeUplift is not fitted: call fit(X, y, treatment) first"
            )
        return self.model_.predict(X)
