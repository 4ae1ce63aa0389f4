"""``vipml features|score|train`` past one machine's memory: ``--engine spark [--master URL]``
and ``--engine local --buckets N`` (see :mod:`vipml.spark` and :mod:`vipml.buckets`).

Both read Parquet datasets (a folder per table, hive-partitioned or not, or ``<table>.parquet``)
and write Parquet datasets, each output folder put in place only when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from vipml.errors import ConfigError, DataError


def add_arguments(p: argparse.ArgumentParser, *, train: bool = False) -> None:
    """The engine options of features, score and train."""
    p.add_argument(
        "--engine",
        choices=["local", "spark"],
        default="local",
        help="local (one process; with --buckets, one bucket of customers at a time) or spark",
    )
    p.add_argument(
        "--master", metavar="URL", help="Spark master (default: the session's, e.g. local[*])"
    )
    p.add_argument(
        "--buckets",
        type=int,
        metavar="N",
        help="customers hashed into N buckets, computed one at a time (local; default 64 on Spark)",
    )
    if not train:
        p.add_argument(
            "--max-customer-rows",
            type=int,
            metavar="N",
            help="refuse a customer with more than N rows in a table (named, with the count)",
        )
    if train:
        p.add_argument(
            "--sample-rows",
            type=int,
            default=2_000_000,
            metavar="N",
            help="Spark: train on a seeded, stratified sample of at most about N snapshot rows",
        )


def wanted(args: argparse.Namespace) -> bool:
    """Whether the scale-out path runs (``--engine spark`` or ``--buckets``)."""
    engine = getattr(args, "engine", "local")
    buckets = getattr(args, "buckets", None)
    if buckets is not None and buckets < 1:
        raise ConfigError(f"--buckets {buckets}: give 1 or more")
    if engine == "local" and getattr(args, "master", None):
        raise ConfigError("--master is for --engine spark")
    return engine == "spark" or buckets is not None


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _spark_errors() -> Iterator[None]:
    """A vipml error raised inside a Spark task comes back as the same error, without the
    Java and Python stacks around it."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, (DataError, ConfigError)):
            raise
        text = str(exc)
        found = re.search(
            r"vipml\.errors\.(DataError|ConfigError): (.*?)(?:\n\s*\n|\Z|JVM stack)", text, re.S
        )
        if found is None:
            found = re.search(r"(DataError|ConfigError): (.*?)(?:\n\s*\n|\Z|JVM stack)", text, re.S)
        if found is None:
            raise
        kind = DataError if found.group(1) == "DataError" else ConfigError
        raise kind(found.group(2).strip()) from None


def _data(args: argparse.Namespace) -> Path:
    if args.data is None:
        raise ConfigError(
            "--engine spark and --buckets read Parquet datasets from --data DIR.\n"
            "Fix: pass --data DIR (a folder of <table>/ datasets or <table>.parquet files)"
        )
    return Path(args.data).expanduser()


def _out_dir(path: str) -> Path:
    out = Path(path).expanduser()
    if out.suffix in (".csv", ".gz"):
        raise ConfigError(
            f"--out {out}: the scale-out engines write a Parquet dataset (a folder).\n"
            "Fix: give a folder name, e.g. --out features/"
        )
    return out


