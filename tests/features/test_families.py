"""A hand-computed example for every family (tables in conftest.py, cutoff 2024-06-01 UTC)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vipml.features import build_features, feature_spec

from .conftest import AS_OF

DAY = pd.Timedelta(days=1)


def days(a: str, b: str) -> float:
    return (pd.Timestamp(b) - pd.Timestamp(a)) / DAY


@pytest.fixture
def feats(tables):
    return build_features(tables, as_of=AS_OF)


def test_rows_are_the_customers_known_before_the_cutoff(feats):
    # d signed up and ordered after the cutoff
    assert feats.index.tolist() == ["a", "b", "c"]
    assert feats.index.name == "customer_id"


def test_purchase_family(feats):
    a, b, c = (feats.loc[k] for k in "abc")
    assert (a["orders_all"], a["spend_all"]) == (3, 180)  # o4 is a return, o7 is at the cutoff
    assert (a["orders_30d"], a["spend_30d"]) == (1, 30)
    assert (a["orders_90d"], a["spend_90d"]) == (2, 80)
    assert (a["orders_365d"], a["spend_365d"]) == (2, 80)  # o1 falls just outside 365 days
    assert a["recency_days"] == pytest.approx(days("2024-05-02 12:00", "2024-06-01"))
    assert a["tenure_days"] == pytest.approx(days("2023-06-01 10:00", "2024-06-01"))
    assert a["tenure_signup_days"] == pytest.approx(517)
    assert (a["aov_all"], a["max_order_value_all"]) == (60, 100)
    assert a["spend_trend_90d"] == 1.0
    g1, g2 = (
        days("2023-06-01 10:00", "2024-03-03 20:00"),
        days("2024-03-03 20:00", "2024-05-02 12:00"),
    )
    assert a["interval_mean_days"] == pytest.approx((g1 + g2) / 2)
    assert a["interval_std_days"] == pytest.approx(abs(g1 - g2) / math.sqrt(2))
    assert a["overdue_ratio"] == pytest.approx(a["recency_days"] / ((g1 + g2) / 2))
    assert a["return_rate_all"] == pytest.approx(1 / 3)
    assert (a["net_spend_all"], a["net_spend_365d"]) == (150, 50)
    assert a["weekend_share_all"] == pytest.approx(1 / 3)  # 2024-03-03 was a Sunday
    assert a["evening_share_all"] == pytest.approx(1 / 3)
    assert a["discount_share_all"] == pytest.approx(10 / 190)
    assert (a["channel_count_all"], a["top_channel"], a["top_channel_share"]) == (
        2,
        "app",
        pytest.approx(2 / 3),
    )
    assert (b["orders_all"], b["spend_all"]) == (2, 280)  # o8 was cancelled
    assert b["cancel_rate_all"] == pytest.approx(1 / 3)
    assert b["recency_days"] == pytest.approx(days("2024-02-10 09:00", "2024-06-01"))
    assert b["weekend_share_all"] == 0.5
    assert math.isnan(b["interval_std_days"])  # one interval has no spread
    assert (c["orders_all"], c["spend_all"]) == (0, 0)
    assert math.isnan(c["recency_days"]) and math.isnan(c["aov_all"])
    assert pd.isna(c["top_channel"])


def test_vip_family(feats):
    # top 10% of 3 known customers = 1 customer; 365-day net spend a 50, b 280, c 0
    assert feats["is_vip"].tolist() == [0, 1, 0]
    assert feats["vip_spend_365d"].tolist() == [50, 280, 0]
    assert feats["vip_gap"].tolist() == [230, 0, 280]


def test_product_family(feats):
    a, b, c = (feats.loc[k] for k in "abc")
    assert a["items_per_order_all"] == pytest.approx(5 / 3)
    assert a["multi_item_order_share_all"] == pytest.approx(1 / 3)
    assert (a["category_count_all"], a["top_category"], a["top_category_share"]) == (
        2,
        "shoes",
        0.8,
    )
    assert a["category_entropy_all"] == pytest.approx(-(0.8 * math.log(0.8) + 0.2 * math.log(0.2)))
    assert a["bundle_order_share_all"] == pytest.approx(1 / 3)
    assert (a["premium_share_all"], a["moved_up_tier"]) == (0.6, 1)
    assert (b["items_per_order_all"], b["top_category"]) == (1.5, "tv")
    assert b["moved_up_tier"] == 0  # premium came before basic
    assert b["premium_share_all"] == pytest.approx(1 / 3)
    assert c["category_count_all"] == 0 and pd.isna(c["top_category"])
    assert math.isnan(c["items_per_order_all"])


def test_behaviour_family(feats):
    a, b, c = (feats.loc[k] for k in "abc")
    assert (a["sessions_30d"], a["sessions_90d"]) == (1, 2)
    assert (a["views_30d"], a["views_90d"]) == (2, 3)  # the view at the cutoff is not read
    assert a["views_per_session_90d"] == 1.5
    assert a["days_since_last_visit"] == pytest.approx(days("2024-05-30 10:05", "2024-06-01"))
    assert (a["top_view_category"], a["top_view_category_share_90d"]) == (
        "shoes",
        pytest.approx(2 / 3),
    )
    assert (a["app_minutes_30d"], a["app_minutes_90d"]) == (
        10,
        10,
    )  # the web session does not count
    assert a["views_per_order_90d"] == 1.5
    assert (c["sessions_30d"], c["views_90d"], c["app_minutes_30d"]) == (2, 2, 1.5)
    assert math.isnan(c["views_per_order_90d"])
    assert (b["sessions_90d"], b["views_90d"]) == (0, 0) and math.isnan(b["days_since_last_visit"])


def test_offers_family(feats):
    a, b, c = (feats.loc[k] for k in "abc")
    assert (a["offers_received_all"], a["offers_received_90d"]) == (3, 2)
    assert a["days_since_last_offer"] == 7
    assert a["opened_rate_all"] == pytest.approx(2 / 3)  # f4 was opened after the cutoff
    assert (a["opened_rate_upsell"], a["opened_rate_bundle"]) == (0.5, 1)
    assert math.isnan(a["opened_rate_cross_sell"])
    assert a["accepted_rate_all"] == pytest.approx(1 / 3)
    assert (a["accepted_rate_upsell"], a["accepted_rate_bundle"]) == (0.5, 0)
    assert (a["days_since_last_accept"], a["last_accepted_offer_type"]) == (88, "upsell")
    assert b["offers_received_all"] == 1  # the control offer was never sent
    assert b["accepted_rate_all"] == 0 and pd.isna(b["last_accepted_offer_type"])
    assert c["offers_received_all"] == 0 and math.isnan(c["accepted_rate_all"])
    assert "clicked_rate_all" not in feats  # no clicked_at column, no feature


def test_static_family(feats):
    assert feats["region"].tolist() == ["Seoul", "Busan", "Seoul"]
    assert feats["age"].tolist() == [30, 41, 25]
    assert feats["region"].dtype == "str" and feats["age"].dtype == "float64"


def test_spec_documents_every_column_and_the_families(tables, feats):
    spec = feature_spec(tables)
    assert spec.names == list(feats.columns)
    assert spec.families == ["purchase", "vip", "btyd", "product", "behaviour", "offers", "static"]
    for f in spec.features:
        assert f.en and f.ko and f.unit, f.name
    assert spec["spend_30d"].window.days == 30 and spec["spend_30d"].ko == "최근 30일 구매 금액"
    assert set(spec.categorical) == {
        "top_channel",
        "top_category",
        "top_view_category",
        "last_accepted_offer_type",
        "region",
    }
    for name in feats.columns:
        assert str(feats[name].dtype) == spec[name].dtype


def test_a_missing_table_means_its_family_is_absent_not_zeros(raw):
    from vipml import load_tables

    tables = load_tables({"orders": raw["orders"]})[0]
    feats = build_features(tables, as_of=AS_OF)
    spec = feature_spec(tables)
    assert spec.families == ["purchase", "vip", "btyd"]
    assert spec.absent == {
        "product": "no order_items table",
        "behaviour": "no events table",
        "offers": "no offers table",
        "static": "no customers table",
    }
    assert not any(c.startswith(("views", "sessions", "offers_")) for c in feats.columns)
    assert feats.index.tolist() == ["a", "b"]  # c only browsed; no events table


def test_cutoff_is_required_and_parsed():
    from vipml import ConfigError
    from vipml.windows import as_cutoff

    with pytest.raises(ConfigError, match="never defaults to now"):
        as_cutoff(None)
    with pytest.raises(ConfigError, match="not a date"):
        as_cutoff("soon")
    assert as_cutoff("2024-06-01") == pd.Timestamp("2024-06-01", tz="UTC")
    assert as_cutoff(pd.Timestamp("2024-06-01 09:00", tz="Asia/Seoul")) == pd.Timestamp(
        "2024-06-01", tz="UTC"
    )
    assert np.isfinite(as_cutoff("2024-06-01").value)


def test_sessions_from_session_ids_when_there_are_no_start_events(raw):
    from vipml import load_tables

    ev = raw["events"]
    raw["events"] = ev[ev["event_type"] != "session_start"].reset_index(drop=True)
    feats = build_features(load_tables(raw)[0], as_of=AS_OF)
    # a: sessions s1 (05-30) and s0 (04-01); c: s2 and s3 (both in the last 30 days)
    assert feats.loc["a", ["sessions_30d", "sessions_90d"]].tolist() == [1, 2]
    assert feats.loc["c", ["sessions_30d", "sessions_90d"]].tolist() == [2, 2]
