"""Why customers score as they do, and what sets VIPs apart: the tables behind the report.

* :func:`global_drivers`: the features that move the model's scores most (mean absolute
  LightGBM contribution, the same numbers as TreeSHAP) and in which direction;
* :func:`driver_curves`: how the calibrated score moves along a feature, bin by bin;
* :func:`compare_groups`: one group against the rest, feature by feature (medians, means,
  Mann-Whitney U, Cliff's delta, Benjamini-Hochberg), with small groups suppressed;
* :func:`vip_comparison`: the domain's step 1, VIPs against regular customers at a cutoff and
  the customers who became VIPs in the following horizon against those who did not;
* :func:`segment_profiles`: a scored target list summed up per segment, with its play;
* :func:`driver_plays`: the domain's step 2, the CRM play for each top driver
  (``score.driver_plays`` in the config);
* :func:`pareto`: the share of revenue held by the top share of customers, and by the VIPs.

Every function returns a tidy DataFrame (or a dict of them), sorted the same way every time.
Features read rows strictly before ``as_of`` (the cutoff instant is not input); converter labels
read ``[as_of, as_of + horizon)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from vipml.bundle import Bundle
from vipml.config import Config, ScoreConfig, as_config
from vipml.errors import ConfigError, DataError, sample_list
from vipml.features import build_features
from vipml.features.registry import FeatureSpec
from vipml.io import Tables
from vipml.labels import check_observable, vip_conversion_labels
from vipml.model import prepare_matrix
from vipml.score import _offer_rows, contributions, scoring_config
from vipml.vip import vip_status, window_spend
from vipml.windows import as_cutoff

__all__ = [
    "compare_groups",
    "driver_curves",
    "driver_plays",
    "global_drivers",
    "pareto",
    "segment_profiles",
    "vip_comparison",
]

#: |Spearman correlation| below this between a feature and its contribution: direction unclear.
DIRECTION_MIN_CORRELATION = 0.1

#: Values are compared at this many significant digits (see :func:`compare_groups`).
SIGNIFICANT_DIGITS = 9

#: Offer columns the upsell scorer adds to each customer's features (one row per offer).
_OFFER_COLUMNS = ("offer_type", "offer_category", "offer_channel", "offer_discount_pct")

_DRIVER_COLUMNS = [
    "feature", "description_en", "description_ko", "unit", "mean_abs_contribution", "share",
    "direction", "spearman", "rank",
]  # fmt: skip
_CURVE_COLUMNS = [
    "feature", "bin", "value_low", "value_high", "value_mid", "label", "customers", "mean_score",
    "mean_contribution",
]  # fmt: skip
_COMPARE_COLUMNS = [
    "feature", "description_en", "description_ko", "unit", "n_group", "n_rest", "missing_group",
    "missing_rest", "median_group", "median_rest", "mean_group", "mean_rest", "ratio",
    "effect_size", "p_value", "p_adjusted", "significant", "suppressed",
]  # fmt: skip
_PLAY_COLUMNS = [
    "feature", "description_en", "description_ko", "play_en", "play_ko", "offer_type", "matched",
    "prefix",
]  # fmt: skip
_TARGET_COLUMNS = (
    "customer_id", "score", "segment", "selected", "expected_value", "play_en", "play_ko",
    "offer_type",
)  # fmt: skip


# --------------------------------------------------------------------------- model drivers


def global_drivers(bundle: Bundle, X: pd.DataFrame, *, top: int | None = 10) -> pd.DataFrame:
    """The features that move the model's scores most over the rows of ``X``.

    Parameters
    ----------
    bundle
        A loaded model bundle (:func:`vipml.bundle.load_bundle`).
    X
        Features as :func:`vipml.features.build_features` makes them (extra columns are
        ignored). For an upsell bundle, rows without the offer columns are expanded to one row
        per candidate offer, as the scorer does.
    top
        Keep this many drivers; None keeps every feature.

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``description_en``, ``description_ko``, ``unit``,
        ``mean_abs_contribution`` (mean absolute LightGBM contribution, in log-odds),
        ``share`` (of the total over *all* features, so the shares of every feature sum to 1),
        ``direction`` (+1 when higher values raise the score, -1 when they lower it, 0 when
        unclear or categorical: the sign of the Spearman correlation between the feature's value
        and its contribution, 0 when its size is below ``DIRECTION_MIN_CORRELATION``),
        ``spearman`` (that correlation) and ``rank`` (1 = strongest). Sorted by
        ``mean_abs_contribution`` descending, then ``feature``.

    Raises
    ------
    DataError
        When ``X`` lacks features the model needs (they are named).
    """
    _, M = _model_rows(bundle, X)
    contrib, _ = contributions(bundle, M)
    names = list(M.columns)
    mean_abs = np.abs(contrib).mean(axis=0) if len(M) else np.zeros(len(names))
    total = mean_abs.sum()
    share = mean_abs / total if total > 0 else np.zeros(len(names))
    rho = np.array(
        [
            np.nan
            if isinstance(M[c].dtype, pd.CategoricalDtype)
            else _spearman(M[c], contrib[:, j])
            for j, c in enumerate(names)  # loops over features, not customers
        ]
    )
    direction = np.where(
        np.isnan(rho) | (np.abs(rho) < DIRECTION_MIN_CORRELATION), 0, np.sign(rho)
    ).astype(np.int64)
    en, ko, unit = _describe(bundle.spec, names)
    out = pd.DataFrame(
        {
            "feature": names,
            "description_en": en,
            "description_ko": ko,
            "unit": unit,
            "mean_abs_contribution": mean_abs,
            "share": share,
            "direction": direction,
            "spearman": rho,
        }
    )
    out = out.sort_values(
        ["mean_abs_contribution", "feature"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    if top is not None:
        out = out.head(top)
    return out[_DRIVER_COLUMNS]


def driver_curves(
    bundle: Bundle, X: pd.DataFrame, features: Sequence[str], *, bins: int = 10
) -> pd.DataFrame:
    """How the calibrated score and a feature's contribution move along the feature's values.

    Parameters
    ----------
    bundle
        A loaded model bundle.
    X
        Features as :func:`vipml.features.build_features` makes them.
    features
        Model features to trace.
    bins
        Numeric features: at most this many quantile bins (a feature with at most ``bins``
        distinct values gets one bin per value; tied quantiles merge). Categorical features:
        the ``bins - 1`` commonest categories and ``other``.

    Returns
    -------
    pandas.DataFrame
        One row per feature and bin: ``feature``, ``bin`` (0, 1, ... in value order; for
        categories by size), ``value_low``, ``value_high``, ``value_mid`` (the lowest, highest
        and median value in the bin; NaN for categories), ``label`` (``"12–30"``, a category,
        ``other`` or ``missing``), ``customers`` (rows in the bin), ``mean_score`` (calibrated)
        and ``mean_contribution`` (the feature's own contribution, log-odds). Missing values
        form a last bin labelled ``missing``. Features keep the order given.

    Raises
    ------
    DataError
        When a feature is not one of the model's, or ``bins`` is below 2.
    """
    if bins < 2:
        raise DataError(f"driver_curves: bins = {bins}; give 2 or more")
    features = list(features)
    unknown = [f for f in features if f not in bundle.features]
    if unknown:
        raise DataError(
            f"driver_curves: {sample_list(unknown)} not among the model's features "
            f"(bundle {bundle.version}).\nFix: pick features from bundle.features, e.g. "
            f"{sample_list(bundle.features, 3)}"
        )
    _, M = _model_rows(bundle, X)
    contrib, margin = contributions(bundle, M)
    score = bundle.calibrator.predict(1.0 / (1.0 + np.exp(-margin)))
    spec = bundle.spec
    parts = []
    for name in features:  # loops over features, not customers
        j = list(M.columns).index(name)
        unit = spec[name].unit if name in spec.names else ""
        if isinstance(M[name].dtype, pd.CategoricalDtype):
            codes, table = _category_bins(M[name], bins)
        else:
            codes, table = _numeric_bins(_snap(M[name].to_numpy(dtype=np.float64)), bins, unit)
        frame = pd.DataFrame({"bin": codes, "score": score, "contribution": contrib[:, j]})
        agg = frame.groupby("bin", sort=True).agg(
            customers=("score", "size"),
            mean_score=("score", "mean"),
            mean_contribution=("contribution", "mean"),
        )
        part = table.join(agg, on="bin", how="inner")
        part.insert(0, "feature", name)
        parts.append(part)
    if not parts:
        return pd.DataFrame({c: [] for c in _CURVE_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out["bin"] = out["bin"].astype(np.int64)
    out["customers"] = out["customers"].astype(np.int64)
    return out[_CURVE_COLUMNS]


# --------------------------------------------------------------------------- group comparisons


def compare_groups(
    X: pd.DataFrame,
    group: pd.Series | np.ndarray,
    *,
    spec: FeatureSpec | dict[str, Any] | None = None,
    features: Sequence[str] | None = None,
    min_group: int = 30,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """One group of customers against the rest, feature by feature (domain step 1).

    Parameters
    ----------
    X
        Features, one row per customer.
    group
        True for the group (VIPs, converters), False for the rest. A Series is aligned on
        ``X.index``; rows it does not cover, or where it is missing, are left out. An array is
        taken in ``X``'s row order.
    spec
        Descriptions and units; default ``X.attrs["feature_spec"]`` when present.
    features
        Numeric features to compare; default every numeric column of ``X``.
    min_group
        A feature whose group or rest has fewer non-missing values than this is suppressed:
        its row says ``suppressed=True`` and every count and statistic is missing, so small
        groups cannot be read off the table.
    alpha
        False discovery rate for ``significant``.

    Returns
    -------
    pandas.DataFrame
        One row per feature: ``feature``, ``description_en``, ``description_ko``, ``unit``,
        ``n_group``, ``n_rest`` (non-missing values), ``missing_group``, ``missing_rest``
        (missing values, left out of every statistic), ``median_group``, ``median_rest``,
        ``mean_group``, ``mean_rest``, ``ratio`` (``mean_group / mean_rest``; NaN when the rest's
        mean is 0), ``effect_size`` (Cliff's delta, computed as the rank-biserial correlation
        ``2 U / (n_group n_rest) - 1`` of the group's Mann-Whitney U, which equals it: the chance a
        group value is above a rest value minus the chance it is below; +1 means every group value
        is higher), ``p_value`` (Mann-Whitney U, two-sided), ``p_adjusted`` (Benjamini-Hochberg
        over the features tested), ``significant`` (``p_adjusted < alpha``), ``suppressed``.
        Sorted by ``|effect_size|`` descending, then ``feature``; suppressed rows last.

    Notes
    -----
    Values are compared at ``SIGNIFICANT_DIGITS`` significant digits: window sums that differ
    only in their last bits (summation order) are ties, as they should be, so the ranks and the
    test do not depend on float noise.

    Raises
    ------
    DataError
        When ``group`` does not match ``X``, is not boolean, or a feature is missing or not
        numeric.
    """
    if min_group < 1:
        raise DataError(f"compare_groups: min_group = {min_group}; give 1 or more")
    if not 0 < alpha < 1:
        raise DataError(f"compare_groups: alpha = {alpha}; give a value between 0 and 1")
    g = _as_group(X, group)
    names = _numeric_features(X, features)
    spec = _as_spec(spec if spec is not None else X.attrs.get("feature_spec"))
    values = X[names].to_numpy(dtype=np.float64) if names else np.empty((len(X), 0))
    values = _snap(values)
    A, B = values[g == 1], values[g == 0]
    missing_a, missing_b = np.isnan(A).sum(axis=0), np.isnan(B).sum(axis=0)
    n_a, n_b = len(A) - missing_a, len(B) - missing_b
    ok = (n_a >= min_group) & (n_b >= min_group)
    p = len(names)
    med_a, med_b, mean_a, mean_b = (np.full(p, np.nan) for _ in range(4))
    effect, p_value, p_adj = np.full(p, np.nan), np.full(p, np.nan), np.full(p, np.nan)
    if ok.any():
        a, b = A[:, ok], B[:, ok]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med_a[ok], med_b[ok] = np.nanmedian(a, axis=0), np.nanmedian(b, axis=0)
            mean_a[ok], mean_b[ok] = np.nanmean(a, axis=0), np.nanmean(b, axis=0)
        nan_policy = "omit" if (missing_a[ok].any() or missing_b[ok].any()) else "propagate"
        test = stats.mannwhitneyu(a, b, axis=0, alternative="two-sided", nan_policy=nan_policy)
        u = np.asarray(test.statistic, dtype=np.float64)
        effect[ok] = 2.0 * u / (n_a[ok] * n_b[ok]) - 1.0
        p_value[ok] = np.asarray(test.pvalue, dtype=np.float64)
        tested = ~np.isnan(p_value)
        if tested.any():
            p_adj[tested] = stats.false_discovery_control(p_value[tested], method="bh")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mean_b != 0, mean_a / np.where(mean_b != 0, mean_b, 1.0), np.nan)
    ratio[~ok] = np.nan
    en, ko, unit = _describe(spec, names)

    def counts(v: np.ndarray) -> pd.arrays.IntegerArray:
        """Counts, missing where the row is suppressed."""
        return pd.array(
            [int(c) if keep else pd.NA for c, keep in zip(v, ok, strict=True)], dtype="Int64"
        )

    out = pd.DataFrame(
        {
            "feature": pd.array(names, dtype="str"),
            "description_en": en,
            "description_ko": ko,
            "unit": unit,
            "n_group": counts(n_a),
            "n_rest": counts(n_b),
            "missing_group": counts(missing_a),
            "missing_rest": counts(missing_b),
            "median_group": med_a,
            "median_rest": med_b,
            "mean_group": mean_a,
            "mean_rest": mean_b,
            "ratio": ratio,
            "effect_size": effect,
            "p_value": p_value,
            "p_adjusted": p_adj,
            "significant": np.nan_to_num(p_adj, nan=1.0) < alpha,
            "suppressed": ~ok,
        }
    )
    order = np.lexsort((out["feature"].to_numpy(), -np.nan_to_num(np.abs(effect), nan=-1.0)))
    out = out.iloc[order].reset_index(drop=True)
    out.attrs.update(
        effect_size="Cliff's delta (= rank-biserial correlation of the Mann-Whitney U)",
        test="Mann-Whitney U, two-sided",
        adjustment="Benjamini-Hochberg",
        alpha=alpha,
        min_group=min_group,
    )
    return out[_COMPARE_COLUMNS]


def vip_comparison(
    tables: Tables,
    *,
    as_of: object,
    config: Config | str | None = None,
    bundle: Bundle | None = None,
    horizon_days: int | None = None,
    min_group: int = 30,
    features: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """VIPs against regular customers, and converters against the rest (domain step 1).

    Parameters
    ----------
    tables
        The loaded tables.
    as_of
        The cutoff. Features and VIP status read rows strictly before it; whether a customer
        became a VIP reads ``[as_of, as_of + horizon)`` only.
    config
        The VIP rule, features and horizon; with a bundle, the bundle's own features and VIP
        rule are used (as the scorer does) and this config's data sections.
    bundle
        When given, its (numeric) features are compared and its horizon is the default.
    horizon_days
        The conversion horizon; default the bundle's, else ``labels.horizon_days``.
    min_group
        Passed to :func:`compare_groups`.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``vip_vs_regular``: :func:`compare_groups` of the customers who are VIP at ``as_of``
        against the others known then, without the features that restate the VIP rule (the VIP
        family: ``is_vip``, the VIP-window spend and the gap to the bar, and any feature equal to
        the VIP-window spend, e.g. ``net_spend_365d`` under a 365-day window).
        ``converters_vs_not``: among the customers not VIP at ``as_of``, those who are VIP when
        the horizon ends against those who are not (``is_vip`` left out: it is 0 for all of
        them); present only when the data covers the horizon and the rule can date a conversion.
        ``notes``: columns ``comparison`` and ``note``, one row per exclusion or omission.

    Raises
    ------
    DataError
        When the tables cannot give features or VIP status.

    Notes
    -----
    ``features``, when given, are the features as of ``as_of`` already built with the same
    tables and config (``build_features``); they are used instead of building them again.
    """
    cutoff = as_cutoff(as_of)
    cfg = (
        scoring_config(bundle, as_config(config) if config is not None else None)
        if bundle
        else as_config(config)
    )
    X = features if features is not None else build_features(tables, as_of=cutoff, config=cfg)
    spec = _as_spec(X.attrs.get("feature_spec")) or (bundle.spec if bundle else FeatureSpec())
    numeric = _numeric_features(X, None)
    if bundle is not None:
        numeric = [c for c in bundle.features if c in numeric]
    status = vip_status(tables, as_of=cutoff, config=cfg, customers=X.index)
    is_vip = status["is_vip"].to_numpy(dtype=bool)
    notes: list[tuple[str, str]] = []

    restating = [c for c in numeric if c in spec.names and spec[c].family == "vip"]
    spend = status["vip_spend"].to_numpy(dtype=np.float64)
    restating += [
        c
        for c in numeric
        if c not in restating
        and len(X)
        and np.allclose(
            X[c].to_numpy(dtype=np.float64), spend, rtol=1e-9, atol=1e-6, equal_nan=False
        )
    ]
    if restating:
        notes.append(
            (
                "vip_vs_regular",
                f"left out as they restate the VIP rule ({cfg.vip.rule}, {cfg.vip.window_days}-day "
                f"window): {', '.join(restating)}",
            )
        )
    out: dict[str, pd.DataFrame] = {
        "vip_vs_regular": compare_groups(
            X,
            is_vip,
            spec=spec,
            features=[c for c in numeric if c not in restating],
            min_group=min_group,
        )
    }

    horizon = horizon_days or (
        int(bundle.info["horizon_days"])
        if bundle is not None
        and bundle.info.get("task") == "vip"
        and bundle.info.get("horizon_days")
        else cfg.labels.horizon_days
    )
    why_not = None
    if cfg.vip.rule == "tier":
        why_not = (
            "vip.rule 'tier' reads one static tier column, which cannot date a conversion; "
            "use rule top_share or threshold"
        )
    else:
        try:
            check_observable(
                tables,
                cutoff + pd.Timedelta(days=horizon),
                what=f"a {horizon}-day conversion window from {cutoff:%Y-%m-%d}",
            )
        except DataError as err:
            why_not = str(err).split("\n")[0]
    if why_not is None:
        labels = vip_conversion_labels(
            tables,
            as_of=cutoff,
            horizon_days=horizon,
            config=cfg,
            check=False,
            population="not_vip",
        )
        cohort = X.loc[labels.index]
        converted = labels["label"].to_numpy() == 1
        features = [c for c in numeric if c != "is_vip"]
        out["converters_vs_not"] = compare_groups(
            cohort, converted, spec=spec, features=features, min_group=min_group
        )
        notes.append(
            (
                "converters_vs_not",
                f"customers not VIP at {cutoff:%Y-%m-%d} who are VIP {horizon} days later against "
                "those who are not; is_vip left out (0 for all of them)",
            )
        )
    else:
        notes.append(("converters_vs_not", f"omitted: {why_not}"))
    out["notes"] = pd.DataFrame(notes, columns=["comparison", "note"])
    return out


def segment_profiles(
    targets: pd.DataFrame,
    X: pd.DataFrame | None = None,
    *,
    min_group: int = 30,
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A scored target list summed up per segment, with the segment's play.

    Parameters
    ----------
    targets
        A target list (:attr:`vipml.score.ScoreResult.targets`): ``customer_id``, ``score``,
        ``segment``, ``selected``, ``expected_value``, ``play_en``, ``play_ko``, ``offer_type``.
        An upsell list (several rows per customer) counts each customer once.
    X
        Features indexed by ``customer_id``, for the medians.
    min_group
        Segments with fewer customers are suppressed: every number in their row is missing and
        ``suppressed`` is True.
    features
        Features whose median per segment is shown as ``median_<feature>``; default every
        numeric column of ``X`` (none without ``X``).

    Returns
    -------
    pandas.DataFrame
        One row per segment: ``segment``, ``customers``, ``share`` (of all customers),
        ``mean_score``, ``selected`` (customers selected), ``expected_value`` (sum over the
        segment's rows), ``expected_value_selected`` (sum over its selected rows), ``play_en``,
        ``play_ko``, ``offer_type`` (the commonest play), ``suppressed``, then the medians. Sorted
        by ``customers`` descending, then ``segment``; suppressed segments last, by name.

    Raises
    ------
    DataError
        When ``targets`` lacks a column, or ``X`` lacks a feature or shares no customer with it.
    """
    missing = [c for c in _TARGET_COLUMNS if c not in targets]
    if missing:
        raise DataError(
            f"segment_profiles: the target list has no column {sample_list(missing)} (found: "
            f"{sample_list(targets.columns, 8)}).\nFix: pass ScoreResult.targets as the scorer "
            "wrote it"
        )
    t = targets.assign(customer_id=targets["customer_id"].astype("str"))
    selected = t["selected"].astype(bool).to_numpy()
    by = t.groupby("segment", sort=True)
    agg = pd.DataFrame(
        {
            "customers": by["customer_id"].nunique(),
            "mean_score": by["score"].mean(),
            "selected": t[selected].groupby("segment")["customer_id"].nunique(),
            "expected_value": by["expected_value"].sum(),
            "expected_value_selected": t[selected].groupby("segment")["expected_value"].sum(),
        }
    )
    agg[["selected", "expected_value_selected"]] = agg[
        ["selected", "expected_value_selected"]
    ].fillna(0)
    total = t["customer_id"].nunique()
    agg["share"] = agg["customers"] / total if total else np.nan
    plays = (
        t.groupby(["segment", "play_en", "play_ko", "offer_type"], sort=True, dropna=False)
        .size()
        .rename("n")
        .reset_index()
        .sort_values(["segment", "n", "play_en"], ascending=[True, False, True], kind="stable")
        .drop_duplicates("segment")
        .set_index("segment")[["play_en", "play_ko", "offer_type"]]
    )
    agg = agg.join(plays)
    medians: list[str] = []
    if X is not None:
        names = _numeric_features(X, features)
        people = t.drop_duplicates("customer_id")[["customer_id", "segment"]]
        index = X.index.astype("str")
        if len(people) and not index.isin(people["customer_id"]).any():
            raise DataError(
                "segment_profiles: X shares no customer_id with the target list (X index: "
                f"{sample_list(X.index[:3], 3)}; targets: {sample_list(people['customer_id'][:3], 3)}"
                ").\nFix: pass features indexed by customer_id, built at the list's cutoff"
            )
        values = X[names].set_axis(index).reindex(people["customer_id"].to_numpy())
        med = values.groupby(people["segment"].to_numpy(), sort=True).median()
        medians = [f"median_{c}" for c in names]
        agg = agg.join(med.set_axis(medians, axis=1))
    agg["suppressed"] = agg["customers"] < min_group
    numbers = [
        "customers", "share", "mean_score", "selected", "expected_value",
        "expected_value_selected", *medians,
    ]  # fmt: skip
    agg[numbers] = agg[numbers].astype(np.float64).mask(agg["suppressed"], axis=0)
    agg = agg.reset_index(names="segment")
    agg = agg.sort_values(
        ["suppressed", "customers", "segment"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)
    agg["segment"] = agg["segment"].astype("str")
    return agg[
        [
            "segment", "customers", "share", "mean_score", "selected", "expected_value",
            "expected_value_selected", "play_en", "play_ko", "offer_type", "suppressed", *medians,
        ]
    ]  # fmt: skip


def driver_plays(drivers: pd.DataFrame, config: Config | ScoreConfig | str | None) -> pd.DataFrame:
    """The CRM play for each driver (domain step 2), from the config's ``score.driver_plays``.

    Parameters
    ----------
    drivers
        Rows of :func:`global_drivers` (a ``feature`` column; descriptions are carried over when
        present).
    config
        A config (or its ``score`` section, or a path): ``score.driver_plays`` maps a feature-name
        prefix to a play, ``score.playbook["other"]`` is the fallback.

    Returns
    -------
    pandas.DataFrame
        One row per driver, in the drivers' order: ``feature``, ``description_en``,
        ``description_ko``, ``play_en``, ``play_ko``, ``offer_type``, ``matched`` (False: no
        prefix matched and the playbook's ``other`` play stands in) and ``prefix`` (the prefix
        that matched, ``""`` when none). When several prefixes match, the last one in the config
        wins, as in the scorer.

    Raises
    ------
    DataError
        When ``drivers`` has no ``feature`` column.
    ConfigError
        When the playbook has no ``other`` play to fall back to.
    """
    if "feature" not in drivers:
        raise DataError(
            f"driver_plays: drivers has no column 'feature' (found: {sample_list(drivers.columns)})."
            "\nFix: pass the output of global_drivers"
        )
    sc = config if isinstance(config, ScoreConfig) else as_config(config).score
    if "other" not in sc.playbook:
        raise ConfigError(
            "score.playbook has no 'other' play, needed for drivers without a driver play "
            f"(found: {sample_list(sc.playbook)}).\nFix: add score.playbook.other"
        )
    fallback = sc.playbook["other"]
    feature = drivers["feature"].astype("str").reset_index(drop=True)
    n = len(feature)
    prefix = np.full(n, "", dtype=object)
    # a play names no customer's category here: {category} reads "the best-selling category"
    generic = {"en": "the best-selling category", "ko": "인기 카테고리"}
    en = np.full(n, fallback.en.replace("{category}", generic["en"]), dtype=object)
    ko = np.full(n, fallback.ko.replace("{category}", generic["ko"]), dtype=object)
    kind = np.full(n, fallback.offer_type, dtype=object)
    for key, play in sc.driver_plays.items():  # later prefixes win
        hit = feature.str.startswith(key).to_numpy()
        prefix[hit], kind[hit] = key, play.offer_type
        en[hit] = play.en.replace("{category}", generic["en"])
        ko[hit] = play.ko.replace("{category}", generic["ko"])

    def carried(column: str) -> np.ndarray:
        if column in drivers:
            return drivers[column].astype("str").to_numpy()
        return feature.to_numpy()

    return pd.DataFrame(
        {
            "feature": feature.to_numpy(),
            "description_en": carried("description_en"),
            "description_ko": carried("description_ko"),
            "play_en": en,
            "play_ko": ko,
            "offer_type": kind,
            "matched": prefix != "",
            "prefix": prefix,
        }
    ).astype({c: "str" for c in _PLAY_COLUMNS if c != "matched"})[_PLAY_COLUMNS]


def pareto(
    tables: Tables,
    *,
    as_of: object,
    window_days: int | None = None,
    config: Config | str | None = None,
) -> pd.DataFrame:
    """The Pareto picture: how much of the revenue the top share of customers holds.

    Parameters
    ----------
    tables
        The loaded tables (orders are read before ``as_of`` only).
    as_of
        The cutoff; the window is ``[as_of - window_days, as_of)``.
    window_days
        The window; default the VIP rule's ``vip.window_days``. VIP status always follows the
        rule's own window.
    config
        The VIP rule.

    Returns
    -------
    pandas.DataFrame
        ``customer_share`` (0, 0.01, ..., 1; every customer when there are fewer than 100) and
        ``revenue_share`` (the share of the window's net revenue held by that top share of
        customers, by spend; negative net spend counts as 0; NaN when there is no revenue).
        ``frame.attrs``: ``vip_customer_share``, ``vip_revenue_share``, ``customers`` (known
        before ``as_of``), ``revenue``, ``top_20_revenue_share``, ``window_days``, ``as_of``.

    Raises
    ------
    DataError
        When there is no orders table.
    """
    cutoff = as_cutoff(as_of)
    cfg = as_config(config)
    if tables.orders is None:
        raise DataError(
            "pareto: there is no orders table.\nFix: load orders (customer_id, ordered_at, amount)"
        )
    days = window_days or cfg.vip.window_days
    ids = tables.known_at(cutoff)
    spend = window_spend(tables.orders, cutoff - pd.Timedelta(days=days), cutoff, ids)
    revenue = np.clip(spend.to_numpy(dtype=np.float64), 0.0, None)
    n = len(revenue)
    total = float(revenue.sum())
    cum = np.concatenate([[0.0], np.cumsum(np.sort(revenue)[::-1])])
    if n <= 100:  # every customer is a point
        k = np.arange(n + 1, dtype=np.int64) if n else np.zeros(2, dtype=np.int64)
        shares = k / n if n else np.array([0.0, 1.0])
    else:  # 101 points: the top 0%, 1%, ... 100% (customers rounded up)
        steps = np.arange(101, dtype=np.int64)
        shares, k = steps / 100, (steps * n + 99) // 100
    curve = cum[k] / total if total > 0 else np.full(len(k), np.nan)
    if total > 0:
        curve[-1] = 1.0  # the whole list holds the whole revenue, whatever the rounding
    out = pd.DataFrame({"customer_share": shares, "revenue_share": np.maximum.accumulate(curve)})
    is_vip = vip_status(tables, as_of=cutoff, config=cfg, customers=ids)["is_vip"].to_numpy(bool)
    top20 = cum[(20 * n + 99) // 100] / total if total > 0 else np.nan
    out.attrs.update(
        vip_customer_share=float(is_vip.mean()) if n else np.nan,
        vip_revenue_share=float(revenue[is_vip].sum() / total) if total > 0 else np.nan,
        customers=int(n),
        revenue=total,
        top_20_revenue_share=float(top20),
        window_days=int(days),
        as_of=cutoff.isoformat(),
    )
    return out


# --------------------------------------------------------------------------- helpers


def _model_rows(bundle: Bundle, X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows the model scores (offer rows for upsell) and its input matrix."""
    absent = [c for c in bundle.features if c not in X]
    if absent and set(absent) <= set(_OFFER_COLUMNS) and bundle.info.get("task") == "upsell":
        X, _, _ = _offer_rows(X, scoring_config(bundle, None).score)
    return X, prepare_matrix(X, bundle.features, bundle.categories)


def _snap(values: np.ndarray, digits: int = SIGNIFICANT_DIGITS) -> np.ndarray:
    """Values rounded to ``digits`` significant digits (NaN and 0 kept)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
    magnitude = np.where(np.isfinite(magnitude), magnitude, 0.0)
    scale = 10.0 ** (digits - 1 - magnitude)
    return np.round(values * scale) / scale


def _spearman(values: pd.Series, contrib: np.ndarray) -> float:
    """Spearman correlation of a feature and its contribution over rows where it is present."""
    v = values.to_numpy(dtype=np.float64)
    keep = ~np.isnan(v)
    if keep.sum() < 3:
        return np.nan
    rv, rc = stats.rankdata(v[keep]), stats.rankdata(contrib[keep])
    if rv.std() == 0 or rc.std() == 0:
        return np.nan
    return float(np.corrcoef(rv, rc)[0, 1])


def _as_spec(spec: FeatureSpec | dict[str, Any] | None) -> FeatureSpec | None:
    """A feature spec from itself or from its dict (``frame.attrs["feature_spec"]``)."""
    if spec is None or isinstance(spec, FeatureSpec):
        return spec
    return FeatureSpec.from_dict(spec)


def _describe(spec: FeatureSpec | None, names: Sequence[str]) -> tuple[pd.array, ...]:
    """English and Korean descriptions and units of features (the name when undeclared)."""
    known = set(spec.names) if spec is not None else set()
    en = [spec[c].en if c in known else c for c in names]
    ko = [spec[c].ko if c in known else c for c in names]
    unit = [spec[c].unit if c in known else "" for c in names]
    return tuple(pd.array(v, dtype="str") for v in (en, ko, unit))


def _numeric_features(X: pd.DataFrame, features: Sequence[str] | None) -> list[str]:
    """The numeric columns asked for (default: all), checked."""
    if features is None:
        return [
            c
            for c in X.columns
            if pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])
        ]
    features = list(features)
    absent = [c for c in features if c not in X]
    if absent:
        raise DataError(
            f"the features have no column {sample_list(absent)} (found: {sample_list(X.columns)})."
            "\nFix: build the features with the same config, or drop these from features="
        )
    text = [c for c in features if not pd.api.types.is_numeric_dtype(X[c])]
    if text:
        raise DataError(
            f"{sample_list(text)} not numeric ({X[text[0]].dtype}); groups are compared on "
            "numeric features only.\nFix: leave categorical features out of features="
        )
    return features


def _as_group(X: pd.DataFrame, group: pd.Series | np.ndarray) -> np.ndarray:
    """Group membership as 1 (group), 0 (rest) or NaN (left out), in ``X``'s row order."""
    if isinstance(group, pd.Series):
        g = group if group.index.equals(X.index) else group.reindex(X.index)
        raw = g.to_numpy(dtype=object)
    else:
        raw = np.asarray(group, dtype=object)
        if raw.ndim != 1 or len(raw) != len(X):
            raise DataError(
                f"group has {raw.size} values but X has {len(X)} rows.\nFix: give one value per "
                "row of X, or a Series indexed like X"
            )
    missing = pd.isna(raw)
    vals = raw[~missing]
    bad = [v for v in pd.unique(vals) if not (isinstance(v, bool | np.bool_) or v in (0, 1))]
    if bad:
        raise DataError(
            f"group must be True/False (or 1/0); found {sample_list(bad)}.\nFix: pass a boolean "
            "mask, e.g. status['is_vip']"
        )
    out = np.full(len(raw), np.nan)
    out[~missing] = vals.astype(np.float64)
    return out


def _numeric_bins(v: np.ndarray, bins: int, unit: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Quantile bins of a numeric feature (one per value when it has few), missing last."""
    present = ~np.isnan(v)
    distinct = np.unique(v[present])
    codes = np.full(len(v), -1, dtype=np.int64)
    if len(distinct) <= bins:
        codes[present] = np.searchsorted(distinct, v[present])
        k = len(distinct)
    else:
        edges = np.unique(np.quantile(v[present], np.linspace(0, 1, bins + 1)))
        codes[present] = np.searchsorted(edges[1:-1], v[present], side="right")
        k = len(edges) - 1
    if (~present).any():
        codes[~present] = k
    frame = pd.DataFrame({"bin": codes[present], "v": v[present]})
    by = frame.groupby("bin", sort=True)["v"]
    table = pd.DataFrame(
        {"value_low": by.min(), "value_high": by.max(), "value_mid": by.median()}
    ).reset_index()
    table["label"] = [
        _fmt(lo, unit) if lo == hi else f"{_fmt(lo, unit)}–{_fmt(hi, unit)}"
        for lo, hi in zip(table["value_low"], table["value_high"], strict=True)
    ]
    if (~present).any():
        table.loc[len(table)] = [k, np.nan, np.nan, np.nan, "missing"]
    return codes, table.astype({"bin": np.int64, "label": "str"})


def _category_bins(values: pd.Series, bins: int) -> tuple[np.ndarray, pd.DataFrame]:
    """The commonest categories, ``other`` and ``missing``, by size."""
    text = values.astype("object")
    missing = text.isna().to_numpy()
    counts = text[~missing].value_counts(sort=False)
    ranked = counts.reset_index().set_axis(["label", "n"], axis=1)
    ranked["label"] = ranked["label"].astype("str")
    ranked = ranked.sort_values(["n", "label"], ascending=[False, True], kind="stable")
    keep = ranked["label"].tolist() if len(ranked) <= bins else ranked["label"].tolist()[: bins - 1]
    labels = (
        keep
        + (["other"] if len(ranked) > len(keep) else [])
        + (["missing"] if missing.any() else [])
    )
    lookup = {name: i for i, name in enumerate(labels)}
    as_text = text.astype("str").to_numpy(dtype=object)
    codes = np.full(len(text), lookup.get("other", -1), dtype=np.int64)
    kept = np.isin(as_text, keep) & ~missing
    codes[kept] = pd.Series(as_text[kept]).map(lookup).to_numpy(dtype=np.int64)
    if missing.any():
        codes[missing] = lookup["missing"]
    table = pd.DataFrame(
        {
            "bin": np.arange(len(labels), dtype=np.int64),
            "value_low": np.nan,
            "value_high": np.nan,
            "value_mid": np.nan,
            "label": pd.array(labels, dtype="str"),
        }
    )
    return codes, table


def _fmt(value: float, unit: str) -> str:
    """A bin edge as people read it, by the feature's unit."""
    if unit == "ratio":
        return f"{value:.0%}"
    if unit == "flag" or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
