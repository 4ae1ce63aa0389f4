"""One machine, bucket by bucket: the same features and target list as the whole-data path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml import DataError
from vipml.buckets import (
    bucket_of,
    drift_counts,
    drift_from_counts,
    features_local,
    percentile_thresholds,
    score_local,
)
from vipml.features import build_snapshots
from vipml.model import population_stability
from vipml.score import score
from vipml.value import VALUE_COLUMNS

AS_OF = "2025-01-01"
CUTOFFS = ["2024-06-01", AS_OF]


def assert_same_frames(expected: pd.DataFrame, got: pd.DataFrame) -> None:
    """Equal column by column, bit for bit (floats compared as bits, NaN equal to NaN), the
    population models of the BTYD family included."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    for c in expected.columns:
        a, b = expected[c], got[c]
        if a.dtype.kind == "f":
            assert np.array_equal(a.to_numpy(), b.to_numpy(dtype=np.float64), equal_nan=True), c
            assert (a.to_numpy().view(np.int64) == b.to_numpy(dtype=np.float64).view(np.int64))[
                ~np.isnan(a.to_numpy())
            ].all(), c
        else:
            left = a.astype("object").where(a.notna(), None).tolist()
            right = b.astype("object").where(b.notna(), None).tolist()
            assert left == right, c


@pytest.fixture(scope="module")
def parquet_folder(retailer_5k, tmp_path_factory):
    """The 5,000-customer retailer as Parquet: orders as a month-partitioned dataset, the rest
    as files."""
    folder = tmp_path_factory.mktemp("bucket-data")
    raw = retailer_5k.tables()
    for name, frame in raw.items():
        if name == "orders":
            month = pd.to_datetime(frame["ordered_at"], utc=True).dt.strftime("%Y-%m")
            frame.assign(month=month).to_parquet(folder / "orders", partition_cols=["month"])
        else:
            frame.to_parquet(folder / f"{name}.parquet")
    return folder


def test_bucket_of_is_stable_and_spreads_customers():
    ids = pd.Series([f"c{i}" for i in range(10_000)])
    a, b = bucket_of(ids, 8), bucket_of(ids.to_numpy(), 8)
    assert np.array_equal(a, b) and set(a) == set(range(8))
    assert np.bincount(a).min() > 1000


def test_features_bucket_by_bucket_equal_the_whole_build(parquet_folder, loaded_5k, tmp_path):
    tables = loaded_5k[0]
    expected = build_snapshots(tables, cutoffs=CUTOFFS)
    run = features_local(parquet_folder, cutoffs=CUTOFFS, out=tmp_path / "features", n_buckets=5)
    got = pd.read_parquet(tmp_path / "features").set_index(["as_of", "customer_id"]).sort_index()
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == [
        f"part-{k:05d}.parquet" for k in range(5)
    ]
    # the VIP bar and the BTYD fits are population figures: bucket-local ones would differ
    assert expected["btyd_expected_spend"].notna().sum() > 5000
    assert_same_frames(expected.sort_index(), got[expected.columns])
    assert run.rows == len(expected)
    assert {"split", "buckets", "aggregate", "write"} <= set(run.seconds)


def _summaries(n: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    days = rng.poisson(2.0, n) + 1.0
    x = days - 1
    T = rng.uniform(1, 52, n).round(3)
    tx = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0).round(3)
    m = np.where(x > 0, rng.gamma(2.0, 30.0, n).round(2), 0.0)
    s = {"days": days, "x": x, "t_x": tx, "T": T, "m": m, "value": m * days}
    return s, np.array([f"c{i:05d}" for i in range(n)], dtype=object)


@pytest.mark.parametrize("limit", [100_000, 300])
def test_btyd_fit_ignores_row_order_and_buckets(monkeypatch, limit):
    import vipml.features.btyd as btyd
    from vipml.buckets import btyd_candidates

    monkeypatch.setattr(btyd, "MAX_FIT_CUSTOMERS", limit)
    s, ids = _summaries(3000)
    whole = btyd.fit_population(s, ids)
    assert whole["bgnbd"] is not None and whole["gamma_gamma"] is not None
    shuffled = np.random.default_rng(1).permutation(len(ids))
    again = btyd.fit_population({k: v[shuffled] for k, v in s.items()}, ids[shuffled])
    merged = None
    for part in np.array_split(shuffled, 5):  # five buckets, each handing over its candidates
        frame = pd.DataFrame({f"_btyd_{k}": v[part] for k, v in s.items()})
        found = btyd_candidates(frame, ids[part])
        if limit < len(part):
            assert len(found) < len(part)
        merged = btyd.merge_candidates(merged, found)
    from_buckets = btyd.fit_from_candidates(merged)
    for fit in (again, from_buckets):
        for model in ("bgnbd", "gamma_gamma"):
            assert fit[model].tobytes() == whole[model].tobytes(), model
    # the sample is the lowest keys: a different sample changes the parameters
    if limit < len(ids):
        other = btyd.fit_population({k: v[::-1] for k, v in s.items()}, ids)
        assert other["bgnbd"].tobytes() != whole["bgnbd"].tobytes()


