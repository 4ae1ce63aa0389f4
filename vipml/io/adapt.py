"""Adapters: map another layout onto the contract by config alone (renames, formats, line exports)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vipml.config import TableSource
from vipml.errors import DataError, closest, sample_list
from vipml.io.coerce import clean_text, coerce_id, coerce_number
from vipml.io.contract import _LOWER, _STATUS, CONTRACT, LINE_COLUMNS, _require
from vipml.io.exports import hash_ids, one_row_per_customer


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
        *source.hash_ids,
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
    used: set[str] = set()
    first_of: set[str] = set()
    for target, spec in source.columns.items():
        names = [spec] if isinstance(spec, str) else list(spec)
        for src in names:
            if src not in frame.columns:
                raise DataError(
                    f"table '{table}': the config maps {target} <- '{src}', but the file has no "
                    f"column '{src}' (found: {sample_list(frame.columns, 12)}).\n"
                    f"Fix: correct tables.{table}.columns.{target}"
                )
        used.update(names)
        if isinstance(spec, str):
            out[target] = frame[spec]
        else:
            out[target] = _first_present(frame, names, source.values.get(target))
            first_of.add(target)
    for target, cols in source.hash_ids.items():
        out[target] = hash_ids(frame, cols, table=table, target=target)
        used.update(cols)
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
        if col in out and col not in first_of:
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
    adapted = pd.DataFrame(out, index=frame.index, copy=False)
    if source.per_customer:
        adapted = one_row_per_customer(adapted, table=table)
    return adapted


def _first_present(
    frame: pd.DataFrame, names: list[str], mapping: dict[str, str] | None
) -> pd.Series:
    """Per row, the first of several source columns with a value (after the value map)."""
    out: pd.Series | None = None
    for src in names:
        s = frame[src].astype("str").str.strip()
        if mapping:
            s = s.replace(mapping)
        s = s.mask(s.isna() | (s == ""))
        out = s if out is None else out.fillna(s)
    assert out is not None
    return out


def split_order_lines(
    lines: pd.DataFrame, *, cancel_prefix: str | None, prefix_means: str = "void"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A line-level export (one row per invoice line) as ``orders`` plus ``order_items``.

    Order totals are summed after line deduplication: a line repeated exactly (as the
    ``order_items`` check sees it) counts once, so the two tables agree. With a per-line
    ``status``, cancelled lines add nothing to their order (an order whose every line is
    cancelled is a cancelled order), an order whose every line is returned is a returned
    order, and the returned lines of an order that kept others become one return row
    ``<order_id>-R`` of minus their value. A line ``amount`` (the line's total as paid) is
    summed where given, else quantity x unit price. ``cancel_prefix`` marks credit notes
    (``prefix_means='return'``) or voided orders (``'void'``).
    """
    _require(
        lines, "order_lines", ("order_id", "customer_id", "ordered_at", "quantity", "unit_price")
    )
    lines = lines.reset_index(drop=True)
    qty = coerce_number(lines["quantity"])
    price = coerce_number(lines["unit_price"])
    value = (qty * price).to_numpy(dtype=np.float64)
    if "amount" in lines:  # a line total as paid (after discounts), where the export has one
        value = coerce_number(lines["amount"]).to_numpy(dtype=np.float64)
    key = coerce_id(lines["order_id"]).fillna("")
    dup = _duplicate_lines(lines, key, qty, price)
    if "status" in lines:
        status = clean_text(lines["status"], lower=True, mapping=_STATUS)
    else:
        status = pd.Series(pd.array([None] * len(lines), dtype="str"), index=lines.index)
    if cancel_prefix:
        marked = key.str.startswith(cancel_prefix).fillna(False).to_numpy(dtype=bool)
        status = status.mask(marked, "returned" if prefix_means == "return" else "cancelled")
    cancelled = (status == "cancelled").fillna(False).to_numpy(dtype=bool) & ~dup
    returned = (status == "returned").fillna(False).to_numpy(dtype=bool) & ~dup
    live = ~dup & ~cancelled
    codes, uniques = pd.factorize(key, sort=False)
    n = len(uniques)

    def total(mask: np.ndarray) -> np.ndarray:
        v = np.where(mask, value, 0.0)
        out = np.bincount(codes, weights=np.nan_to_num(v, nan=0.0), minlength=n)
        nan = np.bincount(codes, weights=(mask & np.isnan(value)).astype(float), minlength=n)
        return np.where(nan > 0, np.nan, out)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=mask.astype(float), minlength=n)

    n_live, n_returned = count(live), count(returned)
    all_cancelled = n_live == 0
    all_returned = (n_returned == n_live) & ~all_cancelled
    amount = np.where(all_cancelled, total(~dup), total(live))
    first = np.unique(codes, return_index=True)[1]
    orders = pd.DataFrame(
        {
            "order_id": lines["order_id"].to_numpy()[first],
            "customer_id": lines["customer_id"].to_numpy()[first],
            "ordered_at": lines["ordered_at"].to_numpy()[first],
            "amount": amount,
        }
    )
    for col in ("channel", "discount"):
        if col in lines:
            orders[col] = lines[col].to_numpy()[first]
    # the order's status: that of its first line still bought, else of its first line
    ranked = pd.Series(np.where(live & ~returned, 0, 1), index=lines.index)
    pick = (
        pd.DataFrame({"c": codes, "r": ranked, "i": np.arange(len(lines))})
        .sort_values(["c", "r", "i"], kind="stable")
        .drop_duplicates("c")["i"]
        .to_numpy()
    )
    order_status = status.to_numpy(dtype=object)[pick]
    order_status = np.where(all_cancelled, "cancelled", order_status)
    order_status = np.where(all_returned, "returned", order_status)
    if "status" in lines or cancel_prefix:
        orders["status"] = pd.array(order_status, dtype="str")
    partial = ~all_returned & ~all_cancelled & (n_returned > 0)
    if partial.any():
        back = orders.loc[partial].copy()
        back["order_id"] = back["order_id"].astype("str") + "-R"
        back["amount"] = -np.abs(total(returned)[partial])
        back["status"] = "returned"
        if "discount" in back:
            back["discount"] = np.nan
        orders = pd.concat([orders, back], ignore_index=True)
    item_cols = [
        c
        for c in ("order_id", "product_id", "quantity", "unit_price", "category", "tier")
        if c in lines
    ]
    return orders, lines[item_cols].reset_index(drop=True)


def _duplicate_lines(
    lines: pd.DataFrame, key: pd.Series, qty: pd.Series, price: pd.Series
) -> np.ndarray:
    """Lines repeated exactly, after typing, as the ``order_items`` check finds them."""
    typed = {"order_id": key, "quantity": qty, "unit_price": price}
    if "product_id" in lines:
        typed["product_id"] = coerce_id(lines["product_id"])
    for col in ("category", "tier"):
        if col in lines:
            typed[col] = clean_text(lines[col], lower=col in _LOWER)
    return pd.DataFrame(typed).duplicated(keep="first").to_numpy(dtype=bool)
