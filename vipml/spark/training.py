"""Training from Spark: snapshots and labels built by buckets, the model fitted on the driver from
a capped, seeded, stratified sample of the snapshot rows.

Labels need one population figure: the VIP bar at the end of each label window (``top_share``),
taken over the whole cohort by the aggregate pass, as :func:`vipml.labels.vip_conversion_labels`
does on one machine. The sample keeps the same share of every (cutoff, label) stratum, drawn by a
seeded hash of (customer, cutoff), so the same data and seed give the same rows; the bundle
records the cap, the share and the counts (``bundle.json``: ``sample``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from vipml.buckets import population_bar
from vipml.config import Config, as_config
from vipml.errors import ConfigError, DataError
from vipml.features.registry import FeatureSpec
from vipml.io import Tables
from vipml.labels import check_observable, churn_labels
from vipml.spark import _feature_schema, _features, check_tables, read_tables
from vipml.train import Plan, TrainResult, plan_cutoffs, train
from vipml.vip import window_spend

SPEND = "_label_spend"
LABEL = "_label"


def _span(frames: Mapping[str, DataFrame]) -> Tables:
    """The first and last dated row of orders, events and offers, as a two-row orders table (all
    that planning the cutoffs reads)."""
    lows, highs = [], []
    for name, col in (("orders", "ordered_at"), ("events", "occurred_at"), ("offers", "sent_at")):
        frame = frames.get(name)
        if frame is None or col not in frame.columns:
            continue
        row = frame.agg(F.min(col).alias("lo"), F.max(col).alias("hi")).collect()[0]
        if row["lo"] is not None:
            lows.append(pd.Timestamp(row["lo"]).tz_localize("UTC"))
            highs.append(pd.Timestamp(row["hi"]).tz_localize("UTC"))
    if not lows:
        raise DataError("no dated rows: cannot plan training cutoffs")
    orders = pd.DataFrame({"ordered_at": pd.DatetimeIndex([min(lows), max(highs)]).as_unit("us")})
    return Tables(orders=orders)


def training_rows(
    tables: Mapping[str, Any],
    config: Config | str | None = None,
    *,
    n_buckets: int = 64,
    spark: SparkSession | None = None,
) -> tuple[DataFrame, Plan, FeatureSpec]:
    """Every snapshot row with its label (column ``label``), on Spark: the rows
    :func:`vipml.train.build_dataset` makes on one machine."""
    config = as_config(config)
    task = config.train.task
    if task not in ("vip", "churn"):
        raise ConfigError(
            f"train.task '{task}' trains on one machine only.\nFix: vipml train --engine local"
        )
    spark = spark or SparkSession.builder.getOrCreate()
    frames = read_tables(spark, tables)
    check_tables(frames, config)
    span = _span(frames)
    plan = plan_cutoffs(span, config)
    ends = {t: t + pd.Timedelta(days=plan.horizon_at(t)) for t in plan.cutoffs}
    for t, end in ends.items():
        check_observable(
            span, end, what=f"a {plan.horizon_at(t)}-day label window from {t:%Y-%m-%d}"
        )
    window = {t: min(config.vip.window_days, plan.horizon_at(t)) for t in plan.cutoffs}

    def label_inputs(raw: Mapping[str, pd.DataFrame], frame: pd.DataFrame, cfg: Config):
        from vipml.io import load_tables

        tabs = load_tables(dict(raw), config=cfg)[0]
        spend = np.zeros(len(frame))
        label = np.full(len(frame), np.nan)
        when = frame.index.get_level_values("as_of")
        for t in plan.cutoffs:
            rows = np.flatnonzero(when == t)
            if not len(rows):
                continue
            ids = frame.index.get_level_values("customer_id")[rows]
            if task == "vip":
                s = window_spend(
                    tabs.orders, ends[t] - pd.Timedelta(days=window[t]), ends[t], pd.Index(ids)
                )
                spend[rows] = s.to_numpy()
            else:
                y = churn_labels(tabs, as_of=t, horizon_days=plan.horizon_at(t), check=False)
                label[rows] = y["label"].reindex(ids).to_numpy(dtype=np.float64)
        return frame.assign(**{SPEND: spend, LABEL: label})

    fields = [T.StructField(SPEND, T.DoubleType()), T.StructField(LABEL, T.DoubleType())]
    feats, schema = _features(
        frames, list(plan.cutoffs), config, n_buckets, max(ends.values()), None,
        extra=(label_inputs, fields),
    )  # fmt: skip
    spec_fields = [f.name for f in schema.fields if f.name not in (SPEND, LABEL)]
    if task == "vip":
        feats = feats.persist()
        bars = {}
        for t in plan.cutoffs:  # the VIP bar at the end of each label window, whole cohort
            naive = t.tz_convert("UTC").tz_localize(None).to_pydatetime()
            spend = feats.where(F.col("as_of") == F.lit(naive)).select(SPEND).toPandas()[SPEND]
            bars[naive] = population_bar(spend.to_numpy(dtype=np.float64), config)
        bar_col = F.lit(None).cast("double")
        for naive, value in bars.items():
            bar_col = F.when(F.col("as_of") == F.lit(naive), F.lit(float(value))).otherwise(bar_col)
        labelled = feats.where(F.col("is_vip") == 0).withColumn(  # eligible: not VIP at the cutoff
            "label",
            ((F.col(SPEND) >= bar_col) & (F.col(SPEND) > 0)).cast("int"),
        )
    else:
        labelled = feats.where(F.col(LABEL).isNotNull()).withColumn(
            "label", F.col(LABEL).cast("int")
        )
    spec = _feature_schema(frames, config)[1]
    return labelled.select(*spec_fields, "label"), plan, spec


def sample_rows(rows: DataFrame, *, cap: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """At most about ``cap`` rows, the same share of every (cutoff, label) stratum, chosen by a
    seeded hash of (customer, cutoff); collected on the driver. Returns the rows and a record of
    the draw."""
    strata = {
        (pd.Timestamp(r["as_of"]).isoformat(), int(r["label"])): int(r["count"])
        for r in rows.groupBy("as_of", "label").count().collect()
    }
    total = sum(strata.values())
    share = min(1.0, cap / total) if total else 1.0
    u = F.pmod(
        F.xxhash64(F.col("customer_id"), F.col("as_of").cast("string"), F.lit(seed)), F.lit(1 << 40)
    ) / float(1 << 40)
    kept = rows if share >= 1.0 else rows.where(u < share)
    frame = kept.toPandas()
    record = {
        "method": "stratified by (cutoff, label), same share of each; seeded hash of "
        "(customer_id, cutoff)",
        "cap": int(cap),
        "seed": int(seed),
        "share": share,
        "rows": total,
        "kept": len(frame),
        "strata": {f"{k[0]}|{k[1]}": v for k, v in sorted(strata.items())},
    }
    return frame, record


def train_spark(
    tables: Mapping[str, Any],
    config: Config | str | None = None,
    *,
    sample_rows_cap: int = 2_000_000,
    n_buckets: int = 64,
    spark: SparkSession | None = None,
) -> tuple[TrainResult, dict[str, Any]]:
    """Snapshots and labels on Spark, then :func:`vipml.train.train` on the driver from a
    capped, seeded, stratified sample. Returns the result and the record of the sample (give it
    to :func:`vipml.bundle.save_bundle` as ``extra={"sample": record}``)."""
    config = as_config(config)
    rows, plan, spec = training_rows(tables, config, n_buckets=n_buckets, spark=spark)
    frame, record = sample_rows(rows, cap=sample_rows_cap, seed=config.seed)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).dt.tz_localize("UTC").dt.as_unit("us")
    frame = frame.sort_values(["as_of", "customer_id"], kind="stable")
    X = frame.set_index(["as_of", "customer_id"]).drop(columns="label")
    for f in spec.features:
        if f.kind == "categorical":
            X[f.name] = pd.array(X[f.name].astype("object"), dtype="str")
    X.attrs["feature_spec"] = spec.to_dict()
    y = frame.set_index(["as_of", "customer_id"])["label"].astype(np.int8)
    result = train(None, config, dataset=(X, y, plan))
    result.plan.notes.append(
        f"trained on a sample of {record['kept']:,} of {record['rows']:,} snapshot rows "
        f"(cap {record['cap']:,}, seed {record['seed']})"
    )
    return result, record
