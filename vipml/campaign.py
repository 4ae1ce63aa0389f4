"""Campaign measurement: the retailer's KPIs, the A/B analysis of a target list, ROI per campaign.

KPIs follow the domain's definitions exactly:

* customer retention rate CRR = (customers at period end - new customers in the period) /
  customers at period start x 100
* customer lifetime value CLV = monthly average purchase x retained months x margin - acquisition cost
* purchase conversion rate PCR = purchasing customers / visitors x 100
* repeat purchase rate RPR = customers with 2+ purchases / all customers x 100
* average order value AOV = revenue / number of orders
* upsell acceptance rate = customers who bought after an upsell offer / customers offered
* engagement: open rate, click-through rate (opened or clicked offers / offers sent), push response
  rate (push offers opened or clicked / push offers sent)
* VIP conversion rate of a target audience and time from first order to VIP (step 3)
* ROI per campaign = (incremental revenue - offer cost) / offer cost

The A/B functions take the outcomes of a treatment and a control group and return the
difference with a confidence interval and a p-value: a two-proportion z-test for rates, Welch's
t-test for means, and a seeded bootstrap for heavy-tailed revenue. Outcomes read
``[after, after + horizon)`` only.

``vipml campaign --targets FILE --after DATE --out DIR`` writes, each atomically:

* ``kpis.csv`` (:func:`kpi_table`): ``scope`` (overall, period, segment, group, channel,
  campaign), ``key`` (``all``, the period's first day, the segment, group, channel or campaign id),
  ``metric`` and ``value``. Rates named ``*_rate`` from offers are shares in [0, 1]; ``crr``,
  ``rpr``, ``pcr``, ``purchase_rate`` and ``vip_conversion_rate`` are percentages, as the
  domain writes them; ``revenue`` is net of returns, ``aov`` gross.
* ``ab.csv`` (:func:`ab_test`): ``metric`` (conversion, revenue_per_customer twice: Welch and
  bootstrap interval, vip_conversion), ``method``, ``treatment_n``, ``control_n``,
  ``treatment_value``, ``control_value``, ``difference`` (treatment - control),
  ``relative_lift``, ``ci_low``, ``ci_high`` (1 - alpha interval of the difference),
  ``p_value``, ``mde`` (the smallest difference detectable at these sizes, power 0.8),
  ``needed_per_group`` (customers per group to detect the observed difference), ``warning``
  ("read early: ..." or empty).
* ``roi.csv`` (:func:`campaign_roi`, when offers carry ``campaign_id``): ``campaign_id``,
  ``treated_customers``, ``control_customers``, ``treated_revenue_per_customer``,
  ``control_revenue_per_customer``, ``incremental_revenue`` with ``incremental_ci_low`` /
  ``incremental_ci_high``, ``cost``, ``roi``, ``note``.
* ``campaign.json``: ``after``, ``end``, ``horizon_days``, ``targets``, ``planned_size``,
  ``counts`` (treatment, control, in_both_groups, target_rows, campaigns), ``warnings`` (a list)
  and ``files`` (table name -> file name).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from vipml.config import Config, as_config
from vipml.errors import ConfigError, DataError, sample_list
from vipml.io import Tables, order_values, read_frame
from vipml.labels import data_span, vip_conversion_labels
from vipml.uplift import (
    TransformedOutcomeUplift,
    TwoModelUplift,
    auuc,
    qini_auc_score,
    qini_coefficient,
    qini_curve,
    qini_points,
    random_band,
    uplift_at_k,
    uplift_curve,
)
from vipml.windows import as_cutoff, to_us

__all__ = [
    "campaign_qini",
    "qini_auc_score",
    "Comparison",
    "TransformedOutcomeUplift",
    "TwoModelUplift",
    "ab_test",
    "aov",
    "auuc",
    "campaign_roi",
    "clv",
    "compare_means",
    "compare_proportions",
    "crr",
    "kpi_table",
    "minimum_detectable_effect",
    "offer_kpis",
    "pcr",
    "period_kpis",
    "push_response_rate",
    "read_targets",
    "qini_coefficient",
    "qini_curve",
    "rpr",
    "sample_size",
    "time_to_vip",
    "uplift_at_k",
    "uplift_curve",
    "vip_conversion_rate",
]


def read_targets(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A target list from a ``.parquet`` or ``.csv`` file (ids and groups read as text).

    Raises
    ------
    DataError
        When the file is missing or not Parquet or CSV.
    """
    return read_frame(path, text=("customer_id", "group", "segment"), what="target list")


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