def test_btyd_features_by_bucket_equal_the_whole_build_on_a_sample(
    parquet_folder, loaded_5k, tmp_path, monkeypatch
):
    import vipml.features.btyd as btyd

    monkeypatch.setattr(btyd, "MAX_FIT_CUSTOMERS", 800)  # the fit samples: 800 of ~4,000 buyers
    cfg = {"features": {"families": ["btyd"]}}
    from vipml.config import load_config

    config = load_config(None, **cfg)
    expected = build_snapshots(loaded_5k[0], cutoffs=CUTOFFS, config=config).sort_index()
    features_local(parquet_folder, cutoffs=CUTOFFS, out=tmp_path / "f", n_buckets=3, config=config)
    got = pd.read_parquet(tmp_path / "f").set_index(["as_of", "customer_id"]).sort_index()
    assert list(got.columns) == list(btyd.NAMES)
    assert expected["btyd_p_alive"].notna().sum() > 3000
    assert_same_frames(expected, got[expected.columns])


def test_target_list_bucket_by_bucket_equals_single_machine(
    parquet_folder, loaded_5k, bucket_bundle_5k, tmp_path
):
    single = score(loaded_5k[0], bucket_bundle_5k, as_of=AS_OF)
    run, drift = score_local(
        parquet_folder, bucket_bundle_5k, as_of=AS_OF, out=tmp_path / "list", n_buckets=4
    )
    got = pd.read_parquet(tmp_path / "list")
    assert set(VALUE_COLUMNS) <= set(got.columns)  # the expected-value columns too
    assert got["p_alive"].notna().sum() > 1000 and got["next_order_at"].notna().sum() > 1000
    assert_same_frames(single.targets, got)
    pd.testing.assert_series_equal(drift, single.drift, check_exact=True)
    assert got["reason_1_en"].str.contains("higher than").any()


def test_drift_from_summed_counts_equals_population_stability(loaded_5k, bucket_bundle_5k):
    from vipml.features import build_features

    X = build_features(loaded_5k[0], as_of=AS_OF)
    parts = np.array_split(np.arange(len(X)), 3)
    from vipml.buckets import add_counts

    counts = drift_counts(bucket_bundle_5k.reference, X.iloc[parts[0]])
    for p in parts[1:]:
        counts = add_counts(counts, drift_counts(bucket_bundle_5k.reference, X.iloc[p]))
    expected = population_stability(bucket_bundle_5k.reference, X)
    pd.testing.assert_series_equal(
        drift_from_counts(bucket_bundle_5k.reference, counts), expected, check_exact=True
    )


def test_percentile_cut_points_give_the_searchsorted_percentile():
    rng = np.random.default_rng(0)
    ref = np.round(rng.exponential(50, 997), 1)
    ref[::50] = np.nan
    cuts = percentile_thresholds(ref)
    present = np.sort(ref[~np.isnan(ref)])
    for v in np.concatenate([present, [-1.0, 1e9]]):
        p = int(np.floor(np.searchsorted(present, v, side="right") / len(present) * 100))
        reached = int(np.searchsorted(cuts[~np.isnan(cuts)], v, side="right"))
        q = 49 + reached if reached else -1
        assert (q if q >= 50 else None) == (p if p >= 50 else None)


def test_streaming_split_in_small_batches_gives_the_same_features(
    parquet_folder, loaded_5k, tmp_path, monkeypatch
):
    """Batches, write buffers and the order lines' join parts much smaller than the data: every
    streaming path of the split runs many times, and the features are still the whole build's."""
    import vipml.buckets as buckets

    monkeypatch.setattr(buckets, "READ_BATCH_ROWS", 3000)
    monkeypatch.setattr(buckets, "WRITE_BUFFER_ROWS", 10_000)
    expected = build_snapshots(loaded_5k[0], cutoffs=[AS_OF]).sort_index()
    features_local(parquet_folder, cutoffs=[AS_OF], out=tmp_path / "f", n_buckets=3)
    got = pd.read_parquet(tmp_path / "f").set_index(["as_of", "customer_id"]).sort_index()
    assert_same_frames(expected, got[expected.columns])


def test_a_missing_contract_column_is_refused_before_any_bucket(tmp_path, retailer_5k):
    raw = retailer_5k.tables()
    raw["orders"].drop(columns=["amount"]).to_parquet(tmp_path / "orders.parquet")
    with pytest.raises(DataError, match="amount") as err:
        features_local(tmp_path, cutoffs=[AS_OF], out=tmp_path / "out", n_buckets=2)
    assert "orders" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_customer_with_too_many_rows_is_named(tmp_path, retailer_5k):
    raw = retailer_5k.tables()
    raw["orders"].to_parquet(tmp_path / "orders.parquet")
    top = raw["orders"]["customer_id"].value_counts()
    with pytest.raises(DataError) as err:
        features_local(
            tmp_path,
            cutoffs=[AS_OF],
            out=tmp_path / "out",
            n_buckets=2,
            max_customer_rows=int(top.iloc[0]) - 1,
        )
    assert str(top.index[0]) in str(err.value) and f"{int(top.iloc[0]):,}" in str(err.value)
    assert "orders" in str(err.value) and "Fix:" in str(err.value)


