"""The ``vipml`` command line.

Exit status: 0 when the work is done (findings are reported, not failures), 2 on bad input or
configuration, with a message and no traceback; 1 on an internal error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

from vipml.errors import VipmlError


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_validate(args: argparse.Namespace) -> int:
    """Load and validate the tables; print the summary; write the quarantine."""
    from vipml.io import load_tables

    _check_out(args.out, folder=True)
    tables, report = load_tables(args.data, config=args.config, out=args.out, progress=True)
    print(report.summary())
    if args.out:
        print(f"report:     {Path(args.out) / 'validation.json'}")
    from vipml.io.checks import require_usable

    try:
        require_usable(report)
    except VipmlError as exc:
        where = report.quarantine_dir or "<out>/quarantine"
        _say(f"vipml: {exc}\nThe rows set aside are in {where}.")
        return 2
    return 0


def cmd_features(args: argparse.Namespace) -> int:
    """Build features as of one or more cutoffs and write them atomically."""
    import json

    from vipml import cli_scale

    if cli_scale.wanted(args):
        return cli_scale.features(args)

    from vipml.features import build_features, build_snapshots
    from vipml.io import atomic_write_text, load_tables, write_frame
    from vipml.windows import as_cutoffs

    started = time.perf_counter()
    _check_out(args.out)
    cutoffs = [c.strip() for c in args.as_of.split(",") if c.strip()]
    # a bad date fails before any work
    newest = max(as_cutoffs(cutoffs or [None], name="--as-of"))
    tables, report = load_tables(
        args.data,
        config=args.config,
        progress=not args.quiet,
        as_of=newest,
    )
    _require_usable(report)
    if report.rows_quarantined:
        _say(
            f"vipml features: {report.rows_quarantined:,} rows set aside by validation "
            "(run 'vipml validate --out DIR' to see them)"
        )
    show = not args.quiet
    if len(cutoffs) == 1:
        frame = build_features(tables, as_of=cutoffs[0], config=args.config, progress=show)
    else:
        frame = build_snapshots(tables, cutoffs=cutoffs, config=args.config, progress=show)
    spec = frame.attrs.get("feature_spec", {})
    out = write_frame(frame.reset_index(), args.out)
    spec_path = out.with_name(out.name.split(".")[0] + ".spec.json")
    atomic_write_text(json.dumps(spec, indent=2, ensure_ascii=False), spec_path)
    families = ", ".join(spec.get("families", []))
    absent = spec.get("absent", {})
    print(f"features:  {frame.shape[1]} columns x {frame.shape[0]:,} rows ({families})")
    if absent:
        print("absent:    " + "; ".join(f"{k} ({v})" for k, v in absent.items()))
    print(f"cutoffs:   {', '.join(cutoffs)}")
    print(f"written:   {out}")
    print(f"spec:      {spec_path}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def _check_out(out, *, folder: bool = False, suffixes=None, what: str = "--out") -> None:
    """Refuse an output path that cannot be written before any work starts."""
    from vipml.io.write import FRAME_SUFFIXES, check_output

    check_output(
        out,
        folder=folder,
        suffixes=None if folder else (suffixes if suffixes is not None else FRAME_SUFFIXES),
        what=what,
    )


def _load(args: argparse.Namespace, *, progress: bool = True, config=None, **window):
    """Tables from --data, the config's data_dir or database, or the config's generated
    retailer; ``window`` (as_of, horizon_days) bounds what is read from databases and datasets."""
    from vipml.config import load_config
    from vipml.io import load_tables

    config = config if config is not None else load_config(args.config)
    if args.data is None and config.data_dir is None and config.generated is not None:
        from vipml.datasets import make_retailer

        g = config.generated
        _say(f"vipml: generating a retailer of {g.customers:,} customers (seed {g.seed})")
        retailer = make_retailer(g.customers, seed=g.seed, start=g.start, end=g.end)
        return load_tables(retailer.tables(), config=config, progress=progress, **window), config
    loaded = load_tables(args.data, config=config, progress=progress, **window)
    _require_usable(loaded[1])
    return loaded, config


def _require_usable(report) -> None:
    """A table whose every row was set aside stops the command (exit 2), values and fix shown."""
    from vipml.io.checks import require_usable

    require_usable(report)


def _bundle_config(bundle, args: argparse.Namespace):
    """The config a bundle is used with: its own (features, VIP rule, data mapping) unless
    --config is given, which then supplies the data and score sections; runs are logged where
    the caller's config or environment says, never where the bundle's training logged."""
    from vipml.config import load_config
    from vipml.score import scoring_config

    config = scoring_config(bundle, load_config(args.config) if args.config else None)
    no_tables = not any(v is not None for v in config.tables.model_dump().values())
    if args.data is None and config.data_dir is None and config.generated is None and no_tables:
        from vipml.errors import ConfigError

        raise ConfigError(
            f"bundle {bundle.version} does not say where its data is\n"
            "Fix: pass --data DIR (or --config FILE with data_dir or tables)"
        )
    return config


def cmd_train(args: argparse.Namespace) -> int:
    """Train, evaluate against the baselines, write a bundle."""
    import pandas as pd

    from vipml import cli_scale

    if cli_scale.wanted(args):
        return cli_scale.train(args)

    from vipml.bundle import save_bundle
    from vipml.train import train

    started = time.perf_counter()
    _check_out(args.out, folder=True)
    (tables, report), config = _load(args)
    _say(f"vipml train: task {config.train.task}, {report.customers:,} customers")
    if config.train.task == "uplift":
        return _train_uplift(tables, config, args, started)
    result = train(tables, config, progress=True)
    for note in result.plan.notes:
        _say(f"vipml train: note: {note}")
    cols = [
        "rows",
        "positives",
        "roc_auc",
        "pr_auc",
        "lift_5",
        "lift_10",
        "lift_20",
        "capture_10",
        "brier",
        "ece",
        "distinct_scores",
        "tied_top_10",
    ]
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        cuts = result.plan.cutoffs
        listed = (
            ", ".join(f"{c:%Y-%m-%d}" for c in cuts)
            if len(cuts) <= 8
            else f"{len(cuts)} from {cuts[0]:%Y-%m-%d} to {cuts[-1]:%Y-%m-%d}"
        )
        print(f"cutoffs: {listed} (horizon {result.plan.horizon_days} days)")
        print(f"calibration: {result.calibrator.method}; trees: {result.best_iteration}")
        if result.shipped.get("model") == "refit":
            print(
                f"shipped model: refit on {len(result.shipped['cutoffs'])} cutoffs "
                f"({result.shipped['rows']:,} rows, {result.shipped['positives']:,} positives); "
                f"calibration {result.shipped['calibration']}"
            )
        if (
            result.plan.requested_horizon
            and result.plan.trained_horizon != result.plan.requested_horizon
        ):
            print(
                f"horizon: {result.plan.trained_horizon} days used for training labels "
                f"({result.plan.requested_horizon} asked)"
            )
        print()
        print("test fold:")
        print(result.metrics[[c for c in cols if c in result.metrics]].round(4).to_string())
        print()
        print("backtest:")
        bt = result.backtest.assign(as_of=result.backtest["as_of"].dt.strftime("%Y-%m-%d"))
        print(
            bt[["as_of", "fold", "rows", "positives", "roc_auc", "pr_auc", "lift_10", "brier"]]
            .round(4)
            .to_string(index=False)
        )
    if args.data is not None:  # the bundle records where its data came from
        config.data_dir = str(Path(args.data).expanduser().resolve())
    path = save_bundle(result, tables=tables, config=config, out=args.out)
    from vipml.tracking import log_training

    logged = log_training(result, path, config)
    print()
    if logged:
        print(
            f"mlflow: run {logged['run_id']} in {logged['tracking_uri']}; model {logged['model_uri']}"
        )
        print(
            f"        browse: mlflow ui --backend-store-uri {logged['tracking_uri']}  (needs: pip install mlflow)"
        )
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(f"bundle: {path}")
    return 0


def _train_uplift(tables, config, args: argparse.Namespace, started: float) -> int:
    """Train an uplift learner, print its test-fold comparison, write an uplift bundle."""
    from vipml.uplift import save_uplift_bundle, train_uplift

    result = train_uplift(tables, config, progress=True)
    for note in result.notes:
        _say(f"vipml train: note: {note}")
    print(f"uplift learner: {result.kind}; treated share {result.treatment_share:.3f}")
    print()
    print("test fold:")
    print(result.metrics.round(4).to_string())
    if args.data is not None:
        config.data_dir = str(Path(args.data).expanduser().resolve())
    path = save_uplift_bundle(result, tables=tables, config=config, out=args.out)
    from vipml.tracking import log_uplift_training

    logged = log_uplift_training(result, path, config)
    print()
    if logged:
        print(f"mlflow: run {logged['run_id']} in {logged['tracking_uri']}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(f"bundle: {path}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Score customers with a bundle and write the target list atomically."""
    from vipml import cli_scale

    if cli_scale.wanted(args):
        return cli_scale.score(args)
    from vipml.bundle import load_bundle
    from vipml.errors import ConfigError
    from vipml.io import write_frame
    from vipml.score import score
    from vipml.windows import as_cutoff

    started = time.perf_counter()
    _check_out(args.out)
    as_cutoff(args.as_of, name="--as-of")
    if args.bundle is None:
        if not args.uplift_bundle:
            raise ConfigError(
                "vipml score needs a model: --bundle DIR (a response model), --uplift-bundle DIR "
                "(an uplift model), or both"
            )
        return _score_uplift(args, started)
    bundle = load_bundle(args.bundle)
    config = _bundle_config(bundle, args)
    (tables, report), config = _load(args, progress=not args.quiet, config=config, as_of=args.as_of)
    churn = load_bundle(args.churn_bundle) if args.churn_bundle else None
    uplift = None
    if args.uplift_bundle:
        from vipml.uplift import load_uplift_bundle

        uplift = load_uplift_bundle(args.uplift_bundle)
    if args.select:
        from vipml.score import scoring_config

        config = scoring_config(bundle, config)
        config.score.select_by = args.select
    result = score(
        tables,
        bundle,
        as_of=args.as_of,
        config=config,
        churn=churn,
        uplift=uplift,
        progress=not args.quiet,
    )
    out = write_frame(result.targets, args.out)
    drift_path = out.with_name(out.name.split(".")[0] + ".drift.csv")
    write_frame(result.drift.rename_axis("feature").reset_index(), drift_path)
    from vipml.score import scoring_config
    from vipml.tracking import log_scoring

    logged = log_scoring(result, bundle, out, scoring_config(bundle, config), args.as_of)
    print(result.summary())
    if logged:
        print(f"mlflow:    run {logged['run_id']} in {logged['tracking_uri']}")
    print(f"drift:     {drift_path}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(f"targets:   {out}")
    return 0


def _score_uplift(args: argparse.Namespace, started: float) -> int:
    """The uplift list: one row per customer x tested arm, by expected incremental value."""
    from vipml.errors import ConfigError
    from vipml.io import write_frame
    from vipml.score import score_uplift
    from vipml.tracking import log_scoring
    from vipml.uplift import load_uplift_bundle

    if args.select not in (None, "uplift", "expected_value"):
        raise ConfigError(
            f"--select {args.select} needs a response bundle (--bundle DIR); an uplift list "
            "selects by expected incremental value"
        )
    uplift = load_uplift_bundle(args.uplift_bundle)
    cfg = _bundle_config(uplift, args)
    (tables, _), cfg = _load(args, progress=not args.quiet, config=cfg, as_of=args.as_of)
    result = score_uplift(tables, uplift, as_of=args.as_of, config=cfg, progress=not args.quiet)
    out = write_frame(result.targets, args.out)
    logged = log_scoring(result, uplift, out, cfg, args.as_of)
    print(result.summary())
    best = result.targets.drop_duplicates("customer_id")["best_arm"].value_counts()
    print("best arm:  " + ", ".join(f"{k} {v:,}" for k, v in best.items()))
    if logged:
        print(f"mlflow:    run {logged['run_id']} in {logged['tracking_uri']}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(f"targets:   {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write the driver report for marketers: one self-contained HTML page."""
    from vipml.bundle import load_bundle
    from vipml.report import build_report, locale, write_report
    from vipml.tracking import log_report

    started = time.perf_counter()
    langs = [x.strip() for x in args.lang.split(",") if x.strip()]
    for lang in langs:
        locale(lang)  # an unknown language fails before any work
    from vipml.windows import as_cutoff

    _check_out(args.out, suffixes=(".html", ".htm") if len(langs) == 1 else (".html", ".htm", ""))
    as_cutoff(args.as_of, name="--as-of")
    bundle = load_bundle(args.bundle)
    config = _bundle_config(bundle, args)
    (tables, validation), config = _load(
        args, progress=not args.quiet, config=config, as_of=args.as_of
    )
    targets = None
    if args.targets:
        from vipml.campaign import read_targets

        targets = read_targets(args.targets)
    data = build_report(
        tables,
        bundle,
        as_of=args.as_of,
        config=config,
        validation=validation,
        targets=targets,
        campaign=args.campaign,
        monitor=args.monitor,
        progress=not args.quiet,
    )
    outs = []
    for lang in langs:
        out = Path(args.out)
        if len(langs) > 1:
            out = out.with_name(f"{out.stem}.{lang}{out.suffix or '.html'}")
        outs.append(write_report(data, out, lang=lang))
    logged = log_report(outs, bundle, config, args.as_of, data.headline)
    if logged:
        print(f"mlflow:    run {logged['run_id']} in {logged['tracking_uri']}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    for out in outs:
        print(f"report:    {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Write the send file of one channel from a target list."""
    from vipml.campaign import read_targets
    from vipml.config import load_config
    from vipml.io import write_frame
    from vipml.sends import send_file

    _check_out(args.out)
    config = load_config(args.config)
    if args.locale:
        config.locale = args.locale
    targets = read_targets(args.targets)
    frame = send_file(targets, args.channel, config)
    out = write_frame(frame, args.out)
    print(f"send file: {out} ({args.channel}, {len(frame):,} customers)")
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    """Measure a campaign: KPIs, the A/B table of a target list, ROI per campaign."""
    import json

    from vipml.campaign import ab_test, campaign_roi, kpi_table, read_targets
    from vipml.io import atomic_write_text, write_frame
    from vipml.windows import as_cutoff

    started = time.perf_counter()
    _check_out(args.out, folder=True)
    as_cutoff(args.after, name="--after")
    targets = read_targets(args.targets)
    config = None
    if getattr(args, "bundle", None):
        from vipml.bundle import load_bundle

        config = _bundle_config(load_bundle(args.bundle), args)
    if config is None:
        from vipml.config import load_config

        config = load_config(args.config)
    horizon = args.horizon_days or config.labels.horizon_days
    (tables, report), config = _load(
        args, progress=False, config=config, as_of=args.after, horizon_days=horizon
    )
    ab = ab_test(
        targets,
        tables,
        after=args.after,
        horizon_days=horizon,
        config=config,
        planned_size=args.planned_size,
        source=str(args.targets),
    )
    after = as_cutoff(args.after, name="after")
    end = after + timedelta(days=horizon)
    kpis = kpi_table(tables, start=after, end=end, config=config, audience=targets)
    out = Path(args.out)
    written = {"kpis": write_frame(kpis, out / "kpis.csv"), "ab": write_frame(ab, out / "ab.csv")}
    offers = tables.offers
    roi = None
    if (
        tables.orders is not None
        and offers is not None
        and "campaign_id" in offers
        and offers["campaign_id"].notna().any()
    ):
        roi = campaign_roi(
            tables, start=after, end=end, acceptance_days=config.labels.acceptance_days
        )
        written["roi"] = write_frame(roi, out / "roi.csv")
    from vipml.campaign import campaign_qini

    qini = campaign_qini(targets, tables, after=after, horizon_days=horizon, seed=config.seed)
    if qini is not None:  # the list ranked by uplift: its Qini curve on what happened
        atomic_write_text(json.dumps(qini), out / "qini.json")
        written["qini"] = out / "qini.json"
    warnings = ab.attrs["warnings"]
    summary = {
        "after": after.isoformat(),
        "end": end.isoformat(),
        "horizon_days": horizon,
        "targets": str(args.targets),
        "planned_size": args.planned_size,
        "counts": {
            **ab.attrs["counts"],
            "target_rows": len(targets),
            "campaigns": 0 if roi is None else len(roi),
        },
        "warnings": warnings,
        "files": {k: v.name for k, v in written.items()},
    }
    atomic_write_text(json.dumps(summary, indent=2, ensure_ascii=False), out / "campaign.json")
    counts = ab.attrs["counts"]
    print(
        f"campaign:  {after:%Y-%m-%d} .. {end:%Y-%m-%d} ({horizon} days); treatment "
        f"{counts['treatment']:,}, control {counts['control']:,}"
    )
    for row in ab.itertuples():
        if "bootstrap" in row.method:
            continue
        print(
            f"{row.metric:<21} {row.treatment_value:,.4f} vs {row.control_value:,.4f}: "
            f"{row.difference:+,.4f} [{row.ci_low:+,.4f}, {row.ci_high:+,.4f}], p {row.p_value:.3g}"
        )
    if roi is not None and len(roi):
        print(f"campaigns: {len(roi):,}; median ROI {roi['roi'].median():,.2f}")
    for w in warnings:
        print(f"warning:   {w}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(
        f"written:   {out} ({', '.join(sorted(p.name for p in written.values()))}, campaign.json)"
    )
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    """A past target list against what its customers did: reliability, ranking, drift, verdict."""
    import pandas as pd

    from vipml.bundle import load_bundle
    from vipml.campaign import read_targets
    from vipml.errors import DataError
    from vipml.monitor import list_facts, monitor
    from vipml.tracking import log_monitoring

    started = time.perf_counter()
    _check_out(args.out, folder=True)
    targets = read_targets(args.targets)
    facts = list_facts(targets, str(args.targets))
    folder = Path(args.bundle) if args.bundle else Path(args.models) / facts["model_version"]
    if not folder.is_dir():
        raise DataError(
            f"the bundle of {args.targets} (model version {facts['model_version']}, scored as of "
            f"{facts['cutoff']:%Y-%m-%d}) is not at {folder}\nFix: give --bundle DIR, or "
            "--models DIR holding the folder of that name"
        )
    bundle = load_bundle(folder)
    config = _bundle_config(bundle, args)
    horizon = facts["horizon_days"] or int(bundle.info.get("horizon_days") or 0) or None
    (tables, _), config = _load(args, progress=False, config=config)
    result = monitor(
        targets,
        tables,
        bundle,
        config=config,
        partial=args.partial,
        source=str(args.targets),
    )
    written = result.write(args.out)
    logged = log_monitoring(result, bundle, Path(args.out), config)
    s = result.summary
    end = pd.Timestamp(s["horizon_end"])
    print(
        f"list:      {args.targets} (model {s['model_version']}, cutoff "
        f"{pd.Timestamp(s['cutoff']):%Y-%m-%d}, horizon {horizon} days to {end:%Y-%m-%d}"
        + (f", {s['observed_days']} days observed: PARTIAL" if s["partial"] else "")
        + ")"
    )
    m = result.metrics.loc["model"]
    print(
        f"measured:  {s['customers_measured']:,} customers, {s['positives']:,} positives; ROC AUC "
        f"{m['roc_auc']:.3f}, PR AUC {m['pr_auc']:.3f}, lift@10 {m['lift_10']:.2f}, ECE "
        f"{m['ece']:.4f}, lift quality {m['lift_quality']:.3f}"
    )
    print(f"verdict:   {result.verdict('en')}")
    if logged:
        print(f"mlflow:    run {logged['run_id']} in {logged['tracking_uri']}")
    print(f"done in {time.perf_counter() - started:.1f} s")
    print(f"written:   {args.out} ({', '.join(sorted(p.name for p in written.values()))})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole flow on a generated retailer: validate, features, train VIP and upsell models,
    score, measure a campaign, and write the driver reports in English and Korean."""
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.datasets import make_retailer, shipped_config
    from vipml.features import build_features
    from vipml.io import load_tables, write_frame
    from vipml.report import build_report, write_report
    from vipml.score import score
    from vipml.tracking import log_report, log_scoring, log_training
    from vipml.train import train

    out = Path(args.out)
    _check_out(args.out, folder=True)
    _check_out(args.models, folder=True, what="--models")
    started = time.perf_counter()
    _say(f"vipml demo: generating a retailer of {args.customers:,} customers (seed {args.seed})")
    retailer = make_retailer(args.customers, seed=args.seed)
    data_dir = retailer.to_dir(out / "data")
    _say(f"vipml demo: tables written to {data_dir}; validating")
    tables, report = load_tables(data_dir, out=out)
    print(report.summary())
    as_of = (retailer.end - (retailer.end - retailer.start) / 4).floor("D")
    _say(f"vipml demo: features as of {as_of:%Y-%m-%d}")
    feats = build_features(tables, as_of=as_of, progress=True)
    feats_path = write_frame(feats.reset_index(), out / "features.parquet")
    print()
    print(
        f"features:    {feats.shape[1]} columns x {feats.shape[0]:,} customers as of {as_of:%Y-%m-%d}"
    )
    bundles, runs, lists, configs = {}, {}, {}, {}
    for task in ("vip", "upsell"):
        config = load_config(shipped_config(task), seed=args.seed)
        if args.no_tracking:
            config.tracking.enabled = False
        _say(f"vipml demo: training the {task} model")
        result = train(tables, config, progress=True)
        bundles[task] = save_bundle(result, tables=tables, config=config, out=args.models)
        runs[task] = log_training(result, bundles[task], config)
        m = result.metrics
        line = ", ".join(f"{name} {m.loc[name, 'pr_auc']:.3f}" for name in m.index)
        print(f"{task:<12} test ROC AUC {m.loc['model', 'roc_auc']:.3f}; PR AUC {line}")
        scored = score(tables, load_bundle(bundles[task]), as_of=retailer.end, config=config)
        lists[task] = write_frame(scored.targets, out / f"targets_{task}.parquet")
        log_scoring(scored, load_bundle(bundles[task]), lists[task], config, retailer.end)
        configs[task] = config

    # a campaign: last quarter's VIP target list, and what its customers did afterwards
    config = configs["vip"]
    horizon = config.labels.horizon_days
    sent = (retailer.end - timedelta(days=horizon)).floor("D")
    _say(f"vipml demo: measuring the VIP target list of {sent:%Y-%m-%d} over {horizon} days")
    vip_bundle = load_bundle(bundles["vip"])
    earlier = score(tables, vip_bundle, as_of=sent, config=config)
    campaign_list = write_frame(earlier.targets, out / f"targets_vip_{sent:%Y%m%d}.parquet")
    campaign_dir = out / "campaign"
    status = cmd_campaign(
        argparse.Namespace(
            targets=str(campaign_list),
            data=str(data_dir),
            config=None,
            after=f"{sent:%Y-%m-%d}",
            horizon_days=horizon,
            planned_size=None,
            out=str(campaign_dir),
        )
    )
    if status:
        return status

    # the driver reports, in English and Korean
    reports = []
    for task in ("vip", "upsell"):
        _say(f"vipml demo: {task} driver reports (en, ko)")
        b = load_bundle(bundles[task])
        data = build_report(
            tables,
            b,
            as_of=retailer.end,
            config=configs[task],
            validation=report,
            campaign=campaign_dir if task == "vip" else None,
        )
        pages = [
            write_report(data, out / f"report_{task}.{lang}.html", lang=lang)
            for lang in ("en", "ko")
        ]
        log_report(pages, b, configs[task], retailer.end, data.headline)
        reports += pages
    print()
    print(f"data:        {data_dir}")
    print(f"validation:  {out / 'validation.json'}")
    print(f"features:    {feats_path}")
    for path in bundles.values():
        print(f"bundle:      {path}")
    for path in lists.values():
        print(f"targets:     {path}")
    print(f"campaign:    {campaign_dir} (target list {campaign_list.name})")
    for path in reports:
        print(f"report:      {path}")
    tracked = [r for r in runs.values() if r]
    if tracked:
        uri = tracked[0]["tracking_uri"]
        print(f"mlflow:      {uri} (runs {', '.join(r['run_id'][:8] for r in tracked)})")
        print(f"mlflow ui:   mlflow ui --backend-store-uri {uri}   (needs: pip install mlflow)")
    print(f"done in {time.perf_counter() - started:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="vipml",
        description="Who will accept an upsell offer, who will become a VIP, and why.",
    )
    from vipml import __version__

    parser.add_argument("--version", action="version", version=f"vipml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from vipml.cli_scale import add_arguments as add_engine

    def add(
        name: str, func: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        return p

    p = add("validate", cmd_validate, "Load and validate the input tables; set bad rows aside.")
    p.add_argument("--data", metavar="DIR", help="folder of <table>.parquet|csv files")
    p.add_argument("--config", metavar="FILE", help="YAML config (time zone, adapters)")
    p.add_argument("--out", metavar="DIR", help="where to write quarantine/ and validation.json")

    p = add("features", cmd_features, "Build per-customer features as of a cutoff date.")
    p.add_argument("--data", metavar="DIR", help="folder of <table>.parquet|csv files")
    p.add_argument("--config", metavar="FILE", help="YAML config (adapters, windows, VIP rule)")
    p.add_argument(
        "--as-of",
        required=True,
        metavar="DATE",
        help="cutoff: rows before it are read (several, comma-separated, give snapshots)",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="output .parquet or .csv")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_engine(p)

    p = add("train", cmd_train, "Train a model on time-ordered folds and write a bundle.")
    p.add_argument(
        "--config", required=True, metavar="FILE", help="YAML config (task, labels, train)"
    )
    p.add_argument("--data", metavar="DIR", help="folder of <table>.parquet|csv files")
    p.add_argument(
        "--out", metavar="DIR", default="models", help="where bundles go (default: models)"
    )
    add_engine(p, train=True)

    p = add("score", cmd_score, "Score customers with a model bundle; write the target list.")
    p.add_argument(
        "--bundle",
        metavar="DIR",
        help="a bundle folder from vipml train (optional with --uplift-bundle: then the list has "
        "one row per customer and tested arm, by expected incremental value)",
    )
    p.add_argument(
        "--data", metavar="DIR", help="folder of <table>.parquet|csv files (default: the bundle's)"
    )
    p.add_argument(
        "--as-of", required=True, metavar="DATE", help="cutoff: features read rows before it"
    )
    p.add_argument("--out", required=True, metavar="FILE", help="target list, .parquet or .csv")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="YAML config (adapters, score section); default: the bundle's data mapping",
    )
    p.add_argument("--churn-bundle", metavar="DIR", help="a churn bundle for the at-risk segment")
    p.add_argument(
        "--uplift-bundle",
        metavar="DIR",
        help="an uplift bundle (train.task: uplift): adds an uplift column",
    )
    p.add_argument(
        "--select",
        choices=["auto", "score", "expected_value", "uplift"],
        help="how to rank for selection (overrides score.select_by, default auto: positive "
        "expected incremental value); uplift needs --uplift-bundle",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_engine(p)

    p = add(
        "export",
        cmd_export,
        "Write a per-channel send file (one row per selected treatment customer) from a list.",
    )
    p.add_argument("--targets", required=True, metavar="FILE", help="target list from vipml score")
    p.add_argument("--channel", required=True, choices=["email", "sms", "push", "kakao"])
    p.add_argument("--out", required=True, metavar="FILE", help="send file, .csv or .parquet")
    p.add_argument(
        "--config", metavar="FILE", help="YAML config (locale, score.messaging, score.offers)"
    )
    p.add_argument(
        "--locale", choices=["en", "ko"], help="overrides the config's locale (ko: Korean rules)"
    )

    p = add("report", cmd_report, "Write the driver report for marketers (self-contained HTML).")
    p.add_argument(
        "--bundle", required=True, metavar="DIR", help="a bundle folder from vipml train"
    )
    p.add_argument(
        "--data", metavar="DIR", help="folder of <table>.parquet|csv files (default: the bundle's)"
    )
    p.add_argument(
        "--as-of", required=True, metavar="DATE", help="cutoff: the report reads rows before it"
    )
    p.add_argument(
        "--lang",
        default="en",
        metavar="en|ko",
        help="language of the page: en or ko; 'en,ko' writes both (default: en)",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write")
    p.add_argument(
        "--config", metavar="FILE", help="YAML config (adapters, score and report sections)"
    )
    p.add_argument(
        "--targets", metavar="FILE", help="a target list from vipml score (default: score now)"
    )
    p.add_argument(
        "--campaign", metavar="DIR", help="results of vipml campaign, for a campaign section"
    )
    p.add_argument(
        "--monitor",
        metavar="DIR",
        help="results of vipml monitor, for the section on a past list's outcome",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = add(
        "campaign",
        cmd_campaign,
        "Measure a campaign: KPI and A/B tables of a target list, ROI per campaign.",
    )
    p.add_argument("--targets", required=True, metavar="FILE", help="target list from vipml score")
    p.add_argument("--data", metavar="DIR", help="folder of <table>.parquet|csv files")
    p.add_argument("--config", metavar="FILE", help="YAML config (adapters, VIP rule, horizon)")
    p.add_argument(
        "--bundle",
        metavar="DIR",
        help="the bundle the target list was scored with: its data mapping, VIP rule and "
        "horizon when no --config is given",
    )
    p.add_argument(
        "--after",
        required=True,
        metavar="DATE",
        help="when the campaign started: outcomes read [after, after + horizon)",
    )
    p.add_argument(
        "--horizon-days",
        type=int,
        metavar="N",
        help="the test's fixed horizon (default: labels.horizon_days)",
    )
    p.add_argument(
        "--planned-size",
        type=int,
        metavar="N",
        help="customers per group the test was planned for (warns when read early)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="where kpis.csv, ab.csv, roi.csv go")

    p = add(
        "monitor",
        cmd_monitor,
        "A past target list against what happened: reliability, ranking, drift, retrain or not.",
    )
    p.add_argument("--targets", required=True, metavar="LIST", help="target list from vipml score")
    p.add_argument(
        "--data", metavar="DIR", help="folder of <table>.parquet|csv files (default: the bundle's)"
    )
    p.add_argument(
        "--config", metavar="FILE", help="YAML config (adapters, score section: drift threshold)"
    )
    p.add_argument(
        "--bundle",
        metavar="DIR",
        help="the bundle the list was scored with (default: --models DIR / the list's model_version)",
    )
    p.add_argument(
        "--models", metavar="DIR", default="models", help="where bundles are (default: models)"
    )
    p.add_argument(
        "--partial",
        action="store_true",
        help="read a list whose horizon has not ended yet (no retrain verdict)",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="where the tables and monitor.json go"
    )

    p = add("demo", cmd_demo, "Run the pipeline on a generated retailer.")
    p.add_argument(
        "--out", metavar="DIR", default="demo-output", help="output folder (default: demo-output)"
    )
    p.add_argument(
        "--customers", type=int, default=10_000, help="number of customers (default: 10000)"
    )
    p.add_argument(
        "--models", metavar="DIR", default="models", help="where bundles go (default: models)"
    )
    p.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vipml`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except VipmlError as exc:
        _say(f"vipml: {exc}")
        return 2
    except KeyboardInterrupt:
        _say("vipml: interrupted")
        return 130
    except OSError as exc:  # a path that cannot be read or written: the message names it
        _say(f"vipml: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
        return 2


if __name__ == "__main__":
    sys.exit(main())