def period_kpis(
    tables: Tables, *, start: object, end: object, active_days: int | None = None
) -> dict[str, float]:
    """The KPIs over ``[start, end)`` from the tables (orders, and events and offers if present).

    For the retention rate a customer counts at a date when they bought in the ``active_days``
    before it (default: the period's length): customers at the start bought in
    ``[start - active_days, start)``, customers at the end in ``[end - active_days, end)``.
    Counting everyone who ever bought would make the rate 100% by construction.
    """
    lo, hi = _window(start, end)
    active = pd.Timedelta(days=active_days) if active_days else hi - lo
    orders = tables.orders
    if orders is None:
        raise DataError("period KPIs need an orders table")
    vals = order_values(orders)
    buy = np.asarray(vals["purchase"], dtype=bool)
    t = orders["ordered_at"]
    window = _inside(t, lo, hi)
    inside = window & buy
    before = _inside(t, lo - active, lo) & buy
    upto = _inside(t, hi - active, hi) & buy
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
        "revenue": float(vals["net"][window].sum()),
    }
    if tables.events is not None:
        ev = tables.events
        visitors = ev.loc[_inside(ev["occurred_at"], lo, hi), "customer_id"].unique()
        out["pcr"] = pcr(int(pd.Index(visitors).isin(per_customer.index).sum()), len(visitors))
    if tables.offers is not None:
        out.update(offer_kpis(tables.offers, start=lo, end=hi))
    return out


def offer_kpis(offers: pd.DataFrame, *, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, float]:
    """Upsell acceptance, open and click rates of the offers sent (not held out) in the period."""
    sent = _sent(offers, start, end)
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


# --------------------------------------------------------------------------- KPIs by scope

KPI_COLUMNS = ["scope", "key", "metric", "value"]
AB_COLUMNS = [
    "metric", "method", "treatment_n", "control_n", "treatment_value", "control_value",
    "difference", "relative_lift", "ci_low", "ci_high", "p_value", "mde", "needed_per_group",
    "warning",
]  # fmt: skip
ROI_COLUMNS = [
    "campaign_id", "treated_customers", "control_customers", "treated_revenue_per_customer",
    "control_revenue_per_customer", "incremental_revenue", "incremental_ci_low",
    "incremental_ci_high", "cost", "roi", "note",
]  # fmt: skip
READ_EARLY = "a fixed-horizon test read early inflates false positives"
PUSH_SENT = ("push_sent", "push_received", "push_delivered")
PUSH_RESPONSE = ("push_open", "push_opened", "push_click", "push_clicked")


def _window(start: object, end: object) -> tuple[pd.Timestamp, pd.Timestamp]:
    lo, hi = as_cutoff(start, name="start"), as_cutoff(end, name="end")
    if hi <= lo:
        raise ConfigError(f"the period ends ({hi:%Y-%m-%d}) before it starts ({lo:%Y-%m-%d})")
    return lo, hi


def _inside(times: pd.Series, lo: pd.Timestamp, hi: pd.Timestamp) -> np.ndarray:
    """Rows with ``lo <= time < hi``."""
    t = to_us(times)
    return (t >= to_us(lo)) & (t < to_us(hi))


def _sent(offers: pd.DataFrame, lo: pd.Timestamp, hi: pd.Timestamp) -> pd.DataFrame:
    """Offers sent in ``[lo, hi)`` and not held out as control."""
    mask = _inside(offers["sent_at"], lo, hi)
    if "group" in offers:
        mask &= (offers["group"] != "control").fillna(True).to_numpy(dtype=bool)
    return offers[mask]


def push_response_rate(tables: Tables, *, start: object, end: object) -> float:
    """Push response rate over ``[start, end)``.

    From offers sent on channel ``push`` (not held out): the share opened or clicked. Without push
    offers, from events: ``push_open``/``push_click`` events over ``push_sent``/``push_received``
    events. NaN when neither is recorded.

    Parameters
    ----------
    tables
        The loaded tables.
    start, end
        The period; rows at ``end`` are outside it.

    Returns
    -------
    float
        A share in [0, 1], or NaN.
    """
    lo, hi = _window(start, end)
    offers = tables.offers
    if offers is not None and "channel" in offers:
        sent = _sent(offers, lo, hi)
        push = sent[(sent["channel"] == "push").fillna(False).to_numpy(dtype=bool)]
        if len(push):
            hit = np.zeros(len(push), dtype=bool)
            for col in ("opened_at", "clicked_at"):
                if col in push:
                    hit |= push[col].notna().to_numpy()
            return float(hit.mean())
    events = tables.events
    if events is not None:
        inside = events[_inside(events["occurred_at"], lo, hi)]
        kind = inside["event_type"]
        sent_n = int(kind.isin(PUSH_SENT).sum())
        if sent_n:
            return float(kind.isin(PUSH_RESPONSE).sum() / sent_n)
    return math.nan


def _offer_rates(sent: pd.DataFrame, key: np.ndarray) -> pd.DataFrame:
    """Per key: offers sent, upsell acceptance (customers), open and click rates (offers)."""
    g = pd.DataFrame({"key": key, "customer_id": sent["customer_id"].to_numpy()})
    g = g[pd.notna(g["key"]).to_numpy()]
    by = g.groupby("key", sort=True)
    out = pd.DataFrame({"offers_sent": by.size().astype(float)})
    customers = by["customer_id"].nunique()
    cols = {"accepted_at": None, "opened_at": "open_rate", "clicked_at": "click_rate"}
    for col, name in cols.items():
        if col not in sent:
            continue
        hit = sent[col].notna().to_numpy()[g.index.to_numpy()]
        if name is None:
            accepted = g[hit].groupby("key")["customer_id"].nunique()
            out["upsell_acceptance_rate"] = accepted.reindex(out.index, fill_value=0) / customers
        else:
            out[name] = pd.Series(hit, index=g.index).groupby(g["key"]).mean()
    if "cost" in sent:
        out["cost"] = (
            pd.Series(sent["cost"].to_numpy()[g.index.to_numpy()], index=g.index)
            .groupby(g["key"])
            .sum(min_count=1)
        )
    return out


