"""Adapters: map another layout onto the contract by config alone (renames, formats, line exports)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vipml.config import TableSource
from vipml.errors import DataError, closest, sample_list
from vipml.io.coerce import coerce_id, coerce_number
from vipml.io.contract import CONTRACT, LINE_COLUMNS, _require


def adapt(frame: pd.DataFrame, source: TableSource | None, *, table: str) -> pd.DataFrame:
    """Map a source layout onto the contract's column names, as the adapter says."""
    if source is None:
        return frame
    contract = LINE_COLUMNS if table == "order_lines" else CONTRACT[table].columns
    for target in [
        *source.columns,
        *source.date_formats,
        *source.values,
        *source.row_ids,
        *source.flag_times,
    ]:
        if table != "customers" and target not in contract:
            near = closest(target, contract)
            hint = f" (did you mean '{near}'?)" if near else ""
            raise DataError(
                f"table '{table}': the config maps '{target}', which is not a column of the "
                f"contract{hint}.\nFix: use one of: {', '.join(contract)}"
            )
    n = len(frame)
    out: dict[str, pd.Series] = {}
    for target, src in source.columns.items():
        if src not in frame.columns:
            raise DataError(
                f"table '{table}': the config maps {target} <- '{src}', but the file has no column "
                f"'{src}' (found: {sample_list(frame.columns, 12)}).\n"
                f"Fix: correct tables.{table}.columns.{target}"
            )
        out[target] = frame[src]
    used = set(source.columns.values())
    if source.amount_from is not None:
        qty, price = source.amount_from
        for col in (qty, price):
            if col not in frame.columns:
                raise DataError(
                    f"table '{table}': amount_from names '{col}', which the file lacks "
                    f"(found: {sample_list(frame.columns, 12)})"
                )
        out["amount"] = coerce_number(frame[qty]) * coerce_number(frame[price])
        used.update(source.amount_from)
    for col in source.row_ids:
        out[col] = pd.Series(np.arange(1, n + 1).astype(str), index=frame.index, dtype="str")
    for col, value in source.constants.items():
        out[col] = pd.Series([value] * n, index=frame.index, dtype=None if n else "str")
    for col, mapping in source.values.items():
        if col in out:
            s = out[col].astype("str")
            out[col] = s.replace(mapping)
    keep = source.keep
    rest = [c for c in frame.columns if c not in used and c not in out]
    if keep is not None:
        missing = [c for c in keep if c not in frame.columns]
        if missing:
            raise DataError(
                f"table '{table}': keep names columns the file lacks: {sample_list(missing)} "
                f"(found: {sample_list(frame.columns, 12)})"
            )
        rest = [c for c in keep if c not in out]
    for col in rest:
        out[col] = frame[col]
    if source.flag_times:
        own = CONTRACT["offers" if table == "offers" else table].time if table in CONTRACT else None
        if own is None or own not in out:
            raise DataError(
                f"table '{table}': flag_times needs the table's own time column in the mapping"
            )
        for col, flag in source.flag_times.items():
            if flag not in frame.columns:
                raise DataError(
                    f"table '{table}': flag_times.{col} names '{flag}', which the file lacks"
                )
            on = coerce_number(frame[flag]).fillna(0).to_numpy() > 0
            out[col] = out[own].where(on)
    return pd.DataFrame(out, index=frame.index, copy=False)


def split_order_lines(
    lines: pd.DataFrame, *, cancel_prefix: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A line-level export (one row per invoice line) as ``orders`` plus ``order_items``."""
    _require(
        lines, "order_lines", ("order_id", "customer_id", "ordered_at", "quantity", "unit_price")
    )
    lines = lines.copy()
    qty = coerce_number(lines["quantity"])
    price = coerce_number(lines["unit_price"])
    lines["_value"] = qty * price
    lines["_key"] = coerce_id(lines["order_id"]).fillna("")
    grouped = lines.groupby("_key", sort=False, dropna=False)
    orders = grouped.agg(
        order_id=("order_id", "first"),
        customer_id=("customer_id", "first"),
        ordered_at=("ordered_at", "first"),
        amount=("_value", lambda v: v.sum(min_count=len(v))),
    ).reset_index(drop=True)
    for col in ("channel", "status", "discount"):
        if col in lines:
            orders[col] = grouped[col].first().to_numpy()
    if cancel_prefix:
        orders["status"] = np.where(
            coerce_id(orders["order_id"]).str.startswith(cancel_prefix).fillna(False),
            "cancelled",
            orders.get("status"),
        )
    item_cols = [
        c
        for c in ("order_id", "product_id", "quantity", "unit_price", "category", "tier")
        if c in lines
    ]
    return orders, lines[item_cols].reset_index(drop=True)
