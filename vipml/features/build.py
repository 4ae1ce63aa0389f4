"""Build feature frames: one cutoff (:func:`build_features`) or many (:func:`build_snapshots`).

Each family prepares once (one sort per table) and then answers every cutoff with a few linear
passes, so many cutoffs cost little more than one. The cutoff is always explicit; rows at or after
it are never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vipml.config import Config, as_config
from vipml.errors import ConfigError
from vipml.features.base import Context, Family
from vipml.features.behaviour import BehaviourFamily
from vipml.features.btyd import BtydFamily
from vipml.features.engine import CustomerIndex
from vipml.features.offers import OffersFamily
from vipml.features.product import ProductFamily
from vipml.features.purchase import PurchaseFamily
from vipml.features.registry import FeatureSpec
from vipml.features.static import StaticFamily
from vipml.features.vipfam import VipFamily
from vipml.io import Tables
from vipml.progress import progress
from vipml.windows import as_cutoff, as_cutoffs

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        PurchaseFamily(),
        VipFamily(),
        BtydFamily(),
        ProductFamily(),
        BehaviourFamily(),
        OffersFamily(),
        StaticFamily(),
    )
}


def _plan(tables: Tables, config: Config) -> tuple[list[Family], dict[str, str]]:
    wanted = config.features.families or list(FAMILIES)
    chosen, absent = [], {}
    for name in wanted:
        family = FAMILIES[name]
        why = family.available(tables)
        if why is None:
            chosen.append(family)
        else:
            absent[name] = why
    if config.features.families and absent:
        name, why = next(iter(absent.items()))
        raise ConfigError(f"features.families asks for '{name}', which cannot be built here: {why}")
    return chosen, absent


def _context(tables: Tables, config: Config) -> Context:
    return Context.create(tables, config)


def feature_spec(tables: Tables, config: Config | str | None = None) -> FeatureSpec:
    """The columns :func:`build_features` makes on these tables, with their descriptions."""
    config = as_config(config)
    families, absent = _plan(tables, config)
    ctx = Context(tables=tables, config=config, customers=CustomerIndex({}))
    spec = FeatureSpec(families=[f.name for f in families], absent=absent)
    for family in families:
        spec.features.extend(family.features(ctx))
    names = spec.names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"feature names clash: {', '.join(dupes)} (a customers column has a feature's name).\n"
            "Fix: rename the column, or list it in features.static_exclude"
        )
    return spec


def _build(
    tables: Tables,
    config: Config,
    cutoffs: Sequence[pd.Timestamp],
    show: bool,
    only: Mapping[pd.Timestamp, Iterable[str]] | None = None,
    population: Mapping[str, Any] | None = None,
) -> tuple[FeatureSpec, list[pd.DataFrame]]:
    """Each family in turn: prepare once, compute every cutoff, free its state; then assemble.

    Families run one after another so that peak memory holds one family's sorted tables, not all.
    Arrays a family returns under names starting with ``_`` (what a bucket hands to the
    aggregate pass) follow the features as extra float64 columns.
    """
    spec = feature_spec(tables, config)
    ctx = _context(tables, config)
    ctx.population = dict(population or {})
    rows = [ctx.known(t) for t in cutoffs]
    if only is not None:  # keep just the customers asked for at each cutoff
        for i, t in enumerate(cutoffs):
            wanted = ctx.customers.ids.get_indexer(pd.Index(list(only.get(t, [])), dtype="str"))
            rows[i] = rows[i][np.isin(rows[i], wanted[wanted >= 0])]
    kept: list[dict[str, np.ndarray]] = [{} for _ in cutoffs]
    families = [FAMILIES[name] for name in spec.families]
    for i, family in enumerate(progress(families, label="features", enabled=show)):
        state = family.prepare(ctx)
        for i, t in enumerate(cutoffs):
            for name, values in family.compute(state, ctx, t).items():
                kept[i][name] = np.asarray(values)[rows[i]]  # only the customers known at t
        del state
        if not {"purchase", "vip", "btyd"} & {f.name for f in families[i + 1 :]}:
            ctx.cache.pop("orders", None)  # the sorted orders are not needed any more
            ctx.cache.pop("purchase_days", None)
    ctx.cache.clear()
    frames = []
    for i, t in enumerate(cutoffs):
        columns = {}
        for f in spec.features:
            v = kept[i].pop(f.name)
            if f.kind == "categorical":
                columns[f.name] = pd.array(v, dtype="str")
            else:
                v = v.astype(np.float64, copy=False)
                if f.fill is not None:
                    v = np.where(np.isnan(v), f.fill, v)
                columns[f.name] = v
        hidden = sorted(k for k in kept[i] if k.startswith("_"))
        for name in hidden:
            columns[name] = kept[i].pop(name).astype(np.float64, copy=False)
        index = pd.Index(ctx.customers.ids[rows[i]], name="customer_id")
        frame = pd.DataFrame(columns, index=index, columns=[*spec.names, *hidden], copy=False)
        frame.attrs["feature_spec"] = spec.to_dict()
        frame.attrs["as_of"] = t.isoformat()
        frames.append(frame)
    return spec, frames


def build_features(
    tables: Tables, *, as_of: object, config: Config | str | None = None, progress: bool = False
) -> pd.DataFrame:
    """Features of every customer known before ``as_of``, from rows strictly before it.

    Parameters
    ----------
    tables
        Loaded tables (:func:`vipml.load_tables`).
    as_of
        The cutoff (a date or timestamp; naive values are UTC). Required: it never defaults to
        now or to the data's last date. Rows at the cutoff instant are not read.
    config
        Windows, families and the VIP rule (``features`` and ``vip`` sections).
    progress
        Draw a progress bar on a terminal.

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id`` (sorted); one column per feature in the spec's order: numeric ones
        float64, categorical ones str. ``frame.attrs["feature_spec"]`` holds the spec.
    """
    cutoff = as_cutoff(as_of)
    return _build(tables, as_config(config), [cutoff], progress)[1][0]


def build_snapshots(
    tables: Tables,
    *,
    cutoffs: Iterable[object],
    config: Config | str | None = None,
    progress: bool = False,
    only: Mapping[object, Iterable[str]] | None = None,
    population: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Features at several cutoffs, prepared once: one row per customer and cutoff.

    ``only`` maps a cutoff to the customers wanted there (e.g. those sent an offer that week);
    by default every customer known at the cutoff. ``population`` gives families figures of the
    whole population instead of their own (``{"btyd": vipml.features.btyd.DEFER}``: the BTYD
    summary columns, fitted later by the caller; see :mod:`vipml.buckets`).

    Returns
    -------
    pandas.DataFrame
        Index (``as_of``, ``customer_id``); each cutoff's rows equal :func:`build_features` at
        that cutoff.
    """
    times: Sequence[pd.Timestamp] = as_cutoffs(cutoffs)
    chosen = None if only is None else {as_cutoff(k): v for k, v in only.items()}
    spec, frames = _build(tables, as_config(config), times, progress, chosen, population)
    for t, f in zip(times, frames, strict=True):
        f.index = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([t] * len(f), name="as_of"), f.index], names=["as_of", "customer_id"]
        )
    out = pd.concat(frames)
    out.attrs["feature_spec"] = spec.to_dict()
    out.attrs["cutoffs"] = [t.isoformat() for t in times]
    return out
