"""Build feature frames: one cutoff (:func:`build_features`) or many (:func:`build_snapshots`).

Each family prepares once (one sort per table) and then answers every cutoff with a few linear
passes, so many cutoffs cost little more than one. The cutoff is always explicit; rows at or after
it are never read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from vipml.config import Config, as_config
from vipml.errors import ConfigError
from vipml.features.base import Context, Family
from vipml.features.behaviour import BehaviourFamily
from vipml.features.engine import CustomerIndex
from vipml.features.offers import OffersFamily
from vipml.features.product import ProductFamily
from vipml.features.purchase import PurchaseFamily
from vipml.features.registry import FeatureSpec
from vipml.features.static import StaticFamily
from vipml.features.vipfam import VipFamily
from vipml.progress import progress
from vipml.tables import Tables
from vipml.windows import as_cutoff, as_cutoffs

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        PurchaseFamily(),
        VipFamily(),
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


class _Builder:
    """Prepared families for one data set; computes any cutoff."""

    def __init__(self, tables: Tables, config: Config, show: bool) -> None:
        self.tables, self.config = tables, config
        self.spec = feature_spec(tables, config)
        self.ctx = _context(tables, config)
        self.families = [FAMILIES[name] for name in self.spec.families]
        self.states: dict[str, Any] = {}
        for family in progress(self.families, label="features: preparing", enabled=show):
            self.states[family.name] = family.prepare(self.ctx)

    def frame(self, as_of: pd.Timestamp) -> pd.DataFrame:
        rows = self.ctx.known(as_of)
        known = pd.Index(self.ctx.customers.ids[rows], name="customer_id")
        values: dict[str, np.ndarray] = {}
        for family in self.families:
            values.update(family.compute(self.states[family.name], self.ctx, as_of))
        columns = {}
        for f in self.spec.features:
            v = np.asarray(values[f.name])[rows]
            if f.kind == "categorical":
                columns[f.name] = pd.array(v, dtype="str")
            else:
                v = v.astype(np.float64)
                if f.fill is not None:
                    v = np.where(np.isnan(v), f.fill, v)
                columns[f.name] = v
        frame = pd.DataFrame(columns, index=known, columns=self.spec.names)
        frame.attrs["feature_spec"] = self.spec.to_dict()
        frame.attrs["as_of"] = as_of.isoformat()
        return frame


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
    builder = _Builder(tables, as_config(config), progress)
    return builder.frame(cutoff)


def build_snapshots(
    tables: Tables,
    *,
    cutoffs: Iterable[object],
    config: Config | str | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Features at several cutoffs, prepared once: one row per customer and cutoff.

    Returns
    -------
    pandas.DataFrame
        Index (``as_of``, ``customer_id``); each cutoff's rows equal :func:`build_features` at
        that cutoff.
    """
    from vipml.progress import progress as bar

    times: Sequence[pd.Timestamp] = as_cutoffs(cutoffs)
    builder = _Builder(tables, as_config(config), progress)
    frames = []
    for t in bar(times, label="features: cutoffs", enabled=progress):
        f = builder.frame(t)
        f.index = pd.MultiIndex.from_arrays(
            [pd.DatetimeIndex([t] * len(f), name="as_of"), f.index], names=["as_of", "customer_id"]
        )
        frames.append(f)
    out = pd.concat(frames) if frames else pd.DataFrame()
    out.attrs["feature_spec"] = builder.spec.to_dict()
    out.attrs["cutoffs"] = [t.isoformat() for t in times]
    return out
