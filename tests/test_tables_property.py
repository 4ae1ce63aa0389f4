"""Malformed tables thrown at the loader: only the library's own errors, and no row lost."""

from __future__ import annotations

import math

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml import VipmlError, load_tables
from vipml.tables import CONTRACT

MESSY = st.one_of(
    st.none(),
    st.just(float("nan")),
    st.just(math.inf),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from(
        [
            "",
            " ",
            "nan",
            "NULL",
            "00123",
            "17850.0",
            "2024-01-01",
            "2024-13-45",
            "2024-03-01T10:00:00+09:00",
            "2024-03-01T10:00Z",
            "$1,234.50",
            "upsell",
            "cross-sell",
            "returned",
            "Cancelled",
            "treatment",
            "control",
            "C123",
        ]
    ),
    st.text(max_size=6),
    st.booleans(),
)


@st.composite
def table(draw, name):
    spec = CONTRACT[name]
    cols = [c for c in spec.columns if draw(st.booleans()) or c in spec.required]
    if draw(st.integers(0, 9)) == 0 and cols:  # sometimes a required column is missing
        cols.remove(draw(st.sampled_from(cols)))
    cols += draw(st.lists(st.sampled_from(["extra", "note"]), max_size=2, unique=True))
    n = draw(st.integers(0, 12))
    rows = [[draw(MESSY) for _ in cols] for _ in range(n)]
    if rows and draw(st.booleans()):
        rows.append(list(rows[0]))  # an exact duplicate
    return pd.DataFrame(rows, columns=cols, dtype=object)


@st.composite
def data_sets(draw):
    tables = {"orders": draw(table("orders"))}
    for name in ("customers", "order_items", "events", "offers"):
        if draw(st.booleans()):
            tables[name] = draw(table(name))
    return tables


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_sets())
def test_loader_raises_only_its_own_errors_and_never_loses_a_row(tables):
    try:
        clean, report = load_tables(tables)
    except VipmlError:
        return
    for name, frame in tables.items():
        rep = report.tables[name]
        assert rep.rows_in == len(frame)
        assert rep.rows_kept == len(clean.get(name))
        assert rep.rows_kept + rep.rows_quarantined == rep.rows_in


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", None]),
            st.sampled_from([0, 1, 2]),
            st.sampled_from([1.0, 2.5, float("nan")]),
        ),
        max_size=40,
    )
)
def test_duplicate_rows_match_a_plain_whole_row_comparison(rows):
    frame = pd.DataFrame(rows, columns=["order_id", "day", "amount"])
    orders = pd.DataFrame(
        {
            "order_id": frame["order_id"],
            "customer_id": "c1",
            "ordered_at": pd.to_datetime(frame["day"], unit="D", utc=True),
            "amount": frame["amount"],
        }
    )
    clean, report = load_tables({"orders": orders})
    usable = orders.dropna(subset=["order_id", "amount"])
    expected = int(usable.duplicated().sum())
    assert report.tables["orders"].quarantined.get("duplicate_row", 0) == expected
    assert not clean.orders.drop(columns=["is_return", "is_cancelled"]).duplicated().any()
