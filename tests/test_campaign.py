"""KPI formulas and treatment-vs-control analysis."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml import DataError, load_tables
from vipml.campaign import (
    aov,
    clv,
    compare_means,
    compare_proportions,
    crr,
    minimum_detectable_effect,
    pcr,
    period_kpis,
    rpr,
    sample_size,
)

from .conftest import ROOT


def test_kpi_formulas_as_the_domain_defines_them():
    assert crr(customers_end=120, new_customers=30, customers_start=100) == 90.0
    assert (
        clv(monthly_average_purchase=50, retained_months=12, margin=0.3, acquisition_cost=20)
        == 160.0
    )
    assert pcr(25, 500) == 5.0 and rpr(40, 200) == 20.0 and aov(1000.0, 8) == 125.0


def test_period_kpis_on_the_hand_made_tables():
    from .features.conftest import raw_tables

    tables = load_tables(raw_tables())[0]
    k = period_kpis(tables, start="2024-01-01", end="2024-06-01")
    # purchases in the period: a o2 o3, b o5 o6 (o4 is a return, o8 cancelled)
    assert (k["customers_start"], k["new_customers"], k["customers_end"]) == (1, 1, 2)
    assert k["crr"] == 100.0 and k["rpr"] == 100.0 and k["aov"] == pytest.approx(360 / 4)
    assert k["pcr"] == pytest.approx(50.0)  # a and c visited; a bought
    assert k["upsell_acceptance_rate"] == pytest.approx(1 / 2)  # a accepted f1; b (f3) did not


def test_proportions_interval_and_p_value():
    rng = np.random.default_rng(0)
    t = (rng.random(20_000) < 0.12).astype(int)
    c = (rng.random(20_000) < 0.10).astype(int)
    r = compare_proportions(t, c)
    assert r.ci_low < r.difference < r.ci_high and r.p_value < 1e-6
    same = compare_proportions(c[:10_000], c[10_000:])
    assert same.ci_low < 0 < same.ci_high and same.p_value > 0.01


def test_empty_group_is_a_clear_error():
    with pytest.raises(DataError, match="0 control"):
        compare_proportions(np.ones(5), np.array([]))


def test_sample_size_and_mde_agree():
    n = sample_size(0.10, 0.02)
    assert 3000 < n < 5000
    assert minimum_detectable_effect(0.10, n) == pytest.approx(0.02, rel=0.05)


@pytest.mark.realdata
def test_hillstrom_arm_means_and_ab_intervals(data_dir):
    raw = pd.read_csv(data_dir / "hillstrom.csv")
    means = raw.groupby("segment")[["visit", "conversion", "spend"]].mean()
    published = {
        "Mens E-Mail": (0.1828, 0.01253, 1.423),
        "Womens E-Mail": (0.1514, 0.00884, 1.077),
        "No E-Mail": (0.1062, 0.00573, 0.653),
    }
    for arm, (visit, conversion, spend) in published.items():
        assert means.loc[arm, "visit"] == pytest.approx(visit, abs=5e-5)
        assert means.loc[arm, "conversion"] == pytest.approx(conversion, abs=5e-6)
        assert means.loc[arm, "spend"] == pytest.approx(spend, abs=5e-4)
    mens, none = raw[raw["segment"] == "Mens E-Mail"], raw[raw["segment"] == "No E-Mail"]
    visit = compare_proportions(mens["visit"], none["visit"], outcome="visit")
    assert visit.difference == pytest.approx(0.1828 - 0.1062, abs=1e-3) and visit.p_value < 1e-10
    spend = compare_means(mens["spend"], none["spend"], bootstrap=200, seed=1)
    assert spend.ci_low < spend.difference < spend.ci_high and spend.difference > 0
    # the shipped mapping reads the same arms
    tables, _ = load_tables(data_dir, config=ROOT / "configs" / "hillstrom.yaml")
    assert tables.offers["clicked_at"].notna().groupby(tables.offers["segment"]).mean()[
        "Mens E-Mail"
    ] == pytest.approx(0.1828, abs=5e-5)


def test_uplift_metrics_reward_the_right_ranking():
    from vipml.campaign import auuc, qini_coefficient, uplift_at_k

    rng = np.random.default_rng(0)
    n = 20_000
    effect = rng.random(n)  # the true uplift
    t = rng.random(n) < 0.5
    y = (rng.random(n) < 0.05 + 0.2 * effect * t).astype(int)
    good, noise = effect, rng.random(n)
    assert qini_coefficient(y, good, t) > qini_coefficient(y, noise, t) + 0.1
    assert auuc(y, good, t) > auuc(y, noise, t)
    assert uplift_at_k(y, good, t, 0.2) > uplift_at_k(y, -good, t, 0.2)
    with pytest.raises(DataError, match="treated and control"):
        qini_coefficient(y, good, np.ones(n))


def test_uplift_learners_find_who_the_offer_persuades():
    from vipml.campaign import TransformedOutcomeUplift, TwoModelUplift, qini_coefficient

    rng = np.random.default_rng(1)
    n = 30_000
    X = pd.DataFrame({"a": rng.random(n), "b": rng.random(n)})
    t = rng.random(n) < 0.5
    y = (rng.random(n) < 0.1 + 0.3 * (X["a"] > 0.7) * t + 0.2 * X["b"]).astype(
        int
    )  # b: buys anyway
    train = rng.random(n) < 0.7
    for learner in (TwoModelUplift(seed=0), TransformedOutcomeUplift(seed=0)):
        u = learner.fit(X[train], y[train], t[train]).predict(X[~train])
        assert np.corrcoef(u, X.loc[~train, "a"] > 0.7)[0, 1] > 0.5
        assert qini_coefficient(y[~train], u, t[~train]) > 0.2


@pytest.mark.realdata
def test_hillstrom_uplift_beats_random_and_a_response_model_on_visit(data_dir):
    import lightgbm as lgb

    from vipml.campaign import TwoModelUplift, qini_coefficient

    raw = pd.read_csv(data_dir / "hillstrom.csv")
    raw = raw[raw["segment"].isin(["Womens E-Mail", "No E-Mail"])].reset_index(drop=True)
    X = raw[["recency", "history", "mens", "womens", "newbie"]].copy()
    for c in ("zip_code", "channel", "history_segment"):
        X[c] = raw[c].astype("category")
    t = (raw["segment"] == "Womens E-Mail").to_numpy()
    y = raw["visit"].to_numpy()
    train = np.random.default_rng(0).random(len(raw)) < 0.7  # the stated split: seeded 70/30
    uplift = TwoModelUplift(seed=0).fit(X[train], y[train], t[train]).predict(X[~train])
    response = lgb.LGBMClassifier(
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        random_state=0,
        verbose=-1,
    ).fit(X[train][t[train]], y[train][t[train]])
    ranked_by_response = response.predict_proba(X[~train])[:, 1]
    random = np.random.default_rng(1).random(int((~train).sum()))
    q = {
        name: qini_coefficient(y[~train], s, t[~train])
        for name, s in (("uplift", uplift), ("response", ranked_by_response), ("random", random))
    }
    assert q["uplift"] > q["response"] > q["random"]


# --------------------------------------------------------------------------- a small campaign

AFTER = "2024-03-01"  # the campaign starts; a 30-day horizon ends 2024-03-31


def campaign_frames() -> dict[str, pd.DataFrame]:
    """Six customers, a target list's worth of orders and offers (dates in 2024)."""
    orders = [
        ("o1", "a", "2024-01-10", 100.0, "web"),  # before: a is a VIP (threshold 100) already
        ("o2", "a", "2024-03-05", 50.0, "app"),
        ("o3", "a", "2024-03-20", 70.0, "app"),
        ("o4", "b", "2023-12-01", 5.0, "web"),  # b's first order
        ("o5", "b", "2024-03-10", 30.0, "web"),
        ("o6", "b", "2024-03-25", 80.0, "app"),  # b reaches 110 in the window: VIP on 03-25
        ("o7", "d", "2024-03-15", 20.0, "web"),
        ("o8", "e", "2024-01-05", 10.0, "web"),
        ("o9", "f", "2024-06-01", 10.0, "web"),  # long after: the data covers the window
    ]
    offers = [  # id, customer, sent, channel, campaign, cost, group, opened, accepted
        ("f1", "a", "2024-03-02", "push", "C1", 1.0, "treatment", "2024-03-02 10:00", None),
        ("f2", "b", "2024-03-02", "email", "C1", 2.0, "treatment", None, "2024-03-10"),
        ("f3", "c", "2024-03-02", "push", "C1", 1.0, "treatment", None, None),
        ("f4", "d", "2024-03-02", "email", "C1", 1.5, "control", None, None),
        ("f5", "e", "2024-03-02", "email", "C1", 1.5, "control", None, None),
    ]
    cols = ["offer_id", "customer_id", "sent_at", "channel", "campaign_id", "cost", "group"]
    offer_frame = pd.DataFrame([o[:7] for o in offers], columns=cols).assign(
        offer_type="upsell",
        opened_at=[o[7] for o in offers],
        accepted_at=[o[8] for o in offers],
    )
    return {
        "customers": pd.DataFrame({"customer_id": list("abcdef"), "signup_at": ["2023-11-01"] * 6}),
        "orders": pd.DataFrame(
            orders, columns=["order_id", "customer_id", "ordered_at", "amount", "channel"]
        ),
        "offers": offer_frame,
    }


