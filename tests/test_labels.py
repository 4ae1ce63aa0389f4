"""Labels read only [as_of, as_of + horizon); eligibility comes from history before as_of."""

from __future__ import annotations

import pandas as pd
import pytest

from vipml import ConfigError, DataError, load_tables
from vipml.config import load_config
from vipml.labels import churn_labels, upsell_labels, vip_conversion_labels

from .features.conftest import AS_OF, raw_tables


def tables_with(*orders):
    raw = raw_tables()
    for row in orders:
        raw["orders"].loc[len(raw["orders"])] = row
    return load_tables(raw)[0]


def test_vip_conversion_among_the_not_yet_vip():
    labels = vip_conversion_labels(tables_with(), as_of=AS_OF, horizon_days=30)
    # b is VIP at the cutoff, so not eligible; a's o7 (999, at the cutoff) is in the window
    assert labels.index.tolist() == ["a", "c"]
    assert labels["label"].tolist() == [1, 0]
    assert labels["horizon_spend"].tolist() == [999, 0]


def test_rows_after_the_horizon_change_nothing_rows_inside_do():
    base = vip_conversion_labels(tables_with(), as_of=AS_OF, horizon_days=30)
    late = vip_conversion_labels(
        tables_with(["x1", "c", "2024-07-01 00:00", 5000.0, 0.0, "web", "completed"]),
        as_of=AS_OF,
        horizon_days=30,
    )
    pd.testing.assert_frame_equal(late, base)
    inside = vip_conversion_labels(
        tables_with(["x2", "c", "2024-06-10 00:00", 1500.0, 0.0, "web", "completed"]),
        as_of=AS_OF,
        horizon_days=30,
    )
    assert inside["label"].tolist() == [0, 1]  # c now tops the cohort; the bar rose above a


def test_a_window_the_data_does_not_cover_is_an_error():
    with pytest.raises(DataError, match="data ends 2024-07-02"):
        vip_conversion_labels(tables_with(), as_of=AS_OF, horizon_days=90)


def test_tier_rule_cannot_make_conversion_labels():
    cfg = load_config(None, vip={"rule": "tier", "tier_column": "tier"})
    with pytest.raises(ConfigError, match="tier"):
        vip_conversion_labels(tables_with(), as_of=AS_OF, horizon_days=30, config=cfg)


def test_churn_labels():
    labels = churn_labels(tables_with(), as_of=AS_OF, horizon_days=30)
    assert labels["label"].to_dict() == {"a": 0, "b": 1}


def test_upsell_labels_per_offer_with_acceptance_window():
    labels = upsell_labels(tables_with(), start="2024-03-01", end=AS_OF, acceptance_days=14)
    assert labels["offer_id"].tolist() == ["f1", "f2", "f3", "f4"]  # f5 was held out
    assert labels["label"].tolist() == [1, 0, 0, 1]  # f4 accepted after 9 days
    assert labels["as_of"].tolist()[3] == pd.Timestamp("2024-05-25", tz="UTC")
    short = upsell_labels(tables_with(), start="2024-03-01", end=AS_OF, acceptance_days=3)
    assert short["label"].tolist() == [0, 0, 0, 0]  # f1 took 4 days, f4 9


def test_population_all_rates_every_known_customer_with_the_rule_at_the_horizon_end():
    cfg = load_config(None, labels={"population": "all"})
    labels = vip_conversion_labels(tables_with(), as_of=AS_OF, horizon_days=30, config=cfg)
    # b, VIP at the cutoff, is a row now; its label is its status when the horizon ends
    assert labels.index.tolist() == ["a", "b", "c"]
    assert labels["label"].tolist() == [1, 0, 0]
    assert labels.attrs["population"] == "all"


def test_vip_spend_horizon_is_the_top_share_of_spend_inside_the_window():
    cfg = load_config(
        None, labels={"population": "all", "vip_spend": "horizon"}, vip={"share": 0.34}
    )
    t = tables_with(
        ["x1", "b", "2024-06-05 00:00", 300.0, 0.0, "web", "completed"],
        ["x2", "c", "2024-06-06 00:00", 100.0, 0.0, "web", "completed"],
        ["x3", "c", "2024-07-01 00:00", 9000.0, 0.0, "web", "completed"],  # after the horizon
        ["x4", "b", "2024-05-31 23:00", 9000.0, 0.0, "web", "completed"],  # before the cutoff
    )
    labels = vip_conversion_labels(t, as_of=AS_OF, horizon_days=30, config=cfg)
    # horizon spend: a 999 (o7 at the cutoff), b 300, c 100; the top 34% of 3 is 2 customers
    assert labels["horizon_spend"].tolist() == [999, 300, 100]
    assert labels["label"].tolist() == [1, 1, 0]
    # the not-yet-VIP population shares the same bar (set over everyone known at the cutoff)
    conv = vip_conversion_labels(
        t,
        as_of=AS_OF,
        horizon_days=30,
        config=load_config(None, labels={"vip_spend": "horizon"}, vip={"share": 0.34}),
    )
    assert conv.index.tolist() == ["c"] and conv["label"].tolist() == [0]  # a and b are VIP at T


def test_tier_rule_works_with_horizon_spend():
    cfg = load_config(
        None,
        vip={"rule": "tier", "tier_column": "region", "tier_values": ["Busan"]},
        labels={"vip_spend": "horizon"},
    )
    labels = vip_conversion_labels(tables_with(), as_of=AS_OF, horizon_days=30, config=cfg)
    assert "b" not in labels.index  # b's tier (Busan) makes it VIP at the cutoff


def test_conversion_measures_ask_for_the_not_yet_vip_whatever_the_config():
    cfg = load_config(None, labels={"population": "all"})
    labels = vip_conversion_labels(
        tables_with(), as_of=AS_OF, horizon_days=30, config=cfg, population="not_vip"
    )
    assert labels.index.tolist() == ["a", "c"] and labels.attrs["population"] == "not_vip"
