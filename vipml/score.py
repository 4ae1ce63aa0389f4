"""Batch scoring: a model bundle and fresh tables in, a target list out.

One row per customer (VIP, churn) or per customer and candidate offer (upsell), with the
calibrated score, its percentile and tier, the primary segment, the recommended play and offer
type, the top three reasons in plain words (English and Korean), the expected value, whether the
row is selected, its group (treatment or a seeded control held out by tier), the model version and
the cutoff. Rows sort by score, then ``customer_id``; the same inputs and seed give the same list,
bit for bit. A VIP or churn bundle with expected-value models adds :data:`vipml.value.VALUE_COLUMNS`
(``expected_spend`` with its interval, ``expected_orders``, ``p_alive``, ``next_order_at``,
``clv_12m``) after the standard columns.

With an uplift bundle alone (:func:`score_uplift`, ``vipml score --uplift-bundle DIR``) the list
has one row per customer and tested arm, sorted and selected by expected incremental value, with
the best arm per customer and the reasons for persuadability; the control group is drawn per
customer.

With an uplift bundle beside a response bundle an ``uplift`` column follows:
the estimated increase of the customer's acceptance probability when the offer is sent. With
``score.select_by: uplift`` the list selects the rows with the highest positive uplift, the
customers the offer persuades, rather than those who would buy anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vipml.bundle import Bundle
from vipml.config import Config, ScoreConfig, TrackingConfig
from vipml.contrib import tree_contributions
from vipml.errors import ConfigError, DataError
from vipml.features import build_features
from vipml.features.registry import FeatureSpec
from vipml.io import Tables
from vipml.metrics import ties_at_top
from vipml.model import population_stability, prepare_matrix
from vipml.plays import (
    CHANNELS,
    best_channel,
    contact_arrays,
    contact_frame,
    driver_actions,
    next_order_at,
    population_rates,
    send_window,
)
from vipml.value import VALUE_COLUMNS, customer_value
from vipml.vip import vip_status
from vipml.windows import as_cutoff

if TYPE_CHECKING:  # an uplift bundle is passed in; scoring does not import training
    from vipml.uplift import UpliftBundle

COLUMNS = [
    "customer_id", "score", "percentile", "tier", "segment", "play_en", "play_ko", "offer_type",
    "reason_1_en", "reason_2_en", "reason_3_en", "reason_1_ko", "reason_2_ko", "reason_3_ko",
    "expected_value", "selected", "group", "model_version", "cutoff", "horizon_days",
    "in_population", "driver", "driver_direction", "play_reason_en", "play_reason_ko", "category",
    "play_theme", "offer", "channel", "send_from", "send_until", "send_at", "night_consent", "left_out",
]  # fmt: skip

# why a row is not selected (the ``left_out`` column; "" for a selected row)
LEFT_OUT = {
    "not_scored": "outside the population the model was trained on",
    "consent": "no channel the customer consented to",
    "negative_value": "expected incremental value not positive",
    "min_score": "score below score.min_score",
    "not_top_tier": "not in the top tier (no value or cost known)",
    "other_offer": "another offer is this customer's best",
    "segment_cap": "over score.segment_caps",
    "budget": "over score.budget",
    "capacity": "over score.capacity",
}


@dataclass
class ScoreResult:
    """A target list and what was checked on the way."""

    targets: pd.DataFrame
    drift: pd.Series
    warnings: list[str] = field(default_factory=list)

    @property
    def outside_population(self) -> int:
        """Rows of customers outside the population the model was trained on (no score)."""
        t = self.targets
        return int((~t["in_population"].astype(bool)).sum()) if "in_population" in t else 0

    def summary(self) -> str:
        """Counts for people."""
        t = self.targets
        sel = t[t["selected"]]
        lines = [
            f"rows: {len(t):,}; selected {len(sel):,} (treatment {int((sel['group'] == 'treatment').sum()):,}, "
            f"control {int((sel['group'] == 'control').sum()):,})",
            "segments: " + ", ".join(f"{k} {v:,}" for k, v in t["segment"].value_counts().items()),
            f"expected value of the treatment group: {sel.loc[sel['group'] == 'treatment', 'expected_value'].sum():,.2f}",
        ]
        if "uplift" in t:
            lines.append(
                f"uplift: mean {t['uplift'].mean():.4f} over all rows, "
                f"{sel['uplift'].mean():.4f} over the selected"
            )
        if self.outside_population:
            lines.append(
                f"not scored: {self.outside_population:,} customers outside the population the "
                "model was trained on (they keep a row with no score and are not selected)"
            )
        if len(t) and "score" in t and t["score"].notna().any():  # an uplift list has none
            distinct, tied = ties_at_top(t["score"].to_numpy(dtype=np.float64), 0.10)
            lines.append(
                f"scores: {distinct:,} distinct; {tied:.2%} of the list tied at the top-10% boundary"
            )
        if "left_out" in t and len(t):
            left = t.loc[t["left_out"].astype(str) != "", "left_out"].value_counts()
            lines.append(
                f"left out: {int(left.sum()):,}"
                + (
                    " (" + ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in left.items()) + ")"
                    if len(left)
                    else ""
                )
            )
        if "channel" in t and len(sel):
            ch = sel.loc[sel["group"] == "treatment", "channel"].value_counts()
            lines.append(
                "channels of the treatment group: " + ", ".join(f"{k} {v:,}" for k, v in ch.items())
            )
        if "horizon_days" in t and len(t):
            lines.append(f"horizon: {int(t['horizon_days'].iloc[0])} days")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def conversion_value(X: pd.DataFrame, sc: ScoreConfig) -> np.ndarray:
    """Per-customer value of a conversion: ``score.value_feature`` where it is positive, else
    ``score.value``."""
    if not (sc.value_feature and sc.value_feature in X):
        return np.full(len(X), sc.value)
    value = X[sc.value_feature].to_numpy(dtype=np.float64)
    return np.where(np.isnan(value) | (value <= 0), sc.value, value)


def scoring_config(bundle: Bundle, config: Config | None) -> Config:
    """The bundle's own config (same features, same VIP rule, same data mapping) with the
    caller's data and score sections. Never the bundle's tracking: where runs are logged is the
    caller's config or environment alone."""
    trained = Config.model_validate(bundle.config)
    trained.tracking = TrackingConfig()
    if config is None:
        return trained
    merged = trained.model_copy(
        update={
            "score": config.score,
            "report": config.report,
            "tables": config.tables,
            "data_dir": config.data_dir,
            "connection": config.connection,
            "timezone": config.timezone,
            "locale": config.locale,
            "seed": config.seed,
            "tracking": config.tracking,
            "value": config.value,
        }
    )
    merged._base_dir = config.base_dir
    return merged


