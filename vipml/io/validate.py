"""Validation of one table: coerce, check, and set bad rows aside with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vipml.errors import DataError
from vipml.io.coerce import (
    _arrow,
    _is_missing_text,
    _is_text,
    _numbers_if_all_numeric,
    clean_text,
    coerce_id,
    coerce_number,
    coerce_timestamp,
)
from vipml.io.contract import (
    _LOWER,
    _OFFER_TYPE,
    _STATUS,
    GROUPS,
    OFFER_TYPES,
    TS_DTYPE,
    TableReport,
    TableSpec,
    _require,
)
from vipml.windows import out_of_range

MAX_NUMBER = 1e15
"""Largest magnitude of an amount, price, quantity or cost: sums of up to 10**290 such values
stay finite, so no window sum becomes inf or, as a difference of two infs, 0."""


def _quarantine_frame(bad_rows: pd.DataFrame, labels: np.ndarray, rows: np.ndarray) -> pd.DataFrame:
    """Set-aside rows as text, led by ``reason`` and ``row``; input columns of those names are
    kept as ``reason_input`` / ``row_input`` (with more ``_input`` until the name is free)."""
    columns: dict[str, pd.Series] = {}
    taken = {"reason", "row", *map(str, bad_rows.columns)}
    for c in bad_rows.columns:
        name = str(c)
        if name in ("reason", "row"):
            while name in taken:
                name += "_input"
            taken.add(name)
        columns[name] = bad_rows[c].astype("str")
    out = pd.DataFrame({"reason": labels, "row": rows}, index=bad_rows.index)
    return pd.concat([out, pd.DataFrame(columns, index=bad_rows.index)], axis=1)


class _Quarantine:
    """Reason codes per row; the first reason a row gets is the one it keeps."""

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.int16)
        self.reasons: list[str] = []
        self.found: dict[str, int] = {}

    def add(self, reason: str, bad: np.ndarray | pd.Series) -> None:
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        bad = bad & (self.codes == 0)
        n = int(bad.sum())
        if n:
            if reason not in self.reasons:
                self.reasons.append(reason)
            self.codes[bad] = self.reasons.index(reason) + 1
            self.found[reason] = self.found.get(reason, 0) + n

    @property
    def keep(self) -> np.ndarray:
        return self.codes == 0

    def counts(self) -> dict[str, int]:
        return dict(self.found)

    def labels(self) -> np.ndarray:
        names = np.array(["", *self.reasons], dtype=object)
        return names[self.codes[~self.keep]]


def _validate(
    raw: pd.DataFrame,
    spec: TableSpec,
    *,
    timezone: str,
    date_formats: Mapping[str, str],
    known_customers: pd.Series | None,
    known_orders: pd.Series | None,
    cancel_prefix: str | None,
    prefix_means: str = "void",
) -> tuple[pd.DataFrame, pd.DataFrame, TableReport]:
    table = spec.name
    _require(raw, table, spec.required)
    report = TableReport(table, rows_in=len(raw))
    raw = raw.reset_index(drop=True)
    q = _Quarantine(len(raw))
    out: dict[str, pd.Series] = {}

    def one(col: str) -> tuple[pd.Series, list[tuple[str, Any]], int]:
        """Coerce one column: its values, its quarantine reasons, its count of values set missing."""
        s = raw[col]
        reasons: list[tuple[str, Any]] = []
        nulled = 0
        if col in spec.ids:
            s = coerce_id(s)
            if col in spec.required:
                reasons.append((f"missing_{col}", s.isna().to_numpy()))
        elif col in spec.times or col in spec.numbers:
            absent = s.isna() if not _is_text(s) else _is_missing_text(s.astype("str"))
            if col in spec.times:
                try:
                    s = coerce_timestamp(s, timezone=timezone, fmt=date_formats.get(col))
                except DataError as exc:
                    raise DataError(f"table '{table}': {exc}") from None
                what = "unparseable"
            else:
                s = coerce_number(s)
                what = "non_numeric"
            bad = s.isna().to_numpy() & ~np.asarray(absent, dtype=bool)
            if col in spec.required:
                reasons += [(f"missing_{col}", absent), (f"{what}_{col}", bad)]
            else:
                nulled = int(bad.sum())
            # dates past the supported range, and amounts so large that sums of them would
            # overflow to inf (then inf - inf = 0 in a window), are set aside, never used
            far = out_of_range(s) if col in spec.times else (s.abs() > MAX_NUMBER).to_numpy()
            reasons.append((f"out_of_range_{col}", far))
        elif col in spec.texts:
            mapping = {"status": _STATUS, "offer_type": _OFFER_TYPE}.get(col)
            s = clean_text(s, lower=col in _LOWER, mapping=mapping)
            if col in spec.required:
                reasons.append((f"missing_{col}", s.isna().to_numpy()))
        elif _is_text(s):
            s = _numbers_if_all_numeric(s)
        return s, reasons, nulled

    # columns are independent: two threads (Arrow and numpy release the GIL); reasons are then
    # applied in column order, so a row's first reason does not depend on thread timing
    # the duplicate check's sort runs beside the text columns' coercion
    cols = list(raw.columns)
    typed = [c for c in cols if c in spec.times or c in spec.numbers]
    results = {c: one(c) for c in typed}
    key = _duplicate_key({c: results[c][0] for c in typed}, spec)
    with ThreadPoolExecutor(max_workers=2) as pool:
        repeated = pool.submit(_repeated, key) if key is not None else None
        rest = [c for c in cols if c not in results]
        results.update(zip(rest, pool.map(one, rest), strict=True))
        candidates = repeated.result() if repeated is not None else None
    done = [results[c] for c in cols]
    for col, (s, reasons, nulled) in zip(cols, done, strict=True):
        for reason, mask in reasons:
            q.add(reason, mask)
        if nulled:
            report.nulled[str(col)] = nulled
        out[str(col)] = s
    frame = pd.DataFrame(out, copy=False)

    # values with a fixed vocabulary
    if table == "offers":
        kind = frame["offer_type"]
        q.add("unknown_offer_type", ~kind.isin(OFFER_TYPES) & kind.notna())
        if "group" in frame:
            grp = frame["group"].str.lower()
            odd = grp.notna() & ~grp.isin(GROUPS)
            if odd.any():
                report.nulled["group"] = int(odd.sum())
            frame["group"] = grp.mask(odd)
        for col in ("opened_at", "clicked_at", "accepted_at"):
            if col in frame:
                early = (frame[col] < frame["sent_at"]).fillna(False)
                q.add(f"{col.removesuffix('_at')}_before_sent", early)

    # exact duplicates among rows still kept
    q.add("duplicate_row", _duplicate_rows(frame, q.keep, candidates))
    if table == "customers":
        keep = q.keep
        dup = np.zeros(len(frame), dtype=bool)
        dup[keep] = frame.loc[keep, "customer_id"].duplicated(keep="first").to_numpy()
        q.add("duplicate_customer_id", dup)

    # references to other tables
    if known_customers is not None and "customer_id" in frame and table != "customers":
        q.add(
            "unknown_customer",
            ~_is_in(frame["customer_id"], known_customers)
            & frame["customer_id"].notna().to_numpy(),
        )
    if known_orders is not None and table == "order_items":
        q.add(
            "unknown_order",
            ~_is_in(frame["order_id"], known_orders) & frame["order_id"].notna().to_numpy(),
        )

    keep = q.keep
    clean = frame if keep.all() else _filter_rows(frame, keep)
    if table == "orders":
        status = (
            clean["status"]
            if "status" in clean
            else pd.Series(np.nan, index=clean.index, dtype="str")
        )
        # a row is a return or a cancellation, never both: a cancelled row counts nowhere
        returned = (clean["amount"] < 0) | (status == "returned")
        cancelled = status == "cancelled"
        if cancel_prefix:
            marked = clean["order_id"].str.startswith(cancel_prefix)
            if prefix_means == "return":
                returned = returned | marked
            else:
                cancelled = cancelled | marked
        is_cancelled = cancelled.fillna(False).to_numpy(dtype=bool)
        clean["is_return"] = returned.fillna(False).to_numpy(dtype=bool) & ~is_cancelled
        clean["is_cancelled"] = is_cancelled
        report.returns = int(clean["is_return"].sum())
        report.cancellations = int(clean["is_cancelled"].sum())
    order = [c for c in spec.columns if c in clean] + [c for c in clean if c not in spec.columns]
    clean = clean[order]

    report.rows_kept = len(clean)
    report.quarantined = q.counts()
    if spec.time and spec.time in clean and len(clean):
        report.date_min = clean[spec.time].min()
        report.date_max = clean[spec.time].max()
    if "customer_id" in clean:
        report.ids = clean["customer_id"]  # counted only when someone asks

    bad_rows = _filter_rows(raw, ~keep)
    quarantined = _quarantine_frame(bad_rows, q.labels(), np.flatnonzero(~keep))
    assert report.rows_kept + report.rows_quarantined == report.rows_in, "bug, please report"
    return clean, quarantined.reset_index(drop=True), report


def _filter_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """Rows where ``keep`` is true, column by column on two threads (Arrow and numpy release the GIL)."""
    mask = pa.array(keep)

    def one(col: str) -> Any:
        s = frame[col]
        if s.dtype == "str":
            return pd.array(pa.array(s.array).filter(mask), dtype="str")
        return s.array[keep]

    with ThreadPoolExecutor(max_workers=2) as pool:
        arrays = list(pool.map(one, frame.columns))
    out = dict(zip(frame.columns, arrays, strict=True))
    return pd.DataFrame(
        out, index=pd.RangeIndex(int(keep.sum())), columns=frame.columns, copy=False
    )


def _repeated(key: np.ndarray) -> np.ndarray:
    """Which entries of ``key`` occur more than once (a sort, no hash table: fast for integers)."""
    ordered = np.sort(key)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.zeros(len(key), dtype=bool)
    values = np.unique(ordered[1:][same])
    del ordered, same
    # a cheap filter first: a 64 KiB table of the low 16 bits (it stays in cache), then the
    # exact test on the few rows that pass
    seen = np.zeros(1 << 16, dtype=bool)
    seen[(values & np.uint64(0xFFFF)).astype(np.intp)] = True
    low = (
        key.view(np.uint16)[::4]
        if key.dtype.byteorder in "=<" and np.little_endian
        else (key & 0xFFFF)
    )
    out = np.take(seen, low)
    rows = np.flatnonzero(out)
    pos = np.minimum(np.searchsorted(values, key[rows]), len(values) - 1)
    out[rows] = values[pos] == key[rows]
    return out


def _duplicate_key(columns: Mapping[str, pd.Series], spec: TableSpec) -> np.ndarray | None:
    """One integer per row from the time and number columns: equal rows have equal keys."""
    key: np.ndarray | None = None
    for col in (*spec.times, *spec.numbers):
        s = columns.get(col)
        if s is not None and str(s.dtype) in (TS_DTYPE, "float64"):
            values = s.array.asi8 if col in spec.times else s.to_numpy()
            bits = np.ascontiguousarray(values).view(np.uint64)
            if key is None:
                key = bits.copy()
            else:  # in place: no temporaries of ten million rows
                np.multiply(key, np.uint64(0x9E3779B97F4A7C15), out=key)
                np.bitwise_xor(key, bits, out=key)
    return key


def _duplicate_rows(
    frame: pd.DataFrame, keep: np.ndarray, candidates: np.ndarray | None
) -> np.ndarray:
    """Exact duplicates (after the first) among kept rows.

    Whole-row hashing of millions of rows is slow, so a cheap key (:func:`_duplicate_key`) picks
    the candidate rows first (``candidates``; None means every row), then whole rows are compared.
    """
    dup = np.zeros(len(frame), dtype=bool)
    if not keep.any() or not len(frame.columns):
        return dup
    rows = keep if candidates is None else keep & candidates
    if rows.any():
        dup[rows] = frame[rows].duplicated(keep="first").to_numpy()
    return dup


def _is_in(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """``values.isin(allowed)`` for text, with Arrow's hash set (pandas builds a Python list)."""
    found = pc.is_in(
        _arrow(values.astype("str")),
        value_set=pa.concat_arrays(
            [c.cast(pa.large_string()) for c in _arrow(allowed.astype("str")).chunks]
            or [pa.array([], pa.large_string())]
        ),
    )
    return np.asarray(
        found.to_numpy(zero_copy_only=False)
        if isinstance(found, pa.Array)
        else np.concatenate(
            [c.to_numpy(zero_copy_only=False) for c in found.chunks] or [np.zeros(0, dtype=bool)]
        ),
        dtype=bool,
    )