def _order_kpis(orders: pd.DataFrame, mask: np.ndarray, key: np.ndarray) -> pd.DataFrame:
    """Per key, over the masked order rows: orders, revenue (net), AOV, buyers and RPR."""
    vals = order_values(orders)
    rows = pd.DataFrame(
        {
            "key": key,
            "customer_id": orders["customer_id"].to_numpy(),
            "buy": vals["purchase"],
            "gross": vals["gross"],
            "net": vals["net"],
        }
    )[mask & pd.notna(key)]
    bought = rows[rows["buy"].to_numpy()]
    per = bought.groupby(["key", "customer_id"]).size()
    out = pd.DataFrame({"revenue": rows.groupby("key")["net"].sum()})
    out["orders"] = bought.groupby("key").size().reindex(out.index, fill_value=0).astype(float)
    out["purchasing_customers"] = (
        per.groupby(level=0).size().reindex(out.index, fill_value=0).astype(float)
    )
    repeat = (per >= 2).groupby(level=0).sum().reindex(out.index, fill_value=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["aov"] = bought.groupby("key")["gross"].sum().reindex(out.index) / out["orders"]
        out["rpr"] = repeat / out["purchasing_customers"] * 100
    return out


def _tidy(wide: pd.DataFrame, scope: str) -> pd.DataFrame:
    """A wide frame (index: key, columns: metrics) as rows of scope, key, metric, value."""
    if wide.empty:
        return pd.DataFrame(columns=KPI_COLUMNS)
    long = wide.rename_axis("key").reset_index().melt(id_vars="key", var_name="metric")
    long.insert(0, "scope", scope)
    long["key"] = long["key"].astype(str)
    long["value"] = long["value"].astype(np.float64)
    return long[KPI_COLUMNS]


def vip_conversion_rate(
    customers: pd.Index | np.ndarray | list[str],
    tables: Tables,
    *,
    as_of: object,
    horizon_days: int,
    config: Config | str | None = None,
) -> dict[str, float]:
    """VIP conversion rate of a target audience.

    Among the audience customers known before ``as_of`` and not VIP then, the share who are VIP
    when ``[as_of, as_of + horizon_days)`` ends, under the config's VIP rule (the same rule and
    labels as the VIP model: :func:`vipml.labels.vip_conversion_labels`).

    Parameters
    ----------
    customers
        The audience's customer ids.
    tables
        The loaded tables.
    as_of
        Start of the window; VIP status before it comes from rows before it.
    horizon_days
        Length of the window.
    config
        Its ``vip`` section gives the rule.

    Returns
    -------
    dict
        ``audience``, ``eligible`` (not VIP at ``as_of``), ``converted`` and
        ``vip_conversion_rate`` (percent; NaN when nobody is eligible).
    """
    labels = vip_conversion_labels(
        tables,
        as_of=as_of,
        horizon_days=horizon_days,
        config=config,
        check=False,
        population="not_vip",
    )
    ids = pd.Index(pd.unique(np.asarray(customers, dtype=object)))
    eligible = labels["label"][labels.index.isin(ids)]
    converted = int(eligible.sum())
    return {
        "audience": float(len(ids)),
        "eligible": float(len(eligible)),
        "converted": float(converted),
        "vip_conversion_rate": converted / len(eligible) * 100 if len(eligible) else math.nan,
    }


def time_to_vip(
    tables: Tables,
    *,
    start: object,
    end: object,
    config: Config | str | None = None,
    customers: pd.Index | np.ndarray | list[str] | None = None,
) -> pd.DataFrame:
    """How long the customers who became VIP during ``[start, end)`` took from their first order.

    A customer converts as :func:`vip_conversion_rate` says (not VIP at ``start``, VIP at ``end``
    under the config's rule). The day they became VIP is the first order at which their net spend
    in the deciding window ``[end - w, end)`` (``w = min(vip.window_days, end - start)``) reached
    the VIP bar; the time to VIP runs from their first purchase ever (before that order).

    Parameters
    ----------
    tables
        The loaded tables.
    start, end
        The window; rows at or after ``end`` are not read.
    config
        Its ``vip`` section gives the rule.
    customers
        Restrict to these customers (a target audience); default every customer.

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id`` (the converted customers); columns ``first_order_at``, ``vip_at``,
        ``days_to_vip``.
    """
    config = as_config(config)
    lo, hi = _window(start, end)
    horizon = (hi - lo) / pd.Timedelta(days=1)
    if horizon != int(horizon):
        raise ConfigError(f"the window {lo} .. {hi} is not a whole number of days")
    labels = vip_conversion_labels(
        tables,
        as_of=lo,
        horizon_days=int(horizon),
        config=config,
        check=False,
        population="not_vip",
    )
    won = labels.index[labels["label"].to_numpy() == 1]
    if customers is not None:
        won = won[won.isin(pd.Index(np.asarray(customers, dtype=object)))]
    out = pd.DataFrame(
        {
            "first_order_at": pd.Series(dtype="datetime64[us, UTC]"),
            "vip_at": pd.Series(dtype="datetime64[us, UTC]"),
            "days_to_vip": pd.Series(dtype=np.float64),
        },
        index=pd.Index([], dtype="str", name="customer_id"),
    )
    orders = tables.orders
    if not len(won) or orders is None:
        return out
    bar = config.vip.threshold if config.vip.rule == "threshold" else labels.attrs["vip_bar"]
    w = min(config.vip.window_days, int(horizon))
    vals = order_values(orders)
    mine = orders["customer_id"].isin(won).to_numpy()
    deciding = mine & _inside(orders["ordered_at"], hi - pd.Timedelta(days=w), hi)
    rows = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].to_numpy()[deciding],
            "at": orders["ordered_at"].to_numpy()[deciding],
            "net": vals["net"][deciding],
        }
    ).sort_values(["customer_id", "at"], kind="stable")
    rows["spend"] = rows.groupby("customer_id")["net"].cumsum()
    vip_at = rows[rows["spend"].to_numpy() >= bar - 1e-9].groupby("customer_id")["at"].min()
    bought = mine & vals["purchase"] & (to_us(orders["ordered_at"]) < to_us(hi))
    first = (
        pd.Series(orders["ordered_at"].to_numpy()[bought])
        .groupby(orders["customer_id"].to_numpy()[bought])
        .min()
    )
    ids = vip_at.index
    out = pd.DataFrame(
        {"first_order_at": first.reindex(ids).to_numpy(), "vip_at": vip_at.to_numpy()},
        index=pd.Index(ids, dtype="str", name="customer_id"),
    )
    out["days_to_vip"] = (out["vip_at"] - out["first_order_at"]) / pd.Timedelta(days=1)
    return out.sort_index()


