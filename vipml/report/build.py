"""Gather everything a driver report shows, once, in no language; ``render`` words it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vipml.bundle import Bundle
from vipml.config import Config
from vipml.errors import DataError
from vipml.explain import (
    driver_curves,
    driver_plays,
    global_drivers,
    pareto,
    segment_profiles,
    vip_comparison,
)
from vipml.features import build_features
from vipml.io import Tables, ValidationReport
from vipml.plays import left_out_counts, play_table
from vipml.progress import progress as progress_bar
from vipml.score import _offer_rows, score, scoring_config
from vipml.windows import as_cutoff

# the signals shown for a typical customer of each segment (those the data has)
PROFILE = (
    "recency_days",
    "orders_365d",
    "spend_365d",
    "tenure_days",
    "views_90d",
    "app_minutes_90d",
)


@dataclass
class ReportData:
    """What the report shows, before it is put into words."""

    task: str
    version: str
    as_of: pd.Timestamp
    currency: str
    lib_version: str
    min_group: int
    vip_rule: dict[str, Any]
    pareto: pd.DataFrame
    drivers: pd.DataFrame
    curves: pd.DataFrame
    plays: pd.DataFrame
    drivers_rows: int
    vip_vs_regular: pd.DataFrame
    converters: pd.DataFrame | None
    converters_window: tuple[pd.Timestamp, pd.Timestamp]
    converters_counts: tuple[int, int]
    converters_missing: str | None
    metrics: pd.DataFrame
    curves_test: dict[str, dict[str, list[float]]]
    backtest: pd.DataFrame
    segments: pd.DataFrame
    targets_by_tier: pd.DataFrame
    targets_counts: dict[str, float]
    drift: dict[str, float]
    drift_threshold: float
    descriptions: dict[str, dict[str, str]]
    validation: pd.DataFrame
    campaign: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    actions: pd.DataFrame = field(default_factory=pd.DataFrame)  # plays by segment x driver
    left_out: dict[str, int] = field(default_factory=dict)  # rows not selected, by reason
    value: dict[str, Any] | None = None  # the expected-value models and the list's totals
    monitor: dict[str, Any] | None = None  # a vipml monitor folder: a past list against outcomes
    horizon_days: int | None = None  # the horizon the model's labels used
    requested_horizon_days: int | None = None  # the one the config asked for

    @property
    def headline(self) -> dict[str, float]:
        """The headline figures: VIP share of customers and of revenue, customers known."""
        a = self.pareto.attrs
        return {
            "vip_customer_share": a.get("vip_customer_share", 0.0),
            "vip_revenue_share": a.get("vip_revenue_share", 0.0),
            "customers": a.get("customers", 0),
        }


def _sample(X: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``n`` rows, in the frame's own order."""
    if len(X) <= n:
        return X
    rng = np.random.default_rng(seed)
    return X.iloc[np.sort(rng.choice(len(X), size=n, replace=False))]


def validation_table(report: ValidationReport | None) -> pd.DataFrame:
    """One row per table: rows in, kept, set aside, the reasons with counts, returns kept."""
    rows = []
    for name, t in report.tables.items() if report else []:
        rows.append(
            {
                "table": name,
                "rows_in": t.rows_in,
                "kept": t.rows_kept,
                "set_aside": int(sum(t.quarantined.values())),
                "reasons": dict(sorted(t.quarantined.items())),
                "returns": int(t.returns + t.cancellations),
            }
        )
    return pd.DataFrame(
        rows, columns=["table", "rows_in", "kept", "set_aside", "reasons", "returns"]
    )


def _check_qini(q: Any) -> None:
    """``qini.json``: curves of equal length and finite numbers, or ValueError."""

    def numbers(v: Any, n: int | None = None) -> list[float]:
        if not isinstance(v, list) or (n is not None and len(v) != n) or not v:
            raise ValueError("qini.json: a curve has the wrong length")
        if not all(isinstance(x, int | float) and math.isfinite(x) for x in v):
            raise ValueError("qini.json: a curve holds a value that is not a finite number")
        return v

    if not isinstance(q, dict) or not isinstance(q.get("band"), dict):
        raise ValueError("qini.json should hold an object with a 'band'")
    band = q["band"]
    n = len(numbers(q.get("share")))
    numbers(q.get("qini"), n)
    m = len(numbers(band.get("share")))
    numbers(band.get("high"), m)
    numbers(band.get("low"), m)
    numbers([q.get("qini_auc"), band.get("qini_low"), band.get("qini_high")], 3)


