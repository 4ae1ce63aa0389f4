"""Customers in buckets: features and scores one bucket at a time, equal to the whole-data result.

The feature engine is a function of one customer's rows, so customers are hashed into buckets
(:func:`bucket_of`) and each bucket's rows of every table are loaded, validated and computed on
their own, by the same code as the single-machine path. The few figures of the whole population
come from an aggregate pass over the buckets' outputs:

* features: the VIP bar of each cutoff (``vip.rule: top_share``), from the VIP-window spend of
  every known customer, and the BTYD family's BG/NBD and Gamma-Gamma parameters, fitted once on
  the population's sample (each bucket hands over its candidates, :func:`btyd_candidates`);
  :func:`fix_vip` then sets ``is_vip``, ``vip_gap`` and the BTYD features from them;
* scoring: the high-value bar of the segments, the drift of each feature (bin counts summed over
  buckets), the percentiles behind the reasons (the sorted column of each driver feature), and the
  list itself (percentile, tier, selection under capacity and budget, the seeded control group),
  computed over a few narrow columns of every row.

:mod:`vipml.spark` runs these steps on Apache Spark; :func:`features_local` and
:func:`score_local` run them on one machine from Parquet datasets, one bucket at a time, so that
peak memory follows the bucket, not the data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from vipml.bundle import Bundle
from vipml.config import Config, as_config
from vipml.errors import ConfigError, DataError
from vipml.features import build_snapshots
from vipml.features.btyd import (
    DEFER,
    HIDDEN,
    SUMMARY,
    btyd_values,
    fit_candidates,
    fit_from_candidates,
    merge_candidates,
)
from vipml.features.registry import FeatureSpec
from vipml.io import TABLE_NAMES, load_tables
from vipml.io.database import FILTERED
from vipml.io.dataset import is_dataset, open_dataset, time_filter
from vipml.io.write import replace_dir
from vipml.model import _bin_shares, prepare_matrix
from vipml.plays import CHANNELS, contact_frame, driver_actions, population_rates
from vipml.progress import progress as bar
from vipml.score import (
    ACTION_COLUMNS,
    COLUMNS,
    _format,
    _tiers,
    contact_plan,
    contributions,
    control_group,
    conversion_value,
    in_population,
    scoring_config,
    segments,
    selection,
)
from vipml.vip import vip_bar
from vipml.windows import as_cutoff

BUCKET = "_bucket"
ROW = "_row"  # an order line's input position, kept through the split
ORDER_KEY = "vipml-order-part"  # 16 bytes: the hash key of the order lines' join parts
READ_BATCH_ROWS = 1 << 18  # rows per batch when splitting a table into buckets
WRITE_BUFFER_ROWS = 1 << 18  # rows the split holds before writing, over all buckets


def bucket_of(
    ids: pd.Series | np.ndarray | pa.Array | pa.ChunkedArray, n_buckets: int
) -> np.ndarray:
    """The bucket of each customer id: a stable hash of the id text modulo ``n_buckets``."""
    return (pd.util.hash_array(_id_text(ids), categorize=False) % np.uint64(n_buckets)).astype(
        np.int64
    )


def _id_text(ids: pd.Series | np.ndarray | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Ids as an object array of text. Arrow text goes straight to Python strings: the pandas
    text conversion of every batch of a large table holds on to memory as the tables grow."""
    if isinstance(ids, pa.Array | pa.ChunkedArray):
        if not (pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type)):
            ids = ids.cast(pa.large_string())
        values = ids.to_numpy(zero_copy_only=False)
        values = np.asarray(values, dtype=object)
        missing = pd.isna(values)
        if missing.any():
            values = values.copy()
            values[missing] = np.nan  # as the pandas conversion below leaves a missing id
        return values
    return pd.Series(np.asarray(ids, dtype=object)).astype("str").to_numpy(dtype=object)


# --- features ---------------------------------------------------------------------------------


def vip_column(config: Config) -> str:
    """The feature holding the VIP-window spend."""
    return f"vip_spend_{config.vip.window_days}d"


RANKED = {"spend_pct_all": "spend_all"}  # a percentile among the known customers: its column


def population_columns(config: Config, spec: FeatureSpec) -> list[str]:
    """The feature columns the aggregate pass reads: the VIP-window spend (``top_share``) and
    the columns behind percentiles among the customers known at the cutoff."""
    out = []
    if "vip" in spec.families and config.vip.rule == "top_share":
        out.append(vip_column(config))
    out += [src for name, src in RANKED.items() if name in spec.names and src in spec.names]
    return out


def needs_bar(config: Config, spec: FeatureSpec) -> bool:
    """Whether some features depend on the whole population (an aggregate pass is needed)."""
    return bool(population_columns(config, spec)) or "btyd" in spec.families


def btyd_candidates(part: pd.DataFrame, ids: np.ndarray | pd.Index) -> pd.DataFrame | None:
    """A bucket's candidates for the population's BTYD fit at one cutoff (``part``: its rows at
    that cutoff with the ``_btyd_*`` summary columns, ``ids`` their customers); None when the
    family was not built."""
    if HIDDEN[0] not in part:
        return None
    buyers = part[HIDDEN[0]].to_numpy(dtype=np.float64) > 0
    s = {k: part[f"_btyd_{k}"].to_numpy(dtype=np.float64)[buyers] for k in SUMMARY}
    return fit_candidates(s, np.asarray(ids, dtype=object)[buyers])