def kpi_table(
    tables: Tables,
    *,
    start: object,
    end: object,
    config: Config | str | None = None,
    audience: pd.DataFrame | None = None,
    freq: str = "MS",
) -> pd.DataFrame:
    """Every KPI over ``[start, end)``: overall, by period, and by segment, group, channel and
    campaign, as a tidy table.

    Scopes (``key`` in brackets):

    * ``overall`` (``all``): :func:`period_kpis` (CRR, RPR, AOV, revenue, PCR, upsell acceptance,
      open and click rates), ``push_response_rate``; with an audience also its VIP conversion rate
      and the median and mean days from first order to VIP of those who converted;
    * ``period`` (the period's first day, ``freq`` a pandas frequency, monthly by default):
      :func:`period_kpis` over each period inside the window;
    * ``segment`` and ``group`` (the audience's ``segment`` / ``group`` column, when present):
      audience size, purchasing customers, ``purchase_rate`` (buyers / audience x 100), orders,
      revenue, AOV, RPR, and the offer rates of the audience's offers;
    * ``channel``: offer rates of the offers sent on each channel (``push_response_rate`` for
      push) and the orders, revenue and AOV of the orders placed on each channel;
    * ``campaign`` (``campaign_id``): offers sent, acceptance, open and click rates and cost.

    Offer rates count offers sent in the window and not held out as control.

    Parameters
    ----------
    tables
        The loaded tables.
    start, end
        The window; rows before ``start`` only decide who was a customer or VIP already.
    config
        Its ``vip`` section gives the VIP rule.
    audience
        A target list (``customer_id``; optional ``segment`` and ``group``).
    freq
        Length of the periods of the ``period`` scope.

    Returns
    -------
    pandas.DataFrame
        Columns ``scope``, ``key``, ``metric``, ``value``.
    """
    config = as_config(config)
    lo, hi = _window(start, end)
    parts = []
    overall = period_kpis(tables, start=lo, end=hi)
    overall["push_response_rate"] = push_response_rate(tables, start=lo, end=hi)
    horizon = int((hi - lo) / pd.Timedelta(days=1))
    if audience is not None and tables.orders is not None and config.vip.rule != "tier":
        ids = pd.unique(audience["customer_id"].astype("str").to_numpy())
        vip = vip_conversion_rate(ids, tables, as_of=lo, horizon_days=horizon, config=config)
        overall["vip_conversion_rate"] = vip["vip_conversion_rate"]
        overall["vip_converted"] = vip["converted"]
        days = time_to_vip(tables, start=lo, end=hi, config=config, customers=ids)["days_to_vip"]
        overall["days_to_vip_median"] = float(days.median()) if len(days) else math.nan
        overall["days_to_vip_mean"] = float(days.mean()) if len(days) else math.nan
    parts.append(_tidy(pd.DataFrame(overall, index=["all"]), "overall"))
    edges = [lo, *[p for p in pd.date_range(lo, hi, freq=freq) if lo < p < hi], hi]
    periods = {
        f"{a:%Y-%m-%d}": period_kpis(tables, start=a, end=b)
        for a, b in zip(edges[:-1], edges[1:], strict=True)  # a loop over periods
    }
    parts.append(_tidy(pd.DataFrame(periods).T, "period"))
    orders, offers = tables.orders, tables.offers
    sent = _sent(offers, lo, hi) if offers is not None else None
    if audience is not None:
        aud = audience.assign(customer_id=audience["customer_id"].astype("str"))
        for column in ("segment", "group"):
            if column not in aud:
                continue
            who = aud.loc[aud[column].notna().to_numpy() & (aud[column] != "").to_numpy()]
            who = who.drop_duplicates("customer_id")
            mapping = pd.Series(who[column].to_numpy(), index=who["customer_id"].to_numpy())
            wide = pd.DataFrame({"customers": mapping.value_counts().astype(float)})
            if orders is not None:
                key = orders["customer_id"].map(mapping).to_numpy()
                wide = wide.join(_order_kpis(orders, _inside(orders["ordered_at"], lo, hi), key))
                zero = ["revenue", "orders", "purchasing_customers"]  # no orders: zero, not unknown
                wide[zero] = wide[zero].fillna(0.0)
                wide["purchase_rate"] = (
                    wide["purchasing_customers"].fillna(0) / wide["customers"] * 100
                )
            if sent is not None and len(sent):
                wide = wide.join(_offer_rates(sent, sent["customer_id"].map(mapping).to_numpy()))
            parts.append(_tidy(wide.sort_index(), column))
    channel = pd.DataFrame()
    if sent is not None and "channel" in sent and len(sent):
        channel = _offer_rates(sent, sent["channel"].to_numpy())
        if "push" in channel.index:
            channel["push_response_rate"] = np.nan
            channel.loc["push", "push_response_rate"] = overall["push_response_rate"]
    if orders is not None and "channel" in orders:
        by_orders = _order_kpis(
            orders, _inside(orders["ordered_at"], lo, hi), orders["channel"].to_numpy()
        )[["orders", "revenue", "aov"]]
        channel = by_orders if channel.empty else channel.join(by_orders, how="outer")
    channel_rows = _tidy(channel.sort_index(), "channel")  # offer and order channels differ
    parts.append(channel_rows[channel_rows["value"].notna().to_numpy()])
    if sent is not None and "campaign_id" in sent and sent["campaign_id"].notna().any():
        parts.append(_tidy(_offer_rates(sent, sent["campaign_id"].to_numpy()), "campaign"))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=KPI_COLUMNS)