@pytest.fixture
def campaign_config():
    from vipml import load_config

    return load_config(None, vip={"rule": "threshold", "threshold": 100.0})


@pytest.fixture
def campaign_tables(campaign_config):
    return load_tables(campaign_frames(), config=campaign_config)[0]


TARGETS = pd.DataFrame(
    {
        "customer_id": list("abcdef"),
        "group": ["treatment"] * 3 + ["control"] * 3,
        "segment": ["repeat", "repeat", "new", "repeat", "new", "new"],
    }
)


def test_ab_test_by_hand(campaign_tables, campaign_config):
    from vipml.campaign import AB_COLUMNS, ab_test

    ab = ab_test(
        TARGETS,
        campaign_tables,
        after=AFTER,
        horizon_days=30,
        config=campaign_config,
        bootstrap=200,
    )
    assert list(ab.columns) == AB_COLUMNS
    rows = ab.set_index(["metric", "method"])
    conv = rows.loc[("conversion", "two-proportion z-test")]
    assert (conv["treatment_n"], conv["control_n"]) == (3, 3)
    assert conv["treatment_value"] == pytest.approx(2 / 3) and conv["control_value"] == (
        pytest.approx(1 / 3)
    )
    welch = rows.loc[("revenue_per_customer", "Welch t-test")]
    assert welch["treatment_value"] == pytest.approx((120 + 110) / 3)
    assert welch["control_value"] == pytest.approx(20 / 3)
    assert ab["method"].str.contains("bootstrap").sum() == 1
    vip = rows.loc[("vip_conversion", "two-proportion z-test")]
    # a was a VIP before the campaign: b and c are eligible, b converts; no control converts
    assert (vip["treatment_n"], vip["treatment_value"], vip["control_value"]) == (2, 0.5, 0.0)
    # six customers detect nothing: each row with a needed size says it was read before it
    assert ab["warning"].iloc[:3].str.startswith("read early: 3 of the ").all()
    assert np.isnan(vip["needed_per_group"])  # no control converted: no size to aim for


