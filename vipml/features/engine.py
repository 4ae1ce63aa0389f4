"""The engine under every feature family: rows sorted by customer and time, with prefix sums.

A :class:`Timeline` sorts one table's rows by (customer, time) once. For a cutoff ``T`` it finds,
for every customer at once, the position of the first row at or after ``T`` inside that customer's
block (:meth:`Timeline.pos`). A sum over a window ``[a, b)`` is then a difference of two prefix
sums, a count a difference of two positions, the last row before ``T`` the row before ``pos(T)``.
Preparing costs one sort; each further cutoff costs a few linear passes, so many cutoffs are cheap.

Everything is numpy; no Python loop runs over customers. The same functions run on any subset of
customers (a Spark partition, say) because each customer's rows only touch that customer's block.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from vipml.windows import DAY_US, to_us


class CustomerIndex:
    """The customers of a data set, each with an integer code (its position in sorted order)."""

    def __init__(self, ids: pd.Index) -> None:
        self.ids = pd.Index(ids, name="customer_id").astype("str")

    def __len__(self) -> int:
        return len(self.ids)

    def codes(self, values: pd.Series) -> np.ndarray:
        """Integer code of each value; -1 for ids not in the index."""
        return self.ids.get_indexer(values.astype("str")).astype(np.int64)


class Timeline:
    """Rows of one table sorted by customer, then time, ready for "as of T" questions."""

    def __init__(
        self,
        codes: np.ndarray,
        times_us: np.ndarray,
        n_groups: int,
        columns: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        keep = codes >= 0
        if not keep.all():
            codes, times_us = codes[keep], times_us[keep]
            columns = {k: np.asarray(v)[keep] for k, v in (columns or {}).items()}
        order = np.lexsort((times_us, codes))
        self.codes = codes[order]
        self.times = times_us[order]
        self.n_groups = n_groups
        bounds = np.searchsorted(self.codes, np.arange(n_groups + 1))
        self.start = bounds[:-1]
        self.end = bounds[1:]
        self.columns = {k: np.asarray(v)[order] for k, v in (columns or {}).items()}
        self._prefix: dict[str, np.ndarray] = {}
        self._pos: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.times)

    def pos(self, t: pd.Timestamp | int) -> np.ndarray:
        """Per group: index of its first row with time >= t (its block end when there is none)."""
        key = to_us(t) if isinstance(t, pd.Timestamp) else int(t)
        found = self._pos.get(key)
        if found is None:
            below = np.empty(len(self.times) + 1, dtype=np.int64)
            below[0] = 0
            np.cumsum(self.times < key, out=below[1:])
            found = self.start + (below[self.end] - below[self.start])
            if len(self._pos) > 64:
                self._pos.clear()
            self._pos[key] = found
        return found

    def prefix(self, name: str) -> np.ndarray:
        """Prefix sums of a column (length n + 1, starting at 0)."""
        found = self._prefix.get(name)
        if found is None:
            values = self.columns[name]
            found = np.zeros(len(values) + 1, dtype=np.float64)
            np.cumsum(values, out=found[1:], dtype=np.float64)
            self._prefix[name] = found
        return found

    def sum(self, name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per group: sum of a column over rows ``lo <= i < hi``."""
        p = self.prefix(name)
        return p[hi] - p[lo]

    def window(self, as_of: pd.Timestamp, days: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Per group: the row range ``[lo, hi)`` of ``[as_of - days, as_of)`` (all history if None)."""
        hi = self.pos(as_of)
        lo = self.start if days is None else self.pos(to_us(as_of) - days * DAY_US)
        return lo, hi

    def last(self, values: np.ndarray, hi: np.ndarray, lo: np.ndarray | None = None) -> np.ndarray:
        """Per group: ``values`` at the last row before ``hi`` (NaN / None when the range is empty)."""
        lo = self.start if lo is None else lo
        has = hi > lo
        idx = np.where(has, hi - 1, 0)
        if len(values) == 0:
            return np.full(self.n_groups, np.nan)
        picked = values[idx]
        if picked.dtype.kind in "fiub":
            return np.where(has, picked.astype(np.float64), np.nan)
        return np.where(has, picked, None)

    def first(self, values: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per group: ``values`` at its first row, where that row is before ``hi`` (else NaN)."""
        has = hi > self.start
        if len(values) == 0:
            return np.full(self.n_groups, np.nan)
        picked = values[np.where(has, self.start, 0)]
        return np.where(has, picked.astype(np.float64), np.nan)

    def running_max(self, name: str) -> np.ndarray:
        """Per row: the maximum of a column over its group's rows so far."""
        key = f"__max__{name}"
        found = self._prefix.get(key)
        if found is None:
            found = (
                pd.Series(self.columns[name]).groupby(self.codes, sort=False).cummax().to_numpy()
            )
            self._prefix[key] = found
        return found

    def gaps_days(self) -> np.ndarray:
        """Per row: days since the group's previous row (0 for a group's first row)."""
        gaps = np.zeros(len(self.times), dtype=np.float64)
        if len(self.times) > 1:
            gaps[1:] = np.diff(self.times) / DAY_US
            gaps[self.start[self.start < self.end]] = 0.0
        return gaps


class PairTimeline:
    """Rows keyed by (customer, value) pairs, e.g. (customer, category), for breadth, entropy and
    the top value as of T, without one column per value."""

    def __init__(
        self,
        customer_codes: np.ndarray,
        values: pd.Series,
        times_us: np.ndarray,
        n_customers: int,
        weights: np.ndarray | None = None,
    ) -> None:
        ok = (customer_codes >= 0) & values.notna().to_numpy()
        value_codes, self.vocabulary = pd.factorize(values[ok].astype("str"), sort=True)
        cust = customer_codes[ok]
        n_values = max(len(self.vocabulary), 1)
        pair = cust * n_values + value_codes
        pair_ids, pair_codes = np.unique(pair, return_inverse=True)
        self.pair_customer = pair_ids // n_values
        self.pair_value = pair_ids % n_values
        cols = {"w": np.ones(int(ok.sum())) if weights is None else np.asarray(weights)[ok]}
        self.timeline = Timeline(pair_codes.astype(np.int64), times_us[ok], len(pair_ids), cols)
        self.n_customers = n_customers

    def counts(self, as_of: pd.Timestamp, days: int | None = None) -> np.ndarray:
        """Per pair: weight of its rows in the window."""
        lo, hi = self.timeline.window(as_of, days)
        return self.timeline.sum("w", lo, hi)

    def summary(self, as_of: pd.Timestamp, days: int | None = None) -> dict[str, np.ndarray]:
        """Per customer: distinct values, entropy (nats), top value and its share of the weight."""
        c = self.counts(as_of, days)
        n = self.n_customers
        present = c > 0
        total = np.bincount(self.pair_customer, weights=c, minlength=n)
        distinct = np.bincount(self.pair_customer, weights=present.astype(float), minlength=n)
        clog = np.where(present, c * np.log(np.where(present, c, 1.0)), 0.0)
        sum_clog = np.bincount(self.pair_customer, weights=clog, minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy = np.where(
                total > 0,
                np.log(np.where(total > 0, total, 1.0))
                - sum_clog / np.where(total > 0, total, 1.0),
                np.nan,
            )
        entropy = np.where(np.abs(entropy) < 1e-12, 0.0, entropy)
        # top value: highest weight, ties to the alphabetically first value
        order = np.lexsort((self.pair_value, -c, self.pair_customer))
        cust_sorted = self.pair_customer[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = cust_sorted[1:] != cust_sorted[:-1]
        top_rows = order[first]
        top_value = np.full(n, None, dtype=object)
        top_weight = np.zeros(n)
        winners = c[top_rows] > 0
        vocab = np.asarray(self.vocabulary, dtype=object)
        top_value[self.pair_customer[top_rows[winners]]] = vocab[self.pair_value[top_rows[winners]]]
        top_weight[self.pair_customer[top_rows[winners]]] = c[top_rows[winners]]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(total > 0, top_weight / np.where(total > 0, total, 1.0), np.nan)
        return {
            "distinct": distinct,
            "entropy": entropy,
            "top": top_value,
            "top_share": share,
            "total": total,
        }