def _spark(args: argparse.Namespace):
    from vipml.spark import session

    spark = session(args.master)
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def features(args: argparse.Namespace) -> int:
    """Features by buckets (local) or on Spark, as a Parquet dataset."""
    from vipml.config import load_config
    from vipml.io import atomic_write_text

    started = time.perf_counter()
    config = load_config(args.config)
    cutoffs = [c.strip() for c in args.as_of.split(",") if c.strip()]
    data, out = _data(args), _out_dir(args.out)
    if args.engine == "spark":
        from vipml.spark import build_features_spark, write_parquet

        spark = _spark(args)
        with _spark_errors():
            frame = build_features_spark(
                data,
                cutoffs=cutoffs,
                config=config,
                n_buckets=args.buckets or 64,
                spark=spark,
                max_customer_rows=args.max_customer_rows,
            )
            write_parquet(frame, out)
        rows = spark.read.parquet(str(out)).count()
    else:
        from vipml.buckets import features_local

        run = features_local(
            data,
            cutoffs=cutoffs,
            out=out,
            config=config,
            n_buckets=args.buckets,
            progress=not args.quiet,
            max_customer_rows=args.max_customer_rows,
        )
        rows = run.rows
        for name, n in run.quarantined.items():
            _say(f"vipml features: {n:,} rows of {name} set aside by validation")
        print("seconds:   " + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()))
    from vipml.features import feature_spec
    from vipml.io import load_tables

    spec = feature_spec(load_tables(_empty_tables(data), config=config)[0], config)
    spec_path = out.with_name(out.name + ".spec.json")
    atomic_write_text(json.dumps(spec.to_dict(), indent=2, ensure_ascii=False), spec_path)
    print(f"features:  {len(spec.names)} columns x {rows:,} rows ({args.engine})")
    print(f"cutoffs:   {', '.join(cutoffs)}")
    print(f"written:   {out}")
    print(f"spec:      {spec_path}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def _empty_tables(data: Path) -> dict:
    """The data folder's tables with their columns and no rows (for the feature spec)."""
    import pandas as pd
    import pyarrow.dataset as ds

    from vipml.io import TABLE_NAMES

    out = {}
    for name in TABLE_NAMES:
        for candidate in (data / name, data / f"{name}.parquet"):
            if candidate.exists():
                schema = ds.dataset(candidate, format="parquet", partitioning="hive").schema
                out[name] = pd.DataFrame({c: pd.Series([], dtype="str") for c in schema.names})
                break
    return out


def score(args: argparse.Namespace) -> int:
    """A target list by buckets (local) or on Spark, as a Parquet dataset in list order."""
    from vipml.bundle import load_bundle
    from vipml.config import load_config
    from vipml.io import write_frame
    from vipml.score import scoring_config

    started = time.perf_counter()
    if args.bundle is None:
        raise ConfigError(
            "--engine spark and --buckets score with a model bundle.\nFix: pass --bundle DIR"
        )
    bundle = load_bundle(args.bundle)
    config = scoring_config(bundle, load_config(args.config) if args.config else None)
    if args.uplift_bundle:
        raise ConfigError(
            "--uplift-bundle is not taken by --engine spark or --buckets yet.\n"
            "Fix: score with --engine local (no --buckets) for an uplift column"
        )
    if args.select:
        config.score.select_by = args.select
    churn = load_bundle(args.churn_bundle) if args.churn_bundle else None
    if args.data is None and config.data_dir:  # the bundle's (or --config's) data folder
        data = Path(config.resolve(config.data_dir))
    else:
        data = _data(args)
    out = _out_dir(args.out)
    if args.engine == "spark":
        from vipml.spark import score_spark, write_parquet

        spark = _spark(args)
        with _spark_errors():
            frame, drift = score_spark(
                data,
                bundle,
                as_of=args.as_of,
                config=config,
                churn=churn,
                n_buckets=args.buckets or 64,
                spark=spark,
                max_customer_rows=args.max_customer_rows,
            )
            write_parquet(frame.drop("_position"), out)
        counts = spark.read.parquet(str(out)).groupBy("selected", "group").count().collect()
        rows = sum(r["count"] for r in counts)
        selected = {r["group"]: r["count"] for r in counts if r["selected"]}
        left = {
            r["left_out"]: r["count"]
            for r in spark.read.parquet(str(out)).groupBy("left_out").count().collect()
            if r["left_out"]
        }
    else:
        from vipml.buckets import score_local

        run, drift = score_local(
            data,
            bundle,
            as_of=args.as_of,
            out=out,
            config=config,
            churn=churn,
            n_buckets=args.buckets,
            progress=not args.quiet,
            max_customer_rows=args.max_customer_rows,
        )
        rows = run.rows
        import pandas as pd

        listed = pd.read_parquet(out, columns=["selected", "group", "left_out"])
        selected = listed[listed["selected"]]["group"].value_counts().to_dict()
        left = listed.loc[listed["left_out"] != "", "left_out"].value_counts().to_dict()
        print("seconds:   " + ", ".join(f"{k} {v:.1f}" for k, v in run.seconds.items()))
    drift_path = out.with_name(out.name + ".drift.csv")
    write_frame(drift.rename_axis("feature").reset_index(), drift_path)
    high = drift[drift > config.score.drift_threshold]
    print(
        f"rows: {rows:,}; selected {sum(selected.values()):,} (treatment "
        f"{selected.get('treatment', 0):,}, control {selected.get('control', 0):,})"
    )
    if left:
        print(
            f"left out: {sum(left.values()):,} ("
            + ", ".join(f"{str(k).replace('_', ' ')} {v:,}" for k, v in sorted(left.items()))
            + ")"
        )
    if len(high):
        print(
            f"warning: {len(high)} feature(s) drifted from training (PSI > {config.score.drift_threshold})"
        )
    print(f"drift:     {drift_path}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(f"targets:   {out}")
    return 0


def train(args: argparse.Namespace) -> int:
    """Snapshots and labels on Spark; the model from a capped, stratified sample."""
    from vipml.bundle import save_bundle
    from vipml.config import load_config

    if args.engine != "spark":
        raise ConfigError(
            "--buckets is for features and score; training reads its snapshots whole on one "
            "machine.\nFix: drop --buckets, or train with --engine spark"
        )
    started = time.perf_counter()
    config = load_config(args.config)
    data = _data(args)
    from vipml.spark.training import train_spark

    spark = _spark(args)
    with _spark_errors():
        result, record = train_spark(
            data,
            config,
            sample_rows_cap=args.sample_rows,
            n_buckets=args.buckets or 64,
            spark=spark,
        )
    for note in result.plan.notes:
        _say(f"vipml train: note: {note}")
    print(result.metrics[["rows", "positives", "roc_auc", "pr_auc", "brier"]].round(4).to_string())
    config.data_dir = str(data.resolve())
    path = save_bundle(result, tables=None, config=config, out=args.out, extra={"sample": record})
    from vipml.tracking import log_training

    logged = log_training(result, path, config)
    if logged:
        print(
            f"mlflow: run {logged['run_id']} in {logged['tracking_uri']}; model {logged['model_uri']}"
        )
    print(f"sample: {record['kept']:,} of {record['rows']:,} snapshot rows (cap {record['cap']:,})")
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(f"bundle: {path}")
    return 0
