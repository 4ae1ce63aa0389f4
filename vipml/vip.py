"""VIP status in one place: the configured rule, applied at any time.

Features use it as of a cutoff (is the customer a VIP at T, how far from the bar), labels use it
at the end of a horizon. Three rules (``vip.rule`` in the config):

* ``top_share``: the top ``share`` of customers known at T by net spend in
  ``[T - window_days, T)``; customers tied with the last one in are in too; zero spend never is.
* ``threshold``: net spend in the window of at least ``threshold``.
* ``tier``: the customers table's ``tier_column`` holds one of ``tier_values`` (a static column:
  the retailer's own, current tier).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from vipml.config import Config, VipConfig
from vipml.errors import DataError
from vipml.io import Tables, order_values
from vipml.windows import as_cutoff


def window_spend(
    orders: pd.DataFrame | None, start: pd.Timestamp, end: pd.Timestamp, customers: pd.Index
) -> pd.Series:
    """Net spend per customer over ``[start, end)`` (0 for customers without orders there)."""
    out = pd.Series(0.0, index=customers, name="spend")
    if orders is None or not len(orders) or not len(customers):
        return out
    t = orders["ordered_at"]
    mask = ((t >= start) & (t < end)).to_numpy()
    if not mask.any():
        return out
    rows = orders[mask]
    net = order_values(rows)["net"]
    codes = customers.get_indexer(rows["customer_id"])
    ok = codes >= 0
    out[:] = np.bincount(codes[ok], weights=net[ok], minlength=len(customers))
    return out


def vip_bar(spend: pd.Series, rule: VipConfig) -> float:
    """The spend a customer needs to be a VIP under ``top_share`` or ``threshold``."""
    if rule.rule == "threshold":
        if rule.threshold is None:
            raise DataError(
                "vip.rule is 'threshold' but vip.threshold is not set.\nFix: set vip.threshold"
            )
        return float(rule.threshold)
    positive = np.sort(spend.to_numpy()[spend.to_numpy() > 0])[::-1]
    if not len(positive):
        return math.inf
    k = max(1, math.ceil(rule.share * len(spend)))
    return float(positive[min(k, len(positive)) - 1])


def apply_rule(spend: np.ndarray, rule: VipConfig) -> tuple[float, np.ndarray]:
    """The VIP bar and who clears it, for the spend of the customers being rated (one per entry)."""
    spend = np.asarray(spend, dtype=np.float64)
    bar = vip_bar(pd.Series(spend), rule)
    return bar, (spend >= bar) & (spend > 0)


def vip_status(
    tables: Tables,
    *,
    as_of: object,
    config: Config,
    customers: pd.Index | None = None,
    window_days: int | None = None,
) -> pd.DataFrame:
    """Each customer's VIP status at ``as_of``.

    Parameters
    ----------
    tables
        The loaded tables.
    as_of
        The time the status holds at; only rows before it are read.
    config
        Its ``vip`` section gives the rule.
    customers
        The customers to rate; default: those known before ``as_of``.
    window_days
        Overrides ``vip.window_days`` (labels use the horizon).

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id``; columns ``vip_spend`` (net spend in the window), ``vip_bar`` (the
        spend the rule asks for), ``is_vip`` (bool).
    """
    as_of = as_cutoff(as_of)
    rule = config.vip
    ids = tables.known_at(as_of) if customers is None else pd.Index(customers, name="customer_id")
    days = window_days or rule.window_days
    spend = window_spend(tables.orders, as_of - pd.Timedelta(days=days), as_of, ids)
    if rule.rule == "tier":
        cust = tables.customers
        if cust is None or rule.tier_column is None or rule.tier_column not in cust:
            found = "no customers table" if cust is None else f"columns: {', '.join(cust.columns)}"
            raise DataError(
                f"vip.rule is 'tier' but the customers table has no column '{rule.tier_column}' ({found}).\n"
                "Fix: set vip.tier_column to the tier column, or use rule top_share / threshold"
            )
        tiers = cust.set_index("customer_id")[rule.tier_column].astype("str").str.lower()
        wanted = {v.lower() for v in rule.tier_values}
        is_vip = tiers.reindex(ids).isin(wanted).to_numpy()
        bar = np.nan
    else:
        bar, is_vip = apply_rule(spend.to_numpy(), rule)
    return pd.DataFrame(
        {"vip_spend": spend.to_numpy(), "vip_bar": bar, "is_vip": is_vip}, index=ids
    )