def test_a_reseller_is_refused_from_its_ids_before_its_bucket_is_read(
    tmp_path, retailer_5k, monkeypatch
):
    """One customer with a huge history: named with its row count from the bucket's id column
    alone; the bucket's rows are never loaded."""
    import vipml.buckets as buckets

    raw = retailer_5k.tables()
    orders = raw["orders"]
    big = orders.sample(20_000, replace=True, random_state=0).assign(customer_id="RESELLER-1")
    big["order_id"] = [f"R{i}" for i in range(len(big))]
    pd.concat([orders, big]).to_parquet(tmp_path / "orders.parquet")
    read = []
    real = buckets.Staged.bucket
    monkeypatch.setattr(buckets.Staged, "bucket", lambda self, k: read.append(k) or real(self, k))
    with pytest.raises(DataError) as err:
        features_local(
            tmp_path, cutoffs=[AS_OF], out=tmp_path / "out", n_buckets=4, max_customer_rows=5000
        )
    assert "RESELLER-1" in str(err.value) and "20,000" in str(err.value)
    assert buckets.bucket_of(pd.Series(["RESELLER-1"]), 4)[0] not in read
    assert not (tmp_path / "out").exists()


def test_bucket_purchase_summary_ignores_rows_at_or_after_the_cutoff(retailer_5k):
    """The purchase summary a bucket hands over for the expected-value timing reads only rows
    before the cutoff (a late row at the cutoff instant or after changes none of its bits)."""
    from vipml.buckets import bucket_features
    from vipml.config import load_config
    from vipml.value import HIDDEN

    cfg = load_config(None, features={"families": ["purchase"]})
    raw = {k: v for k, v in retailer_5k.tables().items() if k in ("orders", "customers")}
    as_of = pd.Timestamp(AS_OF, tz="UTC")
    base, _ = bucket_features(raw, [as_of], cfg, value_at=as_of)
    who = base.index.get_level_values("customer_id")[3]
    late = raw["orders"].iloc[[0, 0]].copy()
    late["order_id"] = ["late-1", "late-2"]
    late["customer_id"] = who
    late["ordered_at"] = [as_of, as_of + pd.Timedelta(days=2)]
    more = dict(raw, orders=pd.concat([raw["orders"], late], ignore_index=True))
    got, _ = bucket_features(more, [as_of], cfg, value_at=as_of)
    assert list(HIDDEN) <= list(base.columns)
    assert (base["_value_days"] > 0).sum() > 3000
    assert_same_frames(base[list(HIDDEN)], got[list(HIDDEN)])
    # a row before the cutoff does move it
    early = late.assign(ordered_at=[as_of - pd.Timedelta(days=1)] * 2)
    moved, _ = bucket_features(
        dict(raw, orders=pd.concat([raw["orders"], early], ignore_index=True)),
        [as_of],
        cfg,
        value_at=as_of,
    )
    assert (
        moved.xs(who, level="customer_id")["_value_last"].iloc[0]
        != (base.xs(who, level="customer_id")["_value_last"].iloc[0])
    )


def test_boosted_value_columns_bucket_by_bucket_equal_single_machine(
    parquet_folder, loaded_5k, boost_bundle_5k, tmp_path
):
    """Value models boosted from BG/NBD + Gamma-Gamma at the horizon: each bucket reads BTYD
    at the horizon from its summary and the population's fit, and the list equals the
    single-machine one bit for bit."""
    bundle = boost_bundle_5k
    assert set(bundle.value.boost) == {"spend", "orders"}
    single = score(loaded_5k[0], bundle, as_of=AS_OF)
    score_local(parquet_folder, bundle, as_of=AS_OF, out=tmp_path / "list", n_buckets=3)
    got = pd.read_parquet(tmp_path / "list")
    assert single.targets["expected_orders"].gt(0).all()
    assert_same_frames(single.targets, got)


def test_value_columns_bucket_by_bucket_without_the_btyd_family(
    parquet_folder, loaded_5k, bundle_no_btyd_5k, tmp_path, monkeypatch
):
    import vipml.features.btyd as btyd

    monkeypatch.setattr(btyd, "MAX_FIT_CUSTOMERS", 900)  # the fit samples: 900 of ~4,000 buyers
    bundle = bundle_no_btyd_5k
    assert bundle.value is not None and "btyd" not in bundle.spec.families
    single = score(loaded_5k[0], bundle, as_of=AS_OF)
    score_local(parquet_folder, bundle, as_of=AS_OF, out=tmp_path / "list", n_buckets=3)
    got = pd.read_parquet(tmp_path / "list")
    assert set(VALUE_COLUMNS) <= set(got.columns)
    assert single.targets["p_alive"].notna().sum() > 3000
    assert_same_frames(single.targets, got)