def population_bar(spend: np.ndarray, config: Config) -> float:
    """The VIP bar from the VIP-window spend of every customer known at a cutoff (one entry
    each): the same figure the single-machine build computes."""
    return vip_bar(pd.Series(np.asarray(spend, dtype=np.float64)), config.vip)


def population_figures(
    columns: Mapping[str, np.ndarray],
    config: Config,
    btyd: pd.DataFrame | None = None,
    *,
    with_btyd: bool = False,
) -> dict[str, Any]:
    """From the aggregate pass's columns of every customer known at one cutoff: the VIP bar and
    the sorted columns behind the percentiles; with ``with_btyd``, the BTYD parameters fitted on
    ``btyd``, the candidates of every bucket (:func:`btyd_candidates`, merged)."""
    figures: dict[str, Any] = {"ranks": {}}
    if with_btyd:
        figures["btyd"] = fit_from_candidates(btyd)
    if vip_column(config) in columns and config.vip.rule == "top_share":
        figures["bar"] = population_bar(columns[vip_column(config)], config)
    for name, src in RANKED.items():
        if src in columns:
            figures["ranks"][name] = np.sort(np.asarray(columns[src], dtype=np.float64))
    return figures


def fix_vip(frame: pd.DataFrame, figures: Mapping[str, Any], config: Config) -> pd.DataFrame:
    """A bucket's population features against the whole population: ``is_vip`` and ``vip_gap``
    against the VIP bar, percentiles among the known customers (pandas' ``rank(pct=True,
    method="max")``: the share of customers at or below), the BTYD features from the
    population's parameters (the ``_btyd_*`` summary columns are dropped)."""
    frame = frame.copy()
    if HIDDEN[0] in frame:
        s = {k: frame[f"_btyd_{k}"].to_numpy(dtype=np.float64) for k in SUMMARY}
        fit = figures.get("btyd") or {}
        for name, values in btyd_values(fit, s, config.labels.horizon_days).items():
            if name in frame:
                frame[name] = values
        frame = frame.drop(columns=list(HIDDEN))
    bar_value = figures.get("bar")
    if bar_value is not None and "is_vip" in frame and vip_column(config) in frame:
        spend = frame[vip_column(config)].to_numpy(dtype=np.float64)
        is_vip = (spend >= bar_value) & (spend > 0)
        gap = np.clip(bar_value - spend, 0, None)
        frame["is_vip"] = is_vip.astype(np.float64)
        frame["vip_gap"] = np.where(np.isfinite(gap), gap, np.nan)
    for name, ref in figures.get("ranks", {}).items():
        if name in frame and RANKED[name] in frame and len(ref):
            v = frame[RANKED[name]].to_numpy(dtype=np.float64)
            below = np.searchsorted(ref, v, side="right").astype(np.float64)
            frame[name] = below / float(len(ref))
    return frame


def check_customer_rows(raw: Mapping[str, pd.DataFrame], limit: int | None) -> None:
    """Refuse a customer with more than ``limit`` rows in a table (a reseller account, say),
    naming the customer and the count: one customer's rows are never split across tasks."""
    if limit is None:
        return
    for name, frame in raw.items():
        if "customer_id" not in frame or len(frame) <= limit:
            continue
        counts = frame["customer_id"].value_counts()
        if len(counts) and counts.iloc[0] > limit:
            raise DataError(
                f"table '{name}': customer '{counts.index[0]}' has {int(counts.iloc[0]):,} rows, "
                f"more than the {limit:,} one task may hold for one customer.\nFix: leave the "
                "account out (a reseller, say), or raise the limit (max_customer_rows) where "
                "memory allows"
            )


def bucket_features(
    raw: Mapping[str, pd.DataFrame],
    cutoffs: Sequence[pd.Timestamp],
    config: Config,
    max_customer_rows: int | None = None,
    contact_at: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Features of one bucket's customers at each cutoff (rows: ``as_of``, ``customer_id``;
    ``is_vip`` and ``vip_gap`` still against the bucket's own bar, the BTYD features missing and
    their inputs in the ``_btyd_*`` columns: :func:`fix_vip` completes them) and the rows
    validation set aside per table. With ``contact_at``, the customers' consents and channel
    history as of that cutoff (:func:`vipml.plays.contact_frame`) ride along in
    ``attrs["contact"]``."""
    check_customer_rows(raw, max_customer_rows)
    tables, report = load_tables(dict(raw), config=config)
    frame = build_snapshots(tables, cutoffs=cutoffs, config=config, population={"btyd": DEFER})
    if contact_at is not None:  # consents and channel history of the bucket's customers
        ids = (
            frame.xs(contact_at, level="as_of").index
            if len(frame) and contact_at in frame.index.get_level_values("as_of")
            else pd.Index([], dtype=str)
        )
        contact = contact_frame(tables.customers, tables.offers, ids, contact_at)
        frame.attrs["contact"] = contact.reset_index().to_dict(orient="list")
    quarantined = {
        name: sum(t.quarantined.values()) for name, t in report.tables.items() if t.quarantined
    }
    return frame, quarantined


# --- scoring ----------------------------------------------------------------------------------


def check_task(bundle: Bundle) -> None:
    """Bucketed scoring lists customers (VIP, churn); offer rows stay on one machine."""
    if bundle.info.get("task", "vip") == "upsell":
        raise ConfigError(
            "an upsell bundle scores customer x offer rows, which the bucketed engines do not "
            "list yet.\nFix: score upsell bundles with --engine local (no --buckets)"
        )


def inside_rows(X: pd.DataFrame, bundle: Bundle) -> np.ndarray:
    """Rows in the population the bundle was trained on (:func:`vipml.score.in_population`;
    the VIP status at the cutoff is the ``is_vip`` feature)."""
    return in_population(None, X, bundle, None, None)  # type: ignore[arg-type]


def drift_counts(
    reference: Mapping[str, Any], X: pd.DataFrame, bundle: Bundle | None = None
) -> dict[str, Any]:
    """Per feature, the counts behind :func:`vipml.model.population_stability` (to be summed
    over buckets with :func:`add_counts`); with ``bundle``, of the rows in its population."""
    if bundle is not None:
        inside = inside_rows(X, bundle)
        X = X if inside.all() else X[inside]
    out: dict[str, Any] = {"_rows": len(X)}
    for name, ref in reference.items():
        if name not in X:
            continue
        if ref["kind"] == "categorical":
            counts = X[name].astype("str").fillna("<missing>").value_counts()
            out[name] = {str(k): int(v) for k, v in counts.items()}
        else:
            shares = _bin_shares(X[name].to_numpy(dtype=np.float64), np.asarray(ref["edges"]))
            out[name] = np.rint(shares * max(len(X), 1)).astype(np.int64).tolist()
    return out


def add_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Counts of two buckets together."""
    out = dict(a)
    for k, v in b.items():
        if k not in out:
            out[k] = v
        elif k == "_rows":
            out[k] = out[k] + v
        elif isinstance(v, dict):
            merged = dict(out[k])
            for key, n in v.items():
                merged[key] = merged.get(key, 0) + n
            out[k] = merged
        else:
            out[k] = [x + y for x, y in zip(out[k], v, strict=True)]
    return out


