"""Time is the enemy of leakage: rows at or after ``as_of`` change nothing; rows before do."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vipml import load_tables
from vipml.features import build_features, build_snapshots

from .conftest import AS_OF, raw_tables

LATER = st.integers(0, 400 * 24 * 60).map(lambda m: AS_OF + pd.Timedelta(minutes=m))
CUSTOMER = st.sampled_from(["a", "b", "c", "d", "new1"])


def _stamp(t: pd.Timestamp) -> str:
    return t.isoformat()


@st.composite
def late_change(draw):
    """One change to the raw tables that only touches time at or after AS_OF."""
    kind = draw(
        st.sampled_from(["order", "item", "event", "offer", "response", "customer", "drop"])
    )
    t = draw(LATER)
    cust = draw(CUSTOMER)
    n = draw(st.integers(0, 10_000))
    return kind, t, cust, n


def apply(raw, change):
    kind, t, cust, n = change
    raw = {k: v.copy() for k, v in raw.items()}
    if kind == "order":
        raw["orders"].loc[len(raw["orders"])] = [
            f"late{n}",
            cust,
            _stamp(t),
            float(n % 500 - 100),
            5.0,
            "app",
            "completed",
        ]
    elif kind == "item":  # o7 is dated exactly at the cutoff
        raw["order_items"].loc[len(raw["order_items"])] = [
            "o7",
            f"p{n}",
            3,
            10.0,
            "toys",
            "premium",
        ]
    elif kind == "event":
        raw["events"].loc[len(raw["events"])] = [
            cust,
            _stamp(t),
            "product_view",
            f"s{n}",
            "toys",
            50.0,
            "app",
        ]
    elif kind == "offer":
        raw["offers"].loc[len(raw["offers"])] = [
            f"late{n}",
            cust,
            _stamp(t),
            "bundle",
            "treatment",
            _stamp(t),
            _stamp(t + pd.Timedelta(hours=1)),
        ]
    elif kind == "response":  # an offer sent before the cutoff, answered at or after it
        i = 1 + n % 3  # f1 was opened and accepted before the cutoff: that is history, not late
        raw["offers"].loc[i, "accepted_at"] = _stamp(t)
        opened = raw["offers"].loc[i, "opened_at"]
        if opened is None or pd.Timestamp(opened, tz="UTC") >= AS_OF:
            raw["offers"].loc[i, "opened_at"] = _stamp(t)
    elif kind == "customer":
        raw["customers"].loc[len(raw["customers"])] = [f"late{n}", _stamp(t), "Jeju", 33]
    elif kind == "drop":  # delete or change rows at or after the cutoff
        o = raw["orders"]
        late = pd.to_datetime(o["ordered_at"], utc=True, format="ISO8601") >= AS_OF
        if n % 2:
            raw["orders"] = o[~late].reset_index(drop=True)
        else:
            raw["orders"].loc[late, "amount"] = 12345.0
    return raw


_BASE: list[pd.DataFrame] = []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(late_change(), min_size=1, max_size=4))
def test_rows_at_or_after_as_of_change_nothing(changes):
    if not _BASE:
        _BASE.append(build_features(load_tables(raw_tables())[0], as_of=AS_OF))
    base = _BASE[0]
    raw = raw_tables()
    for change in changes:
        raw = apply(raw, change)
    after = build_features(load_tables(raw)[0], as_of=AS_OF)
    pd.testing.assert_frame_equal(after, base, check_exact=True)


def test_a_row_before_as_of_changes_what_it_should():
    base = build_features(load_tables(raw_tables())[0], as_of=AS_OF)
    raw = raw_tables()
    raw["orders"].loc[len(raw["orders"])] = [
        "x1",
        "c",
        "2024-05-31 23:59",
        70.0,
        0.0,
        "web",
        "completed",
    ]
    after = build_features(load_tables(raw)[0], as_of=AS_OF)
    c0, c1 = base.loc["c"], after.loc["c"]
    assert (c1["orders_all"], c1["orders_30d"], c1["spend_all"]) == (1, 1, 70)
    assert c1["recency_days"] == pytest.approx(1 / 1440)
    assert c1["views_per_order_90d"] == 2 and pd.isna(c0["views_per_order_90d"])
    # the others' purchases are untouched
    cols = [c for c in base.columns if c.startswith(("orders_", "spend_", "recency"))]
    pd.testing.assert_frame_equal(after.loc[["a", "b"], cols], base.loc[["a", "b"], cols])


def test_the_cutoff_instant_is_not_input():
    raw = raw_tables()
    at = build_features(load_tables(raw)[0], as_of=AS_OF)
    just_after = build_features(load_tables(raw)[0], as_of=AS_OF + pd.Timedelta(milliseconds=1))
    assert at.loc["a", "orders_all"] == 3 and just_after.loc["a", "orders_all"] == 4  # o7 at 00:00


def test_snapshots_equal_per_cutoff_builds(tables):
    cutoffs = ["2024-02-05", "2024-04-01", AS_OF, "2024-08-01"]
    snaps = build_snapshots(tables, cutoffs=cutoffs)
    assert snaps.index.names == ["as_of", "customer_id"]
    for cutoff in cutoffs:
        t = pd.Timestamp(cutoff, tz="UTC") if isinstance(cutoff, str) else cutoff
        one = build_features(tables, as_of=t)
        part = snaps.xs(t, level="as_of")
        pd.testing.assert_frame_equal(part, one, check_names=True)


def test_same_input_same_bits(tables):
    a = build_features(tables, as_of=AS_OF)
    b = build_features(load_tables(raw_tables())[0], as_of=AS_OF)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert pd.util.hash_pandas_object(a).equals(pd.util.hash_pandas_object(b))


def test_a_partition_of_customers_gives_the_same_rows_as_the_whole():
    """Per-customer code: a partition's tables (some customers, all their rows) give those
    customers' rows of the full build. Only the VIP bar is a population figure."""
    from vipml.datasets import make_retailer

    retailer = make_retailer(1500, seed=2)
    full_tables = load_tables(retailer.tables())[0]
    as_of = retailer.start + (retailer.end - retailer.start) * 0.6
    full = build_features(full_tables, as_of=as_of)
    ids = set(full.index[::3])
    part_raw = {
        name: frame[frame["customer_id"].isin(ids)] if "customer_id" in frame else frame
        for name, frame in retailer.tables().items()
    }
    kept_orders = set(part_raw["orders"]["order_id"])
    part_raw["order_items"] = part_raw["order_items"][
        part_raw["order_items"]["order_id"].isin(kept_orders)
    ]
    part = build_features(load_tables(part_raw)[0], as_of=as_of)
    population = ["is_vip", "vip_gap", "spend_pct_all"] + [c for c in full if c.startswith("btyd_")]
    expected = full.loc[part.index].drop(columns=population)
    pd.testing.assert_frame_equal(part.drop(columns=population), expected)


