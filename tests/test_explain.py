"""Explanations: drivers, curves, group comparisons, segment profiles, plays and the Pareto curve."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from vipml import DataError, load_tables
from vipml.bundle import Bundle, load_bundle, save_bundle
from vipml.config import Play, ScoreConfig, load_config
from vipml.datasets import make_retailer
from vipml.explain import (
    compare_groups,
    driver_curves,
    driver_plays,
    global_drivers,
    pareto,
    segment_profiles,
    vip_comparison,
)
from vipml.features import build_features
from vipml.features.registry import Feature, FeatureSpec
from vipml.score import score, scoring_config
from vipml.train import Calibrator, train
from vipml.vip import vip_status

AS_OF = pd.Timestamp("2024-07-01", tz="UTC")
HORIZON = 90


@pytest.fixture(scope="module")
def raw():
    return make_retailer(2000, seed=1).tables()


@pytest.fixture(scope="module")
def tables(raw):
    return load_tables(raw)[0]


@pytest.fixture(scope="module")
def cfg():
    return load_config(
        None, labels={"horizon_days": HORIZON}, train={"n_cutoffs": 4}, tracking={"enabled": False}
    )


@pytest.fixture(scope="module")
def bundle(tables, cfg, tmp_path_factory):
    result = train(tables, cfg)
    return load_bundle(
        save_bundle(result, tables=tables, config=cfg, out=tmp_path_factory.mktemp("models"))
    )


@pytest.fixture(scope="module")
def X(tables, bundle):
    return build_features(tables, as_of=AS_OF, config=scoring_config(bundle, None))


def synthetic(n: int = 3000, seed: int = 0) -> tuple[Bundle, pd.DataFrame]:
    """A stump model on ``up`` (raises the odds), ``down`` (lowers them) and ``noise``."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "up": rng.uniform(0, 100, n),
            "down": rng.uniform(0, 10, n),
            "noise": rng.normal(size=n),
        },
        index=pd.Index([f"c{i:05d}" for i in range(n)], name="customer_id"),
    )
    logit = 0.06 * (X["up"] - 50) - 0.3 * (X["down"] - 5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X.loc[X.index[:40], "up"] = np.nan  # a missing bin
    params = {
        "objective": "binary",
        "max_depth": 1,  # stumps: an additive model, so each contribution depends on its feature only
        "num_leaves": 2,
        "learning_rate": 0.1,
        "monotone_constraints": [1, -1, 0],
        "min_data_in_leaf": 20,
        "deterministic": True,
        "seed": 0,
        "verbose": -1,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=150)
    spec = FeatureSpec(
        [
            Feature("up", "test", "orders", "Goes up", "올라감", unit="count"),
            Feature("down", "test", "orders", "Goes down", "내려감", unit="days"),
            Feature("noise", "test", "orders", "Noise", "잡음", unit="ratio"),
        ]
    )
    return (
        Bundle(
            path=Path("synthetic-model"),
            booster=booster,
            calibrator=Calibrator("none"),
            spec=spec,
            categories={},
            features=list(X.columns),
            info={"task": "vip"},
            metrics=pd.DataFrame(),
            reference={},
            config={},
        ),
        X,
    )


@pytest.fixture(scope="module")
def synth():
    return synthetic()


def with_orders(tables, *, start: pd.Timestamp, days: float, n: int = 400, amount: float = 5e4):
    """The tables plus ``n`` large orders of known customers spread over ``[start, start + days)``."""
    orders = tables.orders
    rng = np.random.default_rng(7)
    extra = orders.iloc[rng.choice(len(orders), n, replace=False)].copy()
    offsets = np.sort(rng.uniform(0, days, n))
    offsets[0] = 0.0  # one at the boundary instant itself
    extra["ordered_at"] = (start + pd.to_timedelta(offsets, unit="D")).as_unit("us")
    extra["amount"] = amount
    extra["order_id"] = [f"X{i:06d}" for i in range(n)]
    if "status" in extra:
        extra["status"] = "completed"
    for column in ("is_return", "is_cancelled"):
        if column in extra:
            extra[column] = False
    return tables.replace(orders=pd.concat([orders, extra], ignore_index=True))


# --------------------------------------------------------------------------- global drivers


def test_global_drivers_shares_sum_to_one_and_direction_follows_the_signal(synth):
    bundle, X = synth
    d = global_drivers(bundle, X, top=None)
    assert list(d.columns) == [
        "feature", "description_en", "description_ko", "unit", "mean_abs_contribution", "share",
        "direction", "spearman", "rank",
    ]  # fmt: skip
    assert d["share"].sum() == pytest.approx(1.0)
    assert d["rank"].tolist() == [1, 2, 3]
    assert d["mean_abs_contribution"].is_monotonic_decreasing
    by = d.set_index("feature")
    assert by.loc["up", "direction"] == 1 and by.loc["down", "direction"] == -1
    assert by.loc["noise", "rank"] == 3 and by.loc["noise", "share"] < 0.1
    assert by.loc["down", "description_ko"] == "내려감" and by.loc["down", "unit"] == "days"
    assert len(global_drivers(bundle, X, top=2)) == 2


def test_global_drivers_of_a_trained_model_read_the_feature_registry(bundle, X):
    d = global_drivers(bundle, X)
    assert len(d) == 10 and d["rank"].tolist() == list(range(1, 11))
    assert (d["description_en"] != d["feature"]).all() and (d["description_ko"] != "").all()
    assert d["share"].between(0, 1).all() and d["share"].sum() < 1
    assert set(d["direction"]) <= {-1, 0, 1}
    with pytest.raises(DataError, match="missing"):
        global_drivers(bundle, X.drop(columns=["recency_days"]))


# --------------------------------------------------------------------------- driver curves


def test_driver_curve_of_a_monotone_feature_is_monotone(synth):
    bundle, X = synth
    c = driver_curves(bundle, X, ["up", "down"], bins=10)
    up = c[c["feature"] == "up"]
    numeric = up[up["label"] != "missing"]
    assert len(numeric) == 10 and numeric["bin"].tolist() == list(range(10))
    assert np.all(np.diff(numeric["mean_contribution"]) >= 0)
    assert np.all(np.diff(numeric["mean_score"]) > -0.02)  # the other features average out
    assert numeric["mean_score"].iloc[-1] - numeric["mean_score"].iloc[0] > 0.5
    assert (numeric["value_low"] <= numeric["value_mid"]).all()
    assert (numeric["value_mid"] <= numeric["value_high"]).all()
    assert (numeric["value_high"].to_numpy()[:-1] < numeric["value_low"].to_numpy()[1:]).all()
    missing = up[up["label"] == "missing"]
    assert missing["customers"].tolist() == [40] and missing["bin"].tolist() == [10]
    assert up["customers"].sum() == len(X)
    down = c[c["feature"] == "down"]
    assert np.all(np.diff(down["mean_contribution"]) <= 0)
    assert down["label"].str.contains("–").all()


def test_driver_curves_of_categories_flags_and_errors(bundle, X):
    c = driver_curves(bundle, X, ["top_category", "is_vip"], bins=4)
    cat = c[c["feature"] == "top_category"]
    assert cat["customers"].sum() == len(X)
    assert cat["label"].tolist()[-2:] == ["other", "missing"] and len(cat) == 5
    assert cat["value_mid"].isna().all()
    flag = c[c["feature"] == "is_vip"]
    assert flag["label"].tolist() == ["0", "1"]
    assert flag["mean_score"].iloc[1] > flag["mean_score"].iloc[0]
    with pytest.raises(DataError, match="not among the model's features"):
        driver_curves(bundle, X, ["no_such_feature"])


# --------------------------------------------------------------------------- compare_groups


def cliffs_delta(a: np.ndarray, b: np.ndarray) -> float:
    """Reference: over all pairs, P(a > b) - P(a < b)."""
    diff = a[:, None] - b[None, :]
    return float((diff > 0).mean() - (diff < 0).mean())


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Reference: p_(i) m / i, made monotone from the largest p down, capped at 1."""
    m = len(p)
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        adjusted[i] = running
    return adjusted


@pytest.fixture(scope="module")
def groups():
    rng = np.random.default_rng(3)
    n = 400
    group = np.arange(n) < 100
    X = pd.DataFrame(
        {
            "higher": np.where(group, 10.0, 0.0) + rng.integers(0, 3, n),  # every group value above
            "shifted": rng.normal(size=n) + np.where(group, 0.8, 0.0),
            "lower": rng.poisson(np.where(group, 2, 4)).astype(float),
            "same": rng.normal(size=n),
            "zero_rest": np.where(group, 1.0, 0.0),
            "label": np.array(["x", "y"] * (n // 2)),
        },
        index=pd.Index([f"c{i:04d}" for i in range(n)], name="customer_id"),
    )
    return X, group


def test_compare_groups_known_answers(groups):
    X, group = groups
    out = compare_groups(X, group)
    assert list(out.columns) == [
        "feature", "description_en", "description_ko", "unit", "n_group", "n_rest",
        "missing_group", "missing_rest", "median_group", "median_rest", "mean_group", "mean_rest",
        "ratio", "effect_size", "p_value", "p_adjusted", "significant", "suppressed",
    ]  # fmt: skip
    assert "label" not in set(out["feature"])  # numeric features only by default
    by = out.set_index("feature")
    assert by.loc["higher", "effect_size"] == 1.0 and by.loc["higher", "significant"]
    assert by.loc["lower", "effect_size"] < -0.3
    for name in ("shifted", "lower", "same"):
        a, b = X.loc[group, name].to_numpy(), X.loc[~group, name].to_numpy()
        assert by.loc[name, "effect_size"] == pytest.approx(cliffs_delta(a, b), abs=1e-12)
        assert by.loc[name, "p_value"] == pytest.approx(
            stats.mannwhitneyu(a, b, alternative="two-sided").pvalue, rel=1e-12
        )
        assert by.loc[name, "median_group"] == pytest.approx(np.median(a), rel=1e-8)
        assert by.loc[name, "mean_rest"] == pytest.approx(b.mean())
    assert by.loc["shifted", "ratio"] == pytest.approx(
        X.loc[group, "shifted"].mean() / X.loc[~group, "shifted"].mean()
    )
    assert np.isnan(by.loc["zero_rest", "ratio"])  # the rest's mean is 0
    assert abs(by.loc["same", "effect_size"]) < 0.15 and not by.loc["same", "significant"]
    assert by["n_group"].unique().tolist() == [100] and by["n_rest"].unique().tolist() == [300]
    assert out["effect_size"].abs().is_monotonic_decreasing


def test_benjamini_hochberg_matches_a_reference_implementation():
    rng = np.random.default_rng(11)
    n, p = 300, 25
    group = rng.random(n) < 0.4
    shift = np.linspace(0, 0.6, p)
    X = pd.DataFrame(rng.normal(size=(n, p)) + np.outer(group, shift)).add_prefix("f")
    out = compare_groups(X, group, alpha=0.1).set_index("feature").loc[X.columns]
    np.testing.assert_allclose(
        out["p_adjusted"], benjamini_hochberg(out["p_value"].to_numpy()), rtol=1e-12
    )
    assert (out["p_adjusted"] >= out["p_value"]).all()
    assert (out["significant"] == (out["p_adjusted"] < 0.1)).all()
    assert 0 < out["significant"].sum() < p


def test_missing_values_are_left_out_and_counted(groups):
    X, group = groups
    X = X.copy()
    X.loc[X.index[:10], "shifted"] = np.nan  # group rows
    X.loc[X.index[200:250], "shifted"] = np.nan  # rest rows
    row = compare_groups(X, group, features=["shifted"]).iloc[0]
    assert (row["n_group"], row["missing_group"]) == (90, 10)
    assert (row["n_rest"], row["missing_rest"]) == (250, 50)
    a = X.loc[group, "shifted"].dropna().to_numpy()
    b = X.loc[~group, "shifted"].dropna().to_numpy()
    assert row["effect_size"] == pytest.approx(cliffs_delta(a, b), abs=1e-12)
    assert row["median_rest"] == pytest.approx(np.median(b), rel=1e-8)


def test_small_groups_are_suppressed(groups):
    X, _ = groups
    tiny = np.zeros(len(X), dtype=bool)
    tiny[:12] = True
    out = compare_groups(X, tiny, min_group=30)
    assert out["suppressed"].all() and not out["significant"].any()
    stats_columns = ["n_group", "n_rest", "median_group", "mean_group", "effect_size", "p_value"]
    assert out[stats_columns].isna().all().all()
    assert (out["description_en"] == out["feature"]).all()
    # one feature mostly missing in the group: only that row is suppressed
    X2 = X.copy()
    group = np.arange(len(X)) < 100
    X2.loc[X2.index[:80], "shifted"] = np.nan
    out2 = compare_groups(X2, group, min_group=30).set_index("feature")
    assert out2.loc["shifted", "suppressed"] and pd.isna(out2.loc["shifted", "n_group"])
    assert not out2.drop(index="shifted")["suppressed"].any()
    assert out2.index[-1] == "shifted"  # suppressed rows last


def test_group_is_aligned_and_checked(groups):
    X, group = groups
    as_series = pd.Series(group, index=X.index).iloc[::-1]  # shuffled order, aligned by index
    pd.testing.assert_frame_equal(compare_groups(X, as_series), compare_groups(X, group))
    partial = pd.Series(group, index=X.index).iloc[:300]  # rows it does not cover are left out
    assert compare_groups(X, partial, features=["same"])["n_rest"].iloc[0] == 200
    with pytest.raises(DataError, match="399 values but X has 400 rows"):
        compare_groups(X, group[:-1])
    with pytest.raises(DataError, match="True/False"):
        compare_groups(X, np.where(group, "vip", "regular"))
    with pytest.raises(DataError, match="not numeric"):
        compare_groups(X, group, features=["label"])
    with pytest.raises(DataError, match="no column"):
        compare_groups(X, group, features=["nope"])


# --------------------------------------------------------------------------- vip_comparison


@pytest.fixture(scope="module")
def comparison(tables, bundle):
    return vip_comparison(tables, as_of=AS_OF, bundle=bundle, horizon_days=HORIZON)


def test_vip_comparison_leaves_out_what_restates_the_rule(comparison, tables, cfg):
    vip = comparison["vip_vs_regular"]
    left_out = {"is_vip", "vip_spend_365d", "vip_gap", "net_spend_365d"}
    assert not left_out & set(vip["feature"])
    assert (
        "net_spend_365d"
        in comparison["notes"].set_index("comparison").loc["vip_vs_regular"].iloc[0]
    )
    status = vip_status(tables, as_of=AS_OF, config=cfg)
    row = vip.set_index("feature").loc["orders_all"]
    assert row["n_group"] + row["missing_group"] == status["is_vip"].sum()
    assert row["effect_size"] > 0.5 and row["significant"]  # VIPs buy more often
    conv = comparison["converters_vs_not"]
    assert "is_vip" not in set(conv["feature"]) and "vip_gap" in set(conv["feature"])
    assert conv.set_index("feature").loc["vip_gap", "effect_size"] < 0  # closer to the bar


def test_vip_comparison_reads_features_before_as_of_and_labels_inside_the_horizon(
    tables, bundle, comparison
):
    def run(t):
        return vip_comparison(t, as_of=AS_OF, bundle=bundle, horizon_days=HORIZON)

    def same(left: pd.DataFrame, right: pd.DataFrame) -> None:
        # means may move in the last bits (window sums add up in another order); ranks may not
        pd.testing.assert_frame_equal(left, right)
        exact = ["feature", "n_group", "n_rest", "effect_size", "p_value", "p_adjusted"]
        pd.testing.assert_frame_equal(left[exact], right[exact], check_exact=True)

    end = AS_OF + pd.Timedelta(days=HORIZON)
    # orders from as_of on (the cutoff instant included): VIP status and features unchanged
    later = run(with_orders(tables, start=AS_OF, days=HORIZON + 60))
    same(later["vip_vs_regular"], comparison["vip_vs_regular"])
    # orders from the horizon's end on: the converters unchanged too
    after = run(with_orders(tables, start=end, days=60))
    same(after["converters_vs_not"], comparison["converters_vs_not"])
    same(after["vip_vs_regular"], comparison["vip_vs_regular"])
    # ... while orders inside the horizon do move the converters, and orders before as_of the VIPs
    inside = run(with_orders(tables, start=AS_OF, days=HORIZON - 1))
    assert not inside["converters_vs_not"].equals(comparison["converters_vs_not"])
    before = run(with_orders(tables, start=AS_OF - pd.Timedelta(days=30), days=29))
    assert not before["vip_vs_regular"].equals(comparison["vip_vs_regular"])


def test_converters_are_omitted_when_the_data_ends_inside_the_horizon(tables, bundle):
    out = vip_comparison(tables, as_of="2024-12-01", bundle=bundle, horizon_days=HORIZON)
    assert "converters_vs_not" not in out and "vip_vs_regular" in out
    note = out["notes"].set_index("comparison").loc["converters_vs_not", "note"]
    assert note.startswith("omitted") and "data ends" in note


def test_vip_comparison_without_a_bundle_uses_every_numeric_feature(tables, cfg):
    out = vip_comparison(tables, as_of=AS_OF, config=cfg, min_group=30)
    X = build_features(tables, as_of=AS_OF, config=cfg)
    numeric = X.select_dtypes("number").columns
    assert len(out["vip_vs_regular"]) == len(numeric) - 4  # the four that restate the rule


# --------------------------------------------------------------------------- segment_profiles


def test_segment_profiles_of_a_scored_list(tables, bundle, X):
    targets = score(tables, bundle, as_of=AS_OF).targets
    prof = segment_profiles(targets, X, features=["spend_365d", "orders_all"], min_group=30)
    assert prof["customers"].sum() + 0 == pytest.approx(
        len(targets) - targets["segment"].map(targets["segment"].value_counts() < 30).sum()
    )
    shown = prof[~prof["suppressed"]]
    assert shown["customers"].is_monotonic_decreasing
    hv = prof.set_index("segment").loc["high_value"]
    # a conversion model leaves the VIPs at the cutoff unscored: their mean score is missing
    assert hv["mean_score"] == pytest.approx(
        targets.loc[targets["segment"] == "high_value", "score"].mean(), nan_ok=True
    )
    assert hv["median_spend_365d"] == pytest.approx(
        X.loc[targets.loc[targets["segment"] == "high_value", "customer_id"], "spend_365d"].median()
    )
    assert hv["play_en"].startswith("VIP concierge")


def test_segment_profiles_suppress_small_segments():
    targets = pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in range(45)],
            "score": np.linspace(0.9, 0.1, 45),
            "segment": ["repeat"] * 40 + ["new"] * 5,
            "selected": [True] * 20 + [False] * 25,
            "group": ["treatment"] * 20 + [""] * 25,
            "expected_value": 1.0,
            "play_en": ["Repeat play"] * 39 + ["Odd play"] + ["New play"] * 5,
            "play_ko": ["재구매"] * 39 + ["기타"] + ["신규"] * 5,
            "offer_type": ["upsell"] * 40 + ["bundle"] * 5,
        }
    )
    X = pd.DataFrame(
        {"spend_365d": np.arange(45.0)}, index=pd.Index(targets["customer_id"], name="customer_id")
    )
    prof = segment_profiles(targets, X, min_group=30).set_index("segment")
    assert prof.index.tolist() == ["repeat", "new"]
    repeat, new = prof.loc["repeat"], prof.loc["new"]
    assert (repeat["customers"], repeat["selected"], repeat["expected_value"]) == (40, 20, 40)
    assert repeat["share"] == pytest.approx(40 / 45) and repeat["median_spend_365d"] == 19.5
    assert repeat["play_en"] == "Repeat play" and not repeat["suppressed"]
    assert new["suppressed"] and new["play_en"] == "New play"
    numbers = [
        "customers",
        "share",
        "mean_score",
        "selected",
        "expected_value",
        "median_spend_365d",
    ]
    assert new[numbers].isna().all()
    with pytest.raises(DataError, match="no column 'segment'|segment"):
        segment_profiles(targets.drop(columns=["segment"]))


# --------------------------------------------------------------------------- driver_plays


def test_driver_plays_follow_the_config_and_fall_back_to_other(cfg):
    drivers = pd.DataFrame(
        {
            "feature": [
                "views_per_session_90d",
                "orders_all",
                "weekend_share_all",
                "app_minutes_30d",
            ],
            "description_en": ["a", "b", "c", "d"],
            "description_ko": ["가", "나", "다", "라"],
        }
    )
    plays = driver_plays(drivers, cfg)
    assert plays["matched"].tolist() == [True, True, False, True]
    assert plays["prefix"].tolist() == ["views", "orders", "", "app_minutes"]
    sc = cfg.score
    assert plays["play_en"].tolist()[1] == sc.driver_plays["orders"].en
    # the fallback names no customer's category
    assert plays["play_ko"].tolist()[2] == sc.playbook["other"].ko.replace(
        "{category}", "인기 카테고리"
    )
    assert plays["description_ko"].tolist() == ["가", "나", "다", "라"]
    assert plays["offer_type"].tolist()[0] == sc.driver_plays["views"].offer_type


def test_driver_plays_with_overlapping_prefixes_take_the_last_match():
    sc = ScoreConfig(
        driver_plays={
            "views": Play(en="Broad", ko="넓게"),
            "views_per": Play(en="Narrow", ko="좁게", offer_type="bundle"),
        }
    )
    drivers = pd.DataFrame({"feature": ["views_per_session_90d", "views_90d"]})
    plays = driver_plays(drivers, sc)
    assert plays["play_en"].tolist() == ["Narrow", "Broad"]
    assert plays["description_en"].tolist() == drivers["feature"].tolist()


# --------------------------------------------------------------------------- pareto


def test_pareto_by_hand():
    raw = {
        "customers": pd.DataFrame({"customer_id": list("abcde"), "signup_at": ["2024-01-01"] * 5}),
        "orders": pd.DataFrame(
            {
                "order_id": ["o1", "o2", "o3", "o4", "o5"],
                "customer_id": ["a", "a", "b", "c", "a"],
                "ordered_at": [
                    "2024-03-01",
                    "2024-04-01",
                    "2024-04-02",
                    "2024-05-01",
                    "2024-06-01",
                ],
                "amount": [600.0, 200.0, 150.0, 50.0, 1e6],  # o5 at as_of: not read
            }
        ),
    }
    t = load_tables(raw)[0]
    cfg = load_config(None, vip={"rule": "top_share", "share": 0.2})
    p = pareto(t, as_of="2024-06-01", config=cfg)
    assert p["customer_share"].tolist() == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert p["revenue_share"].tolist() == [0.0, 0.8, 0.95, 1.0, 1.0, 1.0]
    assert p.attrs["customers"] == 5 and p.attrs["revenue"] == 1000.0
    assert p.attrs["vip_customer_share"] == 0.2 and p.attrs["vip_revenue_share"] == 0.8
    assert p.attrs["top_20_revenue_share"] == 0.8


def test_pareto_curve_of_a_generated_retailer(tables, cfg):
    p = pareto(tables, as_of=AS_OF, config=cfg)
    assert len(p) == 101 and p["customer_share"].iloc[-1] == 1.0
    assert p["revenue_share"].is_monotonic_increasing
    assert p["revenue_share"].iloc[0] == 0.0 and p["revenue_share"].iloc[-1] == 1.0
    assert 0.09 < p.attrs["vip_customer_share"] <= 0.11
    assert p.attrs["vip_revenue_share"] > 0.5  # VIPs hold most of the revenue
    late = pareto(with_orders(tables, start=AS_OF, days=30), as_of=AS_OF, config=cfg)
    pd.testing.assert_frame_equal(late, p)
    assert late.attrs == p.attrs


# --------------------------------------------------------------------------- determinism


def test_same_inputs_same_bits(bundle, X, tables, comparison, groups):
    features = ["recency_days", "top_category"]
    pd.testing.assert_frame_equal(
        global_drivers(bundle, X, top=None), global_drivers(bundle, X, top=None), check_exact=True
    )
    pd.testing.assert_frame_equal(
        driver_curves(bundle, X, features), driver_curves(bundle, X, features), check_exact=True
    )
    again = vip_comparison(tables, as_of=AS_OF, bundle=bundle, horizon_days=HORIZON)
    assert again.keys() == comparison.keys()
    for key in again:
        pd.testing.assert_frame_equal(again[key], comparison[key], check_exact=True)
    X2, group = groups
    pd.testing.assert_frame_equal(
        compare_groups(X2, group), compare_groups(X2, group), check_exact=True
    )
