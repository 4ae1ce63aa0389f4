"""What a feature family is: declared features, a one-off preparation, a per-cutoff computation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from vipml.config import Config
from vipml.features.engine import CustomerIndex
from vipml.features.registry import Feature
from vipml.tables import Tables
from vipml.windows import DAY_US, Window, to_us


@dataclass
class Context:
    """Everything a family may read: the tables, the config, the customers and the windows."""

    tables: Tables
    config: Config
    customers: CustomerIndex

    @property
    def windows(self) -> tuple[Window, ...]:
        """The configured look-back windows, then all history."""
        return (*(Window(d) for d in self.config.features.windows), Window(None))

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Customer codes of a table's rows."""
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


def us(times: pd.Series) -> np.ndarray:
    """Microseconds since the epoch."""
    return np.asarray(to_us(times), dtype=np.int64)