def drift_from_counts(reference: Mapping[str, Any], counts: Mapping[str, Any]) -> pd.Series:
    """Population stability index per feature from summed counts: the single-machine figure."""
    eps = 1e-4
    out = {}
    rows = counts.get("_rows", 0)
    for name, ref in reference.items():
        if name not in counts:
            continue
        if ref["kind"] == "categorical":
            now = counts[name]
            total = sum(now.values())
            keys = sorted(set(ref["shares"]) | set(now))
            expected = np.array([ref["shares"].get(k, 0.0) for k in keys])
            actual = np.array([now.get(k, 0) / total if total else 0.0 for k in keys])
        else:
            expected = np.asarray(ref["shares"])
            actual = np.asarray(counts[name], dtype=np.float64) / max(rows, 1)
        e, a = np.clip(expected, eps, None), np.clip(actual, eps, None)
        out[name] = float(np.sum((a - e) * np.log(a / e)))
    return pd.Series(out, name="psi").sort_values(ascending=False)


def high_value_bar(spend_365d: np.ndarray, share: float) -> float:
    """The segments' high-value bar from every scored customer's ``spend_365d``."""
    spend = np.asarray(spend_365d, dtype=np.float64)
    positive = spend[spend > 0]
    return float(np.quantile(positive, 1 - share)) if len(positive) else np.inf


def score_rows(
    X: pd.DataFrame,
    bundle: Bundle,
    cfg: Config,
    *,
    hv_bar: float,
    churn: Bundle | None = None,
    uplift: Any = None,
    k: int = 3,
    cutoff: pd.Timestamp | None = None,
    contact: pd.DataFrame | None = None,
    population: np.ndarray | None = None,
) -> pd.DataFrame:
    """The per-customer part of a target list for one bucket: score, segment, driver and play,
    the drivers behind the reasons (names and values; the sentences need the population, see
    :func:`reason_texts`), expected value and cost, channel and send window (from ``contact``,
    the bucket's :func:`vipml.plays.contact_frame`, and ``population``, the whole population's
    channel response rates from an aggregate; none: consents and history not known)."""
    sc = cfg.score
    bundle.check(X)
    inside = inside_rows(X, bundle)
    M = prepare_matrix(X, bundle.features, bundle.categories)
    contrib, margin = contributions(bundle, M)
    prob = bundle.calibrator.predict(1.0 / (1.0 + np.exp(-margin)))
    prob = np.where(inside, prob, np.nan)  # outside the trained population: no score
    churn_score = None
    if churn is not None and all(c in X for c in churn.features):
        churn_score = churn.predict(X[churn.features])
    frame = pd.DataFrame({"customer_id": np.asarray(X.index, dtype=object), "score": prob})
    frame["segment"] = segments(X, sc.segments, churn_score, bar=hv_bar)
    names = np.array(list(M.columns), dtype=object)
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    rows = np.arange(len(M))
    categorical = {c for c in M.columns if isinstance(M[c].dtype, pd.CategoricalDtype)}
    for j in range(k):
        idx = order[:, j]
        positive = contrib[rows, idx] > 0
        frame[f"_driver_{j + 1}"] = np.where(positive, names[idx], "")
        value = np.full(len(M), np.nan)
        label = np.full(len(M), None, dtype=object)
        for c_i, name in enumerate(names):  # loops over features, not customers
            hit = (idx == c_i) & positive
            if not hit.any():
                continue
            if name in categorical or name not in X:
                label[hit] = M[name].astype("object").to_numpy()[hit]
            else:
                value[hit] = M[name].to_numpy(dtype=np.float64)[hit]
        frame[f"_value_{j + 1}"] = value
        frame[f"_label_{j + 1}"] = pd.array(
            pd.Series(label).where(pd.Series(label).notna(), None).astype("object"), dtype="str"
        )
    act = driver_actions(X, contrib, list(M.columns), frame["segment"].to_numpy(), sc)
    for name in ("play_en", "play_ko", "offer_type", *ACTION_COLUMNS):
        frame[name] = act[name]
    frame["offer"] = frame["offer_type"]
    value = conversion_value(X, sc)
    cost = np.full(len(X), sc.cost)
    frame["_cost"] = cost
    frame["expected_value"] = prob * value - cost
    frame["in_population"] = inside
    frame["_value_known"] = "value" in sc.model_fields_set or bool(
        sc.value_feature and sc.value_feature in X
    )
    ids = pd.Index(np.asarray(X.index, dtype=object))
    when = cutoff if cutoff is not None else pd.Timestamp("1970-01-01", tz="UTC")
    plan = contact_plan(
        contact, X, ids, act["_replenishment"], np.arange(len(X)), when, cfg, population
    )
    for name, values in plan.items():
        frame[name] = values
    if uplift is not None:
        frame["uplift"] = uplift.predict(X)
    return frame