def segments(
    X: pd.DataFrame, rules: Any, churn: np.ndarray | None = None, *, bar: float | None = None
) -> np.ndarray:
    """The primary segment of each row: the first rule in ``rules.order`` that holds.

    ``bar`` is the high-value spend bar when it comes from a larger population than ``X`` (one
    bucket of customers); by default it is computed from ``X``."""
    n = len(X)

    def col(name: str, fill: float = np.nan) -> np.ndarray:
        return X[name].to_numpy(dtype=np.float64) if name in X else np.full(n, fill)

    spend = col("spend_365d", 0.0)
    if bar is None:
        positive = spend[spend > 0]
        bar = np.quantile(positive, 1 - rules.high_value_share) if len(positive) else np.inf
    tests = {
        "high_value": (col("is_vip", 0.0) > 0) | ((spend >= bar) & (spend > 0)),
        "at_risk": (col("recency_days") >= rules.at_risk_days)
        | (col("overdue_ratio") >= rules.at_risk_overdue)
        | (churn >= rules.at_risk_churn if churn is not None else np.zeros(n, bool)),
        "category_interest": (col("top_view_category_share_90d") >= rules.interest_share)
        & (col("views_90d", 0.0) >= rules.interest_views),
        "new": (col("tenure_days") < rules.new_days)
        | (np.isnan(col("tenure_days")) & (col("tenure_signup_days") < rules.new_days)),
        "repeat": col("orders_all", 0.0) >= 2,
    }
    out = np.full(n, "other", dtype=object)
    assigned = np.zeros(n, dtype=bool)
    for name in rules.order:
        hit = np.nan_to_num(tests[name], nan=0).astype(bool) & ~assigned
        out[hit] = name
        assigned |= hit
    return out


