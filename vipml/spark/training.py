"""Training from Spark: snapshots and labels built by buckets, the model fitted on the driver from
a capped, seeded, stratified sample of the snapshot rows.

The rows are those of :func:`vipml.train.build_dataset`: every evaluation and refit cutoff, the
population of ``labels.population`` (``not_vip``: not VIP at the cutoff under the configured
rule; ``all``) and the outcome of ``labels.vip_spend`` (``rule``: the VIP rule at the end of the
horizon; ``horizon``: the top ``vip.share`` by spend inside it). Labels need population figures
(the VIP bar at the cutoff and at the end of each label window), taken over the whole cohort
known at the cutoff by the aggregate pass, as :func:`vipml.labels.vip_conversion_labels` does on
one machine. The sample keeps the same share of every (cutoff, label) stratum, drawn by a
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
from vipml.config import Config, VipConfig, as_config
from vipml.errors import ConfigError, DataError
from vipml.features.registry import FeatureSpec
from vipml.io import Tables
from vipml.labels import check_observable, churn_labels
from vipml.spark import _feature_schema, _features, check_tables, read_tables
from vipml.train import Plan, TrainResult, plan_cutoffs, train
from vipml.vip import vip_bar, vip_status, window_spend

SPEND = "_label_spend"
LABEL = "_label"
NOW = "_status_now"


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
    lc = config.labels
    by_rule = lc.vip_spend == "rule"
    if task == "vip" and config.vip.rule == "tier" and by_rule:
        raise ConfigError(
            "vip.rule 'tier' reads one static tier column, which says nothing about when a customer "
            "became VIP.\nFix: use rule top_share or threshold for VIP-conversion labels, or "
            "labels.vip_spend: horizon"
        )
    spark = spark or SparkSession.builder.getOrCreate()
    frames = read_tables(spark, tables)
    check_tables(frames, config)
    span = _span(frames)
    plan = plan_cutoffs(span, config)
    cutoffs = list(plan.all_cutoffs)  # evaluation and refit cutoffs, as build_dataset
    ends = {t: t + pd.Timedelta(days=plan.horizon_at(t)) for t in cutoffs}
    for t, end in ends.items():
        check_observable(
            span, end, what=f"a {plan.horizon_at(t)}-day label window from {t:%Y-%m-%d}"
        )
    window = {t: min(config.vip.window_days, plan.horizon_at(t)) for t in cutoffs}
    not_vip = task == "vip" and lc.population == "not_vip"
    tier = config.vip.rule == "tier"

    def label_inputs(raw: Mapping[str, pd.DataFrame], frame: pd.DataFrame, cfg: Config):
        from vipml.io import load_tables

        tabs = load_tables(dict(raw), config=cfg)[0]
        spend = np.zeros(len(frame))
        label = np.full(len(frame), np.nan)
        now = np.zeros(len(frame))  # the VIP-window spend at the cutoff, or the tier's verdict
        when = frame.index.get_level_values("as_of")
        for t in cutoffs:
            rows = np.flatnonzero(when == t)
            if not len(rows):
                continue
            ids = pd.Index(frame.index.get_level_values("customer_id")[rows], name="customer_id")
            if task == "vip":
                lo = ends[t] - pd.Timedelta(days=window[t]) if by_rule else t
                spend[rows] = window_spend(tabs.orders, lo, ends[t], ids).to_numpy()
                if not_vip and tier:
                    status = vip_status(tabs, as_of=t, config=cfg, customers=ids)
                    now[rows] = status["is_vip"].to_numpy(dtype=np.float64)
                elif not_vip:
                    start = t - pd.Timedelta(days=cfg.vip.window_days)
                    now[rows] = window_spend(tabs.orders, start, t, ids).to_numpy()
            else:
                y = churn_labels(tabs, as_of=t, horizon_days=plan.horizon_at(t), check=False)
                label[rows] = y["label"].reindex(ids).to_numpy(dtype=np.float64)
        return frame.assign(**{SPEND: spend, LABEL: label, NOW: now})

    fields = [
        T.StructField(SPEND, T.DoubleType()),
        T.StructField(LABEL, T.DoubleType()),
        T.StructField(NOW, T.DoubleType()),
    ]
    feats, schema = _features(
        frames, cutoffs, config, n_buckets, max(ends.values()), None,
        extra=(label_inputs, fields),
    )  # fmt: skip
    spec_fields = [f.name for f in schema.fields if f.name not in (SPEND, LABEL, NOW)]
    if task == "vip":
        feats = feats.persist()
        label_rule = config.vip if by_rule else VipConfig(rule="top_share", share=config.vip.share)
        label_bar = F.lit(None).cast("double")
        now_bar = F.lit(None).cast("double")
        for t in cutoffs:  # the bars of the whole cohort known at each cutoff
            naive = t.tz_convert("UTC").tz_localize(None).to_pydatetime()
            cohort = feats.where(F.col("as_of") == F.lit(naive)).select(SPEND, NOW).toPandas()
            bar = vip_bar(pd.Series(cohort[SPEND].to_numpy(dtype=np.float64)), label_rule)
            at = F.col("as_of") == F.lit(naive)
            label_bar = F.when(at, F.lit(float(bar))).otherwise(label_bar)
            if not_vip and not tier:
                bar_now = population_bar(cohort[NOW].to_numpy(dtype=np.float64), config)
                now_bar = F.when(at, F.lit(float(bar_now))).otherwise(now_bar)
        if not_vip and tier:
            eligible = F.col(NOW) == 0
        elif not_vip:  # not VIP at the cutoff under the configured rule
            eligible = ~((F.col(NOW) >= now_bar) & (F.col(NOW) > 0))
        else:
            eligible = F.lit(True)
        labelled = feats.where(eligible).withColumn(
            "label", ((F.col(SPEND) >= label_bar) & (F.col(SPEND) > 0)).cast("int")
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