def test_ab_outcomes_read_only_the_window(campaign_tables, campaign_config):
    from vipml.campaign import ab_test

    frames = campaign_frames()
    extra = pd.DataFrame(
        [
            ("x1", "a", "2024-02-29 23:59:59", 500.0, "web"),  # before: a is a VIP either way
            ("x2", "e", "2024-02-28", 5.0, "web"),  # before: e stays below the VIP bar
            ("x3", "d", "2024-03-31", 999.0, "web"),  # the window's end is outside it
            ("x4", "f", "2024-04-10", 999.0, "web"),
        ],
        columns=frames["orders"].columns,
    )
    frames["orders"] = pd.concat([frames["orders"], extra], ignore_index=True)
    late = load_tables(frames, config=campaign_config)[0]
    kw = {"after": AFTER, "horizon_days": 30, "config": campaign_config, "bootstrap": 100}
    pd.testing.assert_frame_equal(
        ab_test(TARGETS, late, **kw), ab_test(TARGETS, campaign_tables, **kw)
    )
    # and a row inside the window does change the outcome (the test can fail)
    frames["orders"].loc[len(frames["orders"])] = ("x5", "f", "2024-03-30", 1.0, "web")
    inside = load_tables(frames, config=campaign_config)[0]
    changed = ab_test(TARGETS, inside, **kw)
    assert changed.loc[0, "control_value"] == pytest.approx(2 / 3)


