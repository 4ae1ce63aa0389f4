"""The data contract: the five tables, their columns by kind, and the result types of loading."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vipml.errors import DataError, closest

TS_DTYPE = "datetime64[us, UTC]"


OFFER_TYPES = ("upsell", "cross_sell", "bundle")


GROUPS = ("treatment", "control")


FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".txt")


@dataclass(frozen=True)
class TableSpec:
    """Columns of one contract table, by kind. The first timestamp is the table's own time."""

    name: str
    required: tuple[str, ...]
    ids: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every contract column, required first."""
        out = list(self.required)
        for col in (*self.ids, *self.times, *self.numbers, *self.texts):
            if col not in out:
                out.append(col)
        return tuple(out)

    @property
    def time(self) -> str | None:
        """The column that dates a row."""
        return self.times[0] if self.times else None


CONTRACT: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "customers",
            required=("customer_id",),
            ids=("customer_id",),
            times=("signup_at",),
        ),
        TableSpec(
            "orders",
            required=("order_id", "customer_id", "ordered_at", "amount"),
            ids=("order_id", "customer_id"),
            times=("ordered_at",),
            numbers=("amount", "discount"),
            texts=("channel", "status"),
        ),
        TableSpec(
            "order_items",
            required=("order_id", "product_id", "quantity", "unit_price"),
            ids=("order_id", "product_id"),
            numbers=("quantity", "unit_price"),
            texts=("category", "tier"),
        ),
        TableSpec(
            "events",
            required=("customer_id", "occurred_at", "event_type"),
            ids=("customer_id", "session_id"),
            times=("occurred_at",),
            numbers=("duration_s",),
            texts=("event_type", "category", "channel"),
        ),
        TableSpec(
            "offers",
            required=("offer_id", "customer_id", "sent_at", "offer_type"),
            ids=("offer_id", "customer_id", "campaign_id"),
            times=("sent_at", "opened_at", "clicked_at", "accepted_at"),
            numbers=("discount_pct", "cost"),
            texts=("offer_type", "channel", "category", "group"),
        ),
    )
}


TABLE_NAMES = tuple(CONTRACT)


LINE_COLUMNS = (
    "order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price",
    "category", "tier", "channel", "status", "discount", "amount",
)  # fmt: skip


_MISSING_TEXT = {"", "nan", "none", "null", "na", "n/a", "nat", "<na>"}


_INTEGRAL_FLOAT = re.compile(r"^(-?\d+)\.0*$")


_OFFSET = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"


_LOWER = {"status", "event_type", "offer_type", "group", "tier", "channel"}


_OFFER_TYPE = {
    "cross-sell": "cross_sell",
    "cross sell": "cross_sell",
    "crosssell": "cross_sell",
    "up-sell": "upsell",
    "up_sell": "upsell",
    "up sell": "upsell",
}


_STATUS = {
    "canceled": "cancelled", "cancel": "cancelled", "cancelled": "cancelled",
    "returned": "returned", "return": "returned", "refund": "returned", "refunded": "returned",
}  # fmt: skip


@dataclass(frozen=True)
class Tables:
    """The clean tables of one data set. Absent tables are None; ``orders`` is required unless
    the config's ``required_tables`` says otherwise."""

    orders: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    order_items: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    offers: pd.DataFrame | None = None
    undated_known: bool = False  # customers rows without signup_at count as known from the start

    def __iter__(self) -> Iterator[tuple[str, pd.DataFrame]]:
        for name in TABLE_NAMES:
            frame = getattr(self, name)
            if frame is not None:
                yield name, frame

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the tables present."""
        return tuple(name for name, _ in self)

    def get(self, name: str) -> pd.DataFrame | None:
        """One table by name, None when absent."""
        if name not in CONTRACT:
            raise KeyError(f"no table '{name}' in the data contract ({', '.join(TABLE_NAMES)})")
        return getattr(self, name)

    def replace(self, **frames: pd.DataFrame | None) -> Tables:
        """A copy with some tables replaced."""
        return Tables(
            **{**{n: getattr(self, n) for n in TABLE_NAMES}, **frames},
            undated_known=self.undated_known,
        )

    def known_at(self, as_of: pd.Timestamp) -> pd.Index:
        """Customers known strictly before ``as_of``: signed up, ordered, browsed or got an offer.

        A customer without ``signup_at`` and without any dated row before ``as_of`` is not known,
        unless the config says ``undated_customers_known: true`` (a customers table that lists
        existing customers without their sign-up dates).
        """
        parts = []
        cust = self.customers
        if self.undated_known and cust is not None and len(cust):
            undated = (
                cust["signup_at"].isna()
                if "signup_at" in cust
                else pd.Series(True, index=cust.index)
            )
            parts.append(cust.loc[undated.to_numpy(), "customer_id"])
        for name, column in (
            ("customers", "signup_at"),
            ("orders", "ordered_at"),
            ("events", "occurred_at"),
            ("offers", "sent_at"),
        ):
            frame = self.get(name)
            if frame is not None and column in frame and len(frame):
                parts.append(frame.loc[(frame[column] < as_of).to_numpy(), "customer_id"])
        if not parts:
            return pd.Index([], dtype="str", name="customer_id")
        ids = pd.unique(pd.concat(parts, ignore_index=True).dropna())
        return pd.Index(ids, dtype="str", name="customer_id").sort_values()

    def customer_ids(self) -> pd.Index:
        """Every customer id seen in any table, sorted."""
        ids = [f["customer_id"] for _, f in self if "customer_id" in f]
        if not ids:
            return pd.Index([], dtype="str", name="customer_id")
        return pd.Index(
            pd.unique(pd.concat(ids, ignore_index=True).dropna()), name="customer_id"
        ).sort_values()


@dataclass
class TableReport:
    """What loading did to one table."""

    table: str
    rows_in: int = 0
    rows_kept: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    nulled: dict[str, int] = field(default_factory=dict)
    returns: int = 0
    cancellations: int = 0
    date_min: pd.Timestamp | None = None
    date_max: pd.Timestamp | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    ids: pd.Series | None = field(default=None, repr=False, compare=False)
    _customers: int | None = field(default=None, repr=False, compare=False)

    @property
    def customers(self) -> int | None:
        """Distinct customers among the kept rows (counted when first asked for)."""
        if self._customers is None and self.ids is not None:
            self._customers = int(self.ids.nunique())
        return self._customers

    @property
    def rows_quarantined(self) -> int:
        """Rows set aside, all reasons."""
        return sum(self.quarantined.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "table": self.table,
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "quarantined": dict(self.quarantined),
            "values_set_missing": dict(self.nulled),
            "returns": self.returns,
            "cancellations": self.cancellations,
            "date_min": None if self.date_min is None else self.date_min.isoformat(),
            "date_max": None if self.date_max is None else self.date_max.isoformat(),
            "customers": self.customers,
            "notes": list(self.notes),
        }


@dataclass
class ValidationReport:
    """Counts per table and reason, the date range and the number of customers."""

    tables: dict[str, TableReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    quarantine_dir: Path | None = None
    clean: Tables | None = field(default=None, repr=False, compare=False)
    _customers: int | None = field(default=None, repr=False, compare=False)

    @property
    def customers(self) -> int:
        """Distinct customers over every table (counted when first asked for)."""
        if self._customers is None:
            with_ids = [t for t in self.tables.values() if t.ids is not None]
            if "customers" in self.tables and self.tables["customers"].rows_kept:
                self._customers = (
                    self.tables["customers"].customers or 0
                )  # the others were checked against it
            elif len(with_ids) == 1:
                self._customers = with_ids[0].customers or 0
            elif self.clean is not None:
                self._customers = len(self.clean.customer_ids())
            else:
                self._customers = 0
        return self._customers

    @property
    def date_range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """Earliest and latest timestamp over every table."""
        lows = [t.date_min for t in self.tables.values() if t.date_min is not None]
        highs = [t.date_max for t in self.tables.values() if t.date_max is not None]
        return (min(lows) if lows else None, max(highs) if highs else None)

    @property
    def rows_quarantined(self) -> int:
        """Rows set aside over every table."""
        return sum(t.rows_quarantined for t in self.tables.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per table and reason (reason '' for the table's totals)."""
        rows = []
        for t in self.tables.values():
            rows.append(
                {
                    "table": t.table,
                    "reason": "",
                    "rows_in": t.rows_in,
                    "rows_kept": t.rows_kept,
                    "rows": t.rows_quarantined,
                }
            )
            for reason, n in t.quarantined.items():
                rows.append(
                    {
                        "table": t.table,
                        "reason": reason,
                        "rows_in": t.rows_in,
                        "rows_kept": t.rows_kept,
                        "rows": n,
                    }
                )
        return pd.DataFrame(rows, columns=["table", "reason", "rows_in", "rows_kept", "rows"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        lo, hi = self.date_range
        return {
            "customers": self.customers,
            "date_min": None if lo is None else lo.isoformat(),
            "date_max": None if hi is None else hi.isoformat(),
            "rows_quarantined": self.rows_quarantined,
            "warnings": list(self.warnings),
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
        }

    def summary(self) -> str:
        """A plain-text table for people."""
        head = f"{'table':<12} {'rows in':>11} {'kept':>11} {'quarantined':>12}  reasons"
        lines = [head, "-" * len(head)]
        for t in self.tables.values():
            reasons = ", ".join(f"{r} {n:,}" for r, n in t.quarantined.items())
            lines.append(
                f"{t.table:<12} {t.rows_in:>11,} {t.rows_kept:>11,} {t.rows_quarantined:>12,}  {reasons}"
            )
            extra = []
            if t.returns or t.cancellations:
                extra.append(
                    f"kept and flagged: {t.returns:,} returns, {t.cancellations:,} cancellations"
                )
            if t.nulled:
                extra.append(
                    "values set missing: " + ", ".join(f"{c} {n:,}" for c, n in t.nulled.items())
                )
            extra.extend(t.notes)
            lines.extend(f"{'':<12} {e}" for e in extra)
        lo, hi = self.date_range
        span = "no dated rows" if lo is None else f"{lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} UTC"
        lines.append("")
        lines.append(f"date range: {span}")
        lines.append(f"customers:  {self.customers:,}")
        if self.quarantine_dir is not None and self.rows_quarantined:
            lines.append(f"quarantine: {self.quarantine_dir}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def order_values(orders: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per order row: what it adds to purchases, returns and net spend.

    * ``purchase``: True for a bought order (positive amount, not cancelled), also when later returned;
    * ``gross``: its amount when a purchase, else 0;
    * ``returned``: the value given back (a negative line, or a purchase whose status is returned);
    * ``net``: gross - returned; cancelled rows add nothing anywhere.
    """
    amount = orders["amount"].to_numpy(dtype=np.float64)
    cancelled = (
        orders["is_cancelled"].to_numpy(dtype=bool)
        if "is_cancelled" in orders
        else np.zeros(len(orders), bool)
    )
    is_return = orders["is_return"].to_numpy(dtype=bool) if "is_return" in orders else amount < 0
    purchase = (amount > 0) & ~cancelled
    gross = np.where(purchase, amount, 0.0)
    returned = np.where(is_return & ~cancelled, np.abs(amount), 0.0)
    return {
        "purchase": purchase,
        "gross": gross,
        "returned": returned,
        "net": gross - returned,
        "return_row": is_return & ~cancelled,
        "cancel_row": cancelled,
    }


def _require(frame: pd.DataFrame, table: str, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    found = ", ".join(map(str, frame.columns)) or "no columns"
    col = missing[0]
    near = closest(col, [str(c) for c in frame.columns])
    guess = near or "<source column>"
    also = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    raise DataError(
        f"table '{table}' has no column '{col}'{also} (found: {found}).\n"
        f"Fix: rename the column, or map it in the config: tables.{table}.columns.{col}: {guess}"
    )


DataLike = Mapping[str, "pd.DataFrame | str | os.PathLike[str]"] | str | os.PathLike[str] | None
