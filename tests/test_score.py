"""Batch scoring: target lists, reasons, selection, control groups, drift, atomic writes."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from vipml import DataError
from vipml.bundle import load_bundle, save_bundle
from vipml.config import load_config
from vipml.score import COLUMNS, control_group, score, segments, select
from vipml.train import train
from vipml.value import VALUE_COLUMNS

AS_OF = "2025-01-01"


@pytest.fixture(scope="module")
def tables(loaded_5k):
    return loaded_5k[0]


@pytest.fixture(scope="module")
def bundle(vip_bundle_5k):
    return vip_bundle_5k


@pytest.fixture(scope="module")
def scored(tables, bundle):
    return score(tables, bundle, as_of=AS_OF)


def test_one_row_per_known_customer_sorted_by_score(scored, tables):
    t = scored.targets
    assert list(t.columns) == COLUMNS + VALUE_COLUMNS  # a bundle with value models
    assert t["customer_id"].is_unique and len(t) == len(
        tables.known_at(pd.Timestamp(AS_OF, tz="UTC"))
    )
    inside = t["in_population"].to_numpy(dtype=bool)
    scored_rows = t[inside]
    assert scored_rows["score"].is_monotonic_decreasing and inside[: inside.sum()].all()
    assert scored_rows["score"].between(0, 1).all()
    assert scored_rows["percentile"].between(0, 1).all()
    assert set(scored_rows["tier"]) == {"A", "B", "C"}
    # a conversion model never saw a customer who was VIP at the cutoff: no score for them
    outside = t[~inside]
    assert len(outside) > 0 and outside["score"].isna().all() and not outside["selected"].any()
    assert scored.outside_population == len(outside)
    assert f"not scored: {len(outside):,} customers outside" in scored.summary()
    assert (t["horizon_days"] == 90).all()
    assert (t["cutoff"] == pd.Timestamp(AS_OF, tz="UTC")).all() and t["model_version"].iloc[
        0
    ].startswith("vip-")


def test_reasons_are_plain_sentences_in_both_languages(scored):
    top = scored.targets.iloc[0]
    assert top["reason_1_en"] and top["reason_1_ko"]
    assert ":" in top["reason_1_en"]
    with_pct = scored.targets["reason_1_en"].str.contains("higher than").mean()
    assert with_pct > 0.3
    inside = scored.targets[scored.targets["in_population"]]
    assert inside["reason_1_ko"].str.contains("상위|:").all()
    assert (scored.targets.loc[~scored.targets["in_population"], "reason_1_en"] == "").all()


def test_contributions_agree_with_shap(bundle, tables):
    shap = pytest.importorskip("shap", reason="shap is a dev dependency")
    from vipml.features import build_features
    from vipml.score import scoring_config
    from vipml.train import prepare_matrix

    X = build_features(tables, as_of=AS_OF, config=scoring_config(bundle, None)).head(200)
    M = prepare_matrix(X, bundle.features, bundle.categories)
    ours = bundle.booster.predict(M, pred_contrib=True)[:, :-1]
    theirs = shap.TreeExplainer(bundle.booster).shap_values(M)
    np.testing.assert_allclose(ours, np.asarray(theirs), atol=1e-9)
    raw = bundle.booster.predict(M, raw_score=True)
    np.testing.assert_allclose(
        bundle.booster.predict(M, pred_contrib=True).sum(axis=1), raw, atol=1e-9
    )


def test_same_inputs_same_list_bit_for_bit(tables, bundle, scored):
    again = score(tables, bundle, as_of=AS_OF)
    pd.testing.assert_frame_equal(again.targets, scored.targets, check_exact=True)


def test_control_group_is_seeded_and_stratified_by_tier(scored):
    t = scored.targets
    sel = t[t["selected"]]
    for _tier, part in sel.groupby("tier"):
        assert (part["group"] == "control").sum() == int(np.floor(0.1 * len(part) + 0.5))
    assert (t.loc[~t["selected"], "group"] == "").all()
    other = control_group(t, t["selected"].to_numpy(), 0.1, seed=99)
    assert (other != t["group"].to_numpy()).any()


def test_selection_under_capacity_budget_and_caps(scored):
    from vipml.config import ScoreConfig

    t = scored.targets.assign(_cost=1.0)
    assert select(t, ScoreConfig(capacity=100)).sum() == 100
    chosen = select(t, ScoreConfig(select_by="score", capacity=100))
    reachable = t["channel"] != ""  # a customer who refused every channel is never selected
    assert t.loc[chosen, "score"].min() >= t.loc[~chosen & reachable, "score"].max()
    auto = select(t, ScoreConfig(capacity=100))  # the default: by expected (incremental) value
    assert t.loc[auto, "expected_value"].min() >= t.loc[~auto & reachable, "expected_value"].max()
    assert select(t, ScoreConfig(budget=42.5)).sum() == 42
    caps = select(t, ScoreConfig(segment_caps={"high_value": 5}, capacity=300))
    assert (t.loc[caps, "segment"] == "high_value").sum() <= 5
    by_value = select(t, ScoreConfig(select_by="expected_value", capacity=50))
    assert (
        t.loc[by_value, "expected_value"].min()
        >= t.loc[~by_value & reachable, "expected_value"].max()
    )


def test_segments_by_rule_priority():
    from vipml.config import SegmentRules

    X = pd.DataFrame(
        {
            "is_vip": [1, 0, 0, 0, 0, 0],
            "spend_365d": [900, 10, 10, 10, 10, 0],
            "recency_days": [5, 200, 10, 10, 10, np.nan],
            "overdue_ratio": [0.5, 3, 0.5, 0.5, 0.5, np.nan],
            "top_view_category_share_90d": [0.9, 0.9, 0.8, 0.1, 0.1, np.nan],
            "views_90d": [9, 9, 9, 0, 0, 0],
            "tenure_days": [400, 400, 400, 30, 400, np.nan],
            "tenure_signup_days": [500] * 5 + [10],
            "orders_all": [9, 9, 9, 1, 3, 0],
        }
    )
    assert segments(X, SegmentRules()).tolist() == [
        "high_value",
        "at_risk",
        "category_interest",
        "new",
        "repeat",
        "new",
    ]


def test_features_that_do_not_match_the_bundle_are_named(tables, bundle):
    from vipml.config import load_config

    cfg = load_config(None, features={"windows": [30, 90]})
    trained = bundle.config
    bundle.config = {**trained, "features": cfg.features.model_dump()}
    try:
        with pytest.raises(DataError, match=r"missing .*spend_180d"):
            score(tables, bundle, as_of=AS_OF)
    finally:
        bundle.config = trained


def test_drift_is_measured_and_warned(tables, bundle):
    shifted = tables.replace(orders=tables.orders.assign(amount=tables.orders["amount"] * 20))
    result = score(shifted, bundle, as_of=AS_OF)
    assert result.drift["spend_365d"] > 0.25
    assert any("drifted" in w and "spend" in w for w in result.warnings)


def test_upsell_ranks_offer_types_per_customer(tables, tmp_path):
    cfg = load_config(
        None, labels={"acceptance_days": 14}, train={"task": "upsell"}, tracking={"enabled": False}
    )
    up = load_bundle(save_bundle(train(tables, cfg), tables=tables, config=cfg, out=tmp_path))
    t = score(tables, up, as_of=AS_OF).targets
    per_customer = t.groupby("customer_id")
    assert (per_customer.size() == 3).all()
    assert set(t["offer_type"]) == {"upsell", "cross_sell", "bundle"}
    for _kind, part in t.groupby("offer_type"):  # percentiles rank customers for one offer type
        assert part["percentile"].max() == 1.0
    first = t[t["offer_rank"] == 1].set_index("customer_id")["score"].sort_index()
    assert (first >= per_customer["score"].max().sort_index() - 1e-12).all()


WRITER = r"""
import sys, numpy as np, pandas as pd
from vipml.tables import write_frame
n = 3_000_000
frame = pd.DataFrame({"customer_id": np.arange(n).astype(str), "score": np.random.default_rng(0).random(n)})
print("writing", flush=True)
write_frame(frame, sys.argv[1])
"""


def test_a_writer_killed_mid_way_leaves_the_old_list_intact(tmp_path, scored):
    from vipml.tables import write_frame

    target = tmp_path / "targets.csv"
    write_frame(scored.targets, target)
    before = target.read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.5)  # the CSV writer is in the middle of its 3M rows
    proc.kill()
    proc.wait()
    assert list(tmp_path.glob(".targets.csv.*.tmp"))  # it was killed while writing
    assert target.read_bytes() == before
    pd.read_csv(target)  # still a whole, readable list


def test_a_scoring_run_is_logged_when_tracking_is_on(tmp_path, monkeypatch, scored, bundle):
    import mlflow

    from vipml.tracking import log_scoring

    monkeypatch.chdir(tmp_path)
    cfg = load_config(None)
    info = log_scoring(scored, bundle, tmp_path / "t.parquet", cfg, AS_OF)
    run = mlflow.get_run(info["run_id"])
    assert run.data.metrics["rows"] == len(scored.targets)
    assert (
        run.data.tags["vipml.kind"] == "scoring"
        and run.data.params["model_version"] == bundle.version
    )
    assert (
        log_scoring(
            scored,
            bundle,
            tmp_path / "t.parquet",
            load_config(None, tracking={"enabled": False}),
            AS_OF,
        )
        is None
    )


def test_a_churn_score_puts_customers_at_risk():
    from vipml.config import SegmentRules

    X = pd.DataFrame({"orders_all": [3, 3], "recency_days": [10, 10], "tenure_days": [400, 400]})
    assert segments(X, SegmentRules()).tolist() == ["repeat", "repeat"]
    assert segments(X, SegmentRules(), churn=np.array([0.9, 0.1])).tolist() == ["at_risk", "repeat"]


def test_scores_equal_the_bundles_own_predictions(scored, bundle, tables):
    from vipml.features import build_features
    from vipml.score import scoring_config

    X = build_features(tables, as_of=AS_OF, config=scoring_config(bundle, None))
    expected = pd.Series(bundle.predict(X), index=X.index)
    t = scored.targets.set_index("customer_id")
    inside = t.loc[expected.index, "in_population"].to_numpy(dtype=bool)
    got = t["score"].loc[expected.index].to_numpy()
    np.testing.assert_allclose(got[inside], expected.to_numpy()[inside], rtol=1e-12, atol=1e-12)
