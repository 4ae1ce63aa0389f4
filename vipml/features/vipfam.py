"""VIP family: a customer's VIP status at the cutoff and the distance to the VIP bar."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vipml.features.base import Context, Family
from vipml.features.registry import Feature
from vipml.vip import apply_rule, vip_status

F = "vip"


class VipFamily(Family):
    """Uses :func:`vipml.vip.vip_status`, the one place the VIP rule lives."""

    name = F
    tables = ("orders",)

    def features(self, ctx: Context) -> list[Feature]:
        days = ctx.config.vip.window_days
        return [
            Feature(
                "is_vip",
                F,
                "orders",
                "VIP at the cutoff (1) or not (0)",
                "기준일 현재 VIP 여부(1/0)",
                unit="flag",
            ),
            Feature(
                f"vip_spend_{days}d",
                F,
                "orders",
                f"Net spend over the VIP window ({days} days)",
                f"VIP 판정 기간({days}일) 순구매 금액",
                unit="currency",
            ),
            Feature(
                "vip_gap",
                F,
                "orders",
                "Spend still needed to reach the VIP bar",
                "VIP 기준까지 남은 구매 금액",
                unit="currency",
                fill=None,
            ),
        ]

    def prepare(self, ctx: Context) -> None:
        return None

    def compute(self, state: None, ctx: Context, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
        rule = ctx.config.vip
        days = rule.window_days
        n = len(ctx.customers)
        if rule.rule == "tier":
            status = vip_status(
                ctx.tables, as_of=as_of, config=ctx.config, customers=ctx.customers.ids
            )
            is_vip = status["is_vip"].to_numpy(dtype=np.float64)
            spend = status["vip_spend"].to_numpy()
            return {"is_vip": is_vip, f"vip_spend_{days}d": spend, "vip_gap": np.full(n, np.nan)}
        rows = ctx.orders_timeline()
        spend = rows.sum("net", *rows.window(as_of, days))
        # rated among the customers known at as_of, so later arrivals cannot move the bar
        known = ctx.known(as_of)
        bar, is_vip = apply_rule(spend[known], rule)
        flags = np.zeros(n)
        flags[known] = is_vip
        gap = np.clip(bar - spend, 0, None)
        return {
            "is_vip": flags,
            f"vip_spend_{days}d": spend,
            "vip_gap": np.where(np.isfinite(gap), gap, np.nan),
        }
