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
