"""vipml on Apache Spark (local[2]): the same features and target list as on one machine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml import DataError, load_tables
from vipml.features import build_features, build_snapshots
from vipml.score import score
from vipml.value import VALUE_COLUMNS

from .test_buckets import AS_OF, CUTOFFS, assert_same_frames

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def folder(retailer_5k, tmp_path_factory):
    """The 5,000-customer retailer as Parquet: orders as a month-partitioned dataset."""
    out = tmp_path_factory.mktemp("spark-data")
    for name, frame in retailer_5k.tables().items():
        if name == "orders":
            month = pd.to_datetime(frame["ordered_at"], utc=True).dt.strftime("%Y-%m")
            frame.assign(month=month).to_parquet(out / "orders", partition_cols=["month"])
        else:
            frame.to_parquet(out / f"{name}.parquet")
    return out


def test_features_on_spark_equal_the_single_machine_build(spark, folder, loaded_5k):
    from vipml.spark import build_features_spark

    expected = build_snapshots(loaded_5k[0], cutoffs=CUTOFFS).sort_index()
    got = build_features_spark(folder, cutoffs=CUTOFFS, n_buckets=6, spark=spark).toPandas()
    got["as_of"] = got["as_of"].dt.tz_localize("UTC").dt.as_unit("us")
    got = got.set_index(["as_of", "customer_id"]).sort_index()
    assert_same_frames(expected, got[expected.columns])


def test_target_list_on_spark_equals_single_machine(spark, folder, loaded_5k, bucket_bundle_5k):
    from vipml.spark import score_spark, write_parquet

    single = score(loaded_5k[0], bucket_bundle_5k, as_of=AS_OF)
    frame, drift = score_spark(folder, bucket_bundle_5k, as_of=AS_OF, n_buckets=6, spark=spark)
    out = write_parquet(frame.drop("_position"), folder.parent / "list")
    got = pd.read_parquet(out)
    assert len(got) == len(single.targets)
    # parts are written in list order
    assert got["customer_id"].tolist() == single.targets["customer_id"].tolist()
    got["cutoff"] = (
        got["cutoff"].dt.tz_localize("UTC") if got["cutoff"].dt.tz is None else got["cutoff"]
    )
    got["cutoff"] = got["cutoff"].dt.as_unit(single.targets["cutoff"].dt.unit)
    for c in ("send_from", "send_until", "send_at", "next_order_at"):
        local = got[c].dt.tz_localize("UTC") if got[c].dt.tz is None else got[c]
        got[c] = local.dt.as_unit(single.targets[c].dt.unit)
    assert set(VALUE_COLUMNS) <= set(got.columns)  # the expected-value columns too
    assert got["p_alive"].notna().sum() > 1000
    assert_same_frames(single.targets, got[single.targets.columns])
    pd.testing.assert_series_equal(drift, single.drift, check_exact=True)
    assert not list(folder.parent.glob(".list.tmp-*"))


def test_value_columns_on_spark_without_the_btyd_family(
    spark, folder, loaded_5k, bundle_no_btyd_5k
):
    """Without the BTYD family the timing's BG/NBD is fitted on candidates every partition hands
    over: the value columns still equal the single-machine ones bit for bit."""
    from vipml.spark import score_spark

    single = score(loaded_5k[0], bundle_no_btyd_5k, as_of=AS_OF).targets
    frame, _ = score_spark(folder, bundle_no_btyd_5k, as_of=AS_OF, n_buckets=3, spark=spark)
    got = frame.select("customer_id", *VALUE_COLUMNS).toPandas().set_index("customer_id")
    got["next_order_at"] = got["next_order_at"].dt.tz_localize("UTC")
    want = single.set_index("customer_id")[VALUE_COLUMNS]
    got["next_order_at"] = got["next_order_at"].dt.as_unit(want["next_order_at"].dt.unit)
    assert want["p_alive"].notna().sum() > 3000
    assert_same_frames(want, got.loc[want.index])


def test_boosted_value_columns_on_spark_equal_single_machine(
    spark, folder, loaded_5k, boost_bundle_5k
):
    """Value models boosted from BG/NBD + Gamma-Gamma at the horizon (read from the timing's
    fit and the Gamma-Gamma feature): the Spark list's value columns equal the single-machine
    ones bit for bit."""
    from vipml.spark import score_spark

    assert boost_bundle_5k.value.boost
    single = score(loaded_5k[0], boost_bundle_5k, as_of=AS_OF).targets
    frame, _ = score_spark(folder, boost_bundle_5k, as_of=AS_OF, n_buckets=3, spark=spark)
    got = frame.select("customer_id", *VALUE_COLUMNS).toPandas().set_index("customer_id")
    got["next_order_at"] = got["next_order_at"].dt.tz_localize("UTC")
    want = single.set_index("customer_id")[VALUE_COLUMNS]
    got["next_order_at"] = got["next_order_at"].dt.as_unit(want["next_order_at"].dt.unit)
    assert want["expected_orders"].gt(0).all()
    assert_same_frames(want, got.loc[want.index])


def test_pyfunc_scores_through_spark_udf(spark, loaded_5k, bucket_bundle_5k, tmp_path):
    from pathlib import Path

    import mlflow

    import vipml.mlflow_model as model_code

    X = build_features(loaded_5k[0], as_of=AS_OF).head(400)
    example = X.head(2)
    path = tmp_path / "pyfunc"
    mlflow.pyfunc.save_model(
        path=str(path),
        python_model=str(Path(model_code.__file__)),
        artifacts={"bundle": str(bucket_bundle_5k.path)},
        input_example=example,
    )
    udf = mlflow.pyfunc.spark_udf(spark, str(path), result_type="double", env_manager="local")
    frame = X.reset_index(drop=True)
    for c in bucket_bundle_5k.spec.categorical:
        frame[c] = frame[c].astype("object")
    sdf = spark.createDataFrame(frame)
    got = sdf.select(udf(*[sdf[c] for c in frame.columns]).alias("score")).toPandas()["score"]
    np.testing.assert_allclose(got.to_numpy(), bucket_bundle_5k.predict(X), rtol=0, atol=1e-12)


def _jobs(spark) -> int:
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup("vipml-check"))


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda o: o.drop("amount"), ["orders", "amount"]),
        (
            lambda o: o.withColumn("customer_id", o["customer_id"].cast("long")),
            ["orders", "customer_id", "text"],
        ),
        (
            lambda o: o.withColumn("ordered_at", o["amount"] > 0),
            ["orders", "ordered_at", "timestamp"],
        ),
    ],
)
def test_bad_spark_tables_are_refused_before_any_job(spark, retailer_5k, change, words):
    from vipml.spark import build_features_spark

    orders = retailer_5k.tables()["orders"].head(200).copy()
    orders["customer_id"] = orders["customer_id"].astype(str)
    sdf = change(spark.createDataFrame(orders))
    spark.sparkContext.setJobGroup("vipml-check", "bad input")
    try:
        before = _jobs(spark)
        with pytest.raises(DataError) as err:
            build_features_spark({"orders": sdf}, as_of=AS_OF, spark=spark)
        assert _jobs(spark) == before
    finally:
        spark.sparkContext.setJobGroup("", "")
    for w in words:
        assert w in str(err.value)
    assert "Fix:" in str(err.value)


def test_missing_column_message_is_the_loader_s(spark, retailer_5k):
    from vipml.spark import build_features_spark

    orders = retailer_5k.tables()["orders"].head(50).drop(columns=["amount"])
    orders["customer_id"] = orders["customer_id"].astype(str)
    with pytest.raises(DataError) as single:
        load_tables({"orders": orders})
    with pytest.raises(DataError) as on_spark:
        build_features_spark({"orders": spark.createDataFrame(orders)}, as_of=AS_OF, spark=spark)
    assert str(on_spark.value).splitlines()[0] == str(single.value).splitlines()[0]


@pytest.mark.parametrize(
    "labels, train",
    [
        ({}, {}),
        ({"population": "all", "vip_spend": "horizon"}, {"step_days": 20}),
    ],
    ids=["not_vip-rule", "all-horizon-step20"],
)
def test_training_rows_on_spark_equal_build_dataset(spark, folder, loaded_5k, labels, train):
    from vipml.config import load_config
    from vipml.spark.training import training_rows
    from vipml.train import build_dataset, plan_cutoffs

    cfg = load_config(None, labels={"horizon_days": 90, **labels}, train={"n_cutoffs": 4, **train})
    plan = plan_cutoffs(loaded_5k[0], cfg)
    X, y = build_dataset(loaded_5k[0], plan, cfg)
    rows, spark_plan, spec = training_rows(folder, cfg, n_buckets=6, spark=spark)
    assert spark_plan.cutoffs == plan.cutoffs and spark_plan.horizons == plan.horizons
    assert spark_plan.all_cutoffs == plan.all_cutoffs and len(plan.all_cutoffs) > 4
    got = rows.toPandas()
    got["as_of"] = got["as_of"].dt.tz_localize("UTC").dt.as_unit("us")
    got = got.set_index(["as_of", "customer_id"]).sort_index()
    expected = X.join(y).sort_index()
    assert list(spec.names) == list(X.columns)
    assert "btyd_p_alive" in X.columns
    assert got.index.equals(expected.index)
    assert (got["label"].to_numpy() == expected["label"].to_numpy()).all()
    assert 0 < expected["label"].sum() < len(expected)
    assert_same_frames(expected[X.columns], got[X.columns])


def test_training_from_a_capped_stratified_sample_is_recorded(spark, folder, tmp_path):
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.spark.training import sample_rows, train_spark, training_rows

    cfg = load_config(None, labels={"horizon_days": 90}, train={"n_cutoffs": 4}, seed=3)
    rows = training_rows(folder, cfg, n_buckets=6, spark=spark)[0].persist()
    first, record = sample_rows(rows, cap=9000, seed=3)
    second, record_again = sample_rows(rows, cap=9000, seed=3)
    assert record == record_again
    key = ["as_of", "customer_id"]
    pd.testing.assert_frame_equal(
        first.sort_values(key).reset_index(drop=True),
        second.sort_values(key).reset_index(drop=True),
    )
    assert 8500 <= record["kept"] <= 9500 and record["rows"] > record["kept"]
    assert record["cap"] == 9000 and record["seed"] == 3
    # every (cutoff, label) stratum keeps about the same share
    kept = first.groupby(["as_of", "label"]).size()
    assert len(kept) == len(record["strata"])
    for (when, label), n in kept.items():
        total = record["strata"][f"{pd.Timestamp(when).isoformat()}|{label}"]
        assert abs(n / total - record["share"]) < 0.15
    result, record = train_spark(folder, cfg, sample_rows_cap=9000, n_buckets=6, spark=spark)
    path = save_bundle(result, tables=None, config=cfg, out=tmp_path, extra={"sample": record})
    bundle = load_bundle(path)
    assert bundle.info["sample"] == record
    assert any("sample" in n for n in bundle.info["notes"])