def test_later_orders_leave_every_feature_bit_for_bit_the_same():
    """Window sums restart per customer: rows after the cutoff (and other customers' rows)
    cannot reach a feature even through floating-point rounding."""
    import numpy as np

    from vipml.datasets import make_retailer

    raw = make_retailer(4000, seed=3).tables()
    cutoff = pd.Timestamp("2024-06-01", tz="UTC")
    base = build_features(load_tables(raw)[0], as_of=cutoff)
    orders = raw["orders"]
    later = orders[pd.to_datetime(orders["ordered_at"], utc=True) < cutoff].sample(
        2000, random_state=1
    )
    later = later.assign(
        order_id="late-" + later["order_id"].astype(str),
        ordered_at=pd.Timestamp("2024-07-01", tz="UTC"),
        amount=later["amount"] * 3.7,
    )
    changed = build_features(
        load_tables({**raw, "orders": pd.concat([orders, later])})[0], as_of=cutoff
    )
    numeric = base.select_dtypes("number").columns
    differing = [
        c
        for c in numeric
        if not np.array_equal(
            base[c].to_numpy(), changed.loc[base.index, c].to_numpy(), equal_nan=True
        )
    ]
    assert differing == []


def _same_instant_orders(late_factor: float, extra_late: int) -> dict[str, pd.DataFrame]:
    """300 customers with five orders each at one instant before AS_OF (amounts whose sum
    depends on the order they are added in), and rows at or after AS_OF mixed in between."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 300
    cust = np.repeat([f"c{i:03d}" for i in range(n)], 5)
    before = pd.DataFrame(
        {
            "order_id": [f"b{i}" for i in range(len(cust))],
            "customer_id": cust,
            "ordered_at": np.repeat(
                [f"2024-05-{1 + i % 28:02d} 12:00" for i in range(n)], 5
            ).astype(str),
            "amount": np.round(rng.uniform(0.01, 30, len(cust)), 2),
        }
    )
    late = pd.DataFrame(
        {
            "order_id": [f"l{i}" for i in range(len(cust))],
            "customer_id": cust,
            "ordered_at": "2024-06-03 12:00",
            "amount": np.round(rng.uniform(0.01, 30, len(cust)), 2) * late_factor,
        }
    )
    more = pd.DataFrame(
        {
            "order_id": [f"m{i}" for i in range(extra_late)],
            "customer_id": rng.choice(cust, extra_late),
            "ordered_at": "2024-07-01 00:00",
            "amount": 9.99,
        }
    )
    # rows at or after AS_OF go in at random places; the rows before it keep their order
    after = pd.concat([late, more], ignore_index=True)
    place = np.concatenate([np.arange(len(before)) + 0.5, rng.uniform(0, len(before), len(after))])
    orders = pd.concat([before, after], ignore_index=True)
    orders = orders.iloc[np.argsort(place, kind="stable")]
    return {"orders": orders.reset_index(drop=True)}


def test_rows_at_one_instant_sum_the_same_whatever_comes_after():
    """Several rows of one customer at one instant: the features as of T depend on the rows
    before T alone, to the last bit, when rows after T change or are added anywhere."""
    base = build_features(load_tables(_same_instant_orders(1.0, 0))[0], as_of=AS_OF)
    for factor, extra in ((3.0, 2), (1.0, 500), (7.0, 3000)):
        raw = _same_instant_orders(factor, extra)
        after = build_features(load_tables(raw)[0], as_of=AS_OF)
        pd.testing.assert_frame_equal(after, base.loc[after.index], check_exact=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300), st.booleans())
def test_the_timeline_sort_is_stable(values, wide):
    """Equal (customer, millisecond) keys keep their input order, as a stable sort would."""
    import numpy as np

    from vipml.features.engine import _argsort

    key = np.asarray(values, dtype=np.int64) * (10**9 if wide else 1)
    order, ordered = _argsort(key, stable=True)
    np.testing.assert_array_equal(order, np.argsort(key, kind="stable"))
    np.testing.assert_array_equal(ordered, key[order])