def driver_names(frame: pd.DataFrame, bundle: Bundle, X_columns: Iterable[str]) -> list[str]:
    """The numeric features some row's reasons name (their population percentiles are needed)."""
    cats = set(bundle.categories)
    used: set[str] = set()
    for j in (1, 2, 3):
        used |= set(pd.unique(frame[f"_driver_{j}"].to_numpy()))
    return sorted(n for n in used if n and n not in cats and n in set(X_columns))


def percentile_thresholds(column: np.ndarray) -> np.ndarray:
    """For q = 50..100, the smallest value a customer needs for "higher than q% of customers"
    against this population column (NaN where none reaches q): the single-machine percentile
    ``floor(searchsorted(sorted, v, 'right') / present * 100)`` as 51 cut points."""
    ref = np.sort(np.asarray(column, dtype=np.float64))
    ref = ref[~np.isnan(ref)]
    present = len(ref)
    out = np.full(51, np.nan)
    if not present:
        return out
    for i, q in enumerate(range(50, 101)):
        guess = q * present // 100
        cand = np.arange(max(guess - 3, 1), min(guess + 4, present) + 1)
        p = np.floor(cand / max(present, 1) * 100)
        ok = cand[p >= q]
        if len(ok):
            out[i] = ref[ok.min() - 1]
    return out


def reason_texts(
    frame: pd.DataFrame, spec: FeatureSpec, thresholds: Mapping[str, np.ndarray], k: int = 3
) -> pd.DataFrame:
    """The reason sentences (English and Korean) from a bucket's drivers and the population's
    percentile cut points: the sentences of :func:`vipml.score.reasons`."""
    n = len(frame)
    out = {}
    for j in range(1, k + 1):
        driver = frame[f"_driver_{j}"].to_numpy(dtype=object)
        value = frame[f"_value_{j}"].to_numpy(dtype=np.float64)
        label = frame[f"_label_{j}"].astype("object").to_numpy()
        sentence_en = np.full(n, "", dtype=object)
        sentence_ko = np.full(n, "", dtype=object)
        for name in pd.unique(driver):
            if not name:
                continue
            hit = driver == name
            en = spec[name].en if name in spec.names else name
            ko = spec[name].ko if name in spec.names else name
            if name in thresholds:
                # a sentence depends on the value alone: phrase each distinct value once
                bits, inverse = np.unique(value[hit].view(np.int64), return_inverse=True)
                v = bits.view(np.float64)
                text = _format(v, spec[name].unit if name in spec.names else "")
                cuts = thresholds[name]
                finite = cuts[~np.isnan(cuts)]
                reached = np.searchsorted(finite, v, side="right")
                q = np.where(np.isnan(v) | (reached == 0), -1, 49 + reached).tolist()
                share_en = np.array(
                    [f" (higher than {p}% of customers)" if p >= 50 else "" for p in q], object
                )
                share_ko = np.array(
                    [f" (상위 {max(100 - p, 1)}%)" if p >= 50 else "" for p in q], object
                )
                sentence_en[hit] = (en + ": " + text + share_en)[inverse.ravel()]
                sentence_ko[hit] = (ko + ": " + text + share_ko)[inverse.ravel()]
            else:
                shown = np.where(pd.isna(label[hit]), "-", label[hit]).astype(object)
                text = pd.Series(shown).fillna("-").astype(str).to_numpy()
                sentence_en[hit] = en + ": " + text
                sentence_ko[hit] = ko + ": " + text
        has = driver != ""
        if "in_population" in frame:
            has &= frame["in_population"].to_numpy(dtype=bool)
        out[f"reason_{j}_en"] = np.where(has, sentence_en, "")
        out[f"reason_{j}_ko"] = np.where(has, sentence_ko, "")
    return pd.DataFrame(out, index=frame.index)


LIST_COLUMNS = [
    "customer_id", "score", "segment", "expected_value", "_cost", "in_population", "channel",
    "_value_known",
]  # fmt: skip


def horizon(bundle: Bundle, cfg: Config) -> int:
    """The horizon the model's labels used (the list's ``horizon_days``)."""
    return int(bundle.info.get("horizon_days") or cfg.labels.horizon_days)


