"""Behaviour family: sessions, product views, browsing depth and focus, app time, last visit.

Reads ``events`` rows with ``occurred_at < as_of``. A session is an event whose type is one of
``features.session_events`` (``session_start``, ``visit``); when the table has no such events, a
distinct ``session_id`` counts at its first event. A view is an event whose
type is one of ``features.view_events``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from vipml.features.base import Context, Family, days_between, ratio, us
from vipml.features.engine import PairCounts, Timeline, arrow_of
from vipml.features.registry import Feature, windowed
from vipml.windows import Window, to_us

F = "behaviour"
WINDOWS = (Window(30), Window(90))


def _f(name: str, en: str, ko: str, unit: str = "count", fill: float | None = 0.0, **kw) -> Feature:
    return Feature(name=name, family=F, table="events", en=en, ko=ko, unit=unit, fill=fill, **kw)


@dataclass
class _State:
    events: Timeline
    views: PairCounts | None
    orders: bool
    has_duration: bool


class BehaviourFamily(Family):
    """How much and how deeply a customer browses, and how long they spend in the app."""

    name = F
    tables = ("events",)

    def features(self, ctx: Context) -> list[Feature]:
        ev = ctx.tables.events
        out = [
            *windowed(
                "sessions", F, "events", WINDOWS, en="Sessions {span}", ko="{span} 방문 세션 수"
            ),
            *windowed(
                "views", F, "events", WINDOWS, en="Product views {span}", ko="{span} 상품 조회 수"
            ),
            _f(
                "views_per_session_90d",
                "Product views per session in the last 90 days (browsing depth)",
                "최근 90일 세션당 상품 조회 수(탐색 깊이)",
                "ratio",
                None,
            ),
            _f(
                "days_since_last_visit",
                "Days since the last visit",
                "마지막 방문 후 경과 일수",
                "days",
                None,
            ),
        ]
        if "category" in ev:
            out += [
                _f(
                    "top_view_category",
                    "Category viewed most in the last 90 days",
                    "최근 90일 가장 많이 조회한 카테고리",
                    "category",
                    None,
                    kind="categorical",
                ),
                _f(
                    "top_view_category_share_90d",
                    "Share of views in the most viewed category (90 days)",
                    "최근 90일 주 조회 카테고리 비율",
                    "ratio",
                    None,
                ),
                _f(
                    "view_category_count_90d",
                    "Number of categories viewed in the last 90 days",
                    "최근 90일 조회한 카테고리 수",
                ),
            ]
        if "duration_s" in ev:
            out += windowed(
                "app_minutes",
                F,
                "events",
                WINDOWS,
                en="Minutes in the app {span}",
                ko="{span} 앱 이용 시간(분)",
                unit="minutes",
            )
        if ctx.tables.orders is not None:
            out.append(
                _f(
                    "views_per_order_90d",
                    "Product views per order in the last 90 days",
                    "최근 90일 주문당 상품 조회 수",
                    "ratio",
                    None,
                )
            )
        return out

    def prepare(self, ctx: Context) -> _State:
        ev = ctx.tables.events
        cfg = ctx.config.features
        codes = ctx.table_codes("events")
        t = us(ev["occurred_at"])
        kind = ev["event_type"]
        is_view = kind.isin([v.lower() for v in cfg.view_events]).to_numpy()
        cols = {"view": is_view}
        starts = kind.isin([v.lower() for v in cfg.session_events]).to_numpy()
        by_start = bool(starts.any()) or "session_id" not in ev
        if by_start:  # session-start events are there: count them (cheap)
            cols["session"] = starts
        has_duration = "duration_s" in ev
        if has_duration:
            dur = np.nan_to_num(ev["duration_s"].to_numpy(dtype=np.float64))
            if "channel" in ev:
                dur = dur * (ev["channel"] == "app").to_numpy()
            cols["minutes"] = np.clip(dur, 0, None) / 60.0
        n = len(ctx.customers)
        events = Timeline(codes, t, n, cols)
        if not by_start:  # no start events: a session counts at its first event, in time order
            sess = pc.dictionary_encode(arrow_of(ev["session_id"]))
            sess_codes = np.concatenate(
                [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in sess.chunks]
                or [np.zeros(0, dtype=np.int32)]
            ).astype(np.int64)
            in_order = sess_codes[codes >= 0][events.order]
            first = (
                ~pd.Series(events.codes * (int(in_order.max(initial=0)) + 2) + in_order)
                .duplicated()
                .to_numpy()
            )
            events.add("session", first & (in_order >= 0))
        views = None
        if "category" in ev:
            views = PairCounts(codes[is_view], ev["category"][is_view], t[is_view], n)
        return _State(events, views, ctx.tables.orders is not None, has_duration)

    def compute(self, state: _State, ctx: Context, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
        ev = state.events
        out: dict[str, np.ndarray] = {}
        for w in WINDOWS:
            lo, hi = ev.window(as_of, w.days)
            out[f"sessions_{w.suffix}"] = ev.sum("session", lo, hi)
            out[f"views_{w.suffix}"] = ev.sum("view", lo, hi)
            if state.has_duration:
                out[f"app_minutes_{w.suffix}"] = ev.sum("minutes", lo, hi)
        out["views_per_session_90d"] = ratio(out["views_90d"], out["sessions_90d"])
        hi = ev.pos(as_of)
        out["days_since_last_visit"] = days_between(to_us(as_of), ev.last(ev.times, hi))
        if state.views is not None:
            s = state.views.summary(as_of, 90)
            out["top_view_category"] = s["top"]
            out["top_view_category_share_90d"] = s["top_share"]
            out["view_category_count_90d"] = s["distinct"]
        if state.orders:
            orders_90 = ctx.cache.get(f"orders_90d:{to_us(as_of)}")
            if orders_90 is None:
                rows = ctx.orders_timeline()
                orders_90 = rows.sum("purchase", *rows.window(as_of, 90))
            out["views_per_order_90d"] = ratio(out["views_90d"], orders_90)
        return out
