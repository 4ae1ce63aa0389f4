"""Product family: what a customer buys: category breadth and focus, premium tier, basket shape.

Reads ``order_items`` joined to their orders; only items of purchases with
``ordered_at < as_of`` count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from vipml.features.base import Context, Family, ratio, us
from vipml.features.engine import PairCounts, Timeline
from vipml.features.registry import Feature
from vipml.io import order_values

F = "product"


def _f(name: str, en: str, ko: str, unit: str = "count", fill: float | None = 0.0, **kw) -> Feature:
    return Feature(
        name=name, family=F, table="order_items", en=en, ko=ko, unit=unit, fill=fill, **kw
    )


@dataclass
class _State:
    items: Timeline
    orders: Timeline
    categories: PairCounts | None
    has_tier: bool


class ProductFamily(Family):
    """Category breadth, entropy and focus; premium share and moves up a tier; basket size."""

    name = F
    tables = ("orders", "order_items")

    def features(self, ctx: Context) -> list[Feature]:
        items = ctx.tables.order_items
        out = [
            _f("items_per_order_all", "Items per order", "주문당 상품 수", "count", None),
            _f(
                "multi_item_order_share_all",
                "Share of orders with two or more different products",
                "2종 이상 상품을 함께 산 주문 비율",
                "ratio",
                None,
            ),
        ]
        if "category" in items:
            out = [
                _f(
                    "category_count_all",
                    "Number of product categories bought",
                    "구매한 상품 카테고리 수",
                ),
                _f(
                    "category_entropy_all",
                    "Spread of purchases over categories (entropy)",
                    "카테고리 구매 분산도(엔트로피)",
                    "nats",
                    None,
                ),
                _f(
                    "top_category",
                    "Category bought most",
                    "가장 많이 구매한 카테고리",
                    "category",
                    None,
                    kind="categorical",
                ),
                _f(
                    "top_category_share",
                    "Share of items in the top category",
                    "주 카테고리 구매 비율",
                    "ratio",
                    None,
                ),
                *out,
                _f(
                    "bundle_order_share_all",
                    "Share of orders spanning two or more categories",
                    "2개 이상 카테고리를 함께 산 주문 비율",
                    "ratio",
                    None,
                ),
            ]
        if "tier" in items:
            out += [
                _f(
                    "premium_share_all",
                    "Share of items in the premium tier",
                    "프리미엄 등급 상품 비율",
                    "ratio",
                    None,
                ),
                _f(
                    "moved_up_tier",
                    "Bought premium after buying basic (1) or not (0)",
                    "베이직 구매 후 프리미엄 구매 여부(1/0)",
                    "flag",
                ),
            ]
        return out

    def prepare(self, ctx: Context) -> _State:
        orders = ctx.tables.orders
        items = ctx.tables.order_items
        buy = order_values(orders)["purchase"] > 0
        heads = orders.loc[buy, ["order_id", "customer_id", "ordered_at"]].drop_duplicates(
            "order_id"
        )
        joined = items.merge(heads, on="order_id", how="inner", validate="many_to_one")
        codes = ctx.codes(joined)
        t = us(joined["ordered_at"])
        qty = np.nan_to_num(joined["quantity"].to_numpy(dtype=np.float64), nan=1.0)
        qty = np.where(qty > 0, qty, 0.0)
        n = len(ctx.customers)
        cols = {"qty": qty}
        has_tier = "tier" in joined
        if has_tier:
            tier = joined["tier"].astype("str").str.lower()
            premium = (tier == "premium").to_numpy()
            basic = (tier == "basic").to_numpy()
            cols["premium"] = premium * qty
            cols["tiered"] = (premium | basic) * qty
            # a premium item bought after an earlier basic one (earlier order, same customer)
            frame = pd.DataFrame({"c": codes, "t": t, "basic": basic, "premium": premium})
            frame = frame.sort_values(["c", "t"], kind="stable")
            first_basic = frame["t"].where(frame["basic"]).groupby(frame["c"]).transform("min")
            up = (
                (frame["premium"] & (frame["t"] > first_basic))
                .reindex(range(len(joined)))
                .to_numpy()
            )
            cols["up"] = up.astype(np.float64)
        items_tl = Timeline(codes, t, n, cols)
        # order level: distinct products and categories per order
        per_order = joined.groupby("order_id", sort=False).agg(
            customer_id=("customer_id", "first"),
            ordered_at=("ordered_at", "first"),
            products=("product_id", "nunique"),
            **({"categories": ("category", "nunique")} if "category" in joined else {}),
        )
        ocols = {
            "one": np.ones(len(per_order)),
            "multi": (per_order["products"] >= 2).to_numpy(np.float64),
        }
        if "categories" in per_order:
            ocols["bundle"] = (per_order["categories"] >= 2).to_numpy(np.float64)
        orders_tl = Timeline(
            ctx.customers.codes(per_order["customer_id"]), us(per_order["ordered_at"]), n, ocols
        )
        cats = None
        if "category" in joined:
            cats = PairCounts(codes, joined["category"], t, n, weights=qty)
        return _State(items_tl, orders_tl, cats, has_tier)

    def compute(self, state: _State, ctx: Context, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        lo, hi = state.items.window(as_of, None)
        qty = state.items.sum("qty", lo, hi)
        olo, ohi = state.orders.window(as_of, None)
        n_orders = state.orders.sum("one", olo, ohi)
        out["items_per_order_all"] = ratio(qty, n_orders)
        out["multi_item_order_share_all"] = ratio(state.orders.sum("multi", olo, ohi), n_orders)
        if state.categories is not None:
            s = state.categories.summary(as_of)
            out["category_count_all"] = s["distinct"]
            out["category_entropy_all"] = s["entropy"]
            out["top_category"] = s["top"]
            out["top_category_share"] = s["top_share"]
            out["bundle_order_share_all"] = ratio(state.orders.sum("bundle", olo, ohi), n_orders)
        if state.has_tier:
            out["premium_share_all"] = ratio(
                state.items.sum("premium", lo, hi), state.items.sum("tiered", lo, hi)
            )
            out["moved_up_tier"] = (state.items.sum("up", lo, hi) > 0).astype(np.float64)
        return out