def list_pass(narrow: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """Percentile, tier, selection and group of every row, in the list's order, from the narrow
    columns of all buckets (``customer_id``, ``score``, ``segment``, ``expected_value``,
    ``_cost``, optional ``uplift``): the single-machine rules on the single-machine order."""
    sc = cfg.score
    frame = narrow.reset_index(drop=True)
    frame["percentile"] = (
        pd.Series(frame["score"].to_numpy())
        .groupby(np.zeros(len(frame)))
        .rank(pct=True, method="max")
        .to_numpy()
    )
    inside = frame["in_population"].to_numpy(dtype=bool)
    frame["tier"] = np.where(inside, _tiers(frame["percentile"].to_numpy(), sc.tiers), None)
    frame = frame.sort_values(
        ["score", "customer_id"], ascending=[False, True], kind="stable", na_position="last"
    ).reset_index(drop=True)
    by = sc.select_by
    if by == "auto":
        known = (
            frame["_value_known"].to_numpy(dtype=bool).all() if "_value_known" in frame else True
        )
        by = (
            ("incremental_value" if "incremental_value" in frame else "expected_value")
            if known
            else "top_tier"
        )
    frame["selected"], frame["left_out"] = selection(frame, sc, by)
    frame["group"] = control_group(frame, frame["selected"].to_numpy(), sc.control_share, cfg.seed)
    frame["_position"] = np.arange(len(frame), dtype=np.int64)
    return frame[LISTED]


LISTED = ["customer_id", "percentile", "tier", "selected", "group", "left_out", "_position"]


def finish_rows(
    rows: pd.DataFrame,
    listed: pd.DataFrame,
    texts: pd.DataFrame,
    bundle: Bundle,
    cutoff: pd.Timestamp,
    extra: Sequence[str] = (),
    horizon_days: int = 0,
) -> pd.DataFrame:
    """A bucket's rows in the target list's columns, with their list position."""
    out = rows.join(texts).merge(listed, on="customer_id", how="left", validate="one_to_one")
    out["model_version"] = bundle.version
    out["cutoff"] = cutoff
    out["horizon_days"] = horizon_days
    return out[[*COLUMNS, *extra, "_position"]]


# --- one machine, bucket by bucket ------------------------------------------------------------


@dataclass
class Staged:
    """Each table's rows written to ``<root>/<table>/_bucket=<k>/`` (only the rows before the
    cutoff the run reads)."""

    root: Path
    n_buckets: int
    tables: list[str] = field(default_factory=list)

    def bucket(self, k: int) -> dict[str, pd.DataFrame]:
        """The raw rows of bucket ``k`` of every table."""
        out = {}
        for name in self.tables:
            folder = self.root / name / f"{BUCKET}={k}"
            files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
            if files:
                table = pa.concat_tables([pq.read_table(f) for f in files])
            else:  # the table's columns, no rows
                table = pq.read_schema(next((self.root / name).rglob("*.parquet"))).empty_table()
            if ROW in table.column_names:  # back in input order, as the whole-data loader reads
                table = table.sort_by(ROW).drop_columns([ROW])
            out[name] = table.to_pandas().drop(columns=[BUCKET], errors="ignore")
        return out

    def check_customers(self, k: int, limit: int | None) -> None:
        """Refuse a customer of bucket ``k`` with more than ``limit`` rows in a table, reading
        only the customer ids (before the bucket itself is loaded)."""
        if limit is None:
            return
        for name in self.tables:
            folder = self.root / name / f"{BUCKET}={k}"
            for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
                if "customer_id" not in pq.read_schema(path).names:
                    continue
                ids = pq.read_table(path, columns=["customer_id"]).to_pandas()
                check_customer_rows({name: ids}, limit)


def _sources(data: str | os.PathLike[str]) -> dict[str, ds.Dataset]:
    """The contract tables in a data folder, each a Parquet file or a Parquet dataset folder."""
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise DataError(f"data folder not found: {folder}\nFix: pass --data DIR")
    found = {}
    for name in TABLE_NAMES:
        for candidate in (folder / name, folder / f"{name}.parquet", folder / f"{name}.pq"):
            if candidate.is_dir() and is_dataset(candidate):
                found[name] = open_dataset(candidate, table=name)
                break
            if candidate.is_file():
                found[name] = ds.dataset(candidate, format="parquet")
                break
    if "orders" not in found:
        raise DataError(
            f"table 'orders' is required but was not found in {folder} as a Parquet file or "
            "dataset.\nFix: --buckets reads Parquet: add orders.parquet or an orders/ dataset"
        )
    return found


def check_columns(schemas: Mapping[str, Sequence[str]], config: Config) -> None:
    """The single-machine loader's checks of tables and columns, run on empty tables with these
    column names (before any bucket is read)."""
    empty = {
        name: pd.DataFrame({c: pd.Series([], dtype="str") for c in cols})
        for name, cols in schemas.items()
    }
    load_tables(empty, config=config)


def stage(
    data: str | os.PathLike[str],
    root: Path,
    n_buckets: int,
    config: Config,
    until: pd.Timestamp | None,
    show: bool = False,
) -> Staged:
    """Split every table of a Parquet data folder into buckets on disk, streaming batch by batch
    (rows at or after ``until`` are not read): memory holds a few batches, whatever the size of
    the data. ``order_items`` follow their order's customer by a join done part by part (the
    orders' (order id, bucket) pairs and the items are first split by a hash of the order id, so
    one part of each meets at a time); items of unknown orders go to bucket 0, where validation
    sets them aside as it would. Each bucket's items keep their input order (column ``_row``)."""
    sources = _sources(data)
    check_columns({n: d.schema.names for n, d in sources.items()}, config)
    staged = Staged(root, n_buckets)
    parts = root / "_join"
    for name in bar([n for n in TABLE_NAMES if n in sources], label="splitting", enabled=show):
        dataset = sources[name]
        own = FILTERED.get(name)
        expression = time_filter(dataset, own, until, timezone=config.timezone)
        if expression is not None:  # rows without a time go on, to be set aside by validation
            expression = expression | ds.field(own).is_null()
        # one thread, little read-ahead: the threaded scanner's memory grows with the table
        batches = dataset.to_batches(
            filter=expression,
            batch_size=READ_BATCH_ROWS,
            batch_readahead=1,
            fragment_readahead=1,
            use_threads=False,
        )
        if name == "order_items":
            _split_items(batches, dataset.schema, parts, root / name, n_buckets)
            staged.tables.append(name)
            continue
        files = _BucketFiles(root / name, n_buckets, dataset.schema)
        keys = _BucketFiles(parts / "keys", n_buckets) if name == "orders" else None
        for b in batches:
            if not b.num_rows:
                continue
            table = pa.Table.from_batches([b])
            buckets = bucket_of(table["customer_id"], n_buckets)
            files.add(table, buckets)
            if keys is not None:
                pairs = pa.table({"order_id": table["order_id"], BUCKET: pa.array(buckets)})
                keys.add(pairs, _order_part(table["order_id"], n_buckets))
        files.close()
        if keys is not None:
            keys.close()
        staged.tables.append(name)
    shutil.rmtree(parts, ignore_errors=True)
    return staged


def _order_part(order_ids: pa.ChunkedArray | pa.Array, n: int) -> np.ndarray:
    """The join part of each order id (a keyed hash of the id text, not of the customer)."""
    hashed = pd.util.hash_array(_id_text(order_ids), hash_key=ORDER_KEY, categorize=False)
    return (hashed % np.uint64(n)).astype(np.int64)


def _split_items(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, parts: Path, out: Path, n_buckets: int
) -> None:
    """Order lines into the buckets of their orders' customers: a hash join, part by part."""
    item_schema = schema.append(pa.field(ROW, pa.int64()))
    items = _BucketFiles(parts / "items", n_buckets, item_schema)
    seen = 0
    for b in batches:
        if not b.num_rows:
            continue
        table = pa.Table.from_batches([b])
        table = table.append_column(ROW, pa.array(np.arange(seen, seen + len(table))))
        seen += len(table)
        items.add(table, _order_part(table["order_id"], n_buckets))
    items.close()
    files = _BucketFiles(out, n_buckets, item_schema)
    for p in range(n_buckets):
        lines = _read_part(parts / "items", p)
        if lines is None or not len(lines):
            continue
        pairs = _read_part(parts / "keys", p)
        if pairs is None or not len(pairs):
            bucket = np.zeros(len(lines), dtype=np.int64)
        else:
            pairs = (
                pairs.group_by(["order_id"])
                .aggregate([(BUCKET, "min")])
                .rename_columns(["order_id", BUCKET])
            )
            joined = lines.join(pairs, "order_id", join_type="left outer")
            bucket = joined[BUCKET].fill_null(0).to_numpy().astype(np.int64)
            lines = joined.select(item_schema.names)
        files.add(lines, bucket)
        del lines, pairs
    files.close()


def _read_part(folder: Path, k: int) -> pa.Table | None:
    path = folder / f"{BUCKET}={k}" / "part-0.parquet"
    return pq.read_table(path) if path.is_file() else None


class _BucketFiles:
    """One Parquet file per bucket (``<folder>/_bucket=<k>/part-0.parquet``), filled batch by
    batch in input order; at most about ``WRITE_BUFFER_ROWS`` rows wait in memory over all
    buckets."""

    def __init__(self, folder: Path, n: int, schema: pa.Schema | None = None) -> None:
        self.folder, self.n, self.schema = folder, n, schema
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.pending: dict[int, list[pa.Table]] = {}
        self.rows = np.zeros(n, dtype=np.int64)
        self.group = max(1 << 12, WRITE_BUFFER_ROWS // max(n, 1))

    def add(self, table: pa.Table, buckets: np.ndarray) -> None:
        if self.schema is None:
            self.schema = table.schema
        order = np.argsort(buckets, kind="stable")
        table = table.take(pa.array(order))
        bounds = np.searchsorted(buckets[order], np.arange(self.n + 1))
        for k in np.flatnonzero(np.diff(bounds)):
            piece = table.slice(int(bounds[k]), int(bounds[k + 1] - bounds[k]))
            self.pending.setdefault(int(k), []).append(piece)
            self.rows[k] += len(piece)
            if self.rows[k] >= self.group:
                self._flush(int(k))
        if self.rows.sum() > WRITE_BUFFER_ROWS:
            for k in list(self.pending):
                self._flush(k)

    def _flush(self, k: int) -> None:
        pieces = self.pending.pop(k, [])
        self.rows[k] = 0
        if not pieces:
            return
        writer = self.writers.get(k)
        if writer is None:
            folder = self.folder / f"{BUCKET}={k}"
            folder.mkdir(parents=True, exist_ok=True)
            writer = self.writers[k] = pq.ParquetWriter(folder / "part-0.parquet", self.schema)
        writer.write_table(pa.concat_tables(pieces).cast(self.schema))

    def close(self) -> None:
        for k in list(self.pending):
            self._flush(k)
        for writer in self.writers.values():
            writer.close()
        if not self.writers and self.schema is not None:  # no rows: the columns, for the loader
            folder = self.folder / f"{BUCKET}=0"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(self.schema.empty_table(), folder / "part-0.parquet")


@dataclass
class BucketRun:
    """What a bucketed run measured: seconds per step and rows set aside."""

    seconds: dict[str, float] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    rows: int = 0


def _timed(run: BucketRun, step: str, fn: Callable[[], Any]) -> Any:
    import time

    started = time.perf_counter()
    out = fn()
    run.seconds[step] = run.seconds.get(step, 0.0) + time.perf_counter() - started
    return out


def _features_parts(
    data: str | os.PathLike[str],
    cutoffs: Sequence[pd.Timestamp],
    config: Config,
    n_buckets: int,
    work: Path,
    run: BucketRun,
    show: bool,
    max_customer_rows: int | None = None,
    contact_at: pd.Timestamp | None = None,
) -> tuple[Path, dict[pd.Timestamp, Any] | None]:
    """Bucket pass, then the aggregate pass: features parts under ``work/features`` (VIP columns
    against each bucket's bar) and the population's VIP bar per cutoff."""
    staged = _timed(
        run, "split", lambda: stage(data, work / "staged", n_buckets, config, max(cutoffs), show)
    )
    parts = work / "features"
    parts.mkdir()
    collected: dict[pd.Timestamp, dict[str, list[np.ndarray]]] = {t: {} for t in cutoffs}
    candidates: dict[pd.Timestamp, pd.DataFrame | None] = {t: None for t in cutoffs}
    with_btyd = False
    wanted: list[str] | None = None
    for k in bar(range(n_buckets), label="features by bucket", enabled=show):
        staged.check_customers(k, max_customer_rows)  # a reseller is named before it is read
        raw = _timed(run, "read", lambda k=k: staged.bucket(k))
        frame, quarantined = _timed(
            run,
            "buckets",
            lambda raw=raw: bucket_features(raw, cutoffs, config, max_customer_rows, contact_at),
        )
        if contact_at is not None:  # written beside the features part, read back per bucket
            contact = pd.DataFrame(frame.attrs.pop("contact"))
            (work / "contact").mkdir(exist_ok=True)
            _write_part(contact, work / "contact" / f"part-{k:05d}.parquet")
        for name, n in quarantined.items():
            run.quarantined[name] = run.quarantined.get(name, 0) + n
        if wanted is None:
            wanted = population_columns(config, FeatureSpec.from_dict(frame.attrs["feature_spec"]))
        with_btyd = with_btyd or HIDDEN[0] in frame
        for t in cutoffs:
            part = frame.xs(t, level="as_of") if len(frame) else frame
            for col in wanted:
                if col in part:
                    collected[t].setdefault(col, []).append(part[col].to_numpy(dtype=np.float64))
            found = btyd_candidates(part, part.index.get_level_values("customer_id"))
            if found is not None and len(found):
                candidates[t] = merge_candidates(candidates[t], found)
        run.rows += len(frame)
        _timed(
            run,
            "write",
            lambda frame=frame, k=k: _write_part(
                frame.reset_index(), parts / f"part-{k:05d}.parquet"
            ),
        )
        del raw, frame
        release_memory()
    if not wanted and not with_btyd:
        return parts, None
    bars = _timed(
        run,
        "aggregate",
        lambda: {
            t: population_figures(
                {c: np.concatenate(v) for c, v in cols.items()},
                config,
                candidates[t],
                with_btyd=with_btyd,
            )
            for t, cols in collected.items()
        },
    )
    return parts, bars


def release_memory() -> None:
    """Hand memory freed by the last bucket back to the system (Arrow's pool, and glibc's heap
    where there is one), so the next bucket starts from the same footprint."""
    import contextlib
    import ctypes
    import gc

    gc.collect()
    pa.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _write_part(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)
    os.replace(tmp, path)


def _fixed(
    frame: pd.DataFrame, bars: Mapping[pd.Timestamp, Any] | None, config: Config
) -> pd.DataFrame:
    if not bars or not len(frame):
        return frame.drop(columns=[c for c in HIDDEN if c in frame])
    parts = []
    for t, part in frame.groupby("as_of", sort=False):
        parts.append(fix_vip(part, bars[pd.Timestamp(t)], config))
    return pd.concat(parts)


def features_local(
    data: str | os.PathLike[str],
    *,
    cutoffs: Iterable[object],
    out: str | os.PathLike[str],
    config: Config | str | None = None,
    n_buckets: int = 8,
    progress: bool = False,
    max_customer_rows: int | None = None,
) -> BucketRun:
    """Features of every customer of a Parquet data folder, one bucket of customers at a time,
    written as a Parquet dataset ``out/part-<bucket>.parquet`` (columns ``as_of``,
    ``customer_id`` and the features; each cutoff's rows equal :func:`vipml.build_features`).
    The folder appears complete or not at all."""
    config = as_config(config)
    times = sorted({as_cutoff(c) for c in cutoffs})
    run = BucketRun()
    out = Path(out)
    with tempfile.TemporaryDirectory(
        prefix=".vipml-", dir=out.parent if out.parent.exists() else None
    ) as tmp:
        work = Path(tmp)
        parts, bars = _features_parts(
            data, times, config, n_buckets, work, run, progress, max_customer_rows
        )
        final = work / "out"
        final.mkdir()
        for path in bar(sorted(parts.glob("*.parquet")), label="VIP bar", enabled=progress):
            frame = pd.read_parquet(path)
            _timed(
                run,
                "write",
                lambda frame=frame, path=path: _write_part(
                    _fixed(frame, bars, config), final / path.name
                ),
            )
        replace_dir(final, out)
    return run


def score_local(
    data: str | os.PathLike[str],
    bundle: Bundle,
    *,
    as_of: object,
    out: str | os.PathLike[str],
    config: Config | None = None,
    churn: Bundle | None = None,
    uplift: Any = None,
    n_buckets: int = 8,
    progress: bool = False,
    max_customer_rows: int | None = None,
) -> tuple[BucketRun, pd.Series]:
    """A target list from a Parquet data folder, one bucket of customers at a time: features
    and scores per bucket, the population figures from an aggregate pass, written as a Parquet
    dataset in list order (``part-00000`` holds the top rows). Returns the run's timings and
    the drift of each feature."""
    check_task(bundle)
    cutoff = as_cutoff(as_of)
    cfg = scoring_config(bundle, config)
    sc = cfg.score
    run = BucketRun()
    out = Path(out)
    with tempfile.TemporaryDirectory(
        prefix=".vipml-", dir=out.parent if out.parent.exists() else None
    ) as tmp:
        work = Path(tmp)
        parts, bars = _features_parts(
            data, [cutoff], cfg, n_buckets, work, run, progress, max_customer_rows, cutoff
        )
        paths = sorted(parts.glob("*.parquet"))

        def contact_of(path: Path) -> pd.DataFrame | None:
            file = work / "contact" / path.name
            if not file.exists():
                return None
            frame = pd.read_parquet(file)
            return frame.set_index(frame["customer_id"].astype(str)).drop(columns="customer_id")

        # aggregate pass: the population's channel response rates (sums over every bucket)
        sent = np.zeros(len(CHANNELS))
        resp = np.zeros(len(CHANNELS))
        for path in paths:
            c = contact_of(path)
            if c is not None:
                sent += c[[f"sent_{ch}" for ch in CHANNELS]].to_numpy(dtype=np.float64).sum(axis=0)
                resp += c[[f"resp_{ch}" for ch in CHANNELS]].to_numpy(dtype=np.float64).sum(axis=0)
        rates = population_rates(sent[None, :], resp[None, :])

        def features(path: Path) -> pd.DataFrame:
            frame = _fixed(pd.read_parquet(path), bars, cfg).drop(columns=["as_of"])
            frame = frame.set_index("customer_id")
            spec = bundle.spec
            for name in spec.categorical:
                if name in frame:
                    frame[name] = pd.array(frame[name].astype("object"), dtype="str")
            return frame

        # aggregate pass: drift counts and the segments' high-value bar
        counts: dict[str, Any] = {}
        spend = []
        for path in paths:
            X = features(path)
            c = drift_counts(bundle.reference, X, bundle)
            counts = add_counts(counts, c) if counts else c
            if "spend_365d" in X:
                spend.append(X["spend_365d"].to_numpy(dtype=np.float64))
        drift = drift_from_counts(bundle.reference, counts)
        hv = (
            high_value_bar(np.concatenate(spend), sc.segments.high_value_share) if spend else np.inf
        )
        # bucket pass: scores and drivers
        rows_dir = work / "rows"
        rows_dir.mkdir()
        used: set[str] = set()
        for path in bar(paths, label="scoring by bucket", enabled=progress):
            X = features(path)
            rows = _timed(
                run,
                "buckets",
                lambda X=X, path=path: score_rows(
                    X,
                    bundle,
                    cfg,
                    hv_bar=hv,
                    churn=churn,
                    uplift=uplift,
                    cutoff=cutoff,
                    contact=contact_of(path),
                    population=rates,
                ),
            )
            used |= set(driver_names(rows, bundle, X.columns))
            _write_part(rows, rows_dir / path.name)
        # aggregate pass: percentile cut points of the driver features, the list
        thresholds = {}
        names = sorted(used)
        pieces: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for path in paths:  # after the population fix (percentile and VIP features)
            fixed = _fixed(pd.read_parquet(path), bars, cfg)
            for n in names:
                pieces[n].append(fixed[n].to_numpy(dtype=np.float64))
            del fixed
        for n in names:
            thresholds[n] = percentile_thresholds(np.concatenate(pieces.pop(n)))
        narrow_cols = [*LIST_COLUMNS, *(["uplift"] if uplift is not None else [])]
        narrow = pd.concat(
            [pd.read_parquet(p, columns=narrow_cols) for p in sorted(rows_dir.glob("*.parquet"))]
        )
        listed = _timed(run, "aggregate", lambda narrow=narrow: list_pass(narrow, cfg))
        del narrow
        extra = ["uplift"] if uplift is not None else []
        final_parts = work / "final"
        final_parts.mkdir()
        for path in sorted(rows_dir.glob("*.parquet")):
            rows = pd.read_parquet(path)
            texts = reason_texts(rows, bundle.spec, thresholds)
            mine = listed[listed["customer_id"].isin(rows["customer_id"])]
            done = finish_rows(rows, mine, texts, bundle, cutoff, extra, horizon(bundle, cfg))
            _write_part(done, final_parts / path.name)
        # write in list order: part r holds positions [r * size, (r + 1) * size)
        dataset = ds.dataset(final_parts, format="parquet")
        total = len(listed)
        size = max(1, -(-total // n_buckets))
        final = work / "out"
        final.mkdir()
        for r in range(max(1, -(-total // size))):
            lo, hi = r * size, min((r + 1) * size, total)
            chunk = dataset.to_table(
                filter=(ds.field("_position") >= lo) & (ds.field("_position") < hi)
            )
            frame = chunk.to_pandas().sort_values("_position").drop(columns=["_position"])
            _timed(
                run,
                "write",
                lambda frame=frame, r=r: _write_part(
                    frame.reset_index(drop=True), final / f"part-{r:05d}.parquet"
                ),
            )
        run.rows = total
        replace_dir(final, out)
    return run, drift
