"""Time in one place: cutoffs, windows and the boundary rule for features and labels alike.

* A feature computed as of ``as_of`` reads rows with ``time < as_of`` (the cutoff instant itself is
  *not* input; lifetimes and featuretools count it, vipml does not).
* A window of ``d`` days reads ``[as_of - d days, as_of)``.
* A label reads ``[as_of, as_of + horizon)``.

Every timestamp in vipml is UTC (``tables.py`` converts on load); cutoffs given as dates or naive
strings are taken as UTC midnight, and are rounded down to the millisecond.

Supported time range: ``[EARLIEST, LATEST)`` (1700-01-01 to 2200-01-01 UTC). Windows and horizons
added to a cutoff in that range stay inside the nanosecond range other libraries need
(1677-09-21 to 2262-04-11); rows dated outside it are quarantined (``out_of_range_<column>``) and
a cutoff outside it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vipml.errors import ConfigError

DAY_US = 86_400 * 1_000_000
EARLIEST = pd.Timestamp("1700-01-01", tz="UTC").as_unit("us")
LATEST = pd.Timestamp("2200-01-01", tz="UTC").as_unit("us")


def out_of_range(times: pd.Series) -> np.ndarray:
    """Mask of timestamps outside the supported range ``[EARLIEST, LATEST)`` (NaT is not)."""
    t = to_us(times)
    present = times.notna().to_numpy()
    return present & ((t < to_us(EARLIEST)) | (t >= to_us(LATEST)))


def as_cutoff(value: object, *, name: str = "as_of") -> pd.Timestamp:
    """A cutoff as a UTC timestamp; naive values are UTC. None is an error, never "now"."""
    if value is None:
        raise ConfigError(
            f"{name} is required: give a date such as 2024-06-01 (it never defaults to now)"
        )
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{name} = {value!r} is not a date; give one like 2024-06-01") from None
    if ts is pd.NaT:
        raise ConfigError(f"{name} = {value!r} is not a date; give one like 2024-06-01")
    try:
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        ts = ts.as_unit("us")
    except (OverflowError, ValueError):
        ts = None
    if ts is None or not (EARLIEST <= ts < LATEST):
        raise ConfigError(
            f"{name} = {value!r} is outside the supported range: give a date from "
            f"{EARLIEST:%Y-%m-%d} up to (not including) {LATEST:%Y-%m-%d}"
        )
    return ts.floor("ms")  # whole milliseconds: the unit rows are ordered in


def as_cutoffs(values: Iterable[object], *, name: str = "cutoffs") -> list[pd.Timestamp]:
    """Cutoffs, sorted and unique."""
    out = sorted({as_cutoff(v, name=name) for v in values})
    if not out:
        raise ConfigError(f"{name}: give at least one date")
    return out


def to_us(times: pd.Series | pd.Index | pd.Timestamp) -> np.ndarray | int:
    """Microseconds since the epoch (UTC) as int64: the unit every window is computed in."""
    if isinstance(times, pd.Timestamp):
        return int(times.as_unit("us").asm8.view("i8"))  # no trip through nanoseconds
    values = pd.DatetimeIndex(times) if not isinstance(times, pd.DatetimeIndex) else times
    return values.as_unit("us").asi8


@dataclass(frozen=True)
class Window:
    """A look-back window ``[as_of - days, as_of)``; ``days=None`` means all history before as_of."""

    days: int | None = None

    @property
    def suffix(self) -> str:
        """The name suffix of features over this window: ``30d`` or ``all``."""
        return "all" if self.days is None else f"{self.days}d"

    def start(self, as_of: pd.Timestamp) -> pd.Timestamp | None:
        """First instant inside the window, None for all history."""
        return None if self.days is None else as_of - pd.Timedelta(days=self.days)

    def describe(self) -> str:
        """Human words for docs: reads [as_of - 30d, as_of)."""
        return (
            "reads rows before as_of"
            if self.days is None
            else f"reads [as_of - {self.days}d, as_of)"
        )


def feature_rows(times: pd.Series, as_of: pd.Timestamp, window: Window | None = None) -> np.ndarray:
    """Mask of rows a feature may read: ``start <= time < as_of``."""
    t = to_us(times)
    mask = t < to_us(as_of)
    if window is not None and window.days is not None:
        mask &= t >= to_us(window.start(as_of))
    return mask


def label_rows(times: pd.Series, as_of: pd.Timestamp, horizon_days: int) -> np.ndarray:
    """Mask of rows a label may read: ``as_of <= time < as_of + horizon``."""
    t = to_us(times)
    end = as_of + pd.Timedelta(days=horizon_days)
    return (t >= to_us(as_of)) & (t < to_us(end))