def read_campaign(folder: str | Path) -> dict[str, Any]:
    """The files ``vipml campaign --out DIR`` wrote: ``campaign.json``, ``ab.csv``, ``kpis.csv``."""
    folder = Path(folder)
    summary_path = folder / "campaign.json"
    if not summary_path.is_file():
        raise DataError(
            f"{folder} holds no campaign results (no campaign.json)\n"
            "Fix: run 'vipml campaign --targets FILE --after DATE --out DIR' first and pass that DIR"
        )
    try:
        out: dict[str, Any] = {"summary": json.loads(summary_path.read_text(encoding="utf-8"))}
        if not isinstance(out["summary"], dict):
            raise ValueError("campaign.json should hold an object")
        for name in ("ab", "kpis", "roi"):
            path = folder / f"{name}.csv"
            out[name] = pd.read_csv(path) if path.is_file() else None
        qini = folder / "qini.json"  # a list ranked by uplift: its Qini curve and random band
        out["qini"] = json.loads(qini.read_text(encoding="utf-8")) if qini.is_file() else None
        if out["qini"] is not None:
            _check_qini(out["qini"])
    except (ValueError, OSError, RecursionError) as exc:  # json, csv and decoding errors
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DataError(
            f"{folder}: the campaign results cannot be read ({type(exc).__name__}: {detail})\n"
            "Fix: run 'vipml campaign' again and pass its --out folder"
        ) from None
    return out


def read_monitor(folder: str | Path) -> dict[str, Any]:
    """What ``vipml monitor`` wrote into ``folder``: the summary and its tables.

    Raises
    ------
    DataError
        When the folder holds no ``monitor.json`` or a file cannot be read.
    """
    folder = Path(folder)
    path = folder / "monitor.json"
    if not path.is_file():
        raise DataError(
            f"{folder} holds no monitor.json\nFix: give the --out folder of vipml monitor"
        )
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        out: dict[str, Any] = {"summary": summary}
        for name in ("reliability", "metrics", "promised"):
            out[name] = pd.read_csv(folder / f"{name}.csv")
        value = folder / "value_deciles.csv"
        out["value"] = pd.read_csv(value) if value.is_file() else None
    except (OSError, ValueError) as exc:
        raise DataError(
            f"cannot read the monitor folder {folder}: {exc}\nFix: give the --out folder of "
            "vipml monitor, as it wrote it"
        ) from None
    for key in ("verdict_en", "verdict_ko", "cutoff", "horizon_days", "model_version"):
        if key not in summary:
            raise DataError(
                f"{path}: no '{key}'\nFix: give the --out folder of vipml monitor, as it wrote it"
            )
    return out


def _value_summary(bundle: Bundle, targets: pd.DataFrame) -> dict[str, Any] | None:
    """The value models' test-fold measures and the list's expected totals."""
    if bundle.value is None or "expected_spend" not in targets:
        return None
    t = targets.drop_duplicates("customer_id")
    return {
        "info": bundle.value.info,
        "horizon_days": bundle.value.horizon_days,
        "level": bundle.value.interval.get("level", 0.8),
        "customers": len(t),
        "expected_spend": float(t["expected_spend"].sum()),
        "clv_12m": float(t["clv_12m"].sum()) if "clv_12m" in t else math.nan,
        "p_alive": float(t["p_alive"].mean()) if "p_alive" in t else math.nan,
    }


