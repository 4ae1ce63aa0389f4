"""Labels: what happened in ``[as_of, as_of + horizon)``, and nothing after it.

* :func:`vip_conversion_labels`: among customers known before ``as_of`` who are not VIP at
  ``as_of`` (``labels.population: not_vip``, the default; ``all`` keeps every known customer), who
  is a VIP at ``as_of + horizon`` under the configured rule (``labels.vip_spend: rule``; with
  ``horizon``, who is among the top ``vip.share`` by net spend inside the horizon). The spend that decides
  it is read from ``[as_of + horizon - w, as_of + horizon)`` with ``w = min(vip.window_days,
  horizon)``, so it never reaches back before ``as_of``; ``top_share`` ranks the cohort known at
  ``as_of``, so later arrivals cannot move the bar.
* :func:`churn_labels`: among customers with a purchase before ``as_of``, no purchase in the
  horizon.
* :func:`upsell_labels`: per offer sent (not held out) in ``[start, end)``, accepted within the
  acceptance window after it was sent; the offer's own attributes come along, and ``as_of`` (the
  start of the send day) is the cutoff its features are built at.

Whether a customer is eligible (known, not yet VIP, active) is decided from history before
``as_of``; the outcome only from the label window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vipml.config import Config, VipConfig, as_config
from vipml.errors import ConfigError, DataError
from vipml.io import Tables, order_values
from vipml.vip import apply_rule, vip_status, window_spend
from vipml.windows import as_cutoff, label_rows


def data_span(tables: Tables) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The earliest and the latest dated row over orders, events and offers."""
    lows, highs = [], []
    for name, column in (
        ("orders", "ordered_at"),
        ("events", "occurred_at"),
        ("offers", "sent_at"),
    ):
        frame = tables.get(name)
        if frame is not None and column in frame and frame[column].notna().any():
            lows.append(frame[column].min())
            highs.append(frame[column].max())
    return (min(lows) if lows else None, max(highs) if highs else None)


def data_end(tables: Tables) -> pd.Timestamp | None:
    """The latest dated row over orders, events and offers."""
    return data_span(tables)[1]


def check_observable(tables: Tables, end: pd.Timestamp, *, what: str) -> None:
    """Raise when the data stops before ``end``: a label window there would be cut short."""
    last = data_end(tables)
    if last is None or last < end - pd.Timedelta(days=1):
        seen = "no dated rows" if last is None else f"the data ends {last:%Y-%m-%d}"
        raise DataError(
            f"{what} needs data up to {end:%Y-%m-%d}, but {seen}.\n"
            "Fix: use an earlier cutoff or a shorter horizon (labels.horizon_days)"
        )


def vip_population(
    tables: Tables,
    *,
    as_of: object,
    config: Config | str | None = None,
    population: str | None = None,
) -> tuple[pd.Index, np.ndarray]:
    """The customers known before ``as_of`` and which of them are in ``labels.population``.

    ``not_vip`` leaves out the customers who are VIP at ``as_of`` under the configured rule;
    ``all`` keeps everyone known. Decided from rows before ``as_of`` only.
    """
    config = as_config(config)
    t = as_cutoff(as_of)
    cohort = tables.known_at(t)
    if (population or config.labels.population) == "all":
        return cohort, np.ones(len(cohort), dtype=bool)
    now = vip_status(tables, as_of=t, config=config, customers=cohort)
    return cohort, ~now["is_vip"].to_numpy(dtype=bool)


