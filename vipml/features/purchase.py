"""Purchase family: recency, frequency, monetary value, rhythm, returns, discounts, habits.

Reads ``orders`` rows with ``ordered_at < as_of``. A purchase is a row with a positive amount that
is not cancelled (it still counts when later returned); returns and cancellations feed their own
rates and net spend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vipml.features.base import Context, Family, days_between, ratio, us
from vipml.features.btyd import day_summary, purchase_days
from vipml.features.engine import PairCounts, Timeline
from vipml.features.registry import Feature, windowed
from vipml.windows import DAY_US, to_us

F = "purchase"


def _f(
    name: str, en: str, ko: str, unit: str = "count", fill: float | None = 0.0, **kw: Any
) -> Feature:
    return Feature(name=name, family=F, table="orders", en=en, ko=ko, unit=unit, fill=fill, **kw)


@dataclass
class _State:
    rows: Timeline  # every order row: purchases, returns, cancellations
    buys: Timeline  # purchases only, for recency, tenure, intervals and maxima
    channels: PairCounts | None
    signup_us: np.ndarray | None
    has_discount: bool
    days: Timeline  # one row per purchase day
    kept: Timeline | None  # numeric order columns the config keeps
    kept_names: list[str]


class PurchaseFamily(Family):
    """Recency, frequency and monetary value over windows, and how a customer buys."""

    name = F
    tables = ("orders",)

    def features(self, ctx: Context) -> list[Feature]:
        ws = ctx.windows
        out = [
            _f(
                "recency_days",
                "Days since the last order",
                "마지막 주문 후 경과 일수",
                "days",
                None,
            ),
            *windowed("orders", F, "orders", ws, en="Orders {span}", ko="{span} 주문 수"),
            *windowed(
                "spend", F, "orders", ws, en="Spend {span}", ko="{span} 구매 금액", unit="currency"
            ),
            _f("tenure_days", "Days since the first order", "첫 주문 후 경과 일수", "days", None),
            _f("aov_all", "Average order value", "평균 주문 금액", "currency", None),
            _f("max_order_value_all", "Largest order value", "최대 주문 금액", "currency", None),
            _f(
                "spend_trend_90d",
                "Spend trend: last 90 days against the 90 before (-1 to 1)",
                "구매 금액 추세: 최근 90일 대 그 이전 90일 (-1~1)",
                "ratio",
                None,
            ),
            _f(
                "interval_mean_days", "Mean days between orders", "평균 주문 간격(일)", "days", None
            ),
            _f(
                "interval_std_days",
                "Spread of days between orders",
                "주문 간격의 표준편차(일)",
                "days",
                None,
            ),
            _f(
                "overdue_ratio",
                "Days since the last order over the customer's own mean interval",
                "마지막 주문 후 경과 일수 / 평균 주문 간격",
                "ratio",
                None,
            ),
            _f("return_rate_all", "Share of orders returned", "반품 비율", "ratio", None),
            _f("cancel_rate_all", "Share of orders cancelled", "취소 비율", "ratio", None),
            _f(
                "net_spend_365d",
                "Net spend (after returns) in the last 365 days",
                "최근 365일 순구매 금액(반품 제외)",
                "currency",
            ),
            _f(
                "net_spend_all",
                "Net spend (after returns) before the cutoff",
                "전체 기간 순구매 금액(반품 제외)",
                "currency",
            ),
            _f(
                "weekend_share_all",
                "Share of orders placed at weekends",
                "주말 주문 비율",
                "ratio",
                None,
            ),
            _f(
                "evening_share_all",
                "Share of orders placed in the evening",
                "저녁 시간대 주문 비율",
                "ratio",
                None,
            ),
        ]
        out += [
            _f(
                "purchase_days_all",
                "Distinct days with a purchase",
                "구매한 날짜 수",
            ),
            _f(
                "first_order_value",
                "Value of the first order",
                "첫 주문 금액",
                "currency",
                None,
            ),
            _f(
                "days_first_to_second_order",
                "Days from the first purchase day to the second",
                "첫 구매일부터 두 번째 구매일까지 일수",
                "days",
                None,
            ),
            _f(
                "spend_pct_all",
                "Spend before the cutoff as a percentile among the customers known then (0-1)",
                "기준일까지 구매 금액의 백분위 (기준일 현재 고객 중, 0~1)",
                "ratio",
            ),
        ]
        for column in self._kept(ctx):
            out += [
                _f(
                    f"{column}_all",
                    f"Total of '{column}' over orders before the cutoff",
                    f"기준일까지 주문의 '{column}' 합계",
                    "count",
                ),
                _f(
                    f"{column}_per_order_all",
                    f"'{column}' per order (e.g. units per order)",
                    f"주문당 '{column}' (예: 주문당 수량)",
                    "count",
                    None,
                ),
            ]
        if self._has(ctx, "signup_at", "customers"):
            out.insert(
                4, _f("tenure_signup_days", "Days since sign-up", "가입 후 경과 일수", "days", None)
            )
        if self._has(ctx, "discount"):
            out.append(
                _f(
                    "discount_share_all",
                    "Share of list value given as discount",
                    "할인 금액 비율",
                    "ratio",
                    None,
                )
            )
        if self._has(ctx, "channel"):
            out += [
                _f("channel_count_all", "Number of sales channels used", "이용한 구매 채널 수"),
                _f(
                    "top_channel",
                    "Channel of most orders",
                    "가장 많이 주문한 채널",
                    "category",
                    None,
                    kind="categorical",
                ),
                _f(
                    "top_channel_share",
                    "Share of orders in the top channel",
                    "주 채널 주문 비율",
                    "ratio",
                    None,
                ),
            ]
        return out

    @staticmethod
    def _kept(ctx: Context) -> list[str]:
        """Numeric order columns the config keeps (``tables.orders.keep``), e.g. a quantity;
        identifiers (names ending in ``id``) are left out."""
        source = ctx.config.tables.orders
        orders = ctx.tables.orders
        if source is None or not source.keep or orders is None:
            return []
        return [
            c
            for c in source.keep
            if c in orders
            and not c.lower().endswith("id")  # identifiers are not quantities
            and pd.api.types.is_numeric_dtype(orders[c])
            and not pd.api.types.is_bool_dtype(orders[c])
        ]

    @staticmethod
    def _has(ctx: Context, column: str, table: str = "orders") -> bool:
        frame = ctx.tables.get(table)
        return frame is not None and column in frame

    def prepare(self, ctx: Context) -> _State:
        orders = ctx.tables.orders
        rows = ctx.orders_timeline()
        n = len(ctx.customers)
        buy = rows.column("purchase", keep=False) > 0
        buys = rows.filter(buy, ["gross"])
        channels = None
        if "channel" in orders:
            codes = ctx.table_codes("orders")
            t = us(orders["ordered_at"])
            bought = ctx.order_values()["purchase"] > 0
            channels = PairCounts(codes[bought], orders["channel"][bought], t[bought], n)
        signup = None
        cust = ctx.tables.customers
        if cust is not None and "signup_at" in cust:
            first = ~pd.Index(ctx.table_codes("customers")).duplicated()
            codes = ctx.table_codes("customers")[first]
            values = us(cust["signup_at"].fillna(pd.Timestamp(0, tz="UTC")))[first]
            known = cust["signup_at"].notna().to_numpy()[first]
            signup = np.full(n, np.iinfo(np.int64).max)
            signup[codes[known]] = values[known]
        kept = self._kept(ctx)
        if kept:
            bought = ctx.order_values()["purchase"] > 0
            extra = Timeline(
                ctx.table_codes("orders"),
                us(orders["ordered_at"]),
                n,
                {c: np.nan_to_num(orders[c].to_numpy(dtype=np.float64)) * bought for c in kept},
            )
        else:
            extra = None
        return _State(
            rows, buys, channels, signup, "discount" in orders, purchase_days(ctx), extra, kept
        )

    def compute(self, state: _State, ctx: Context, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
        rows, buys = state.rows, state.buys
        T = to_us(as_of)
        out: dict[str, np.ndarray] = {}
        for w in ctx.windows:
            lo, hi = rows.window(as_of, w.days)
            out[f"orders_{w.suffix}"] = rows.sum("purchase", lo, hi)
            out[f"spend_{w.suffix}"] = rows.sum("gross", lo, hi)
        if (
            "orders_90d" in out
        ):  # the behaviour family reads it instead of keeping the orders sorted
            ctx.cache[f"orders_90d:{T}"] = out["orders_90d"]
        lo, hi = rows.window(as_of, None)
        n_buys = rows.sum("purchase", lo, hi)
        gross = rows.sum("gross", lo, hi)

        b_hi = buys.pos(as_of)
        last_t = buys.last(buys.times, b_hi)
        first_t = buys.first(buys.times, b_hi)
        out["recency_days"] = days_between(T, last_t)
        out["tenure_days"] = days_between(T, first_t)
        if state.signup_us is not None:
            known = state.signup_us < T
            out["tenure_signup_days"] = np.where(
                known, (T - np.where(known, state.signup_us, T)) / DAY_US, np.nan
            )
        out["aov_all"] = ratio(gross, n_buys)
        out["max_order_value_all"] = buys.max_before("gross", b_hi)

        recent = (
            out["spend_90d"] if "spend_90d" in out else rows.sum("gross", *rows.window(as_of, 90))
        )
        lo180, _ = rows.window(as_of, 180)
        lo90, _ = rows.window(as_of, 90)
        before = rows.sum("gross", lo180, lo90)
        out["spend_trend_90d"] = ratio(recent - before, recent + before)

        if "gap" not in buys.names:
            gaps = buys.gaps_days()
            buys.add("gap", gaps)
            buys.add("gap2", gaps**2)
        n_gaps = np.maximum(b_hi - buys.start - 1, 0).astype(np.float64)
        first_next = np.minimum(buys.start + 1, b_hi)
        s1 = buys.sum("gap", first_next, np.maximum(b_hi, first_next))
        s2 = buys.sum("gap2", first_next, np.maximum(b_hi, first_next))
        mean = ratio(s1, n_gaps)
        var = ratio(s2, n_gaps) - mean**2
        std = np.sqrt(np.clip(var * ratio(n_gaps, n_gaps - 1), 0, None))
        out["interval_mean_days"] = mean
        out["interval_std_days"] = np.where(n_gaps >= 2, std, np.nan)
        out["overdue_ratio"] = ratio(out["recency_days"], np.where(mean > 0, mean, 0))

        out["return_rate_all"] = ratio(rows.sum("return_row", lo, hi), n_buys)
        cancels = rows.sum("cancel_row", lo, hi)
        out["cancel_rate_all"] = ratio(cancels, n_buys + cancels)
        lo365, _ = rows.window(as_of, 365)
        out["net_spend_365d"] = rows.sum("net", lo365, hi)
        out["net_spend_all"] = rows.sum("net", lo, hi)
        out["weekend_share_all"] = ratio(rows.sum("weekend", lo, hi), n_buys)
        out["evening_share_all"] = ratio(rows.sum("evening", lo, hi), n_buys)
        if state.has_discount:
            disc = rows.sum("discount", lo, hi)
            out["discount_share_all"] = ratio(disc, gross + disc)
        days = day_summary(state.days, as_of)
        out["purchase_days_all"] = days["days"]
        out["first_order_value"] = buys.first(buys.column("gross"), b_hi)
        second = days["second_start"]
        first_day = state.days.first(state.days.times, days["days"] * 0 + state.days.pos(as_of))
        gap = np.full(len(second), np.nan)
        has2 = second >= 0
        gap[has2] = (
            state.days.times[second[has2]] // DAY_US - first_day[has2].astype(np.int64) // DAY_US
        )
        out["days_first_to_second_order"] = gap
        known = ctx.known(as_of)  # percentile among the customers known at the cutoff
        pct = np.full(len(gross), np.nan)
        if len(known):
            pct[known] = pd.Series(gross[known]).rank(pct=True, method="max").to_numpy()
        out["spend_pct_all"] = pct
        if state.kept is not None:
            k_lo, k_hi = state.kept.window(as_of, None)
            for c in state.kept_names:
                total = state.kept.sum(c, k_lo, k_hi)
                out[f"{c}_all"] = total
                out[f"{c}_per_order_all"] = ratio(total, n_buys)
        if state.channels is not None:
            summary = state.channels.summary(as_of)
            out["channel_count_all"] = summary["distinct"]
            out["top_channel"] = summary["top"]
            out["top_channel_share"] = summary["top_share"]
        return out
