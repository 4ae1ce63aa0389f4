"""What a feature family is: declared features, a one-off preparation, a per-cutoff computation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vipml.config import Config
from vipml.features.engine import CustomerIndex, Timeline
from vipml.features.registry import Feature
from vipml.io import Tables, order_values
from vipml.windows import DAY_US, Window, to_us


@dataclass
class Context:
    """Everything a family may read: the tables, the config, the customers and the windows.

    Work several families need (customer codes, the sorted orders) is done once and cached here.
    """

    tables: Tables
    config: Config
    customers: CustomerIndex
    cache: dict[str, Any] = field(default_factory=dict)
    # figures of the whole population given from outside (the bucketed engines), by family name
    population: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, tables: Tables, config: Config) -> Context:
        """Encode every table's customer ids once."""
        columns = {name: frame["customer_id"] for name, frame in tables if "customer_id" in frame}
        return cls(tables=tables, config=config, customers=CustomerIndex(columns))

    def table_codes(self, table: str) -> np.ndarray:
        """Customer codes of a table's rows."""
        return self.customers.of(table)

    def known(self, as_of: pd.Timestamp) -> np.ndarray:
        """Codes of the customers known strictly before ``as_of`` (signed up, ordered, browsed or
        got an offer), sorted by customer id. Same rule as :meth:`vipml.tables.Tables.known_at`."""
        key = f"known:{to_us(as_of)}"
        found = self.cache.get(key)
        if found is None:
            seen = np.zeros(len(self.customers), dtype=bool)
            end = to_us(as_of)
            cust = self.tables.customers
            if self.tables.undated_known and cust is not None and len(cust):
                undated = (
                    cust["signup_at"].isna().to_numpy()
                    if "signup_at" in cust
                    else np.ones(len(cust), bool)
                )
                seen[self.table_codes("customers")[undated]] = True
            for name, column in (
                ("customers", "signup_at"),
                ("orders", "ordered_at"),
                ("events", "occurred_at"),
                ("offers", "sent_at"),
            ):
                frame = self.tables.get(name)
                if frame is None or column not in frame or not len(frame):
                    continue
                times = frame[column]
                ok = times.notna().to_numpy()
                before = np.zeros(len(frame), dtype=bool)
                before[ok] = us(times[ok]) < end
                seen[self.table_codes(name)[before]] = True
            codes = np.flatnonzero(seen)
            found = codes[np.argsort(self.customers.ids[codes].to_numpy(), kind="stable")]
            self.cache = {k: v for k, v in self.cache.items() if not k.startswith("known:")}
            self.cache[key] = found
        return found

    def order_values(self) -> dict[str, np.ndarray]:
        """:func:`vipml.tables.order_values` of the orders table, computed once."""
        if "order_values" not in self.cache:
            self.cache["order_values"] = order_values(self.tables.orders)
        return self.cache["order_values"]

    def orders_timeline(self) -> Timeline:
        """Every order row sorted by customer and time, with purchase, return and habit columns."""
        found = self.cache.get("orders")
        if found is None:
            orders = self.tables.orders
            t = us(orders["ordered_at"])
            vals = self.order_values()
            weekday, hour = weekday_hour(t, orders["ordered_at"], self.config.timezone)
            lo, hi = self.config.features.evening_hours
            cols = {
                **vals,
                "weekend": (weekday >= 5) & vals["purchase"],
                "evening": (hour >= lo) & (hour < hi) & vals["purchase"],
            }
            if "discount" in orders:
                cols["discount"] = (
                    np.nan_to_num(orders["discount"].to_numpy(dtype=np.float64)) * vals["purchase"]
                )
            found = Timeline(self.table_codes("orders"), t, len(self.customers), cols)
            self.cache["orders"] = found
        return found

    @property
    def windows(self) -> tuple[Window, ...]:
        """The configured look-back windows, then all history."""
        return (*(Window(d) for d in self.config.features.windows), Window(None))

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Customer codes of any frame's ``customer_id`` column (hashes it: prefer table_codes)."""
        return self.customers.codes(frame["customer_id"])


class Family(ABC):
    """A feature family. Subclasses set ``name`` and ``tables`` and implement the three methods.

    ``prepare`` runs once per data set (sorting, prefix sums); ``compute`` runs per cutoff and
    returns one array per feature, aligned with ``ctx.customers``, reading only rows before
    ``as_of``.
    """

    name: str = ""
    tables: tuple[str, ...] = ()

    def available(self, tables: Tables) -> str | None:
        """None when the family can be built, else why not."""
        missing = [t for t in self.tables if tables.get(t) is None]
        return f"no {', '.join(missing)} table" if missing else None

    @abstractmethod
    def features(self, ctx: Context) -> list[Feature]:
        """The features this family builds on this data."""

    @abstractmethod
    def prepare(self, ctx: Context) -> Any:
        """One-off work shared by every cutoff."""

    @abstractmethod
    def compute(self, state: Any, ctx: Context, as_of: pd.Timestamp) -> dict[str, np.ndarray]:
        """Feature values as of ``as_of``."""


def days_between(later_us: int, earlier_us: np.ndarray) -> np.ndarray:
    """Days from ``earlier`` to ``later`` (NaN stays NaN)."""
    return (later_us - earlier_us) / DAY_US


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``; NaN where ``den`` is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def local_times(times: pd.Series, timezone: str) -> pd.DatetimeIndex:
    """UTC times as wall-clock times of the config's zone (for habits like weekday and hour)."""
    idx = pd.DatetimeIndex(times)
    return idx if timezone == "UTC" else idx.tz_convert(timezone)


def weekday_hour(
    t_us: np.ndarray, times: pd.Series, timezone: str
) -> tuple[np.ndarray, np.ndarray]:
    """Local weekday (Monday 0) and hour of each time; integer arithmetic when the zone is UTC."""
    if timezone == "UTC":
        days = t_us // DAY_US
        return (days + 3) % 7, (t_us // 3_600_000_000) % 24  # 1970-01-01 was a Thursday
    local = local_times(times, timezone)
    return np.asarray(local.day_of_week), np.asarray(local.hour)


def us(times: pd.Series) -> np.ndarray:
    """Microseconds since the epoch."""
    return np.asarray(to_us(times), dtype=np.int64)
