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
import pyarrow as pa
import pyarrow.compute as pc

from vipml.windows import DAY_US, to_us


class CustomerIndex:
    """The customers of a data set, each with an integer code.

    Codes come from one dictionary encoding (Arrow) of every table's ``customer_id`` column, so
    each id column is hashed once; ``ids`` lists the customers by code.
    """

    def __init__(self, columns: Mapping[str, pd.Series]) -> None:
        arrays = [arrow_of(s) for s in columns.values()]
        chunks = [c.cast(pa.large_string()) for a in arrays for c in a.chunks if len(c)]
        self._codes: dict[str, np.ndarray] = {}
        if not chunks:
            self.ids = pd.Index([], dtype="str", name="customer_id")
            for name in columns:
                self._codes[name] = np.zeros(0, dtype=np.int64)
            return
        encoded = pc.dictionary_encode(pa.chunked_array(chunks, type=pa.large_string()))
        vocab = encoded.chunks[-1].dictionary
        flat = np.concatenate(
            [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in encoded.chunks]
        )
        self.ids = pd.Index(pd.array(vocab, dtype="str"), name="customer_id")
        start = 0
        for name, s in columns.items():
            self._codes[name] = flat[start : start + len(s)].astype(np.int64)
            start += len(s)

    def __len__(self) -> int:
        return len(self.ids)

    def of(self, table: str) -> np.ndarray:
        """Codes of a table's ``customer_id`` column, row by row."""
        return self._codes[table]

    def codes(self, values: pd.Series) -> np.ndarray:
        """Integer code of each value; -1 for ids not in the index."""
        return self.ids.get_indexer(values.astype("str")).astype(np.int64)


