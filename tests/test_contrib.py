"""Contributions per decision pattern equal LightGBM's own TreeSHAP."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from vipml.contrib import tree_contributions
from vipml.features import build_features
from vipml.model import prepare_matrix


def test_equal_to_pred_contrib_on_a_bundle(loaded_5k, vip_bundle_5k):
    X = build_features(loaded_5k[0], as_of="2025-01-01")
    M = prepare_matrix(X, vip_bundle_5k.features, vip_bundle_5k.categories)
    expected = vip_bundle_5k.booster.predict(M, pred_contrib=True)
    got = tree_contributions(vip_bundle_5k.booster, M)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # a row's values do not depend on the other rows
    part = tree_contributions(vip_bundle_5k.booster, M.iloc[100:400])
    assert np.array_equal(part, got[100:400])


@pytest.mark.parametrize(
    "leaves, zero_as_missing", [(7, False), (7, True), (15, False), (40, False)]
)
def test_missing_values_zeros_and_categories(leaves, zero_as_missing):
    rng = np.random.default_rng(leaves)
    n = 4000
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": np.where(rng.random(n) < 0.3, np.nan, rng.exponential(size=n)),
            "c": np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n)),
            "d": pd.Categorical(
                rng.choice(["x", "y", "z", "w", None], size=n), categories=["w", "x", "y", "z"]
            ),
        }
    )
    logit = frame["a"] + np.nan_to_num(frame["b"]) - frame["c"] + (frame["d"] == "x") * 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    booster = lgb.train(
        {
            "objective": "binary",
            "num_leaves": leaves,
            "min_child_samples": 5,
            "zero_as_missing": zero_as_missing,
            "verbosity": -1,
            "seed": 1,
            "min_data_per_group": 5,
            "cat_smooth": 1,
        },
        lgb.Dataset(frame, y),
        num_boost_round=30,
    )
    expected = booster.predict(frame, pred_contrib=True)
    np.testing.assert_allclose(tree_contributions(booster, frame), expected, rtol=0, atol=1e-12)


def test_rows_shared_by_two_threads_give_the_same_bits(loaded_5k, vip_bundle_5k, monkeypatch):
    """Large scoring runs split the rows over two threads: the result is the one-pass result,
    bit for bit, categorical splits included."""
    import vipml.contrib as contrib

    X = build_features(loaded_5k[0], as_of="2025-01-01")
    M = prepare_matrix(X, vip_bundle_5k.features, vip_bundle_5k.categories)
    one = tree_contributions(vip_bundle_5k.booster, M)
    monkeypatch.setattr(contrib, "PARALLEL_ROWS", 100)
    monkeypatch.setattr(contrib.os, "cpu_count", lambda: 2)
    two = tree_contributions(vip_bundle_5k.booster, M)
    assert np.array_equal(one, two)
    np.testing.assert_allclose(
        two, vip_bundle_5k.booster.predict(M, pred_contrib=True), rtol=0, atol=1e-12
    )
