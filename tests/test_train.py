"""Time-ordered training on the generated retailer: folds, calibration, baselines, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml import DataError, load_tables
from vipml.config import load_config
from vipml.datasets import make_retailer
from vipml.metrics import evaluate, expected_calibration_error, lift_capture
from vipml.train import Calibrator, build_dataset, plan_cutoffs, rank_correlation, train


@pytest.fixture(scope="module")
def retailer():
    return make_retailer(6000, seed=0)


@pytest.fixture(scope="module")
def tables(retailer):
    return load_tables(retailer.tables())[0]


@pytest.fixture(scope="module")
def config():
    return load_config(None, labels={"horizon_days": 90}, train={"n_cutoffs": 4})


@pytest.fixture(scope="module")
def result(tables, config):
    return train(tables, config)


def test_validation_and_test_are_a_horizon_apart_training_cutoffs_a_third(tables, config):
    plan = plan_cutoffs(tables, config)
    train_cuts, valid, test = plan.folds["train"], plan.folds["valid"][0], plan.folds["test"][0]
    assert (valid - train_cuts[-1]).days >= 90 and (test - valid).days >= 90
    gaps = np.diff([c.value for c in train_cuts]) / 86_400e9
    assert len(train_cuts) == 4 and (gaps == 30).all()  # train.step_days: a third of the horizon
    end = max(tables.orders["ordered_at"].max(), tables.events["occurred_at"].max())
    assert test + pd.Timedelta(days=90) <= end + pd.Timedelta(days=1)
    assert plan.folds["test"] == [plan.cutoffs[-1]] and plan.folds["valid"] == [plan.cutoffs[-2]]
    # the shipped model is refit on every cutoff a step apart up to the newest (the test one)
    refit = sorted(plan.refit)
    assert refit[0] == train_cuts[0] and refit[-1] == test and valid in refit
    assert set(np.diff([c.value for c in refit]) / 86_400e9) <= {30.0}


def test_step_days_a_horizon_keeps_the_old_plan(tables):
    cfg = load_config(
        None, labels={"horizon_days": 90}, train={"n_cutoffs": 4, "step_days": 90, "refit": False}
    )
    plan = plan_cutoffs(tables, cfg)
    gaps = np.diff([c.value for c in plan.cutoffs]) / 86_400e9
    assert len(plan.cutoffs) == 4 and (gaps >= 90).all() and plan.refit == {}


def test_short_history_shortens_the_horizon_and_says_so(tables):
    cfg = load_config(None, labels={"horizon_days": 400}, train={"n_cutoffs": 4})
    plan = plan_cutoffs(tables, cfg)
    assert plan.horizon_days < 400 and len(plan.cutoffs) >= 3
    assert "horizon shortened from 400" in plan.notes[0]


def test_strict_horizon_refuses_to_shorten(tables):
    cfg = load_config(
        None, labels={"horizon_days": 400}, train={"n_cutoffs": 4, "strict_horizon": True}
    )
    with pytest.raises(DataError, match=r"(?s)horizon_days is 400 .*strict_horizon is set"):
        plan_cutoffs(tables, cfg)


def test_overlapping_explicit_cutoffs_are_refused(tables):
    cfg = load_config(
        None,
        labels={"horizon_days": 90},
        train={"cutoffs": ["2024-01-01", "2024-06-01", "2024-07-01"]},
    )
    with pytest.raises(DataError, match="overlap"):
        plan_cutoffs(tables, cfg)


def test_model_beats_the_rfm_baseline_and_tracks_the_latent_propensity(
    result, tables, config, retailer
):
    m = result.metrics
    assert m.loc["model", "roc_auc"] > m.loc["rfm_heuristic", "roc_auc"]
    assert m.loc["model", "pr_auc"] > m.loc["rfm_heuristic", "pr_auc"]
    assert m.loc["model", "roc_auc"] > 0.75
    X, _ = build_dataset(tables, result.plan, config)
    test = X.xs(result.plan.cutoffs[-1], level="as_of", drop_level=False)
    latent = retailer.latent.set_index("customer_id")["propensity"]
    corr = rank_correlation(
        result.predict(test), latent.reindex(test.index.get_level_values(1)).to_numpy()
    )
    assert corr > 0.3


def test_calibrated_probabilities_and_a_backtest_per_cutoff(result):
    assert result.calibrator.method in ("isotonic", "platt")
    assert result.metrics.loc["model", "ece"] < 0.05
    assert result.backtest["fold"].tolist() == ["train"] * 4 + ["valid", "test"]
    assert set(result.backtest.columns) >= {"as_of", "roc_auc", "pr_auc", "lift_10", "brier", "ece"}


def test_same_input_same_model(tables, config, result):
    again = train(tables, config)
    assert again.booster.model_to_string() == result.booster.model_to_string()
    pd.testing.assert_frame_equal(again.metrics, result.metrics)


def test_too_few_positives_is_a_clear_error(tables):
    cfg = load_config(
        None, labels={"horizon_days": 90}, train={"n_cutoffs": 4, "min_positives": 10_000}
    )
    with pytest.raises(DataError, match=r"positive labels among .*at least 10000"):
        train(tables, cfg)


def test_calibrator_round_trips_as_plain_numbers():
    rng = np.random.default_rng(0)
    s = rng.random(500)
    y = (rng.random(500) < s).astype(int)
    for method in ("isotonic", "platt"):
        cal = Calibrator(method).fit(s, y)
        back = Calibrator.from_dict(cal.to_dict())
        np.testing.assert_array_equal(back.predict(s), cal.predict(s))


def test_metrics_by_hand():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    lift, capture = lift_capture(y, s, 0.2)  # top 2 rows: one positive
    assert (lift, capture) == (2.5, 0.5)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0]), bins=2) == 0
    out = evaluate(y, s)
    assert out["roc_auc"] == pytest.approx(1 - 1 / 16)  # one negative above one positive


def test_bundle_round_trip_without_pickle_and_refuses_other_features(
    tmp_path, result, tables, config
):
    from datetime import UTC, datetime

    from vipml.bundle import load_bundle, save_bundle

    path = save_bundle(
        result,
        tables=tables,
        config=config,
        out=tmp_path,
        now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    assert path.name == "vip-20260102-030405"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    bundle = load_bundle(path)
    X, _ = build_dataset(tables, result.plan, config)
    np.testing.assert_array_equal(bundle.predict(X), result.predict(X))
    assert bundle.info["cutoffs"][-1] == result.plan.cutoffs[-1].isoformat()
    assert len(bundle.info["data_fingerprint"]) == 16 and bundle.info["vipml_version"]
    assert bundle.spec["spend_30d"].ko == "최근 30일 구매 금액"
    with pytest.raises(DataError, match="missing spend_30d"):
        bundle.predict(X.drop(columns=["spend_30d"]))
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pickle"))


def test_upsell_rows_are_offers_with_features_before_the_send_week(retailer, tables):
    from vipml.train import build_offer_dataset

    cfg = load_config(None, labels={"acceptance_days": 14}, train={"task": "upsell"})
    X, y, masks, plan = build_offer_dataset(tables, cfg)
    assert X.index.names == ["as_of", "offer_id"]
    assert {"offer_type", "offer_category", "offer_channel", "offer_discount_pct"} <= set(X.columns)
    offers = tables.offers.set_index("offer_id")
    sent = offers.loc[X.index.get_level_values("offer_id"), "sent_at"].to_numpy()
    assert (X.index.get_level_values("as_of").to_numpy() <= sent).all()  # features before sending
    assert (offers.loc[X.index.get_level_values("offer_id"), "group"] != "control").all()
    # no training offer's acceptance window reaches into the validation fold
    valid_start = min(plan.folds["valid"])
    train_sent = pd.Series(sent[masks["train"]])
    assert (train_sent + pd.Timedelta(days=14) <= valid_start).all()
    assert not (masks["train"] & masks["test"]).any()


def test_upsell_model_beats_both_baselines(tables):
    cfg = load_config(None, labels={"acceptance_days": 14}, train={"task": "upsell"})
    result = train(tables, cfg)
    m = result.metrics
    for baseline in ("logistic_regression", "rfm_heuristic"):
        assert m.loc["model", "roc_auc"] > m.loc[baseline, "roc_auc"]
        assert m.loc["model", "pr_auc"] > m.loc[baseline, "pr_auc"]


def test_a_training_run_is_tracked_and_its_model_loads_through_mlflow(
    tmp_path, monkeypatch, result, tables
):
    import mlflow

    from vipml.bundle import save_bundle
    from vipml.tracking import log_training

    monkeypatch.chdir(tmp_path)
    cfg = load_config(
        None,
        labels={"horizon_days": 90},
        train={"n_cutoffs": 4},
        tracking={"registered_model": "vip-test"},
    )
    bundle = save_bundle(result, tables=tables, config=cfg, out=tmp_path / "models")
    info = log_training(result, bundle, cfg)
    assert info["tracking_uri"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = mlflow.get_run(info["run_id"])
    assert run.data.metrics["model.roc_auc"] == pytest.approx(
        result.metrics.loc["model", "roc_auc"]
    )
    assert "rfm_heuristic.pr_auc" in run.data.metrics and run.data.params["task"] == "vip"
    # the expected-value measures and next_order_at's weight chosen at training
    nxt = result.value.info["next_order"]
    assert run.data.metrics["value.next_order.cycle_prior"] == result.value.cycle_prior
    assert run.data.metrics["value.next_order.test_mae_days_chosen"] == pytest.approx(
        nxt["test_mae_days_chosen"]
    )
    assert "value.spend.mae" in run.data.metrics
    model = mlflow.pyfunc.load_model("models:/vip-test/1")
    X, _ = build_dataset(tables, result.plan, cfg)
    sample = X.head(20)
    got = model.predict(sample.reset_index(drop=True))["score"].to_numpy()
    np.testing.assert_allclose(got, result.predict(sample))
    off = load_config(None, tracking={"enabled": False})
    assert log_training(result, bundle, off) is None


def test_backtest_and_curves_set_the_model_beside_the_baselines(result):
    bt = result.backtest
    assert {"lr_roc_auc", "lr_pr_auc", "rfm_roc_auc", "rfm_pr_auc"} <= set(bt.columns)
    test = bt[bt["fold"] == "test"].iloc[0]
    m = result.metrics
    assert test["roc_auc"] == pytest.approx(m.loc["model", "roc_auc"])
    assert test["lr_roc_auc"] == pytest.approx(m.loc["logistic_regression", "roc_auc"])
    roc = result.curves["model"]
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and roc["fpr"][-1] == 1
    assert all(np.diff(roc["tpr"]) >= 0) and all(np.diff(roc["captured"]) >= 0)
    # the area under the thinned curve is close to the exact ROC AUC
    assert np.trapezoid(roc["tpr"], roc["fpr"]) == pytest.approx(
        m.loc["model", "roc_auc"], abs=0.02
    )
    assert "predicted" not in result.curves["rfm_heuristic"]  # a rank, not a probability
    assert sum(result.curves["model"]["bin_rows"]) == m.loc["model", "rows"]
