"""Checks across a loaded data set that explain a surprising result: why every row of a table
was set aside, orders that disagree with themselves, a customers table that covers only part of
the orders."""

from __future__ import annotations

import pandas as pd

from vipml.config import TableSource
from vipml.errors import sample_list
from vipml.io.contract import TableReport


def all_set_aside(
    name: str, rep: TableReport, bad: pd.DataFrame, source: TableSource | None
) -> str:
    """The warning for a table whose every row was set aside: the main reason, three raw
    values of the column it names, and the likely fix."""
    reason, count = max(rep.quarantined.items(), key=lambda kv: kv[1])
    column = next(
        (c for c in sorted(bad.columns, key=len, reverse=True) if reason.endswith("_" + c)),
        None,
    )
    if column is None and reason in ("unknown_customer", "unknown_order"):
        column = "customer_id" if reason == "unknown_customer" else "order_id"
    head = f"every row of '{name}' was set aside ({reason}: {count:,} of {rep.rows_in:,} rows)"
    if column is None or column not in bad:
        return head + ".\nFix: look at the reasons in the quarantine file"
    values = bad.loc[bad["reason"] == reason, column]
    shown = ", ".join(repr(v) for v in values.head(3).tolist())
    head += f"; {column} holds e.g. {shown}"
    key = f"tables.{name}"
    fmts = source.date_formats if source else {}
    if reason.startswith("unparseable_"):
        given = fmts.get(column)
        said = f"date_formats.{column} '{given}'" if given else "no date format"
        fix = (
            f"the date format ({said} in the config): set {key}.date_formats.{column} to the "
            "format these values use (e.g. '%d/%m/%Y %H:%M', '%Y%m%d%H%M%S'), or remove it for "
            "ISO dates"
        )
    elif reason.startswith(("non_numeric_", "missing_")):
        header_like = values.head(20).astype("str").str.fullmatch(r"[^\d]*").mean() > 0.5
        if reason.startswith("missing_"):
            fix = (
                f"a header row the config did not expect, or shifted columns: check "
                f"{key}.header / header_row / names and that {key}.columns.{column} names the "
                "right source column"
            )
        elif header_like:
            fix = (
                f"shifted columns or a header row: {column} holds text, not numbers; check "
                f"{key}.columns.{column}, {key}.sep and {key}.header / names"
            )
        else:
            fix = f"the number format of {column}; check {key}.columns.{column} and {key}.sep"
    elif reason == "unknown_customer":
        fix = (
            "the customers table lists none of these customers: check that both tables use "
            "the same ids (customers.customer_id and orders.customer_id), or leave customers out"
        )
    else:
        fix = "look at the reasons in the quarantine file"
    return f"{head}.\nLikely fix: {fix}"


def conflicting_orders(orders: pd.DataFrame | None, limit: int = 5) -> list[str]:
    """A warning when one order id is kept with different amounts (a re-exported order, an
    edited total): the rows are kept, both count in spend, and the warning names them."""
    if orders is None or not len(orders) or "amount" not in orders:
        return []
    ids = orders["order_id"]
    if _increasing(ids):
        return []  # sorted ids (as most exports have them) are unique: no hashing needed
    repeated = ids.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return []
    part = orders.loc[repeated, ["order_id", "amount"]]
    spread = part.groupby("order_id", sort=True)["amount"].agg(["nunique", "min", "max", "size"])
    odd = spread[spread["nunique"] > 1]
    if odd.empty:
        return []
    rows = int(odd["size"].sum())
    examples = [f"{i} ({r['min']:,.2f} .. {r['max']:,.2f})" for i, r in odd.head(limit).iterrows()]
    return [
        f"orders: {len(odd):,} order ids appear with different amounts ({rows:,} rows, all kept "
        f"and counted): {sample_list(examples, limit)}.\n"
        "Fix: if orders holds one row per order, keep the latest row of each; if it holds one "
        "row per order line, map the file as order_lines (tables.order_lines)"
    ]


def _increasing(ids: pd.Series) -> bool:
    """Whether text ids strictly increase, as text or as numbers without leading zeros
    (shorter first); a cheap proof that they are unique."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(ids.astype("str").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) < 2 or arr.null_count:
        return len(arr) < 2
    left, right = arr.slice(0, len(arr) - 1), arr.slice(1)
    less = pc.less(left, right)
    if pc.all(less).as_py():
        return True
    nl, nr = pc.binary_length(left), pc.binary_length(right)
    natural = pc.or_(pc.less(nl, nr), pc.and_(pc.equal(nl, nr), less))
    return bool(pc.all(natural).as_py())


def partial_customers(report, quarantine: dict[str, pd.DataFrame]) -> list[str]:
    """A warning when a customers table covers only part of the customers who ordered."""
    cust = report.tables.get("customers")
    orders = report.tables.get("orders")
    if cust is None or orders is None or not cust.rows_kept:
        return []
    unknown = orders.quarantined.get("unknown_customer", 0)
    if not unknown:
        return []
    bad = quarantine.get("orders")
    missing_ids = 0
    if bad is not None and "customer_id" in bad:
        from vipml.io.coerce import coerce_id

        ids = coerce_id(bad.loc[bad["reason"] == "unknown_customer", "customer_id"])
        missing_ids = int(ids.nunique())
    kept_ids = orders.customers or 0
    total = kept_ids + missing_ids
    return [
        f"customers lists {cust.customers or cust.rows_kept:,} customers, but {missing_ids:,} of "
        f"the {total:,} customers in orders are not among them: their {unknown:,} orders (of "
        f"{orders.rows_in:,}) were set aside as unknown_customer.\n"
        "Fix: give the full customers table, or leave it out (orders alone are a valid input)"
    ]


def require_usable(report) -> None:
    """Raise when a table given with rows kept none of them, with the values and the fix."""
    from vipml.errors import DataError

    unusable = [n for n, t in report.tables.items() if t.rows_in and not t.rows_kept]
    if not unusable:
        return
    why = [w for w in report.warnings if any(w.startswith(f"every row of '{n}'") for n in unusable)]
    raise DataError(
        f"every row of {', '.join(unusable)} was set aside; the data is not usable.\n"
        + "\n".join(why)
    )
