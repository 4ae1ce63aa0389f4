"""Features, scores and target lists on Apache Spark (``pip install vipml[spark]``).

Customers are hashed into buckets (``pmod(xxhash64(customer_id), n_buckets)``); the rows of
every table of one bucket meet in one task (the five tables unioned under prefixed column names
and grouped by bucket, a co-group of five) and go through the same loader, validation and numpy
feature engine as on one machine (:mod:`vipml.buckets`). The population's figures (the VIP bar,
drift, the high-value bar, the percentiles behind the reasons, percentile, tier, selection and the
control group) come from an aggregate pass, so the result equals the single-machine one.

The bundle travels to the executors once, as a broadcast of its files' bytes (text and JSON, no
pickled vipml object), and is loaded there from those bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vipml.buckets import (
    BUCKET,
    LIST_COLUMNS,
    LISTED,
    add_counts,
    btyd_candidates,
    bucket_features,
    check_task,
    drift_counts,
    drift_from_counts,
    driver_names,
    finish_rows,
    fix_vip,
    high_value_bar,
    horizon,
    list_pass,
    needs_bar,
    percentile_thresholds,
    population_columns,
    population_figures,
    reason_texts,
    score_rows,
)
from vipml.bundle import Bundle
from vipml.config import Config, as_config
from vipml.errors import DataError
from vipml.features import feature_spec
from vipml.features.btyd import HIDDEN, SUMMARY, merge_candidates
from vipml.io import CONTRACT, TABLE_NAMES, load_tables
from vipml.io.database import FILTERED
from vipml.io.write import replace_dir
from vipml.plays import CHANNELS, population_rates
from vipml.score import ACTION_COLUMNS, COLUMNS, scoring_config
from vipml.windows import as_cutoff, as_cutoffs

_SEND = ("send_from", "send_until", "send_at")
_CONTACT = "_contact_"  # consents and channel history ride along with a bucket's features


def _contact_keys() -> list[str]:
    keys = [f"{k}_{c}" for c in CHANNELS for k in ("sent", "resp", "consent")]
    return [*keys, "consent_night"]


def _with_contact(raw: Any, frame: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """A bucket's features with its customers' consents and channel history as columns."""
    contact = pd.DataFrame(frame.attrs.pop("contact", {"customer_id": []}))
    contact = contact.set_index(contact["customer_id"].astype(str))
    ids = frame.index.get_level_values("customer_id").astype(str)
    rows = contact.reindex(ids)
    extra = {
        f"{_CONTACT}{k}": (
            rows[k].to_numpy(dtype=np.float64) if k in rows else np.full(len(frame), np.nan)
        )
        for k in _contact_keys()
    }
    return frame.assign(**extra)


try:  # the extra: pip install vipml[spark]
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "vipml.spark needs pyspark: pip install 'vipml[spark]' (and a Java runtime, 17 or later)"
    ) from exc

__all__ = [
    "build_features_spark",
    "check_tables",
    "read_tables",
    "score_spark",
    "session",
    "write_parquet",
]

SEP = "__"

TIMINGS: dict[str, float] = {}  # seconds of the last feature build's bucket and aggregate passes


LOCAL_MEMORY = "4g"  # the JVM heap of a local[*] session (Spark's own default, 1g, runs out
# sorting a bucket of 60,000 customers' rows: measured at 1M customers in 16 buckets)


def session(
    master: str | None = None, app: str = "vipml", memory: str | None = None
) -> SparkSession:
    """A Spark session for vipml: UTC session time zone, Arrow transfers, workers running this
    Python interpreter (unless PYSPARK_PYTHON says otherwise). ``memory`` (else the environment's
    ``VIPML_SPARK_MEMORY``) is the driver's JVM heap; a ``local`` master, whose tasks run in the
    driver's JVM, gets :data:`LOCAL_MEMORY` when neither is given. It applies only when this call
    starts the JVM."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    memory = memory or os.environ.get("VIPML_SPARK_MEMORY")
    if memory is None and (master is None or master.startswith("local")):
        memory = LOCAL_MEMORY
    if memory:
        builder = builder.config("spark.driver.memory", memory)
    return (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )


# --- tables -----------------------------------------------------------------------------------