def arrow_of(s: pd.Series) -> pa.ChunkedArray:
    """The Arrow text data behind a column (no copy when pandas holds Arrow strings)."""
    arr = pa.array(s.array) if s.dtype == "str" else pa.array(s.astype("str").array)
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def _sort_key(codes: np.ndarray, times_us: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """One int64 key per row, customer code in the high bits and milliseconds in the low ones;
    None when the two do not fit in 62 bits (then a two-key sort is used)."""
    if len(codes) == 0:
        return None
    base = (int(times_us.min()) // 1000) * 1000
    rel = (times_us - base) // 1000
    bits_t = max(int(rel.max()).bit_length(), 1)
    bits_c = max(int(codes.max()).bit_length(), 1)
    if bits_t + bits_c > 62:
        return None
    return (codes.astype(np.int64) << bits_t) | rel, base, bits_t


def _argsort(key: np.ndarray, *, stable: bool) -> tuple[np.ndarray, np.ndarray]:
    """The order that sorts ``key``, and the sorted keys. Stable (equal keys keep their input
    order) at the cost of a quicksort when equal keys are few: a quicksort, then only the runs of
    equal keys are put back in input order; a merge sort when they are many."""
    order = np.argsort(key, kind="quicksort")
    ordered = key[order]
    if not stable or len(key) < 2:
        return order, ordered
    tie = ordered[1:] == ordered[:-1]
    ties = int(np.count_nonzero(tie))
    if not ties:
        return order, ordered
    if ties > len(key) // 20:
        order = np.argsort(key, kind="stable")
        return order, key[order]
    at = np.flatnonzero(tie)
    in_run = np.zeros(len(key), dtype=bool)
    in_run[at] = True
    in_run[at + 1] = True
    pos = np.flatnonzero(in_run)  # ascending positions whose keys are non-decreasing
    rows = order[pos]
    order[pos] = rows[np.lexsort((rows, ordered[pos]))]
    return order, ordered


def _is_flag(values: np.ndarray) -> bool:
    """True for a column holding only 0 and 1."""
    return (
        bool(len(values))
        and values.dtype.kind in "biuf"
        and not ((values != 0) & (values != 1)).any()
    )


class Timeline:
    """Rows of one table sorted by customer, then time, ready for "as of T" questions.

    Rows of one customer within the same millisecond keep their input order (a stable sort):
    cutoffs are whole milliseconds (:func:`vipml.windows.as_cutoff`), so "before T" is a prefix
    of each customer's rows, and the order in which those rows are summed depends on them alone,
    never on rows at or after T elsewhere in the table (an unstable sort let such rows change a
    sum's last bits). Value columns are kept in input order and gathered into
    sorted order only when a prefix sum or a sorted copy is asked for.
    """

    def __init__(
        self,
        codes: np.ndarray,
        times_us: np.ndarray,
        n_groups: int,
        columns: Mapping[str, np.ndarray] | None = None,
        *,
        stable: bool = True,
    ) -> None:
        keep = codes >= 0
        if not keep.all():
            codes, times_us = codes[keep], times_us[keep]
            columns = {k: np.asarray(v)[keep] for k, v in (columns or {}).items()}
        packed = _sort_key(codes, times_us)
        if packed is None:
            order = np.lexsort((times_us, codes)) if len(codes) else np.zeros(0, dtype=np.int64)
            self._key = None
        else:
            key, self._base, self._bits = packed
            # ``stable=False`` is kept for callers that never sum (order within a ms is free)
            order, self._key = _argsort(key, stable=stable)
            del key
        self.order = order
        self._set(codes[order], times_us[order], n_groups, dict(columns or {}), order)

    def _set(
        self,
        codes: np.ndarray,
        times: np.ndarray,
        n_groups: int,
        raw: dict[str, np.ndarray],
        order: np.ndarray | None,
    ) -> None:
        self.times = times
        self.n_groups = n_groups
        bounds = np.searchsorted(codes, np.arange(n_groups + 1))
        self.start = bounds[:-1]
        self.end = bounds[1:]
        self._raw = raw
        self._raw_order = order
        self._sorted: dict[str, np.ndarray] = {}
        self._prefix: dict[str, np.ndarray] = {}
        self._pos: dict[int, np.ndarray] = {}
        if not hasattr(self, "_key"):
            self._key = None

    @property
    def codes(self) -> np.ndarray:
        """Group code of each row, in sorted order (rebuilt from the block bounds)."""
        return np.repeat(np.arange(self.n_groups, dtype=np.int64), self.end - self.start)

    @property
    def names(self) -> list[str]:
        """Names of the value columns."""
        return list(dict.fromkeys([*self._raw, *self._sorted]))

    def column(self, name: str, *, keep: bool = True) -> np.ndarray:
        """A value column in sorted order."""
        found = self._sorted.get(name)
        if found is None:
            raw = np.asarray(self._raw[name])
            found = raw if self._raw_order is None else raw[self._raw_order]
            if keep:
                self._sorted[name] = found
        return found

    def add(self, name: str, sorted_values: np.ndarray) -> None:
        """Add a column given in sorted order."""
        self._sorted[name] = sorted_values

    def filter(self, mask: np.ndarray, columns: list[str] | None = None) -> Timeline:
        """The rows where ``mask`` (in this timeline's order) holds; no new sort."""
        out = Timeline.__new__(Timeline)
        out._key = None
        names = self.names if columns is None else columns
        out._set(
            self.codes[mask],
            self.times[mask],
            self.n_groups,
            {k: self.column(k)[mask] for k in names},
            None,
        )
        return out

    def __len__(self) -> int:
        return len(self.times)

    def pos(self, t: pd.Timestamp | int) -> np.ndarray:
        """Per group: index of its first row with time >= t (its block end when there is none)."""
        key = to_us(t) if isinstance(t, pd.Timestamp) else int(t)
        found = self._pos.get(key)
        if found is None and self._key is not None and key % 1000 == 0:
            # binary search per customer in the packed (customer, millisecond) key
            rel = min(max((key - self._base) // 1000, 0), 1 << self._bits)
            probe = (np.arange(self.n_groups, dtype=np.int64) << self._bits) + rel
            found = np.searchsorted(self._key, probe)
        elif found is None:
            below = np.empty(len(self.times) + 1, dtype=np.int64)
            below[0] = 0
            np.cumsum(self.times < key, out=below[1:])
            found = self.start + (below[self.end] - below[self.start])
        if key not in self._pos:
            if len(self._pos) > 64:
                self._pos.clear()
            self._pos[key] = found
        return found

    def prefix(self, name: str) -> np.ndarray:
        """Prefix sums of a column (length n + 1, starting at 0)."""
        found = self._prefix.get(name)
        if found is None:
            values = self.column(name, keep=False)
            self._raw.pop(name, None)  # sums need only the prefix from now on
            # 0/1 columns count rows: int32 prefix sums are exact and half the size
            counts = values.dtype == bool or (len(values) < 2**31 and _is_flag(values))
            found = np.zeros(len(values) + 1, dtype=np.int32 if counts else np.float64)
            if counts:
                np.cumsum(values, out=found[1:], dtype=found.dtype)
            else:
                # float sums restart at each group: a global running total would let rows of
                # other customers, or rows after a cutoff, change a window sum's last bits
                found[1:] = (
                    pd.Series(values, dtype=np.float64, copy=False)
                    .groupby(self.codes, sort=False)
                    .cumsum(skipna=False)
                    .to_numpy()
                )
            self._prefix[name] = found
        return found

    def sum(self, name: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Per group: sum of a column over rows ``lo <= i < hi``."""
        p = self.prefix(name)
        if p.dtype != np.float64:
            return (p[hi] - p[lo]).astype(np.float64, copy=False)
        # per-group prefix: position i > start holds the group's sum of rows [start, i)
        top = np.where(hi > self.start, p[hi], 0.0)
        bottom = np.where(lo > self.start, p[lo], 0.0)
        return top - bottom

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

    def max_before(self, name: str, hi: np.ndarray) -> np.ndarray:
        """Per group: the largest value of a column over its rows before ``hi`` (NaN if none)."""
        values = self.column(name)
        if not len(values):
            return np.full(self.n_groups, np.nan)
        idx = np.arange(len(values))
        grp_hi = np.repeat(hi, self.end - self.start)
        masked = np.where(idx < grp_hi, values, -np.inf)
        # one segment per customer with rows (an empty customer's start would cut the segment
        # before it short, dropping the last row of the last customer with rows)
        full = self.end > self.start
        out = np.full(self.n_groups, np.nan)
        out[full] = np.maximum.reduceat(masked, self.start[full])
        return np.where(hi > self.start, out, np.nan)

    def gaps_days(self) -> np.ndarray:
        """Per row: days since the group's previous row (0 for a group's first row)."""
        gaps = np.zeros(len(self.times), dtype=np.float64)
        if len(self.times) > 1:
            gaps[1:] = np.diff(self.times) / DAY_US
            gaps[self.start[self.start < self.end]] = 0.0
        return gaps


class PairCounts:
    """Weights per (customer, value) pair, e.g. (customer, category), in any window: breadth,
    entropy and the top value as of T, with no column per value and no sort."""

    def __init__(
        self,
        customer_codes: np.ndarray,
        values: pd.Series,
        times_us: np.ndarray,
        n_customers: int,
        weights: np.ndarray | None = None,
    ) -> None:
        values = pd.Series(values).reset_index(drop=True)
        encoded = pc.dictionary_encode(arrow_of(values))
        raw = np.concatenate(
            [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in encoded.chunks]
            or [np.zeros(0, dtype=np.int32)]
        ).astype(np.int64)
        vocab = encoded.chunks[-1].dictionary.to_pylist() if encoded.num_chunks else []
        alphabetical = (
            np.argsort(np.asarray(vocab, dtype=object), kind="stable")
            if vocab
            else np.zeros(0, int)
        )
        rank = np.empty(len(vocab), dtype=np.int64)
        rank[alphabetical] = np.arange(len(vocab))
        ok = (customer_codes >= 0) & (raw >= 0)
        codes = rank[raw[ok]] if len(vocab) else raw[ok]
        self.vocabulary = (
            np.asarray(vocab, dtype=object)[alphabetical] if vocab else np.zeros(0, dtype=object)
        )
        n_values = max(len(self.vocabulary), 1)
        if n_customers * n_values > 50_000_000:  # keep the most frequent values, lump the rest
            keep = max(50_000_000 // max(n_customers, 1) - 1, 1)
            freq = np.bincount(codes, minlength=n_values)
            top = np.sort(np.argsort(-freq, kind="stable")[:keep])
            remap = np.full(n_values, len(top), dtype=np.int64)
            remap[top] = np.arange(len(top))
            codes = remap[codes]
            self.vocabulary = np.append(self.vocabulary[top], "other")
            n_values = len(self.vocabulary)
        self.n_values = n_values
        self.n_customers = n_customers
        self.pair = customer_codes[ok] * n_values + codes
        self.times = times_us[ok]
        self.weights = (
            np.ones(len(self.pair))
            if weights is None
            else np.asarray(weights, dtype=np.float64)[ok]
        )

    def counts(self, as_of: pd.Timestamp, days: int | None = None) -> np.ndarray:
        """Weights per customer (rows) and value (columns) over ``[as_of - days, as_of)``."""
        end = to_us(as_of)
        mask = self.times < end
        if days is not None:
            mask &= self.times >= end - days * DAY_US
        flat = np.bincount(
            self.pair[mask],
            weights=None if self.weights is None else self.weights[mask],
            minlength=self.n_customers * self.n_values,
        ).astype(np.float64, copy=False)
        return flat.reshape(self.n_customers, self.n_values)

    def summary(self, as_of: pd.Timestamp, days: int | None = None) -> dict[str, np.ndarray]:
        """Per customer: distinct values, entropy (nats), top value (ties: alphabetical) and its share."""
        m = self.counts(as_of, days)
        total = m.sum(axis=1)
        distinct = (m > 0).sum(axis=1).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(total[:, None] > 0, m / np.where(total > 0, total, 1.0)[:, None], 0.0)
            plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
        entropy = np.where(total > 0, -plogp.sum(axis=1), np.nan)
        entropy = np.where(np.abs(entropy) < 1e-12, 0.0, entropy)
        if self.n_values and len(self.vocabulary):
            top = m.argmax(axis=1)
            top_weight = m[np.arange(len(m)), top]
            top_value = np.where(total > 0, self.vocabulary[top], None)
        else:
            top_weight = np.zeros(len(m))
            top_value = np.full(len(m), None, dtype=object)
        share = np.where(total > 0, top_weight / np.where(total > 0, total, 1.0), np.nan)
        return {
            "distinct": distinct,
            "entropy": entropy,
            "top": top_value,
            "top_share": share,
            "total": total,
        }