# --------------------------------------------------------------------------- A/B of a target list


def _per_customer_outcomes(
    orders: pd.DataFrame, ids: pd.Index, lo: pd.Timestamp, hi: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray]:
    """Purchases and net revenue of each of ``ids`` over ``[lo, hi)`` (0 without orders)."""
    vals = order_values(orders)
    inside = _inside(orders["ordered_at"], lo, hi)
    codes = ids.get_indexer(orders["customer_id"].to_numpy())
    ok = inside & (codes >= 0)
    buys = np.bincount(codes[ok], weights=vals["purchase"][ok].astype(float), minlength=len(ids))
    net = np.bincount(codes[ok], weights=vals["net"][ok], minlength=len(ids))
    return buys, net


def _mean_power(
    y_t: np.ndarray, y_c: np.ndarray, difference: float, alpha: float, power: float
) -> tuple[float, float]:
    """MDE of a difference of means at these group sizes, and the size per group that detects
    ``difference`` (normal approximation with the observed variances)."""
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    v_t, v_c = np.var(y_t, ddof=1), np.var(y_c, ddof=1)
    mde = float(z * math.sqrt(v_t / len(y_t) + v_c / len(y_c)))
    needed = math.ceil(z**2 * (v_t + v_c) / difference**2) if difference else math.nan
    return mde, float(needed)


def _rate_power(
    p_c: float, n_t: int, n_c: int, difference: float, alpha: float, power: float
) -> tuple[float, float]:
    """MDE of a difference of rates at these group sizes (harmonic mean of the two), and the
    size per group that detects ``difference``."""
    if not 0 < p_c < 1:
        return math.nan, math.nan
    n_eff = 2 / (1 / n_t + 1 / n_c)
    mde = minimum_detectable_effect(p_c, n_eff, alpha=alpha, power=power)
    ok = difference and 0 < p_c + difference < 1
    needed = sample_size(p_c, difference, alpha=alpha, power=power) if ok else math.nan
    return mde, float(needed)


