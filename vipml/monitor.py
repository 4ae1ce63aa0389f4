"""Predicted against actual: a past target list beside what its customers did afterwards.

:func:`monitor` reads a target list written by ``vipml score`` (its ``cutoff``, ``horizon_days``
and ``model_version`` say when it was made, over which window it predicts and with which
bundle), the bundle itself (its population, its promise on the test fold and its own backtest
range) and the tables, and measures on ``[cutoff, cutoff + horizon)``:

* the realised rate per score decile and per tier (the reliability curve), ECE and Brier, ROC and
  PR AUC, lift and capture at 5/10/20%, and the lift quality: the share of the perfect ranking's
  gain the list achieved (its normalised Gini, 1 perfect, 0 random);
* the same for the baselines recomputed on that cutoff (the RFM heuristic and BG/NBD +
  Gamma-Gamma expected spend), so that a fall can be told from a harder period;
* the comparison with what the bundle promised on its test fold, and with the range of its own
  backtest (every cutoff of training, validation and test);
* the drift of every feature between the bundle's reference snapshot and the features at the
  cutoff (population stability index);
* when the list carries them, expected spend against actual spend (value deciles, total error,
  Spearman, normalised Gini, interval coverage).

A retrain signal is raised, in words, when ranking (ROC AUC or lift at 10%) falls below the
backtest's lowest or calibration (ECE) rises above its highest, or when the realised spend is off
the expected by more than :data:`SPEND_TOLERANCE`. Drift above ``score.drift_threshold`` is
reported beside it.

The horizon must have ended in the data: a list read too early is refused with the dates, unless
``partial=True``, which measures what can be read so far, says so, and withholds the verdict.
This stage comes after scoring; it reads bundles and lists and may use training's baselines.
"""

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
from vipml.features import build_features
from vipml.features.btyd import BTYD_BASELINE
from vipml.io import Tables
from vipml.labels import churn_labels, data_end, vip_conversion_labels
from vipml.metrics import evaluate
from vipml.model import population_stability
from vipml.score import scoring_config
from vipml.value import (
    decile_table,
    normalised_gini,
    order_amounts,
    value_labels,
    value_measures,
)
from vipml.windows import as_cutoff

SPEND_TOLERANCE = 0.25  # realised spend off the expected by more than this share: a signal
RANKING = ("roc_auc", "lift_10")  # below the backtest's lowest: ranking has fallen
CALIBRATION = ("ece",)  # above the backtest's highest: calibration has slipped
SHOWN = ("roc_auc", "pr_auc", "lift_10", "capture_10", "brier", "ece")