def read_tables(
    spark: SparkSession, sources: Mapping[str, Any] | str | os.PathLike[str]
) -> dict[str, DataFrame]:
    """The contract tables as Spark DataFrames, from DataFrames, Parquet or Delta paths, or a
    folder holding ``<table>/`` datasets or ``<table>.parquet`` files."""
    if not isinstance(sources, Mapping):
        folder = Path(sources)
        if not folder.is_dir():
            raise DataError(f"data folder not found: {folder}\nFix: pass --data DIR")
        found: dict[str, Any] = {}
        for name in TABLE_NAMES:
            for candidate in (folder / name, folder / f"{name}.parquet"):
                if candidate.exists():
                    found[name] = str(candidate)
                    break
        sources = found
    out = {}
    for name, value in sources.items():
        if name not in CONTRACT:
            raise DataError(
                f"unknown table '{name}'; the data contract has: {', '.join(TABLE_NAMES)}"
            )
        if isinstance(value, DataFrame):
            out[name] = value
            continue
        path = Path(value)
        if not path.exists():
            raise DataError(f"table '{name}': not found: {path}\nFix: check the path")
        fmt = "delta" if (path / "_delta_log").is_dir() else "parquet"
        out[name] = spark.read.format(fmt).load(str(path))
    return out


_TIME_TYPES = (T.TimestampType, T.TimestampNTZType, T.DateType, T.StringType)
_NUMBER_TYPES = (T.NumericType, T.StringType)


def check_tables(frames: Mapping[str, DataFrame], config: Config | str | None = None) -> None:
    """The single-machine loader's table and column checks on the Spark schemas, before any job
    runs: missing tables and contract columns (the same message), ids that are not text, times
    that are not timestamps, dates or text, numbers that are not numeric or text."""
    config = as_config(config)
    empty = {}
    for name, frame in frames.items():
        spec = CONTRACT[name]
        types = {f.name: f.dataType for f in frame.schema.fields}
        for col, kind in types.items():
            if col in spec.ids and not isinstance(kind, T.StringType):
                raise DataError(
                    f"table '{name}', column '{col}': ids must be text, found {kind.simpleString()} "
                    f"(every row).\nFix: cast it, e.g. df.withColumn('{col}', "
                    f"F.col('{col}').cast('string')), keeping leading zeros"
                )
            if col in spec.times and not isinstance(kind, _TIME_TYPES):
                raise DataError(
                    f"table '{name}', column '{col}': a time must be a timestamp, date or text, "
                    f"found {kind.simpleString()} (every row).\nFix: cast it to timestamp"
                )
            if col in spec.numbers and not isinstance(kind, _NUMBER_TYPES):
                raise DataError(
                    f"table '{name}', column '{col}': must be a number, found "
                    f"{kind.simpleString()} (every row).\nFix: cast it to double"
                )
        empty[name] = pd.DataFrame({c: pd.Series([], dtype="str") for c in types})
    load_tables(empty, config=config)  # missing tables and columns: the loader's own messages


def _bucketed(
    frames: Mapping[str, DataFrame], n_buckets: int
) -> tuple[DataFrame, dict[str, list[tuple[str, str]]]]:
    """Every table's rows under prefixed columns with their customer's bucket, in one frame."""
    parts = []
    layout: dict[str, list[tuple[str, str]]] = {}
    keys = None
    for name in TABLE_NAMES:
        frame = frames.get(name)
        if frame is None:
            continue
        layout[name] = [(f.name, type(f.dataType).__name__) for f in frame.schema.fields]
        cols = [F.col(f"`{c}`").alias(f"{name}{SEP}{c}") for c, _ in layout[name]]
        if name == "order_items":
            if keys is None:
                bucket = F.lit(0).cast("long")
                part = frame.select(*cols, bucket.alias(BUCKET))
            else:
                part = frame.join(keys, on="order_id", how="left").select(
                    *cols, F.coalesce(F.col(BUCKET), F.lit(0).cast("long")).alias(BUCKET)
                )
        else:
            bucket = F.pmod(F.xxhash64(F.col("customer_id")), F.lit(n_buckets)).cast("long")
            part = frame.select(*cols, bucket.alias(BUCKET))
            if name == "orders":
                keys = (
                    frame.select("order_id", bucket.alias(BUCKET))
                    .groupBy("order_id")
                    .agg(F.min(BUCKET).alias(BUCKET))
                )
        parts.append(part.withColumn("_table", F.lit(name)))
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part, allowMissingColumns=True)
    return union, layout