def ab_test(
    targets: pd.DataFrame,
    tables: Tables,
    *,
    after: object,
    horizon_days: int | None = None,
    config: Config | str | None = None,
    planned_size: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    bootstrap: int = 2000,
    seed: int | None = None,
    source: str = "the target list",
) -> pd.DataFrame:
    """Treatment against control of a target list, on what the customers did after it.

    Outcomes are read from ``[after, after + horizon_days)`` only: rows before ``after`` (except
    to decide who was a VIP already) and rows after the window change nothing. Customers count
    once: a customer listed in both groups (an upsell list holds a row per offer type) is left
    out and counted in a warning.

    Rows (``metric``):

    * ``conversion``: share of customers with a purchase; two-proportion z-test;
    * ``revenue_per_customer``: net revenue per customer (zero for non-buyers); Welch's t-test,
      and again with a seeded percentile bootstrap interval for the heavy tail;
    * ``vip_conversion``: among customers not VIP at ``after``, the share VIP at the window's end
      under the config's rule (:func:`vip_conversion_rate`); left out under the ``tier`` rule.

    ``mde`` is the smallest difference the test can detect at these group sizes with ``power``;
    ``needed_per_group`` the customers per group that detect the observed difference.

    Parameters
    ----------
    targets
        A target list: ``customer_id`` and ``group`` (``treatment`` / ``control``; other rows are
        not part of the test).
    tables
        The loaded tables (orders required).
    after
        When the campaign started (the target list's send date).
    horizon_days
        The test's fixed horizon; default ``labels.horizon_days`` of the config.
    config
        VIP rule and default horizon.
    planned_size
        Customers per group the test was planned for; fewer in either group gives a
        "read early" warning.
    alpha, power
        Significance level (intervals are ``1 - alpha``) and the power for MDE and sizes.
    bootstrap
        Resamples of the bootstrap interval (0: no bootstrap row).
    seed
        Seed of the bootstrap; default the config's ``seed``.
    source
        How to name the target list in messages (its file).

    Returns
    -------
    pandas.DataFrame
        One row per metric and method, columns :data:`AB_COLUMNS`. ``attrs`` hold ``warnings``
        (a list), ``counts`` and the window.

    Raises
    ------
    DataError
        Missing columns, a group without customers, no orders table, or ``after`` outside the
        data.
    """
    config = as_config(config)
    missing = [c for c in ("customer_id", "group") if c not in targets]
    if missing:
        raise DataError(
            f"{source} has no column {', '.join(repr(c) for c in missing)} "
            f"(found: {', '.join(map(str, targets.columns[:12]))}).\n"
            "Fix: give the target list written by 'vipml score' (customer_id, group: treatment / "
            "control)"
        )
    if tables.orders is None:
        raise DataError(
            "the A/B analysis needs an orders table (outcomes are purchases after the campaign)"
        )
    lo = as_cutoff(after, name="after")
    horizon = horizon_days or config.labels.horizon_days
    hi = lo + pd.Timedelta(days=horizon)
    first, last = data_span(tables)
    if first is None or not (first <= lo <= last):
        span = "no dated rows" if first is None else f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        raise DataError(
            f"after = {lo:%Y-%m-%d} is outside the data ({span}).\n"
            "Fix: give the date the campaign started, inside the data's dates"
        )
    warnings: list[str] = []
    if last < hi - pd.Timedelta(days=1):
        seen = max((last - lo) / pd.Timedelta(days=1), 0)
        warnings.append(
            f"read early: outcomes observed for {seen:.0f} of {horizon} days (the data ends "
            f"{last:%Y-%m-%d}); {READ_EARLY}"
        )
    group = targets["group"].astype("str").str.strip().str.lower()
    in_test = group.isin(["treatment", "control"]).to_numpy()
    rows = pd.DataFrame(
        {"customer_id": targets["customer_id"].astype("str").to_numpy(), "group": group}
    )[in_test]
    rows = rows.drop_duplicates()
    both = rows["customer_id"].duplicated(keep=False).to_numpy()
    if both.any():
        twice = pd.unique(rows.loc[both, "customer_id"])
        warnings.append(
            f"{len(twice):,} customer(s) are in both groups and are left out (e.g. "
            f"{sample_list(twice)})"
        )
        rows = rows[~both]
    n_by = rows["group"].value_counts()
    n_t, n_c = int(n_by.get("treatment", 0)), int(n_by.get("control", 0))
    if not n_t or not n_c:
        found = ", ".join(f"{k} {v:,}" for k, v in group.value_counts().items()) or "no rows"
        raise DataError(
            f"{source}: column 'group' has {n_t:,} treatment and {n_c:,} control customers "
            f"(values found: {found}); an A/B test needs both.\n"
            "Fix: score with a control group (score.control_share > 0) and give that list"
        )
    ids = pd.Index(rows["customer_id"].to_numpy(), dtype="str")
    known = ids.isin(tables.customer_ids())
    if not known.all():
        warnings.append(
            f"{int((~known).sum()):,} customer(s) of {source} appear in no table (e.g. "
            f"{sample_list(ids[~known])}); they count as customers without purchases"
        )
    treated = (rows["group"] == "treatment").to_numpy()
    buys, net = _per_customer_outcomes(tables.orders, ids, lo, hi)
    seed = config.seed if seed is None else seed
    out: list[dict[str, object]] = []

    def add(c: Comparison, metric: str, mde: float, needed: float) -> None:
        out.append(
            {
                "metric": metric,
                "method": c.method,
                "treatment_n": c.n_treatment,
                "control_n": c.n_control,
                "treatment_value": c.treatment,
                "control_value": c.control,
                "difference": c.difference,
                "relative_lift": c.relative_lift,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
                "p_value": c.p_value,
                "mde": mde,
                "needed_per_group": needed,
            }
        )

    conv = (buys > 0).astype(np.float64)
    c = compare_proportions(conv[treated], conv[~treated], outcome="conversion", alpha=alpha)
    add(c, "conversion", *_rate_power(c.control, n_t, n_c, c.difference, alpha, power))
    c = compare_means(net[treated], net[~treated], outcome="revenue_per_customer", alpha=alpha)
    power_rev = _mean_power(net[treated], net[~treated], c.difference, alpha, power)
    add(c, "revenue_per_customer", *power_rev)
    if bootstrap:
        c = compare_means(
            net[treated],
            net[~treated],
            outcome="revenue_per_customer",
            alpha=alpha,
            bootstrap=bootstrap,
            seed=seed,
        )
        add(c, "revenue_per_customer", *power_rev)
    if config.vip.rule != "tier":
        labels = vip_conversion_labels(
            tables, as_of=lo, horizon_days=horizon, config=config, check=False, population="not_vip"
        )["label"]
        eligible = ids.isin(labels.index)
        vip = labels.reindex(ids[eligible]).to_numpy(dtype=np.float64)
        t_vip = treated[eligible]
        if t_vip.any() and (~t_vip).any():
            c = compare_proportions(vip[t_vip], vip[~t_vip], outcome="vip_conversion", alpha=alpha)
            add(
                c,
                "vip_conversion",
                *_rate_power(c.control, c.n_treatment, c.n_control, c.difference, alpha, power),
            )
    else:
        warnings.append("vip.rule 'tier' is static: no VIP conversion row")
    frame = pd.DataFrame(out)
    n_min = frame[["treatment_n", "control_n"]].min(axis=1).to_numpy()
    notes = np.full(len(frame), "", dtype=object)
    if planned_size:
        early = n_min < planned_size
        notes[early] = [
            f"read early: {n:,} of {planned_size:,} planned customers per group; {READ_EARLY}"
            for n in n_min[early]
        ]
        if early[0]:
            warnings.append(notes[0])
    else:
        needed = frame["needed_per_group"].to_numpy(dtype=np.float64)
        short = ~np.isnan(needed) & (n_min < needed)
        notes[short] = [
            f"read early: {n:,} of the {k:,.0f} customers per group needed to detect this "
            f"difference with power {power:g}; {READ_EARLY}"
            for n, k in zip(n_min[short], needed[short], strict=True)
        ]
        warnings += [f"{m}: {note}" for m, note in zip(frame["metric"], notes, strict=True) if note]
    frame["warning"] = notes
    frame = frame[AB_COLUMNS]
    frame.attrs.update(
        warnings=list(dict.fromkeys(warnings)),
        counts={"treatment": n_t, "control": n_c, "in_both_groups": int(both.sum() // 2)},
        after=lo.isoformat(),
        end=hi.isoformat(),
        horizon_days=horizon,
    )
    return frame


# --------------------------------------------------------------------------- ROI per campaign


def _window_sums(
    orders: pd.DataFrame, customers: np.ndarray, starts: pd.Series, ends: pd.Series
) -> np.ndarray:
    """Net revenue of ``customers[i]`` over ``[starts[i], ends[i])`` for every i, vectorised:
    cumulative sums over orders sorted by (customer, time), read at two search positions."""
    ids = pd.Index(pd.unique(np.asarray(customers, dtype=object)))
    code_q = ids.get_indexer(np.asarray(customers, dtype=object))
    code_o = ids.get_indexer(orders["customer_id"].to_numpy())
    keep = code_o >= 0
    t_o = to_us(orders["ordered_at"])[keep]
    net = order_values(orders)["net"][keep]
    code_o = code_o[keep]
    t_s, t_e = to_us(pd.Series(starts)), to_us(pd.Series(ends))
    # dense ranks of every time keep the composite key (customer, time) inside int64
    _, rank = np.unique(np.concatenate([t_o, t_s, t_e]), return_inverse=True)
    width = int(rank.max()) + 2 if len(rank) else 1
    n_o, n_q = len(t_o), len(t_s)
    key_o = code_o.astype(np.int64) * width + rank[:n_o]
    order = np.argsort(key_o, kind="stable")
    key_o = key_o[order]
    cum = np.concatenate([[0.0], np.cumsum(net[order])])
    base = code_q.astype(np.int64) * width
    lo = np.searchsorted(key_o, base + rank[n_o : n_o + n_q], side="left")
    hi = np.searchsorted(key_o, base + rank[n_o + n_q :], side="left")
    return cum[hi] - cum[lo]


def campaign_roi(
    tables: Tables,
    *,
    start: object,
    end: object,
    acceptance_days: int = 14,
    margin: float = 1.0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """ROI of each campaign with offers sent in ``[start, end)``.

    Per campaign and customer: the customer's first offer of the campaign, treated unless every
    offer was held out as control; the outcome is the customer's net revenue over
    ``[first send, first send + acceptance_days)``, cut at ``end``. Then

    * incremental revenue = (treated - control revenue per customer) x treated customers x
      ``margin`` (with Welch's interval, scaled alike);
    * cost = the cost of the treated offers (held-out offers are not sent);
    * ROI = (incremental revenue - cost) / cost.

    Parameters
    ----------
    tables
        Orders and offers (with ``campaign_id``; ``cost`` for the ROI).
    start, end
        Offers sent in the window; revenue is not read at or after ``end``.
    acceptance_days
        How long after the send revenue counts.
    margin
        Share of revenue that is profit (1: ROI on revenue).
    alpha
        The interval is ``1 - alpha``.

    Returns
    -------
    pandas.DataFrame
        One row per campaign, columns :data:`ROI_COLUMNS`; ``note`` says why a value is missing.
    """
    lo, hi = _window(start, end)
    offers, orders = tables.offers, tables.orders
    if offers is None or orders is None or "campaign_id" not in offers:
        raise DataError(
            "campaign ROI needs orders and offers with campaign_id.\n"
            "Fix: add offers.campaign_id (map it in tables.offers.columns)"
        )
    mask = _inside(offers["sent_at"], lo, hi) & offers["campaign_id"].notna().to_numpy()
    sent = offers[mask]
    group = (
        sent["group"].astype("str").str.lower().to_numpy()
        if "group" in sent
        else np.full(len(sent), "treatment", dtype=object)
    )
    treated = group != "control"
    cost = sent["cost"].to_numpy(dtype=np.float64) if "cost" in sent else np.full(len(sent), np.nan)
    per = (
        pd.DataFrame(
            {
                "campaign_id": sent["campaign_id"].astype("str").to_numpy(),
                "customer_id": sent["customer_id"].astype("str").to_numpy(),
                "sent_at": sent["sent_at"].to_numpy(),
                "treated": treated,
                "cost": np.where(treated, cost, 0.0),
            }
        )
        .groupby(["campaign_id", "customer_id"], sort=True)
        .agg(sent_at=("sent_at", "min"), treated=("treated", "max"), cost=("cost", "sum"))
        .reset_index()
    )
    if not len(per):
        return pd.DataFrame(columns=ROI_COLUMNS)
    ends = (per["sent_at"] + pd.Timedelta(days=acceptance_days)).clip(upper=hi)
    per["revenue"] = _window_sums(orders, per["customer_id"].to_numpy(), per["sent_at"], ends)
    out = []
    for campaign, rows in per.groupby("campaign_id", sort=True):  # a loop over campaigns
        t = rows["treated"].to_numpy(dtype=bool)
        y_t, y_c = rows["revenue"].to_numpy()[t], rows["revenue"].to_numpy()[~t]
        total_cost = float(rows["cost"].sum()) if not np.isnan(cost).all() else math.nan
        row = {
            "campaign_id": campaign,
            "treated_customers": int(t.sum()),
            "control_customers": int((~t).sum()),
            "treated_revenue_per_customer": float(y_t.mean()) if len(y_t) else math.nan,
            "control_revenue_per_customer": float(y_c.mean()) if len(y_c) else math.nan,
            "cost": total_cost,
            "note": "",
        }
        if len(y_t) >= 2 and len(y_c) >= 2:
            c = compare_means(y_t, y_c, alpha=alpha)
            scale = len(y_t) * margin
            row.update(
                incremental_revenue=c.difference * scale,
                incremental_ci_low=c.ci_low * scale,
                incremental_ci_high=c.ci_high * scale,
            )
        else:
            row.update(
                incremental_revenue=math.nan,
                incremental_ci_low=math.nan,
                incremental_ci_high=math.nan,
                note="fewer than two customers in a group: no incremental revenue",
            )
        if total_cost > 0 and not math.isnan(row["incremental_revenue"]):
            row["roi"] = (row["incremental_revenue"] - total_cost) / total_cost
        else:
            row["roi"] = math.nan
            if not row["note"]:
                row["note"] = "no offer cost recorded: no ROI"
        out.append(row)
    return pd.DataFrame(out)[ROI_COLUMNS]


# --------------------------------------------------------------------------- the list's Qini


def campaign_qini(
    targets: pd.DataFrame,
    tables: Tables,
    *,
    after: object,
    horizon_days: int,
    seed: int = 0,
    rankings: int = 200,
) -> dict[str, object] | None:
    """How well the list's uplift ranked the customers, measured on what happened: the Qini
    curve of the ``uplift`` column against purchases in ``[after, after + horizon_days)``,
    treatment against control, with the band of ``rankings`` seeded random rankings of the same
    customers.

    One row per customer: the first (the list's order: for an uplift list, the customer's best
    arm). ``None`` when the list has no ``uplift`` column.

    Returns
    -------
    dict or None
        ``share`` and ``qini`` (the curve as a share of the total incremental purchases),
        ``band`` (:func:`vipml.uplift.random_band`), ``qini_auc`` (scikit-uplift's normalised
        Qini), ``treatment`` and ``control`` counts.
    """
    if "uplift" not in targets:
        return None
    lo, hi = _window(after, pd.Timestamp(as_cutoff(after)) + pd.Timedelta(days=horizon_days))
    rows = targets.drop_duplicates("customer_id")
    group = rows["group"].astype("str").str.strip().str.lower().to_numpy()
    keep = np.isin(group, ["treatment", "control"])
    rows, group = rows[keep], group[keep]
    t = (group == "treatment").astype(int)
    if not t.any() or t.all():
        return None
    ids = pd.Index(rows["customer_id"].astype("str").to_numpy(), dtype="str")
    orders = tables.orders if tables.orders is not None else pd.DataFrame()
    if orders.empty:
        return None
    buys, _ = _per_customer_outcomes(orders, ids, lo, hi)
    y = (buys > 0).astype(int)
    u = rows["uplift"].to_numpy(dtype=np.float64)
    return {
        **qini_points(y, u, t),
        "band": random_band(y, t, n=rankings, seed=seed),
        "qini_auc": qini_auc_score(y, u, t),
        "treatment": int(t.sum()),
        "control": int((1 - t).sum()),
    }
