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
