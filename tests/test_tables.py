"""Loading, typing, validation and quarantine of the contract tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vipml import DataError, load_tables
from vipml.config import load_config
from vipml.tables import coerce_id, coerce_number, coerce_timestamp

UTC = "UTC"


def orders(**cols):
    base = {
        "order_id": ["o1", "o2", "o3"],
        "customer_id": ["c1", "c1", "c2"],
        "ordered_at": ["2024-01-01 10:00", "2024-02-01 10:00", "2024-03-01 10:00"],
        "amount": [10.0, 20.0, 30.0],
    }
    base.update(cols)
    return pd.DataFrame(base)


def load(out=None, config=None, **tables):
    return load_tables(tables, config=config, out=out)


# ---------------------------------------------------------------- coercion


def test_float_ids_lose_their_decimal_zero_and_text_ids_keep_leading_zeros():
    assert coerce_id(pd.Series([17850.0, np.nan, 12.5])).tolist()[0] == "17850"
    assert pd.isna(coerce_id(pd.Series([17850.0, np.nan]))[1])
    assert coerce_id(pd.Series([17850.0, 12.5]))[1] == "12.5"
    assert coerce_id(pd.Series(["00123", " 0042 ", "17850.0", "", "nan"])).tolist()[:3] == [
        "00123",
        "0042",
        "17850",
    ]
    assert coerce_id(pd.Series(["00123", "", "nan"])).isna().tolist() == [False, True, True]
    assert coerce_id(pd.Series([1, 2], dtype="int64")).tolist() == ["1", "2"]
    assert coerce_id(pd.Series([1, None], dtype="Int64")).isna().tolist() == [False, True]


def test_money_is_float_and_readable_text_is_read():
    s = coerce_number(pd.Series(["1,234.50", "$12", " 7 ", "abc", "", None, "-3.5", "inf"]))
    assert s.dtype == "float64"
    np.testing.assert_array_equal(s.to_numpy()[:3], [1234.5, 12.0, 7.0])
    assert s.isna().tolist() == [False, False, False, True, True, True, False, True]
    assert s[6] == -3.5


def test_naive_timestamps_take_the_config_zone_and_offsets_are_converted():
    s = pd.Series(["2024-01-01 09:00", "2024-01-01T09:00+09:00", "2024-01-01T00:00Z", "garbage"])
    got = coerce_timestamp(s, timezone="Asia/Seoul")
    assert str(got.dtype) == "datetime64[us, UTC]"
    assert got[0] == pd.Timestamp("2024-01-01 00:00", tz=UTC)  # 09:00 in Seoul
    assert got[1] == pd.Timestamp("2024-01-01 00:00", tz=UTC)
    assert got[2] == pd.Timestamp("2024-01-01 00:00", tz=UTC)
    assert pd.isna(got[3])
    assert coerce_timestamp(s[:1])[0] == pd.Timestamp("2024-01-01 09:00", tz=UTC)


def test_datetime_dtypes_and_formats():
    aware = pd.Series(pd.to_datetime(["2024-06-01 12:00"]).tz_localize("America/New_York"))
    assert coerce_timestamp(aware)[0] == pd.Timestamp("2024-06-01 16:00", tz=UTC)
    naive = pd.Series(pd.to_datetime(["2024-06-01 12:00"]))
    assert coerce_timestamp(naive, timezone="Europe/London")[0] == pd.Timestamp(
        "2024-06-01 11:00", tz=UTC
    )
    ymd = pd.Series([19970101, 19970118])
    assert coerce_timestamp(ymd, fmt="%Y%m%d")[1] == pd.Timestamp("1997-01-18", tz=UTC)
    with pytest.raises(DataError, match="date_formats"):
        coerce_timestamp(ymd.rename("ordered_at"))
    dmy = pd.Series(["13/01/2024 08:26", "14/01/2024 09:00"])
    assert coerce_timestamp(dmy, fmt="%d/%m/%Y %H:%M")[0] == pd.Timestamp(
        "2024-01-13 08:26", tz=UTC
    )


def test_loaded_tables_have_contract_dtypes():
    t, _ = load(orders=orders(customer_id=[17850.0, 17850.0, 42.0]))
    o = t.orders
    assert list(o.columns[:4]) == ["order_id", "customer_id", "ordered_at", "amount"]
    assert o["customer_id"].tolist() == ["17850", "17850", "42"]
    assert str(o["ordered_at"].dtype) == "datetime64[us, UTC]"
    assert o["amount"].dtype == "float64"
    assert o["is_return"].dtype == bool and o["is_cancelled"].dtype == bool


# ---------------------------------------------------------------- quarantine reasons


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("customer_id", None, "missing_customer_id"),
        ("customer_id", "  ", "missing_customer_id"),
        ("order_id", None, "missing_order_id"),
        ("ordered_at", None, "missing_ordered_at"),
        ("ordered_at", "not a date", "unparseable_ordered_at"),
        ("amount", "twelve", "non_numeric_amount"),
        ("amount", None, "missing_amount"),
    ],
)
def test_each_bad_order_row_is_quarantined_with_its_reason(tmp_path, column, value, reason):
    frame = orders().astype(object)
    frame.loc[1, column] = value
    t, rep = load(out=tmp_path, orders=frame)
    assert len(t.orders) == 2
    assert rep.tables["orders"].quarantined == {reason: 1}
    q = pd.read_parquet(tmp_path / "quarantine" / "orders.parquet")
    assert q["reason"].tolist() == [reason]
    assert q["row"].tolist() == [1]
    assert q["order_id"].isna().all() if column == "order_id" else q["order_id"].tolist() == ["o2"]


def test_exact_duplicates_after_typing_keep_the_first(tmp_path):
    frame = orders(customer_id=["17850", "17850", "17850"]).astype(object)
    frame.loc[1] = ["o1", 17850.0, "2024-01-01 10:00", "10"]  # the same row, typed differently
    t, rep = load(out=tmp_path, orders=frame)
    assert rep.tables["orders"].quarantined == {"duplicate_row": 1}
    assert t.orders["order_id"].tolist() == ["o1", "o3"]


def test_orders_of_customers_absent_from_a_given_customers_table(tmp_path):
    customers = pd.DataFrame({"customer_id": ["c1", "c1", "c3"], "region": ["a", "b", "c"]})
    events = pd.DataFrame(
        {
            "customer_id": ["c2", "c3"],
            "occurred_at": ["2024-01-01"] * 2,
            "event_type": ["View", "view"],
        }
    )
    t, rep = load(out=tmp_path, orders=orders(), customers=customers, events=events)
    assert rep.tables["customers"].quarantined == {"duplicate_customer_id": 1}
    assert rep.tables["orders"].quarantined == {"unknown_customer": 1}
    assert rep.tables["events"].quarantined == {"unknown_customer": 1}
    assert t.events["event_type"].tolist() == ["view"]
    for name in ("customers", "orders", "events"):
        assert (tmp_path / "quarantine" / f"{name}.parquet").is_file()


def test_an_empty_customers_table_does_not_reject_every_order():
    empty = pd.DataFrame({"customer_id": pd.Series([], dtype="str")})
    t, rep = load(orders=orders(), customers=empty)
    assert len(t.orders) == 3
    assert any("empty" in n for n in rep.tables["customers"].notes)


def test_offer_reasons():
    offers = pd.DataFrame(
        {
            "offer_id": ["f1", "f2", "f3", "f4", "f5", "f6"],
            "customer_id": ["c1"] * 6,
            "sent_at": ["2024-01-10"] * 6,
            "offer_type": ["Upsell", "cross-sell", "bundle", "coupon", "upsell", "upsell"],
            "opened_at": [None, None, None, None, "2024-01-09", None],
            "clicked_at": [None] * 6,
            "accepted_at": ["2024-01-11", None, None, None, None, "2024-01-01"],
            "group": ["treatment", "Control", "holdout", None, None, None],
        }
    )
    t, rep = load(orders=orders(), offers=offers)
    assert rep.tables["offers"].quarantined == {
        "unknown_offer_type": 1,
        "opened_before_sent": 1,
        "accepted_before_sent": 1,
    }
    assert t.offers["offer_type"].tolist() == ["upsell", "cross_sell", "bundle"]
    assert t.offers["group"].tolist()[:2] == ["treatment", "control"]
    assert pd.isna(t.offers["group"][2])
    assert rep.tables["offers"].nulled == {"group": 1}


def test_items_of_unknown_orders_and_bad_quantities():
    items = pd.DataFrame(
        {
            "order_id": ["o1", "o1", "o9", "o2"],
            "product_id": ["p1", "p2", "p1", "p3"],
            "quantity": ["1", "x", "1", "2"],
            "unit_price": [5.0, 5.0, 5.0, 7.5],
        }
    )
    t, rep = load(orders=orders(), order_items=items)
    assert rep.tables["order_items"].quarantined == {"non_numeric_quantity": 1, "unknown_order": 1}
    assert t.order_items["product_id"].tolist() == ["p1", "p3"]


def test_bad_optional_values_are_set_missing_and_counted_not_dropped():
    customers = pd.DataFrame({"customer_id": ["c1", "c2"], "signup_at": ["2023-01-01", "soon"]})
    t, rep = load(orders=orders(discount=["1", "x", None]), customers=customers)
    assert len(t.customers) == 2 and pd.isna(t.customers["signup_at"][1])
    assert rep.tables["customers"].nulled == {"signup_at": 1}
    assert rep.tables["orders"].nulled == {"discount": 1}
    assert len(t.orders) == 3


def test_returns_and_cancellations_are_kept_and_flagged():
    frame = orders(amount=[10.0, -10.0, 30.0], status=["Completed", None, "canceled"])
    t, rep = load(orders=frame)
    assert len(t.orders) == 3
    assert t.orders["is_return"].tolist() == [False, True, False]
    assert t.orders["is_cancelled"].tolist() == [False, False, True]
    assert t.orders["status"].tolist()[2] == "cancelled"
    assert (rep.tables["orders"].returns, rep.tables["orders"].cancellations) == (1, 1)


def test_rows_in_equals_kept_plus_quarantined_and_report_counts():
    frame = orders(customer_id=["c1", None, "c2"])
    _, rep = load(orders=frame)
    o = rep.tables["orders"]
    assert (o.rows_in, o.rows_kept, o.rows_quarantined) == (3, 2, 1)
    assert rep.customers == 2
    assert rep.date_range == (
        pd.Timestamp("2024-01-01 10:00", tz=UTC),
        pd.Timestamp("2024-03-01 10:00", tz=UTC),
    )
    frame_rows = rep.to_frame()
    assert (
        frame_rows.query("table == 'orders' and reason == 'missing_customer_id'")["rows"].item()
        == 1
    )


def test_empty_tables_single_orders_and_single_days_are_valid():
    empty = orders().iloc[:0]
    t, rep = load(orders=empty)
    assert len(t.orders) == 0 and rep.tables["orders"].rows_in == 0
    one = orders().iloc[:1]
    t, rep = load(orders=one)
    assert len(t.orders) == 1 and rep.date_range[0] == rep.date_range[1]


# ---------------------------------------------------------------- errors


def test_missing_required_column_names_table_column_found_and_fix():
    bad = orders().rename(columns={"customer_id": "custmer_id"})
    with pytest.raises(DataError) as err:
        load(orders=bad)
    msg = str(err.value)
    assert "table 'orders' has no column 'customer_id'" in msg
    assert "custmer_id" in msg and "tables.orders.columns.customer_id: custmer_id" in msg
    assert isinstance(err.value, ValueError)


def test_missing_orders_table_is_an_error():
    with pytest.raises(DataError, match="table 'orders' is required"):
        load(customers=pd.DataFrame({"customer_id": ["a"]}))


def test_unknown_table_name_suggests_the_closest():
    with pytest.raises(DataError, match="did you mean 'orders'"):
        load_tables({"oders": orders()})


# ---------------------------------------------------------------- files and adapters


def test_folder_of_csv_and_parquet_files(tmp_path):
    orders(customer_id=["007", "007", "08"]).to_csv(tmp_path / "orders.csv", index=False)
    pd.DataFrame({"customer_id": ["007", "08"], "region": ["x", "y"]}).to_parquet(
        tmp_path / "customers.parquet"
    )
    t, rep = load_tables(tmp_path)
    assert set(t.names) == {"orders", "customers"}
    assert t.orders["customer_id"].tolist() == ["007", "007", "08"]
    assert rep.tables["orders"].source.endswith("orders.csv")


def test_whitespace_file_without_header_through_a_mapping(tmp_path):
    (tmp_path / "tx.txt").write_text(
        " 0004 1 19970101  2   29.33\n 0004 1 19970118  2   29.73\n 0021 2 19970101 3 63.34\n"
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "tables:\n  orders:\n    path: tx.txt\n    format: whitespace\n    header: false\n"
        "    names: [cid, sid, day, n, dollars]\n"
        "    columns: {customer_id: cid, ordered_at: day, amount: dollars}\n"
        "    date_formats: {ordered_at: '%Y%m%d'}\n    row_ids: [order_id]\n    keep: [n]\n"
    )
    t, _ = load_tables(tmp_path, config=cfg)
    o = t.orders
    assert o["customer_id"].tolist() == ["0004", "0004", "0021"]
    assert o["order_id"].tolist() == ["1", "2", "3"]
    assert o["ordered_at"][1] == pd.Timestamp("1997-01-18", tz=UTC)
    assert o["n"].tolist() == [2.0, 2.0, 3.0]
    assert "sid" not in o


def test_line_level_export_becomes_orders_and_items_with_cancel_prefix(tmp_path):
    lines = pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536365", "C536379", "536366"],
            "StockCode": ["A", "B", "A", "C"],
            "Quantity": ["6", "2", "-1", "1"],
            "UnitPrice": ["2.55", "3.39", "2.55", "1.00"],
            "CustomerID": ["17850.0", "17850.0", "17850.0", ""],
            "InvoiceDate": [
                "01/12/2010 08:26",
                "01/12/2010 08:26",
                "01/12/2010 09:41",
                "01/12/2010 10:00",
            ],
        }
    )
    lines.to_csv(tmp_path / "retail.csv", index=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "timezone: Europe/London\n"
        "tables:\n  order_lines:\n    path: retail.csv\n"
        "    columns: {order_id: InvoiceNo, product_id: StockCode, quantity: Quantity,\n"
        "              unit_price: UnitPrice, customer_id: CustomerID, ordered_at: InvoiceDate}\n"
        "    date_formats: {ordered_at: '%d/%m/%Y %H:%M'}\n    cancel_prefix: C\n"
    )
    t, rep = load_tables(tmp_path, config=cfg, out=tmp_path / "out")
    o = t.orders.set_index("order_id")
    assert list(o.index) == ["536365", "C536379"]
    assert o.loc["536365", "amount"] == pytest.approx(6 * 2.55 + 2 * 3.39)
    assert o.loc["536365", "customer_id"] == "17850"
    # void (the default): cancelled, counted nowhere, and not also a return
    assert bool(o.loc["C536379", "is_cancelled"]) and not bool(o.loc["C536379", "is_return"])
    assert (rep.tables["orders"].returns, rep.tables["orders"].cancellations) == (0, 1)
    assert rep.tables["orders"].quarantined == {"missing_customer_id": 1}
    # the items of the quarantined order are quarantined too, counted
    assert rep.tables["order_items"].quarantined == {"unknown_order": 1}
    assert len(t.order_items) == 3


def test_amount_from_quantity_times_price_and_value_maps(tmp_path):
    frame = pd.DataFrame(
        {
            "inv": ["1", "2"],
            "cust": ["a", "b"],
            "when": ["2024-01-01", "2024-01-02"],
            "qty": ["2", "3"],
            "price": ["1.5", "2"],
            "chan": ["W", "A"],
        }
    )
    cfg = load_config(
        None,
        tables={
            "orders": {
                "columns": {
                    "order_id": "inv",
                    "customer_id": "cust",
                    "ordered_at": "when",
                    "channel": "chan",
                },
                "amount_from": ["qty", "price"],
                "values": {"channel": {"W": "web", "A": "app"}},
            }
        },
    )
    t, _ = load_tables({"orders": frame}, config=cfg)
    assert t.orders["amount"].tolist() == [3.0, 6.0]
    assert t.orders["channel"].tolist() == ["web", "app"]


def test_mapping_to_a_column_outside_the_contract_is_named():
    cfg = load_config(None, tables={"orders": {"columns": {"custmer_id": "x"}}})
    with pytest.raises(DataError, match="did you mean 'customer_id'"):
        load_tables({"orders": orders()}, config=cfg)


def test_mapping_from_a_source_column_the_file_lacks_is_named():
    cfg = load_config(None, tables={"orders": {"columns": {"customer_id": "CustomerID"}}})
    with pytest.raises(DataError, match="no column 'CustomerID'"):
        load_tables({"orders": orders()}, config=cfg)


def test_quarantine_and_report_are_written_and_stale_files_removed(tmp_path):
    load(out=tmp_path, orders=orders(customer_id=["c1", None, "c2"]))
    assert (tmp_path / "quarantine" / "orders.parquet").is_file()
    report = json.loads((tmp_path / "validation.json").read_text())
    assert report["tables"]["orders"]["quarantined"] == {"missing_customer_id": 1}
    load(out=tmp_path, orders=orders())
    assert not (tmp_path / "quarantine" / "orders.parquet").exists()
    assert not list((tmp_path / "quarantine").glob(".*tmp"))


def test_same_input_same_output():
    frame = orders(customer_id=["c1", None, "c2"])
    a, _ = load(orders=frame)
    b, _ = load(orders=frame.copy())
    pd.testing.assert_frame_equal(a.orders, b.orders)
