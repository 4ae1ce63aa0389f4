"""Static family: the customers table's own attributes, passed through as they are.

Region, age band, acquisition channel, third-party attributes: numbers stay numbers, anything
else is categorical. Marketing consents (``consent_*``) and a ``name`` are not features. These columns have no time; they are taken as known at every cutoff, so
they should describe the customer at arrival, not be updated later.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vipml.features.base import Context, Family
from vipml.features.registry import Feature

F = "static"
# contact permissions and names are not attributes of a customer's behaviour: never features
_SKIP = {"customer_id", "signup_at", "name"}
CONSENT_PREFIX = "consent_"


class StaticFamily(Family):
    """Customer attributes as features."""

    name = F
    tables = ("customers",)

    def _columns(self, ctx: Context) -> list[str]:
        cust = ctx.tables.customers
        skip = _SKIP | set(ctx.config.features.static_exclude)
        if ctx.config.vip.rule == "tier" and ctx.config.vip.tier_column:
            skip.add(ctx.config.vip.tier_column)  # the label itself must not be a feature
        return [
            c
            for c in cust.columns
            if c not in skip
            and not c.startswith(CONSENT_PREFIX)
            and not pd.api.types.is_datetime64_any_dtype(cust[c])
        ]

    def features(self, ctx: Context) -> list[Feature]:
        cust = ctx.tables.customers
        out = []
        for col in self._columns(ctx):
            numeric = pd.api.types.is_numeric_dtype(cust[col]) and not pd.api.types.is_bool_dtype(
                cust[col]
            )
            out.append(
                Feature(
                    name=col,
                    family=F,
                    table="customers",
                    en=f"Customer attribute: {col}",
                    ko=f"고객 속성: {col}",
                    unit="value" if numeric else "category",
                    fill=None,
                    kind="numeric" if numeric else "categorical",
                )
            )
        return out

    def prepare(self, ctx: Context) -> pd.DataFrame:
        cust = ctx.tables.customers
        frame = cust.drop_duplicates("customer_id").set_index("customer_id")
        return frame.reindex(ctx.customers.ids)[self._columns(ctx)]

    def compute(
        self, state: pd.DataFrame, ctx: Context, as_of: pd.Timestamp
    ) -> dict[str, np.ndarray]:
        out = {}
        for f in self.features(ctx):
            col = state[f.name]
            out[f.name] = (
                col.to_numpy(dtype=np.float64)
                if f.kind == "numeric"
                else col.astype("str").to_numpy(dtype=object, na_value=None)
            )
        return out
