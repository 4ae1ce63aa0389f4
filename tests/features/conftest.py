"""Small hand-made tables for feature tests; every value is easy to check by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from vipml import load_tables

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def ts(text: str) -> str:
    return text


def raw_tables() -> dict[str, pd.DataFrame]:
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "signup_at": ["2023-01-01", "2024-01-01", "2024-05-01", "2024-07-01"],
            "region": ["Seoul", "Busan", "Seoul", None],
            "age": [30, 41, 25, 50],
        }
    )
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9"],
            "customer_id": ["a", "a", "a", "a", "b", "b", "a", "b", "d"],
            "ordered_at": [
                "2023-06-01 10:00",
                "2024-03-03 20:00",
                "2024-05-02 12:00",
                "2024-05-12 12:00",
                "2024-02-01 09:00",
                "2024-02-10 09:00",
                "2024-06-01 00:00",
                "2024-05-20 10:00",
                "2024-07-02 10:00",
            ],
            "amount": [100.0, 50.0, 30.0, -30.0, 200.0, 80.0, 999.0, 40.0, 10.0],
            "discount": [0.0, 10.0, 0.0, 0.0, 0.0, 20.0, 0.0, 0.0, 0.0],
            "channel": ["web", "app", "app", "app", "web", "web", "web", "store", "web"],
            "status": [
                "completed",
                "completed",
                "completed",
                "returned",
                "completed",
                "completed",
                "completed",
                "cancelled",
                "completed",
            ],
        }
    )
    items = pd.DataFrame(
        {
            "order_id": ["o1", "o1", "o2", "o3", "o5", "o6", "o6", "o7"],
            "product_id": ["p1", "p2", "p3", "p3", "p4", "p5", "p6", "p1"],
            "quantity": [1, 1, 2, 1, 1, 1, 1, 5],
            "unit_price": [50.0, 50.0, 30.0, 30.0, 200.0, 50.0, 50.0, 200.0],
            "category": ["shoes", "bags", "shoes", "shoes", "tv", "tv", "audio", "shoes"],
            "tier": [
                "basic",
                "basic",
                "premium",
                "premium",
                "premium",
                "basic",
                "basic",
                "premium",
            ],
        }
    )
    events = pd.DataFrame({
        "customer_id": ["a", "a", "a", "a", "c", "c", "c", "a", "a", "c"],
        "occurred_at": ["2024-05-30 10:00", "2024-05-30 10:01", "2024-05-30 10:05", "2024-04-01 08:00",
                        "2024-05-20 21:00", "2024-05-20 21:02", "2024-05-25 21:00", "2024-06-01 00:00",
                        "2024-04-01 07:59", "2024-05-25 20:59"],
        "event_type": ["session_start", "product_view", "product_view", "product_view",
                       "session_start", "product_view", "product_view", "product_view",
                       "session_start", "session_start"],
        "session_id": ["s1", "s1", "s1", "s0", "s2", "s2", "s3", "s9", "s0", "s3"],
        "category": [None, "shoes", "bags", "shoes", None, "tv", "tv", "shoes", None, None],
        "duration_s": [600.0, None, None, 120.0, 60.0, None, 30.0, 10.0, None, None],
        "channel": ["app", "app", "app", "web", "app", "app", "app", "app", "web", "app"],
    })  # fmt: skip
    offers = pd.DataFrame(
        {
            "offer_id": ["f1", "f2", "f3", "f4", "f5"],
            "customer_id": ["a", "a", "b", "a", "b"],
            "sent_at": ["2024-03-01", "2024-05-01", "2024-05-01", "2024-05-25", "2024-05-30"],
            "offer_type": ["upsell", "bundle", "upsell", "upsell", "cross_sell"],
            "group": ["treatment", "treatment", "treatment", "treatment", "control"],
            "opened_at": ["2024-03-02", "2024-05-02", None, "2024-06-02", None],
            "accepted_at": ["2024-03-05", None, None, "2024-06-03", "2024-06-01"],
        }
    )
    return {
        "customers": customers,
        "orders": orders,
        "order_items": items,
        "events": events,
        "offers": offers,
    }


@pytest.fixture
def raw() -> dict[str, pd.DataFrame]:
    return raw_tables()


@pytest.fixture
def tables():
    return load_tables(raw_tables())[0]