def test_ab_read_early_against_the_planned_size(campaign_tables, campaign_config):
    from vipml.campaign import ab_test

    ab = ab_test(
        TARGETS,
        campaign_tables,
        after=AFTER,
        horizon_days=30,
        config=campaign_config,
        planned_size=5000,
        bootstrap=0,
    )
    assert ab.loc[0, "warning"] == (
        "read early: 3 of 5,000 planned customers per group; a fixed-horizon test read early "
        "inflates false positives"
    )
    assert ab.attrs["warnings"][0] == ab.loc[0, "warning"]
    on_time = ab_test(
        TARGETS,
        campaign_tables,
        after=AFTER,
        horizon_days=30,
        config=campaign_config,
        planned_size=2,  # the VIP row has two eligible treated customers
        bootstrap=0,
    )
    assert (on_time["warning"] == "").all() and on_time.attrs["warnings"] == []
    # a horizon that runs past the data is read early too
    long = ab_test(
        TARGETS, campaign_tables, after=AFTER, horizon_days=120, config=campaign_config, bootstrap=0
    )
    assert any("outcomes observed for" in w for w in long.attrs["warnings"])


def test_ab_bad_targets_are_clear_errors(campaign_tables, campaign_config):
    from vipml.campaign import ab_test

    kw = {"after": AFTER, "horizon_days": 30, "config": campaign_config, "source": "t.csv"}
    with pytest.raises(DataError, match="t.csv has no column 'group'"):
        ab_test(TARGETS.drop(columns="group"), campaign_tables, **kw)
    with pytest.raises(DataError, match="3 treatment and 0 control"):
        ab_test(TARGETS.assign(group=["treatment"] * 3 + [""] * 3), campaign_tables, **kw)
    with pytest.raises(DataError, match="outside the data"):
        ab_test(TARGETS, campaign_tables, **{**kw, "after": "2025-06-01"})
    twice = pd.concat([TARGETS, TARGETS.iloc[[0]].assign(group="control")])
    ab = ab_test(twice, campaign_tables, **{**kw, "bootstrap": 0})
    assert (
        ab.loc[0, "treatment_n"] == 2
        and "1 customer(s) are in both groups" in (ab.attrs["warnings"][0])
    )