def _unpack(
    pdf: pd.DataFrame, layout: Mapping[str, list[tuple[str, str]]]
) -> dict[str, pd.DataFrame]:
    """One bucket's rows of each table, as the loader receives them from a file."""
    out = {}
    for name, cols in layout.items():
        rows = pdf[pdf["_table"] == name]
        frame = pd.DataFrame(
            {c: rows[f"{name}{SEP}{c}"].to_numpy() for c, _ in cols}, columns=[c for c, _ in cols]
        )
        for c, kind in cols:
            if kind == "TimestampType":  # an instant: Spark hands it over as UTC wall time
                frame[c] = pd.to_datetime(frame[c]).dt.tz_localize("UTC")
            elif kind == "StringType":
                frame[c] = frame[c].astype("object")
        out[name] = frame
    return out


def _feature_schema(
    spec_frames: Mapping[str, DataFrame], config: Config
) -> tuple[T.StructType, Any]:
    empty = {
        n: pd.DataFrame({c: pd.Series([], dtype="str") for c in f.columns})
        for n, f in spec_frames.items()
    }
    tables = load_tables(empty, config=config)[0]
    spec = feature_spec(tables, config)
    fields = [
        T.StructField("as_of", T.TimestampType()),
        T.StructField("customer_id", T.StringType()),
    ]
    for f in spec.features:
        fields.append(
            T.StructField(f.name, T.StringType() if f.kind == "categorical" else T.DoubleType())
        )
    return T.StructType(fields), spec


def _plain(frame: pd.DataFrame, schema: T.StructType) -> pd.DataFrame:
    """The schema's columns, text as Python objects (Arrow-backed pandas text can arrive in
    chunks, which Spark's writer does not take)."""
    out = {}
    for f in schema.fields:
        col = frame[f.name]
        if isinstance(f.dataType, T.StringType):
            col = pd.Series(col.astype("object").to_numpy(), index=frame.index, dtype=object)
            col = col.where(col.notna(), None)
        out[f.name] = col
    return pd.DataFrame(out, index=frame.index)


def _to_spark_frame(frame: pd.DataFrame, schema: T.StructType) -> pd.DataFrame:
    out = frame.reset_index()
    out["as_of"] = out["as_of"].dt.tz_convert("UTC").dt.tz_localize(None)
    return _plain(out, schema)


def build_features_spark(
    tables: Mapping[str, Any],
    *,
    cutoffs: Iterable[object] | None = None,
    as_of: object | None = None,
    config: Config | str | None = None,
    n_buckets: int = 64,
    spark: SparkSession | None = None,
    max_customer_rows: int | None = None,
) -> DataFrame:
    """Features of every customer as of one cutoff (``as_of``) or several (``cutoffs``), on
    Spark: columns ``as_of``, ``customer_id`` and the features of :func:`vipml.build_features`,
    the same values, the VIP columns against the whole population's bar.

    ``tables`` maps table names to Spark DataFrames or Parquet/Delta paths (or is a folder of
    them). Bad tables (a missing contract column, an id that is not text ...) are refused before
    any job runs.
    """
    config = as_config(config)
    spark = spark or SparkSession.builder.getOrCreate()
    times = as_cutoffs([as_of] if cutoffs is None else cutoffs)
    frames = read_tables(spark, tables)
    check_tables(frames, config)
    return _features(frames, times, config, n_buckets, max(times), max_customer_rows)[0]