def contributions(bundle: Bundle, M: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature contributions (LightGBM's TreeSHAP, equal to SHAP's) and the raw margin they
    add up to, in one pass: the margin gives the score without a second predict. TreeSHAP runs
    once per decision pattern of each tree (:mod:`vipml.contrib`), not once per row."""
    full = tree_contributions(bundle.booster, M)
    return full[:, :-1], full.sum(axis=1)


def reasons(
    bundle: Bundle | None,
    M: pd.DataFrame,
    X: pd.DataFrame,
    spec: FeatureSpec,
    k: int = 3,
    contrib: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The ``k`` features that raise each score most, as sentences with the customer's value and
    its percentile among the scored customers (LightGBM's own contributions, one pass)."""
    if contrib is None:
        contrib = contributions(bundle, M)[0]
    names = list(M.columns)
    order = top_k(contrib, k)
    out: dict[str, np.ndarray] = {}
    en = [spec[c].en if c in spec.names else c for c in names]
    ko = [spec[c].ko if c in spec.names else c for c in names]
    numeric = {c for c in names if not isinstance(M[c].dtype, pd.CategoricalDtype) and c in X}
    used = {names[i] for i in np.unique(order)}
    sorted_values = {c: np.sort(X[c].to_numpy(dtype=np.float64)) for c in numeric & used}
    rows = np.arange(len(M))
    for j in range(k):
        idx = order[:, j]
        positive = contrib[rows, idx] > 0
        sentence_en = np.empty(len(M), dtype=object)
        sentence_ko = np.empty(len(M), dtype=object)
        for c_i, name in enumerate(names):  # loops over features, not customers
            hit = idx == c_i
            if not hit.any():
                continue
            if name in sorted_values:
                # a sentence depends on the value alone: phrase each distinct value once
                v = M[name].to_numpy(dtype=np.float64)[hit]
                bits, inverse = np.unique(v.view(np.int64), return_inverse=True)
                u = bits.view(np.float64)
                unit = spec[name].unit if name in spec.names else ""
                text = _format(u, unit)
                ref = sorted_values[name]
                present = int((~np.isnan(ref)).sum())
                below = np.searchsorted(ref[:present], u, side="right")  # share at or below
                p = np.floor(np.where(np.isnan(u), 0, below / max(present, 1)) * 100).astype(int)
                sentence_en[hit] = (en[c_i] + ": " + text + _SHARE_EN[p])[inverse.ravel()]
                sentence_ko[hit] = (ko[c_i] + ": " + text + _SHARE_KO[p])[inverse.ravel()]
            else:
                labels = M[name].astype("object").to_numpy()[hit]
                text = pd.Series(labels).fillna("-").astype(str).to_numpy()
                sentence_en[hit] = en[c_i] + ": " + text
                sentence_ko[hit] = ko[c_i] + ": " + text
        out[f"reason_{j + 1}_en"] = np.where(positive, sentence_en, "")
        out[f"reason_{j + 1}_ko"] = np.where(positive, sentence_ko, "")
        out[f"_driver_{j + 1}"] = np.where(positive, np.array(names, dtype=object)[idx], "")
    return out


_SHARE_EN = np.array(
    [f" (higher than {q}% of customers)" if q >= 50 else "" for q in range(101)], dtype=object
)
_SHARE_KO = np.array(
    [f" (상위 {max(100 - q, 1)}%)" if q >= 50 else "" for q in range(101)], dtype=object
)


def top_k(contrib: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest values, largest first, ties to the lower
    index (what a stable descending sort gives), by ``k`` passes of ``argmax``."""
    k = min(k, contrib.shape[1])
    if np.isnan(contrib).any():
        return np.argsort(-contrib, axis=1, kind="stable")[:, :k]
    left = contrib.copy()
    rows = np.arange(len(left))
    out = np.empty((len(left), k), dtype=np.int64)
    for j in range(k):
        out[:, j] = np.argmax(left, axis=1)
        left[rows, out[:, j]] = -np.inf
    return out


_FORMATS = {
    "ratio": "{:.0%}",
    "currency": "{:,.2f}",
    "days": "{:,.0f}",
    "count": "{:,.0f}",
    "minutes": "{:,.0f} min",
    "flag": "{:.0f}",
}


def _format(values: np.ndarray, unit: str) -> np.ndarray:
    """Values as people read them, by the feature's unit (70%, 1,234.50, 12 days ...)."""
    fmt = _FORMATS.get(unit, "{:g}") + (" days" if unit == "days" else "")
    floats = np.asarray(values, dtype=np.float64).tolist()
    return np.array([fmt.format(v) if v == v else "-" for v in floats], dtype=object)


def _tiers(percentile: np.ndarray, edges: list[float]) -> np.ndarray:
    labels = np.array(["A", "B", "C", "D"][: len(edges) + 1], dtype=object)
    top = 1 - percentile  # share of rows at or above
    return labels[np.searchsorted(np.asarray(sorted(edges)), top, side="left")]


def select(frame: pd.DataFrame, sc: ScoreConfig, by: str | None = None) -> np.ndarray:
    """Rows to contact: by score, expected value or uplift, under capacity, budget and segment
    caps. Expected value and uplift select only positive values. ``score.select_by: auto`` (the
    default) selects by ``incremental_value`` when the rows have it (an uplift bundle), else by
    ``expected_value``; ``by`` overrides the config's choice (``top_tier``: tier A by score)."""
    return selection(frame, sc, by)[0]


def resolve_by(sc: ScoreConfig, X: pd.DataFrame, frame: pd.DataFrame) -> str:
    """What ``score.select_by`` selects by for these rows: ``auto`` is the expected incremental
    value (``incremental_value`` from an uplift bundle, else ``expected_value``), or the top tier
    when no value is known (neither ``score.value`` set nor the value feature present)."""
    if sc.select_by != "auto":
        return sc.select_by
    known = "value" in sc.model_fields_set or bool(sc.value_feature and sc.value_feature in X)
    if "incremental_value" in frame:
        return "incremental_value"
    return "expected_value" if known else "top_tier"


def selection(
    frame: pd.DataFrame, sc: ScoreConfig, by: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The selected rows and, for every other row, why it was left out (``LEFT_OUT``'s keys).

    Rows are taken in the order of the ranking key (then ``customer_id``) while they are
    eligible: scored, a consented channel (when the rows have a ``channel``), a positive key for
    value rankings, the customer's chosen offer (``_chosen_offer``), ``score.min_score``; then
    ``segment_caps``, ``budget`` and ``capacity`` in that order."""
    by = by or sc.select_by
    if by == "auto":
        by = "incremental_value" if "incremental_value" in frame else "expected_value"
    if by == "uplift" and "uplift" not in frame:
        raise ConfigError(
            "score.select_by is 'uplift' but the rows have no uplift.\n"
            "Fix: give an uplift bundle (vipml score --uplift-bundle DIR, trained with "
            "train.task: uplift), or select by score"
        )
    n = len(frame)
    column = "score" if by == "top_tier" else by
    key = frame[column].to_numpy(dtype=np.float64)
    reason = np.full(n, "", dtype=object)

    def mark(bad: np.ndarray, why: str) -> None:
        reason[bad & (reason == "")] = why

    score = frame["score"].to_numpy(dtype=np.float64)
    mark(np.isnan(score), "not_scored")
    if "channel" in frame:
        mark((frame["channel"].astype("object").fillna("") == "").to_numpy(), "consent")
    if "_chosen_offer" in frame:
        mark(~frame["_chosen_offer"].to_numpy(dtype=bool), "other_offer")
    if by in ("expected_value", "uplift", "incremental_value"):
        mark(~(key > 0), "negative_value")
    if by == "top_tier":
        mark((frame["tier"].astype("object") != "A").to_numpy(), "not_top_tier")
    mark(~(score >= sc.min_score), "min_score")
    eligible = reason == ""
    order = np.lexsort((frame["customer_id"].to_numpy(), -np.nan_to_num(key, nan=-np.inf)))
    chosen = np.zeros(n, dtype=bool)
    ok = eligible[order]
    dropped = np.full(n, "", dtype=object)
    if sc.segment_caps:
        seg = frame["segment"].to_numpy()[order]
        rank_in_seg = pd.Series(ok.astype(int)).groupby(seg).cumsum().to_numpy()
        caps = np.array([sc.segment_caps.get(s, np.iinfo(np.int64).max) for s in seg])
        over = ok & (rank_in_seg > caps)
        dropped[over] = "segment_cap"
        ok &= ~over
    if sc.budget is not None:
        cost = frame["_cost"].to_numpy()[order]
        over = ok & (np.cumsum(np.where(ok, cost, 0.0)) > sc.budget + 1e-9)
        dropped[over] = "budget"
        ok &= ~over
    if sc.capacity is not None:
        over = ok & (np.cumsum(ok) > sc.capacity)
        dropped[over] = "capacity"
        ok &= ~over
    chosen[order] = ok
    reason[order] = np.where(dropped != "", dropped, reason[order])
    return chosen, reason


def control_group(frame: pd.DataFrame, selected: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Seeded random hold-out of ``share`` of the selected rows within each tier."""
    group = np.where(selected, "treatment", "").astype(object)
    if share <= 0:
        return group
    rng = np.random.default_rng(seed)
    draw = rng.random(len(frame))  # one draw per row, in the list's (deterministic) order
    for tier in sorted({t for t in frame["tier"] if isinstance(t, str)}):  # unscored: no tier
        rows = np.flatnonzero(selected & (frame["tier"].to_numpy() == tier))
        if not len(rows):
            continue
        n_control = math.floor(share * len(rows) + 0.5)
        held = rows[np.argsort(draw[rows], kind="stable")[:n_control]]
        group[held] = "control"
    return group


def score(
    tables: Tables,
    bundle: Bundle,
    *,
    as_of: object,
    config: Config | None = None,
    churn: Bundle | None = None,
    uplift: UpliftBundle | None = None,
    features: pd.DataFrame | None = None,
    progress: bool = False,
) -> ScoreResult:
    """Score every customer known before ``as_of`` (every customer x candidate offer for upsell).

    With ``uplift`` the list gains an ``uplift`` column (after the standard columns), and
    ``score.select_by: uplift`` selects by it. ``features``, when given, are the features as of
    ``as_of`` already built from the same tables and config; they are used instead of a rebuild.

    Raises
    ------
    DataError
        When the data's features do not match the bundle's (the columns are named), or no
        customer is known before ``as_of``.
    """
    cutoff = as_cutoff(as_of)
    cfg = scoring_config(bundle, config)
    sc = cfg.score
    if sc.select_by == "uplift" and uplift is None:
        raise ConfigError(
            "score.select_by is 'uplift' but no uplift bundle was given.\n"
            "Fix: vipml score --uplift-bundle DIR (a bundle trained with train.task: uplift), or "
            "select by score"
        )
    X = (
        features
        if features is not None
        else build_features(tables, as_of=cutoff, config=cfg, progress=progress)
    )
    if not len(X):
        first = tables.orders["ordered_at"].min() if tables.orders is not None else None
        since = f" (the orders start {first:%Y-%m-%d})" if isinstance(first, pd.Timestamp) else ""
        raise DataError(
            f"no customer is known before as_of {cutoff:%Y-%m-%d}{since}: there is no one to "
            "score.\nFix: give a later --as-of"
        )
    if X.attrs:  # pandas deep-copies attrs (the feature spec) on every column taken: drop them
        X = X.copy(deep=False)
        X.attrs = {}
    warnings: list[str] = []
    task = bundle.info.get("task", "vip")
    if task == "upsell":
        X, offer_type, cost = _offer_rows(X, sc)
    else:
        cost = np.full(len(X), sc.cost)
        offer_type = None
    bundle.check(X)
    inside = in_population(tables, X, bundle, cutoff, cfg)
    drift = population_stability(bundle.reference, X[inside] if not inside.all() else X)
    high = drift[drift > sc.drift_threshold]
    if len(high):
        warnings.append(
            f"{len(high)} feature(s) drifted from training (PSI > {sc.drift_threshold}): "
            + ", ".join(f"{k} {v:.2f}" for k, v in high.head(5).items())
        )
    M = prepare_matrix(X, bundle.features, bundle.categories)
    contrib, margin = contributions(bundle, M)
    prob = bundle.calibrator.predict(1.0 / (1.0 + np.exp(-margin)))
    prob = np.where(inside, prob, np.nan)  # outside the trained population: no score
    churn_score = None
    if churn is not None:
        churn_X = X[churn.features] if all(c in X for c in churn.features) else None
        churn_score = churn.predict(churn_X) if churn_X is not None else None
    customer = (
        X.index.get_level_values("customer_id") if isinstance(X.index, pd.MultiIndex) else X.index
    )
    frame = pd.DataFrame({"customer_id": np.asarray(customer, dtype=object), "score": prob})
    by = pd.Series(offer_type if offer_type is not None else np.zeros(len(prob)))
    # upsell: the percentile ranks customers for the same offer type
    frame["percentile"] = (
        pd.Series(prob).groupby(by.to_numpy()).rank(pct=True, method="max").to_numpy()
    )
    frame["tier"] = np.where(inside, _tiers(frame["percentile"].to_numpy(), sc.tiers), None)
    frame["segment"] = segments(X, sc.segments, churn_score)
    why = reasons(bundle, M, X, bundle.spec, contrib=contrib)
    for k in range(1, 4):
        frame[f"reason_{k}_en"] = np.where(inside, why[f"reason_{k}_en"], "")
        frame[f"reason_{k}_ko"] = np.where(inside, why[f"reason_{k}_ko"], "")
    act = driver_actions(X, contrib, list(M.columns), frame["segment"].to_numpy(), sc)
    del contrib, why  # the largest arrays of the run: gone before the value models and plays
    for name in ("play_en", "play_ko", "offer_type", *ACTION_COLUMNS):
        frame[name] = act[name]
    if offer_type is not None:
        frame["offer_type"] = offer_type
    worth = None
    if bundle.value is not None and task in ("vip", "churn"):
        ids = pd.Index(np.asarray(customer, dtype=object), name="customer_id")
        worth = customer_value(
            bundle.value,
            X.set_axis(ids),
            tables,
            as_of=cutoff,
            margin=cfg.value.margin,
            matrix=M,
        )
        for col in VALUE_COLUMNS:
            frame[col] = worth[col].array  # positional; dates stay a datetime array
        if sc.value_feature in VALUE_COLUMNS:  # score.value_feature: expected_spend, say
            X = X.assign(**{sc.value_feature: worth[sc.value_feature].to_numpy()})
    del M
    value = conversion_value(X, sc)
    frame["_cost"] = cost
    frame["expected_value"] = prob * value - cost
    frame["in_population"] = inside
    frame["offer"] = frame["offer_type"]
    if uplift is not None:  # several arms: the best arm's uplift and incremental value
        arms = uplift.predict_arms(X)
        frame["uplift"] = arms.max(axis=1).to_numpy()
        costs = uplift.info.get("costs", {})
        arm_cost = np.array([costs.get(a, sc.cost) for a in arms.columns], dtype=np.float64)
        inc = arms.to_numpy(dtype=np.float64) * value[:, None] - arm_cost[None, :]
        best = np.argmax(inc, axis=1)
        frame["incremental_value"] = inc[np.arange(len(inc)), best]
        frame["offer"] = np.where(
            frame["incremental_value"] > 0, np.asarray(arms.columns, dtype=object)[best], "none"
        )
    elif offer_type is not None:  # the upsell model's offer ranking: the best expected value
        frame["_chosen_offer"] = chosen_offer(frame)
        best = frame.loc[frame["_chosen_offer"], ["customer_id", "offer_type"]]
        frame["offer"] = frame["customer_id"].map(best.set_index("customer_id")["offer_type"])
    ids = pd.Index(pd.unique(frame["customer_id"]))
    at = ids.get_indexer(frame["customer_id"])
    contact = contact_frame(tables.customers, tables.offers, ids, cutoff)
    timing = X  # the value models' next order date, when the bundle has them
    if worth is not None and "next_order_at" in worth:
        timing = X.assign(next_order_at=worth["next_order_at"].array)
    for name, values in contact_plan(
        contact, timing, ids, act["_replenishment"], at, cutoff, cfg
    ).items():
        frame[name] = values
    names = customer_names(tables, ids)
    if names is not None:
        frame["name"] = names[at]
    frame = frame.sort_values(
        ["score", "customer_id"], ascending=[False, True], kind="stable", na_position="last"
    ).reset_index(drop=True)
    if offer_type is not None:
        frame["offer_rank"] = frame.groupby("customer_id").cumcount() + 1
    chosen, left_out = selection(frame, sc, resolve_by(sc, X, frame))
    frame["selected"] = chosen
    frame["left_out"] = left_out
    frame["group"] = control_group(frame, frame["selected"].to_numpy(), sc.control_share, cfg.seed)
    frame["model_version"] = bundle.version
    frame["cutoff"] = cutoff
    frame["horizon_days"] = int(
        bundle.info.get("horizon_days") or cfg.labels.horizon_days
    )  # the horizon the model's labels actually used
    extra = (
        (["offer_rank"] if offer_type is not None else [])
        + (["incremental_value", "uplift"] if uplift is not None else [])
        + (VALUE_COLUMNS if worth is not None else [])
    )
    if "name" in frame:
        extra.append("name")
    return ScoreResult(frame[COLUMNS + extra], drift, warnings)


ACTION_COLUMNS = (
    "driver", "driver_direction", "play_reason_en", "play_reason_ko", "category", "play_theme",
)  # fmt: skip


def chosen_offer(frame: pd.DataFrame) -> np.ndarray:
    """Each customer's best offer row (highest expected value, then score, then list order)."""
    order = np.lexsort(
        (
            np.arange(len(frame)),
            -frame["score"].fillna(-np.inf).to_numpy(),
            -frame["expected_value"].fillna(-np.inf).to_numpy(),
            frame["customer_id"].astype(str).to_numpy(),
        )
    )
    first = ~pd.Series(frame["customer_id"].to_numpy()[order]).duplicated().to_numpy()
    out = np.zeros(len(frame), dtype=bool)
    out[order[first]] = True
    return out


def contact_plan(
    contact: pd.DataFrame | None,
    X: pd.DataFrame,
    ids: pd.Index,
    replenishment: np.ndarray,
    at: np.ndarray,
    cutoff: pd.Timestamp,
    cfg: Config,
    population: np.ndarray | None = None,
) -> dict[str, Any]:
    """Channel, send window and send time of every row (``at``: each row's customer in
    ``ids``) from the customers' consents and offer history (:func:`vipml.plays.contact_frame`)
    and the population's response rates (given, or from ``contact`` when it holds everyone).
    A ``next_order_at`` column of the features, when there is one, is the next order date; else
    it comes from the customer's purchase cycle (:func:`vipml.plays.next_order_at`)."""
    sent, resp, consent, night = contact_arrays(contact, ids)
    if population is None:
        population = population_rates(sent, resp)
    channel, _ = best_channel(sent, resp, population, consent, cfg.score, CHANNELS)
    rows = X.reset_index(drop=True)
    due = (
        pd.Series(pd.to_datetime(rows["next_order_at"], utc=True).array)
        if "next_order_at" in rows
        else next_order_at(rows, cutoff)
    )
    out = send_window(replenishment, due, night[at], cutoff, cfg)
    out["channel"] = channel[at]
    out["night_consent"] = night[at]
    return out


def customer_names(tables: Tables, ids: pd.Index) -> np.ndarray | None:
    """The ``name`` column of the customers table for ``ids``, when it has one."""
    cust = tables.customers
    if cust is None or "name" not in cust:
        return None
    cust = cust.drop_duplicates("customer_id", keep="last")
    names = pd.Series(cust["name"].to_numpy(dtype=object), index=cust["customer_id"].astype(str))
    return names.reindex(pd.Index(ids).astype(str)).to_numpy(dtype=object)


def in_population(
    tables: Tables, X: pd.DataFrame, bundle: Bundle, cutoff: pd.Timestamp, cfg: Config
) -> np.ndarray:
    """Rows of customers in the population the bundle was trained on.

    A VIP model trained on ``labels.population: not_vip`` (the default, and every bundle that
    does not say) never saw a customer who was VIP at the cutoff: those rows get no score. A
    model trained on ``all`` scores everyone; other tasks score every row they are given.
    """
    n = len(X)
    if bundle.info.get("task", "vip") != "vip" or bundle.info.get("population") == "all":
        return np.ones(n, dtype=bool)
    if "is_vip" in X:
        return ~(X["is_vip"].to_numpy(dtype=np.float64) > 0)
    ids = X.index.get_level_values("customer_id") if isinstance(X.index, pd.MultiIndex) else X.index
    status = vip_status(tables, as_of=cutoff, config=cfg, customers=pd.Index(ids))
    return ~status["is_vip"].to_numpy(dtype=bool)


def _offer_rows(X: pd.DataFrame, sc: ScoreConfig) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Every customer with every candidate offer (category: the customer's top category)."""
    parts, types, costs = [], [], []
    for offer in sc.offers:
        part = X.copy()
        part["offer_type"] = pd.array([offer.offer_type] * len(X), dtype="str")
        top = (
            X["top_category"] if "top_category" in X else pd.Series([None] * len(X), index=X.index)
        )
        part["offer_category"] = pd.array(top.to_numpy(), dtype="str")
        part["offer_channel"] = pd.array([offer.channel] * len(X), dtype="str")
        part["offer_discount_pct"] = float(offer.discount_pct)
        parts.append(part)
        types.append(np.full(len(X), offer.offer_type, dtype=object))
        costs.append(np.full(len(X), sc.cost if offer.cost is None else offer.cost))
    if not parts:
        raise DataError("score.offers lists no candidate offers for the upsell model")
    return pd.concat(parts), np.concatenate(types), np.concatenate(costs)


# --------------------------------------------------------------------------- uplift lists

UPLIFT_COLUMNS = [
    "customer_id", "arm", "uplift", "expected_value", "best_arm", "segment",
    "reason_1_en", "reason_2_en", "reason_3_en", "reason_1_ko", "reason_2_ko", "reason_3_ko",
    "selected", "group", "model_version", "cutoff",
]  # fmt: skip


def uplift_value(X: pd.DataFrame, sc: ScoreConfig, outcome: str) -> np.ndarray:
    """What one unit of the outcome is worth per customer: the value of a conversion
    (``score.value_feature``, else ``score.value``); 1 for a revenue outcome (its uplift is money
    already)."""
    if outcome == "revenue":
        return np.ones(len(X))
    return conversion_value(X, sc)


def customer_control(customers: np.ndarray, selected: np.ndarray, share: float, seed: int):
    """Hold out a seeded ``share`` of the customers with a selected row: a held-out customer is
    control on every one of their rows, the others treatment on their selected rows."""
    ids = pd.Index(np.unique(customers))  # sorted: the draw does not depend on the list's order
    codes = ids.get_indexer(customers)
    chosen = np.zeros(len(ids), dtype=bool)
    chosen[codes[selected]] = True
    draw = np.random.default_rng(seed).random(len(ids))
    held = np.zeros(len(ids), dtype=bool)
    rows = np.flatnonzero(chosen)
    n_control = math.floor(share * len(rows) + 0.5) if share > 0 else 0
    held[rows[np.argsort(draw[rows], kind="stable")[:n_control]]] = True
    group = np.where(selected, "treatment", "").astype(object)
    group[held[codes]] = "control"
    return group


def score_uplift(
    tables: Tables,
    uplift: UpliftBundle,
    *,
    as_of: object,
    config: Config | None = None,
    features: pd.DataFrame | None = None,
    progress: bool = False,
) -> ScoreResult:
    """The uplift target list: one row per customer known before ``as_of`` and tested arm.

    Each row carries the arm's ``uplift`` (the estimated rise of the outcome when that offer is
    sent instead of nothing) and its ``expected_value`` (incremental value: uplift x value -
    the arm's cost), ``best_arm`` (the arm with the highest positive expected value, ``none``
    when no arm's is positive), ``uplift_<arm>`` for every arm, and the three features that raise
    that customer's uplift most, in English and Korean. Rows sort by expected value, then
    ``customer_id`` and arm; a customer's best arm is selected when its expected value is
    positive, under ``score.capacity``, ``budget`` and ``segment_caps``. The control group is
    drawn per customer: a held-out customer is control for every arm.

    Raises
    ------
    DataError
        When the data's features do not match the bundle's (the columns are named).
    """
    cutoff = as_cutoff(as_of)
    cfg = scoring_config(uplift, config)
    sc = cfg.score
    X = (
        features
        if features is not None
        else build_features(tables, as_of=cutoff, config=cfg, progress=progress)
    )
    M = uplift.matrix(X)
    arms = uplift.arms
    U = uplift.predict_arms(X).to_numpy(dtype=np.float64)
    outcome = uplift.info.get("outcome", "accepted")
    value = uplift_value(X, sc, outcome)
    costs = uplift.info.get("costs", {})
    cost = np.array([costs.get(a, sc.cost) for a in arms], dtype=np.float64)
    ev = U * value[:, None] - cost[None, :]
    best = np.argmax(ev, axis=1)
    best_name = np.where(
        ev[np.arange(len(X)), best] > 0, np.asarray(arms, dtype=object)[best], "none"
    )
    n, k = U.shape
    customer = np.asarray(X.index, dtype=object)
    seg = segments(X, sc.segments)
    parts = []
    spec = uplift.spec
    for j, arm in enumerate(arms):  # loops over arms, not customers
        part = pd.DataFrame(
            {
                "customer_id": customer,
                "arm": arm,
                "uplift": U[:, j],
                "expected_value": ev[:, j],
                "best_arm": best_name,
                "segment": seg,
            }
        )
        contrib = uplift.learner.contributions(M, j)
        why = reasons(None, M, X, spec, contrib=contrib) if spec is not None else {}
        for r in range(1, 4):
            for lang in ("en", "ko"):
                key = f"reason_{r}_{lang}"
                part[key] = why.get(key, np.full(n, "", dtype=object))
        for i, other in enumerate(arms):
            part[f"uplift_{other}"] = U[:, i]
        part["_cost"] = cost[j]
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values(
        ["expected_value", "customer_id", "arm"], ascending=[False, True, True], kind="stable"
    ).reset_index(drop=True)
    # only a customer's best arm can be chosen; select() takes positive expected values
    key = frame["expected_value"].where(frame["arm"] == frame["best_arm"], -np.inf)
    pick = frame.assign(score=1.0, expected_value=key)
    frame["selected"] = select(
        pick, sc.model_copy(update={"select_by": "expected_value", "min_score": 0.0})
    )
    frame["group"] = customer_control(
        frame["customer_id"].to_numpy(), frame["selected"].to_numpy(), sc.control_share, cfg.seed
    )
    frame["model_version"] = uplift.version
    frame["cutoff"] = cutoff
    columns = UPLIFT_COLUMNS + [f"uplift_{a}" for a in arms]
    drift = pd.Series(dtype=np.float64, name="psi")
    warnings = []
    if not frame["selected"].any():
        warnings.append("no customer has an arm with a positive expected incremental value")
    return ScoreResult(frame[columns], drift, warnings)