def build_report(
    tables: Tables,
    bundle: Bundle,
    *,
    as_of: object,
    config: Config | None = None,
    validation: ValidationReport | None = None,
    targets: pd.DataFrame | None = None,
    campaign: str | Path | None = None,
    monitor: str | Path | None = None,
    progress: bool = False,
) -> ReportData:
    """Everything the driver report shows, computed from data strictly before ``as_of``.

    Parameters
    ----------
    tables, bundle
        The validated tables and the trained model.
    as_of
        The report's cutoff: features, VIP status and the target list read rows before it; the
        converters comparison reads the last full horizon before it.
    config
        Data and score sections (the bundle's own config otherwise); ``report`` sets the minimum
        group size, the number of drivers and the sample size for contributions.
    validation
        The loader's report, for the section on rows set aside.
    targets
        A target list from ``vipml score``; scored here when not given.
    campaign
        A folder written by ``vipml campaign``, for the campaign section.
    monitor
        A folder written by ``vipml monitor``, for the section on a past list's outcome.
    """
    from vipml import __version__

    cutoff = as_cutoff(as_of)
    cfg = scoring_config(bundle, config)
    rc = cfg.report
    task = str(bundle.info.get("task", "vip"))
    stages = ["features", "targets", "pareto", "drivers", "comparisons", "segments"]
    steps = iter(progress_bar(stages, label="report", enabled=progress))
    next(steps)
    X = build_features(tables, as_of=cutoff, config=cfg)
    next(steps)
    drift: dict[str, float] = {}
    if targets is None:  # the scorer reuses the features just built
        result = score(tables, bundle, as_of=cutoff, config=cfg, features=X)
        targets = result.targets
        high = result.drift[result.drift > cfg.score.drift_threshold]
        drift = {str(k): float(v) for k, v in high.sort_values(ascending=False).items()}
    next(steps)

    share = pareto(tables, as_of=cutoff, config=cfg)
    next(steps)

    X_model = _offer_rows(X, cfg.score)[0] if task == "upsell" else X
    sample = _sample(X_model, rc.sample, cfg.seed)
    drivers = global_drivers(bundle, sample, top=rc.top_drivers)
    numeric = [
        f
        for f in drivers["feature"]
        if f in sample and pd.api.types.is_numeric_dtype(sample[f]) and sample[f].nunique() > 2
    ][: rc.curves]
    curves = driver_curves(bundle, sample, numeric) if numeric else pd.DataFrame()
    plays = driver_plays(drivers, cfg)
    next(steps)

    compared = vip_comparison(
        tables, as_of=cutoff, config=cfg, bundle=bundle, min_group=rc.min_group, features=X
    )
    horizon = int(bundle.info.get("horizon_days") or cfg.labels.horizon_days)
    start = (cutoff - pd.Timedelta(days=horizon)).floor("D")
    converters, missing, counts = None, None, (0, 0)
    try:
        earlier = vip_comparison(
            tables,
            as_of=start,
            config=cfg,
            bundle=bundle,
            min_group=rc.min_group,
            horizon_days=horizon,
        )
    except DataError as exc:
        earlier, missing = {}, str(exc).splitlines()[0]
    if "converters_vs_not" in earlier:
        converters = earlier["converters_vs_not"]
        shown = converters.dropna(subset=["n_group", "n_rest"])
        if len(shown):  # groups too small to show have no counts either
            counts = (int(shown["n_group"].max()), int(shown["n_rest"].max()))
    elif missing is None:
        notes = earlier.get("notes")
        missing = (
            str(notes.iloc[0, 0])
            if isinstance(notes, pd.DataFrame) and len(notes)
            else "the data does not cover the period"
        )
    next(steps)

    best = targets[targets["offer_rank"] == 1] if "offer_rank" in targets else targets
    profiles = segment_profiles(
        best, X, min_group=rc.min_group, features=[f for f in PROFILE if f in X]
    )
    t = targets
    by_tier = (
        t.assign(
            treatment=t["group"].eq("treatment"),
            control=t["group"].eq("control"),
        )
        .groupby("tier", sort=True)
        .agg(
            rows=("score", "size"),
            selected=("selected", "sum"),
            treatment=("treatment", "sum"),
            control=("control", "sum"),
            score=("score", "mean"),
            customers=("customer_id", "nunique"),
        )
        .reset_index()
    )
    # a tier of fewer than report.min_group customers is shown as suppressed, like segments
    by_tier["suppressed"] = by_tier["customers"] < rc.min_group
    hidden = by_tier["suppressed"].to_numpy()
    numbers = ["rows", "selected", "treatment", "control", "score", "customers"]
    by_tier[numbers] = by_tier[numbers].astype("float64")
    by_tier.loc[hidden, numbers] = np.nan
    counts_t = {
        "rows": len(t),
        "selected": int(t["selected"].sum()),
        "treatment": int(t["group"].eq("treatment").sum()),
        "control": int(t["group"].eq("control").sum()),
        "value": float(t.loc[t["group"].eq("treatment"), "expected_value"].sum()),
    }
    next(steps, None)
    return ReportData(
        task=task,
        version=bundle.version,
        as_of=cutoff,
        currency=cfg.currency,
        lib_version=__version__,
        min_group=rc.min_group,
        vip_rule=cfg.vip.model_dump(mode="json"),
        pareto=share,
        drivers=drivers,
        curves=curves,
        plays=plays,
        drivers_rows=len(sample),
        vip_vs_regular=compared["vip_vs_regular"],
        converters=converters,
        converters_window=(start, cutoff),
        converters_counts=counts,
        converters_missing=missing,
        metrics=bundle.metrics,
        curves_test=bundle.curves or {},
        backtest=bundle.backtest if bundle.backtest is not None else pd.DataFrame(),
        segments=profiles,
        targets_by_tier=by_tier,
        targets_counts=counts_t,
        drift=drift,
        drift_threshold=cfg.score.drift_threshold,
        descriptions={
            f.name: {"en": f.en, "ko": f.ko, "unit": f.unit} for f in bundle.spec.features
        },
        validation=validation_table(validation),
        campaign=read_campaign(campaign) if campaign else None,
        value=_value_summary(bundle, targets),
        monitor=read_monitor(monitor) if monitor else None,
        horizon_days=bundle.info.get("horizon_days"),
        requested_horizon_days=bundle.info.get("requested_horizon_days"),
        actions=play_table(targets, rc.min_group),
        left_out=left_out_counts(best),
    )