def _features(
    frames: Mapping[str, DataFrame],
    times: list[pd.Timestamp],
    config: Config,
    n_buckets: int,
    until: pd.Timestamp,
    max_customer_rows: int | None,
    extra: Any = None,
    contact_at: pd.Timestamp | None = None,
) -> tuple[DataFrame, T.StructType]:
    """The bucket pass and the VIP-bar pass. ``extra(tables, frame, fields)`` may add columns
    per bucket (label inputs for training); ``fields`` are their Spark fields."""
    frames = dict(frames)
    for name, frame in list(frames.items()):  # rows at or after ``until`` are never read
        col = FILTERED.get(name)
        if col and col in frame.columns and isinstance(frame.schema[col].dataType, T.TimestampType):
            frames[name] = frame.where(
                F.col(col).isNull() | (F.col(col) < F.lit(until.to_pydatetime()))
            )
    schema, spec = _feature_schema(frames, config)
    if extra is not None:
        schema = T.StructType([*schema.fields, *extra[1]])
    with_btyd = "btyd" in spec.families
    hidden = [T.StructField(c, T.DoubleType()) for c in HIDDEN] if with_btyd else []
    out_schema = schema
    schema = T.StructType([*schema.fields, *hidden])  # the bucket pass: with the BTYD summary
    union, layout = _bucketed(frames, n_buckets)
    cfg_json = config.model_dump_json()

    def one_bucket(pdf: pd.DataFrame) -> pd.DataFrame:
        cfg = Config.model_validate_json(cfg_json)
        raw = _unpack(pdf, layout)
        frame, _ = bucket_features(raw, times, cfg, max_customer_rows, contact_at)
        if extra is not None:
            frame = extra[0](raw, frame, cfg)
        return _to_spark_frame(frame, schema)

    feats = union.groupBy(BUCKET).applyInPandas(one_bucket, schema=schema)
    if not needs_bar(config, spec):
        return feats, out_schema
    feats = feats.persist()
    started = time.perf_counter()
    feats.count()  # the bucket pass runs here, once
    TIMINGS["buckets"] = time.perf_counter() - started
    started = time.perf_counter()
    columns = population_columns(config, spec)
    candidates = _btyd_candidates(feats) if with_btyd else {}
    bars = {}
    for t in times:  # the aggregate pass: the VIP bar and percentiles of the whole population
        naive = t.tz_convert("UTC").tz_localize(None)
        rows = feats.where(F.col("as_of") == F.lit(naive.to_pydatetime())).select(*columns)
        pdf = rows.toPandas()
        bars[naive] = population_figures(
            {c: pdf[c].to_numpy(dtype=np.float64) for c in columns},
            config,
            candidates.get(naive),
            with_btyd=with_btyd,
        )
    TIMINGS["aggregate"] = time.perf_counter() - started

    def fix(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        cfg = Config.model_validate_json(cfg_json)
        for pdf in batches:
            parts = [
                fix_vip(part, bars[pd.Timestamp(t)], cfg)
                for t, part in pdf.groupby("as_of", sort=False)
            ]
            yield _plain(pd.concat(parts), out_schema) if parts else _plain(pdf, out_schema)

    return feats.mapInPandas(fix, schema=out_schema), out_schema


def _btyd_candidates(feats: DataFrame) -> dict[pd.Timestamp, pd.DataFrame]:
    """Per cutoff (naive UTC), the candidates of the whole population for the BTYD fit: each
    partition hands over its own (at most twice the fit's sample), the driver merges them."""
    fields = [
        T.StructField("as_of", T.TimestampType()),
        T.StructField("customer_id", T.StringType()),
        *(T.StructField(k, T.DoubleType()) for k in SUMMARY),
    ]
    schema = T.StructType(fields)

    def one_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        found: dict[Any, pd.DataFrame] = {}
        for pdf in batches:
            for t, part in pdf.groupby("as_of", sort=False):
                c = btyd_candidates(part, part["customer_id"].to_numpy(dtype=object))
                if c is not None and len(c):
                    found[t] = merge_candidates(found.get(t), c)
        for t, c in found.items():
            yield _plain(c.assign(as_of=t), schema)

    cols = ["as_of", "customer_id", *HIDDEN]
    got = feats.select(*cols).mapInPandas(one_partition, schema=schema).toPandas()
    out: dict[pd.Timestamp, pd.DataFrame] = {}
    for t, part in got.groupby("as_of", sort=False):
        out[pd.Timestamp(t)] = merge_candidates(None, part.drop(columns="as_of"))
    return out


# --- bundles on executors ---------------------------------------------------------------------

_LOADED: dict[str, Bundle] = {}


def bundle_files(bundle: Bundle) -> dict[str, bytes]:
    """A bundle's files as bytes (what is broadcast)."""
    return {
        str(p.relative_to(bundle.path)): p.read_bytes()
        for p in sorted(bundle.path.rglob("*"))
        if p.is_file()
    }


def bundle_from_files(name: str, files: Mapping[str, bytes]) -> Bundle:
    """A bundle loaded from its files' bytes (once per worker process)."""
    from vipml.bundle import load_bundle

    key = name + ":" + str(hash(tuple(sorted((k, len(v)) for k, v in files.items()))))
    found = _LOADED.get(key)
    if found is None:
        root = Path(tempfile.mkdtemp(prefix="vipml-bundle-")) / name
        for rel, data in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        found = _LOADED[key] = load_bundle(root)
    return found


# --- scoring ----------------------------------------------------------------------------------


def score_spark(
    tables: Mapping[str, Any],
    bundle: Bundle,
    *,
    as_of: object,
    config: Config | None = None,
    churn: Bundle | None = None,
    n_buckets: int = 64,
    spark: SparkSession | None = None,
    max_customer_rows: int | None = None,
) -> tuple[DataFrame, pd.Series]:
    """The target list of :func:`vipml.score` on Spark (VIP and churn bundles): a DataFrame with
    the list's columns in the list's order, and the drift of each feature.

    Features come from :func:`build_features_spark`; scores, segments, plays and drivers are
    computed per partition with the broadcast bundle; the reasons' percentiles, the high-value
    bar, percentile, tier, selection and the control group from the aggregate pass."""
    check_task(bundle)
    spark = spark or SparkSession.builder.getOrCreate()
    cutoff = as_cutoff(as_of)
    cfg = scoring_config(bundle, config)
    frames = read_tables(spark, tables)
    check_tables(frames, cfg)
    contact_fields = [T.StructField(f"{_CONTACT}{k}", T.DoubleType()) for k in _contact_keys()]
    feats, _ = _features(
        frames, [cutoff], cfg, n_buckets, cutoff, max_customer_rows,
        extra=(_with_contact, contact_fields), contact_at=cutoff,
    )  # fmt: skip
    feats = feats.drop("as_of").persist()
    # aggregate: the population's channel response rates, summed over every customer
    sums = feats.select(
        *[F.sum(f"{_CONTACT}{k}_{c}").alias(f"{k}_{c}") for k in ("sent", "resp") for c in CHANNELS]
    ).collect()[0]
    rates = population_rates(
        np.array([[float(sums[f"sent_{c}"] or 0) for c in CHANNELS]]),
        np.array([[float(sums[f"resp_{c}"] or 0) for c in CHANNELS]]),
    )
    shipped = spark.sparkContext.broadcast(bundle_files(bundle))
    churn_shipped = spark.sparkContext.broadcast(bundle_files(churn)) if churn is not None else None
    name, churn_name = bundle.version, churn.version if churn is not None else ""
    cfg_json = cfg.model_dump_json()
    categorical = list(bundle.spec.categorical)

    def features_of(pdf: pd.DataFrame) -> pd.DataFrame:
        X = pdf.set_index("customer_id")
        X = X.drop(columns=[c for c in X.columns if c.startswith(_CONTACT)])
        for c in categorical:
            if c in X:
                X[c] = pd.array(X[c].astype("object"), dtype="str")
        return X

    # aggregate pass 1: drift counts and the high-value bar
    reference = bundle.reference
    meta = _Version(bundle.version, dict(bundle.info))

    def counts(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        total: dict[str, Any] = {}
        for pdf in batches:
            c = drift_counts(reference, features_of(pdf), meta)
            total = add_counts(total, c) if total else c
        yield pd.DataFrame({"counts": [json.dumps(total)]})

    summed: dict[str, Any] = {}
    for row in feats.mapInPandas(counts, schema="counts string").collect():
        c = json.loads(row["counts"])
        if c:
            summed = add_counts(summed, c) if summed else c
    drift = drift_from_counts(reference, summed)
    hv = np.inf
    if "spend_365d" in feats.columns:
        spend = feats.select("spend_365d").toPandas()["spend_365d"].to_numpy(dtype=np.float64)
        hv = high_value_bar(spend, cfg.score.segments.high_value_share)

    # bucket pass: scores, segments, plays and drivers
    row_fields = [
        T.StructField("customer_id", T.StringType()),
        T.StructField("score", T.DoubleType()),
        T.StructField("segment", T.StringType()),
    ]
    for j in (1, 2, 3):
        row_fields += [
            T.StructField(f"_driver_{j}", T.StringType()),
            T.StructField(f"_value_{j}", T.DoubleType()),
            T.StructField(f"_label_{j}", T.StringType()),
        ]
    row_fields += [
        T.StructField("play_en", T.StringType()),
        T.StructField("play_ko", T.StringType()),
        T.StructField("offer_type", T.StringType()),
        T.StructField("_cost", T.DoubleType()),
        T.StructField("expected_value", T.DoubleType()),
        T.StructField("in_population", T.BooleanType()),
        *[T.StructField(c, T.StringType()) for c in (*ACTION_COLUMNS, "offer", "channel")],
        T.StructField("_value_known", T.BooleanType()),
        T.StructField("night_consent", T.BooleanType()),
        *[T.StructField(c, T.TimestampType()) for c in _SEND],
    ]
    row_schema = T.StructType(row_fields)

    def scored(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        cfg_local = Config.model_validate_json(cfg_json)
        model = bundle_from_files(name, shipped.value)
        churn_model = bundle_from_files(churn_name, churn_shipped.value) if churn_shipped else None
        for pdf in batches:
            contact = pdf[[c for c in pdf.columns if c.startswith(_CONTACT)]]
            contact = contact.rename(columns=lambda c: c[len(_CONTACT) :])
            contact.index = pdf["customer_id"].astype(str).to_numpy()
            rows = score_rows(
                features_of(pdf),
                model,
                cfg_local,
                hv_bar=hv,
                churn=churn_model,
                cutoff=cutoff,
                contact=contact,
                population=rates,
            )
            for c in _SEND:
                rows[c] = pd.to_datetime(rows[c], utc=True).dt.tz_localize(None)
            yield _plain(rows, row_schema)

    rows = feats.mapInPandas(scored, schema=row_schema).persist()

    # aggregate pass 2: the percentiles behind the reasons, then the list
    used = set()
    for j in (1, 2, 3):
        used |= {r[0] for r in rows.select(f"_driver_{j}").distinct().collect()}
    names = driver_names(
        pd.DataFrame({"_driver_1": sorted(n for n in used if n), "_driver_2": "", "_driver_3": ""}),
        bundle,
        feats.columns,
    )
    thresholds = {
        n: percentile_thresholds(feats.select(n).toPandas()[n].to_numpy(dtype=np.float64))
        for n in names
    }
    narrow = rows.select(*LIST_COLUMNS).toPandas()
    listed = list_pass(narrow, cfg)
    del narrow
    listed_df = spark.createDataFrame(listed)
    joined = rows.join(listed_df, on="customer_id", how="left")
    spec_json = json.dumps(bundle.spec.to_dict())
    out_fields = []
    for c in [*COLUMNS, "_position"]:
        kind = {
            "score": T.DoubleType(), "percentile": T.DoubleType(), "expected_value": T.DoubleType(),
            "selected": T.BooleanType(), "cutoff": T.TimestampType(), "_position": T.LongType(),
            "in_population": T.BooleanType(), "horizon_days": T.LongType(),
            "night_consent": T.BooleanType(), **dict.fromkeys(_SEND, T.TimestampType()),
        }.get(c, T.StringType())  # fmt: skip
        out_fields.append(T.StructField(c, kind))
    out_schema = T.StructType(out_fields)
    horizon_days = horizon(bundle, cfg)

    def finish(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from vipml.features.registry import FeatureSpec

        spec = FeatureSpec.from_dict(json.loads(spec_json))
        for pdf in batches:
            texts = reason_texts(pdf, spec, thresholds)
            listed_part = pdf[LISTED]
            rows_part = pdf.drop(columns=LISTED[1:])
            done = finish_rows(rows_part, listed_part, texts, meta, cutoff, (), horizon_days)
            yield _plain(done, out_schema)

    result = joined.mapInPandas(finish, schema=out_schema).orderBy("_position")
    return result, drift


class _Version:
    """What the executors read of a bundle besides its model: its version and info."""

    def __init__(self, version: str, info: dict[str, Any]) -> None:
        self.version = version
        self.info = info


def write_parquet(
    frame: DataFrame, out: str | os.PathLike[str], *, partition_by: list[str] | None = None
) -> Path:
    """Write a Spark DataFrame as a Parquet dataset: into a temporary folder beside ``out``,
    moved into place when complete (a local or mounted path)."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    writer = frame.write.mode("overwrite")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(str(tmp))
    replace_dir(tmp, out)
    return out