@dataclass
class MonitorResult:
    """What a past list predicted beside what happened, and the verdict."""

    summary: dict[str, Any]
    reliability: pd.DataFrame
    metrics: pd.DataFrame
    promised: pd.DataFrame
    drift: pd.Series
    value: pd.DataFrame | None = None
    signals: list[dict[str, str]] = field(default_factory=list)

    @property
    def retrain(self) -> bool:
        """True when a ranking, calibration or value signal was raised (never on a partial read)."""
        return bool(self.summary["retrain"])

    def verdict(self, lang: str = "en") -> str:
        """The verdict in words."""
        return str(self.summary[f"verdict_{lang}"])

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write every table and ``monitor.json`` into ``out``, each file atomically."""
        from vipml.io import atomic_write_text, write_frame

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written = {
            "reliability": write_frame(self.reliability, out / "reliability.csv"),
            "metrics": write_frame(self.metrics.rename_axis("scorer").reset_index(), out / "metrics.csv"),
            "promised": write_frame(self.promised.rename_axis("metric").reset_index(), out / "promised.csv"),
            "drift": write_frame(self.drift.rename_axis("feature").reset_index(), out / "drift.csv"),
        }  # fmt: skip
        if self.value is not None:
            written["value"] = write_frame(self.value, out / "value_deciles.csv")
        data = {
            **self.summary,
            "signals": self.signals,
            "files": {k: v.name for k, v in written.items()},
        }
        atomic_write_text(
            json.dumps(data, indent=2, ensure_ascii=False, default=_plain), out / "monitor.json"
        )
        written["summary"] = out / "monitor.json"
        return written


def _plain(value: Any) -> Any:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _one(targets: pd.DataFrame, column: str, source: str) -> Any:
    """The single value a list-wide column holds (cutoff, model_version, horizon_days)."""
    if column not in targets:
        fixes = {
            "cutoff": "score the list again with vipml score (it writes the cutoff)",
            "model_version": "score the list again with vipml score (it writes the model "
            "version), or give --bundle",
        }
        raise DataError(
            f"target list {source} has no column '{column}' (found: "
            f"{', '.join(map(str, targets.columns[:12]))}).\nFix: "
            + fixes.get(column, "give a list written by vipml score")
        )
    values = targets[column].dropna().unique()
    if len(values) != 1:
        raise DataError(
            f"target list {source}: column '{column}' should hold one value, found "
            f"{len(values)} ({', '.join(map(str, values[:5]))}).\nFix: monitor one list at a time, "
            "as vipml score wrote it"
        )
    return values[0]


def list_facts(targets: pd.DataFrame, source: str = "") -> dict[str, Any]:
    """The list's cutoff, horizon and model version (checked).

    Raises
    ------
    DataError
        When a column is missing, holds several values or an unreadable date.
    """
    for column in ("customer_id", "score"):
        if column not in targets:
            raise DataError(
                f"target list {source} has no column '{column}'.\nFix: give a response-model list "
                "written by vipml score (uplift lists are measured by vipml campaign)"
            )
    cutoff = as_cutoff(_one(targets, "cutoff", source), name=f"{source} cutoff".strip())
    version = str(_one(targets, "model_version", source))
    horizon = int(_one(targets, "horizon_days", source)) if "horizon_days" in targets else None
    return {"cutoff": cutoff, "model_version": version, "horizon_days": horizon}


def _labels(tables: Tables, task: str, cutoff: pd.Timestamp, days: int, cfg: Config) -> pd.Series:
    if task == "churn":
        return churn_labels(tables, as_of=cutoff, horizon_days=days)["label"]
    return vip_conversion_labels(tables, as_of=cutoff, horizon_days=days, config=cfg, check=False)[
        "label"
    ]


def _reliability(y: np.ndarray, score: np.ndarray, tier: np.ndarray | None) -> pd.DataFrame:
    """Realised rate per score decile (1 = highest scores) and per tier."""
    order = np.argsort(-score, kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, min(10, max(len(y), 1))), start=1):
        if len(part):
            rows.append(("decile", str(k), len(part), score[part].mean(), y[part].mean()))
    if tier is not None:
        for t in sorted({v for v in tier if isinstance(v, str)}):
            m = tier == t
            rows.append(("tier", t, int(m.sum()), score[m].mean(), y[m].mean()))
    return pd.DataFrame(rows, columns=["by", "group", "customers", "predicted", "realised"])


def _backtest_range(bundle: Bundle) -> dict[str, tuple[float, float]]:
    bt = bundle.backtest
    out = {}
    if bt is None or not len(bt):
        return out
    for m in (*RANKING, *CALIBRATION, "pr_auc", "brier"):
        if m in bt and bt[m].notna().any():
            out[m] = (float(bt[m].min()), float(bt[m].max()))
    return out


def _spend_drift(
    bundle: Bundle,
    tables: Tables,
    targets: pd.DataFrame,
    cutoff: pd.Timestamp,
    observed: int,
    complete: bool,
) -> dict[str, float]:
    """PSI of order amounts over the horizon before the cutoff, and (horizon ended) of the
    customers' spend over it, against what the bundle's value models saw."""
    ref = (bundle.value.info.get("spend_reference") if bundle.value is not None else None) or {}
    out: dict[str, float] = {}
    h = bundle.value.horizon_days if bundle.value is not None else observed
    if "order_amount" in ref:
        now = order_amounts(tables.orders, cutoff - pd.Timedelta(days=h), cutoff)
        if len(now):
            out["order_amount"] = float(
                population_stability({"v": ref["order_amount"]}, pd.DataFrame({"v": now}))["v"]
            )
    if "customer_spend" in ref and complete and observed == h:
        ids = pd.Index(targets["customer_id"].astype("str").to_numpy(), name="customer_id")
        spend = value_labels(tables, as_of=cutoff, horizon_days=h, customers=ids)["spend"]
        out["customer_spend"] = float(
            population_stability(
                {"v": ref["customer_spend"]}, pd.DataFrame({"v": spend.to_numpy()})
            )["v"]
        )
    return out


def monitor(
    targets: pd.DataFrame,
    tables: Tables,
    bundle: Bundle,
    *,
    config: Config | None = None,
    partial: bool = False,
    source: str = "target list",
) -> MonitorResult:
    """Measure a past target list against what its customers did over its horizon.

    Raises
    ------
    DataError
        When the list lacks its cutoff or model version, was scored with another bundle, or the
        data does not reach the horizon's end (unless ``partial``); the dates and the fix are
        named.
    """
    facts = list_facts(targets, source)
    cutoff, version = facts["cutoff"], facts["model_version"]
    if version != bundle.version:
        raise DataError(
            f"{source} was scored with model {version}, but the bundle given is {bundle.version}.\n"
            f"Fix: give the bundle folder {version} (--bundle DIR, or --models DIR holding it)"
        )
    task = bundle.info.get("task", "vip")
    if task not in ("vip", "churn"):
        raise DataError(
            f"bundle {bundle.version} is a {task} model: vipml monitor measures VIP and churn "
            "lists.\nFix: measure offer lists with vipml campaign"
        )
    cfg = scoring_config(bundle, config)
    horizon = facts["horizon_days"] or int(
        bundle.info.get("horizon_days") or cfg.labels.horizon_days
    )
    end = cutoff + pd.Timedelta(days=horizon)
    last = data_end(tables)
    if last is None or last < cutoff:
        seen = "has no dated rows" if last is None else f"ends {last:%Y-%m-%d}"
        raise DataError(
            f"{source} (cutoff {cutoff:%Y-%m-%d}) predicts {cutoff:%Y-%m-%d} .. {end:%Y-%m-%d}, "
            f"but the data {seen}: nothing after the cutoff can be read.\n"
            "Fix: give data that reaches past the cutoff (--data DIR)"
        )
    observed = horizon
    complete = last >= end - pd.Timedelta(days=1)
    if not complete:
        observed = int((last - cutoff) / pd.Timedelta(days=1))
        if not partial:
            raise DataError(
                f"the horizon of {source} has not ended: it predicts {cutoff:%Y-%m-%d} .. "
                f"{end:%Y-%m-%d} ({horizon} days), and the data ends {last:%Y-%m-%d} "
                f"({observed} days in).\nFix: run again after {end:%Y-%m-%d} with data up to "
                "then, or add --partial to read the first days now"
            )
        if observed < 1:
            raise DataError(
                f"the data ends {last:%Y-%m-%d}, less than a day after the cutoff "
                f"{cutoff:%Y-%m-%d}: there is nothing to read yet.\nFix: run after "
                f"{end:%Y-%m-%d}"
            )
    ids = targets["customer_id"].astype("str")
    y_all = _labels(tables, task, cutoff, observed, cfg)
    scored = targets["score"].notna().to_numpy().copy()
    if "in_population" in targets:
        scored &= targets["in_population"].astype(bool).to_numpy()
    rows = pd.DataFrame(
        {
            "customer_id": ids.to_numpy(),
            "score": targets["score"].to_numpy(dtype=np.float64),
            "tier": targets["tier"].to_numpy() if "tier" in targets else None,
        }
    )[scored]
    rows = rows[rows["customer_id"].isin(y_all.index)]
    not_rated = int(scored.sum()) - len(rows)
    if not len(rows):
        raise DataError(
            f"none of the {int(scored.sum()):,} scored customers of {source} is in the population "
            f"the labels rate at {cutoff:%Y-%m-%d}.\nFix: give the tables the list was scored from"
        )
    y = y_all.reindex(rows["customer_id"]).to_numpy(dtype=np.float64)
    s = rows["score"].to_numpy()
    reliability = _reliability(y, s, rows["tier"].to_numpy() if "tier" in targets else None)
    measured = {"model": {**evaluate(y, s), "lift_quality": normalised_gini(y, s)}}

    # the baselines on the same cutoff and rows, and the drift of every feature
    X = build_features(tables, as_of=cutoff, config=cfg)
    X = X.copy(deep=False)
    X.attrs = {}
    Xr = X.reindex(pd.Index(rows["customer_id"]))
    if {"recency_days", "orders_all", "spend_all"} <= set(X.columns):
        from vipml.train import rfm_score

        rfm = rfm_score(Xr)
        rfm = -rfm if task == "churn" else rfm
        measured["rfm_heuristic"] = {
            **evaluate(y, rfm, probabilities=False),
            "lift_quality": normalised_gini(y, rfm),
        }
    if BTYD_BASELINE in X and task == "vip":
        base = np.nan_to_num(Xr[BTYD_BASELINE].to_numpy(dtype=np.float64), nan=-1.0)
        measured["bgnbd_gamma_gamma"] = {
            **evaluate(y, base, probabilities=False),
            "lift_quality": normalised_gini(y, base),
        }
    metrics = pd.DataFrame(measured).T
    inside = X.index.isin(rows["customer_id"])
    drift = population_stability(bundle.reference, X[inside] if inside.any() else X)

    # what the bundle promised on its test fold, and its backtest range
    span = _backtest_range(bundle)
    promised_row = bundle.metrics.loc["model"] if "model" in bundle.metrics.index else None
    prom = []
    for m in SHOWN:
        lo, hi = span.get(m, (math.nan, math.nan))
        realised = float(measured["model"].get(m, math.nan))
        outside = (m in RANKING and realised < lo) or (m in CALIBRATION and realised > hi)
        prom.append(
            {
                "metric": m,
                "promised": float(promised_row[m]) if promised_row is not None and m in promised_row else math.nan,
                "realised": realised,
                "backtest_min": lo,
                "backtest_max": hi,
                "outside_backtest": bool(outside) and complete,
            }
        )  # fmt: skip
    promised = pd.DataFrame(prom).set_index("metric")

    # expected value against actual spend
    value_table, value_facts = None, {}
    if "expected_spend" in targets:
        everyone = pd.Index(ids.to_numpy(), name="customer_id")
        actual = value_labels(tables, as_of=cutoff, horizon_days=observed, customers=everyone)
        pred = targets["expected_spend"].to_numpy(dtype=np.float64)
        ok = np.isfinite(pred)
        a = actual["spend"].to_numpy()[ok]
        value_facts = value_measures(a, pred[ok])
        if {"spend_low", "spend_high"} <= set(targets.columns):
            lo = targets["spend_low"].to_numpy(dtype=np.float64)[ok]
            hi = targets["spend_high"].to_numpy(dtype=np.float64)[ok]
            value_facts["interval_coverage"] = float(((a >= lo - 1e-9) & (a <= hi + 1e-9)).mean())
        if "expected_orders" in targets:
            po = targets["expected_orders"].to_numpy(dtype=np.float64)[ok]
            value_facts["orders"] = value_measures(actual["orders"].to_numpy()[ok], po)
        value_table = decile_table(a, pred[ok])
        if bundle.value is not None:
            value_facts["promised"] = bundle.value.info.get("test", {}).get("spend", {})

    # signals, in words
    signals: list[dict[str, str]] = []
    for m, row in promised.iterrows():
        if not row["outside_backtest"]:
            continue
        kind = "ranking" if m in RANKING else "calibration"
        word = "below the lowest" if m in RANKING else "above the highest"
        word_ko = "최저치보다 낮음" if m in RANKING else "최고치보다 높음"
        bound = row["backtest_min"] if m in RANKING else row["backtest_max"]
        signals.append(
            {
                "kind": kind,
                "en": f"{kind}: {m} {row['realised']:.3f} is {word} of the bundle's own backtest "
                f"({bound:.3f}; promised on its test fold {row['promised']:.3f})",
                "ko": f"{'순위' if kind == 'ranking' else '보정'}: {m} {row['realised']:.3f}, "
                f"학습 시 백테스트 범위의 {word_ko} ({bound:.3f}; 테스트 구간 약속치 "
                f"{row['promised']:.3f})",
            }
        )
    err = value_facts.get("total_error", math.nan)
    if complete and np.isfinite(err) and abs(err) > SPEND_TOLERANCE:
        signals.append(
            {
                "kind": "value",
                "en": f"value: customers spent {value_facts['actual_total']:,.0f} against "
                f"{value_facts['predicted_total']:,.0f} expected (expected {err:+.0%} off the "
                f"actual, tolerance ±{SPEND_TOLERANCE:.0%})",
                "ko": f"가치: 실제 구매 금액 {value_facts['actual_total']:,.0f}, 예상 "
                f"{value_facts['predicted_total']:,.0f} (예상이 실제 대비 {err:+.0%}, 허용 범위 "
                f"±{SPEND_TOLERANCE:.0%})",
            }
        )
    threshold = cfg.score.drift_threshold
    spend_drift = _spend_drift(bundle, tables, targets, cutoff, observed, complete)
    for name, psi in spend_drift.items():
        if psi > threshold:
            what = {
                "order_amount": ("order amounts before the cutoff", "컷오프 이전 주문 금액"),
                "customer_spend": ("customers' spend over the horizon", "기간 내 고객별 구매 금액"),
            }[name]
            signals.append(
                {
                    "kind": "spend drift",
                    "en": f"spend drift: the distribution of {what[0]} moved from what the model "
                    f"was trained on (PSI {psi:.2f} > {threshold})",
                    "ko": f"구매 금액 분포 변화: {what[1]}의 분포가 학습 때와 달라졌습니다 "
                    f"(PSI {psi:.2f} > {threshold})",
                }
            )
    retrain_signals = [x for x in signals if x["kind"] != "spend drift" or complete]
    drifted = drift[drift > threshold]
    retrain = bool(retrain_signals) and complete
    if not complete:
        verdict_en = (
            f"Partial read: {observed} of {horizon} days observed (the horizon ends "
            f"{end:%Y-%m-%d}). Rates so far are not comparable with the bundle's promise; no "
            "retrain verdict yet."
        )
        verdict_ko = (
            f"부분 결과: {horizon}일 중 {observed}일만 관측됨 (기간 종료 {end:%Y-%m-%d}). "
            "아직 학습 시 약속치와 비교할 수 없어 재학습 판단을 보류합니다."
        )
    elif retrain:
        verdict_en = "Retrain: " + "; ".join(x["en"] for x in signals) + "."
        verdict_ko = "재학습 필요: " + "; ".join(x["ko"] for x in signals) + "."
    else:
        auc = measured["model"]["roc_auc"]
        verdict_en = (
            f"No retrain needed: ranking and calibration stay inside the bundle's backtest range "
            f"(ROC AUC {auc:.3f}, ECE {measured['model']['ece']:.3f})"
            + (
                f"; expected spend {abs(err):.0%} {'below' if err < 0 else 'above'} the actual"
                if np.isfinite(err)
                else ""
            )
            + "."
        )
        verdict_ko = (
            f"재학습 불필요: 순위와 보정이 학습 시 백테스트 범위 안에 있습니다 (ROC AUC {auc:.3f}, "
            f"ECE {measured['model']['ece']:.3f})"
            + (f"; 예상 구매 금액이 실제 대비 {err:+.0%}" if np.isfinite(err) else "")
            + "."
        )
    if len(drifted):
        listed = ", ".join(f"{k} {v:.2f}" for k, v in drifted.head(5).items())
        verdict_en += (
            f" For information: {len(drifted)} feature(s) moved since training (PSI > "
            f"{threshold}): {listed}."
        )
        verdict_ko += (
            f" 참고: 학습 이후 {len(drifted)}개 변수의 분포가 달라졌습니다 (PSI > {threshold}): "
            f"{listed}."
        )
    summary = {
        "targets": source,
        "model_version": version,
        "task": task,
        "cutoff": cutoff.isoformat(),
        "horizon_days": horizon,
        "horizon_end": end.isoformat(),
        "data_end": last.isoformat(),
        "observed_days": observed,
        "partial": not complete,
        "customers_measured": len(rows),
        "customers_listed": len(targets),
        "customers_not_rated": not_rated,
        "positives": int(y.sum()),
        "realised_rate": float(y.mean()),
        "retrain": retrain,
        "drifted_features": drifted.round(4).to_dict(),
        "spend_drift": spend_drift,
        "drift_threshold": threshold,
        "value": value_facts,
        "verdict_en": verdict_en,
        "verdict_ko": verdict_ko,
    }
    return MonitorResult(summary, reliability, metrics, promised, drift, value_table, signals)