def test_kpis_by_scope_by_hand(campaign_tables, campaign_config):
    from vipml.campaign import KPI_COLUMNS, kpi_table, push_response_rate

    k = kpi_table(
        campaign_tables, start=AFTER, end="2024-03-31", config=campaign_config, audience=TARGETS
    )
    assert list(k.columns) == KPI_COLUMNS
    v = k.set_index(["scope", "key", "metric"])["value"]
    assert v[("overall", "all", "push_response_rate")] == 0.5  # a opened, c did not
    assert push_response_rate(campaign_tables, start=AFTER, end="2024-03-31") == 0.5
    assert v[("overall", "all", "vip_conversion_rate")] == pytest.approx(100 / 5)  # b of b..f
    assert v[("overall", "all", "days_to_vip_median")] == pytest.approx(115.0)  # 12-01 -> 03-25
    # segment repeat = a, b, d: all three bought; a and b twice; 50+70+30+80+20 over 5 orders
    assert v[("segment", "repeat", "purchase_rate")] == 100.0
    assert v[("segment", "repeat", "rpr")] == pytest.approx(200 / 3)
    assert v[("segment", "repeat", "aov")] == pytest.approx(250 / 5)
    assert v[("segment", "new", "customers")] == 3 and v[("segment", "new", "revenue")] == 0
    assert v[("group", "treatment", "revenue")] == 230
    # channels: offers (push: a opened of a, c) and orders (app: 70 + 50 + 80)
    assert v[("channel", "push", "open_rate")] == 0.5
    assert v[("channel", "push", "push_response_rate")] == 0.5
    assert v[("channel", "app", "revenue")] == 200 and v[("channel", "app", "aov")] == 200 / 3
    assert ("channel", "email", "push_response_rate") not in v.index
    # campaign C1: three treated offers (the control offers are not sent)
    assert v[("campaign", "C1", "offers_sent")] == 3 and v[("campaign", "C1", "cost")] == 4.0
    assert v[("campaign", "C1", "upsell_acceptance_rate")] == pytest.approx(1 / 3)
    assert set(k.loc[k["scope"] == "period", "key"]) == {"2024-03-01"}


def test_time_to_vip_agrees_with_the_vip_conversion_rate(campaign_tables, campaign_config):
    from vipml.campaign import time_to_vip, vip_conversion_rate

    ttv = time_to_vip(campaign_tables, start=AFTER, end="2024-03-31", config=campaign_config)
    assert ttv.index.tolist() == ["b"]
    assert ttv.loc["b", "vip_at"] == pd.Timestamp("2024-03-25", tz="UTC")
    assert ttv.loc["b", "days_to_vip"] == pytest.approx(115.0)
    rate = vip_conversion_rate(
        list("abcdef"), campaign_tables, as_of=AFTER, horizon_days=30, config=campaign_config
    )
    assert rate == {
        "audience": 6.0,
        "eligible": 5.0,
        "converted": 1.0,
        "vip_conversion_rate": 20.0,
    }


def test_campaign_roi_by_hand(campaign_tables):
    from vipml.campaign import ROI_COLUMNS, campaign_roi

    roi = campaign_roi(campaign_tables, start=AFTER, end="2024-03-31", acceptance_days=14)
    assert list(roi.columns) == ROI_COLUMNS and len(roi) == 1
    r = roi.iloc[0]
    # revenue in [03-02, 03-16): a 50, b 30, c 0 treated; d 20, e 0 control
    assert (r["treated_customers"], r["control_customers"]) == (3, 2)
    assert r["treated_revenue_per_customer"] == pytest.approx(80 / 3)
    assert r["control_revenue_per_customer"] == pytest.approx(10.0)
    assert r["incremental_revenue"] == pytest.approx((80 / 3 - 10) * 3)
    assert r["cost"] == 4.0 and r["roi"] == pytest.approx(((80 / 3 - 10) * 3 - 4) / 4)
    assert r["incremental_ci_low"] < r["incremental_revenue"] < r["incremental_ci_high"]


def test_window_sums_match_a_plain_filter():
    from vipml.campaign import _window_sums

    rng = np.random.default_rng(3)
    n = 2000
    orders = pd.DataFrame(
        {
            "customer_id": rng.choice(list("pqrst"), n),
            "ordered_at": pd.Timestamp("2024-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 100 * 86400, n), unit="s"),
            "amount": rng.gamma(2, 30, n),
        }
    )
    who = rng.choice(list("pqrstu"), 50)
    starts = pd.Series(
        pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90, 50), unit="D")
    )
    ends = starts + pd.Timedelta(days=7)
    got = _window_sums(orders, who, starts, ends)
    for i in range(50):  # the reference: a plain filter per query
        m = (
            (orders["customer_id"] == who[i])
            & (orders["ordered_at"] >= starts[i])
            & (orders["ordered_at"] < ends[i])
        )
        assert got[i] == pytest.approx(orders.loc[m, "amount"].sum())