def vip_conversion_labels(
    tables: Tables,
    *,
    as_of: object,
    horizon_days: int,
    config: Config | str | None = None,
    check: bool = True,
    population: str | None = None,
) -> pd.DataFrame:
    """Who among the customers of ``labels.population`` at ``as_of`` is a VIP when the horizon ends.

    ``labels.population``: ``not_vip`` (default) rates the customers known before ``as_of`` who
    are not VIP then; ``all`` rates every customer known before ``as_of``. ``labels.vip_spend``:
    ``rule`` (default) applies the configured VIP rule at ``as_of + horizon``; ``horizon`` makes
    VIP the top ``vip.share`` of the population (every customer known at ``as_of``, so the bar
    is the same whichever population is rated) by net spend in ``[as_of, as_of + horizon)``.
    ``population`` overrides ``labels.population`` (conversion measures always ask for
    ``not_vip``).

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id`` (the population); columns ``label`` (0/1) and ``horizon_spend``
        (net spend over the deciding window).
    """
    config = as_config(config)
    t = as_cutoff(as_of)
    by_rule = config.labels.vip_spend == "rule"
    if config.vip.rule == "tier" and by_rule:
        raise ConfigError(
            "vip.rule 'tier' reads one static tier column, which says nothing about when a customer "
            "became VIP.\nFix: use rule top_share or threshold for VIP-conversion labels, or "
            "labels.vip_spend: horizon"
        )
    end = t + pd.Timedelta(days=horizon_days)
    if check:
        check_observable(tables, end, what=f"a {horizon_days}-day label window from {t:%Y-%m-%d}")
    population = population or config.labels.population
    cohort, eligible = vip_population(tables, as_of=t, config=config, population=population)
    if by_rule:
        window = min(config.vip.window_days, horizon_days)
        later = vip_status(tables, as_of=end, config=config, customers=cohort, window_days=window)
        spend = later["vip_spend"].to_numpy()
        is_vip = later["is_vip"].to_numpy(dtype=bool)
        bar = float(later["vip_bar"].iloc[0]) if len(later) else None
    else:
        spend = window_spend(tables.orders, t, end, cohort).to_numpy()
        rule = VipConfig(rule="top_share", share=config.vip.share)
        bar, is_vip = apply_rule(spend, rule)
    out = pd.DataFrame(
        {
            "label": is_vip[eligible].astype(np.int8),
            "horizon_spend": spend[eligible],
        },
        index=cohort[eligible],
    )
    out.attrs.update(
        as_of=t.isoformat(),
        horizon_days=horizon_days,
        vip_bar=bar,
        population=population,
        vip_spend=config.labels.vip_spend,
    )
    return out


def churn_labels(
    tables: Tables, *, as_of: object, horizon_days: int, check: bool = True
) -> pd.DataFrame:
    """Customers with a purchase before ``as_of``: 1 if they buy nothing in the horizon."""
    t = as_cutoff(as_of)
    orders = tables.orders
    if orders is None:
        raise DataError("churn labels need an orders table")
    if check:
        check_observable(tables, t + pd.Timedelta(days=horizon_days), what="a churn label window")
    bought = order_values(orders)["purchase"]
    before = bought & (orders["ordered_at"] < t).to_numpy()
    active = pd.Index(
        pd.unique(orders.loc[before, "customer_id"]), dtype="str", name="customer_id"
    ).sort_values()
    during = bought & label_rows(orders["ordered_at"], t, horizon_days)
    again = active.isin(pd.unique(orders.loc[during, "customer_id"]))
    return pd.DataFrame({"label": (~again).astype(np.int8)}, index=active)


def upsell_labels(
    tables: Tables,
    *,
    start: object,
    end: object,
    acceptance_days: int = 14,
    event: str = "accepted",
    check: bool = True,
    include_control: bool = False,
) -> pd.DataFrame:
    """One row per offer sent in ``[start, end)`` to a customer (control offers left out, unless
    ``include_control``: then every offer, with its ``group``).

    ``label`` is 1 when ``accepted_at`` falls in ``[sent_at, sent_at + acceptance_days)``.
    ``as_of`` is the start of the send day: features for the offer are built as of then, so
    nothing from the send day itself (or later) leaks in.
    """
    offers = tables.offers
    if offers is None:
        raise DataError(
            "upsell labels need an offers table (offer_id, customer_id, sent_at, offer_type)"
        )
    lo, hi = as_cutoff(start, name="start"), as_cutoff(end, name="end")
    if check:
        check_observable(
            tables, hi + pd.Timedelta(days=acceptance_days), what="an acceptance window"
        )
    sent = offers["sent_at"]
    mask = ((sent >= lo) & (sent < hi)).to_numpy()
    if "group" in offers and not include_control:
        mask = mask & (offers["group"] != "control").fillna(True).to_numpy()
    rows = offers[mask]
    keep = [
        c
        for c in (
            "offer_id",
            "customer_id",
            "sent_at",
            "offer_type",
            "category",
            "channel",
            "discount_pct",
            "cost",
            "campaign_id",
            *(["group"] if include_control else []),
        )
        if c in rows
    ]
    out = rows[keep].reset_index(drop=True)
    column = f"{event}_at"
    if column in rows:
        acc = rows[column].reset_index(drop=True)
        window_end = out["sent_at"] + pd.Timedelta(days=acceptance_days)
        out["label"] = ((acc >= out["sent_at"]) & (acc < window_end)).fillna(False).astype(np.int8)
    else:
        raise DataError(f"upsell labels need offers.{column} (when the offer was {event}, if ever)")
    out["as_of"] = out["sent_at"].dt.floor("D")
    return out.sort_values(["sent_at", "offer_id"], kind="stable").reset_index(drop=True)
