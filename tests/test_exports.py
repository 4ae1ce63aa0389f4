"""Korean commerce exports: each shipped config reads the generator's export of a retailer back
to the same tables, and a small hand-written file of the documented columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from vipml import DataError, load_tables
from vipml.datasets import EXPORTS, coupang_buyer, make_retailer, member_group_no, write_export

pytest.importorskip(
    "openpyxl", reason="Excel exports need the excel extra: pip install 'vipml[excel]'"
)
pytest.importorskip(
    "msoffcrypto", reason="encrypted workbooks need msoffcrypto-tool (vipml[excel])"
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "exports"
CONFIG = {kind: ROOT / "configs" / f"{kind.replace('_', '-')}.yaml" for kind in EXPORTS}
PASSWORD_ENV = "SMARTSTORE_XLSX_PASSWORD"
ORDER_COLS = [
    "order_id",
    "customer_id",
    "ordered_at",
    "amount",
    "status",
    "is_return",
    "is_cancelled",
]
ITEM_COLS = ["order_id", "product_id", "quantity", "unit_price"]


@pytest.fixture(scope="module")
def shop():
    return make_retailer(120, seed=5, events=False, offers=False)


@pytest.fixture(scope="module")
def truth(shop):
    tables, _ = load_tables({"orders": shop.orders, "order_items": shop.order_items})
    return tables


def _sorted(frame, cols, by):
    return frame[cols].sort_values(by).reset_index(drop=True)


@pytest.mark.parametrize("kind", EXPORTS)
def test_each_export_reads_back_to_the_same_tables(kind, shop, truth, tmp_path, monkeypatch):
    password = "pw-한글-1" if kind == "smartstore" else None
    monkeypatch.setenv(PASSWORD_ENV, "pw-한글-1")
    write_export(shop, kind, tmp_path, password=password)
    tables, rep = load_tables(tmp_path, config=CONFIG[kind])
    assert rep.rows_quarantined == 0, rep.summary()
    want_orders, want_items = truth.orders, truth.order_items
    if kind == "coupang":  # a delivery list holds the orders to ship, without a buyer id
        keep = want_orders["status"] == "completed"
        want_orders = want_orders[keep]
        want_items = want_items[want_items["order_id"].isin(want_orders["order_id"])]
        ids = {}
        for cid in want_orders["customer_id"].unique():
            name, phone = coupang_buyer(cid)
            ids[cid] = _hash(name, phone)
        want_orders = want_orders.assign(customer_id=want_orders["customer_id"].map(ids))
    cols = [c for c in ORDER_COLS if c != "status" or kind != "coupang"]
    got = _sorted(tables.orders, cols, "order_id")
    want = _sorted(want_orders, cols, "order_id")
    pd.testing.assert_frame_equal(
        got, want, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-6
    )
    pd.testing.assert_frame_equal(
        _sorted(tables.order_items, ITEM_COLS, ["order_id", "product_id"]),
        _sorted(want_items, ITEM_COLS, ["order_id", "product_id"]),
        check_dtype=False,
    )
    if kind == "cafe24":  # buyer.member_group_no becomes a customer attribute
        groups = pd.Series(
            member_group_no(shop.customers), index=shop.customers["customer_id"]
        ).astype(float)
        cust = tables.customers.set_index("customer_id")["member_group_no"]
        assert set(cust.index) == set(want_orders["customer_id"])
        pd.testing.assert_series_equal(
            cust.sort_index(), groups[cust.index].sort_index(), check_names=False
        )


def _hash(*parts):
    from vipml.io.exports import hash_ids

    frame = pd.DataFrame({f"c{i}": [p] for i, p in enumerate(parts)})
    return hash_ids(frame, list(frame.columns), table="t", target="customer_id").iloc[0]


def _fixture(kind, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "vipml-fixture")
    return load_tables(FIXTURES, config=CONFIG[kind])


def _by_id(tables):
    return tables.orders.set_index("order_id")


def test_cafe24_api_json_fixture(monkeypatch):
    tables, rep = _fixture("cafe24", monkeypatch)
    o = _by_id(tables)
    assert o.loc["20240105-0000011", "amount"] == 57000.0
    assert o.loc["20240105-0000011", "ordered_at"] == pd.Timestamp("2024-01-05 00:30", tz="UTC")
    # partly returned: the order keeps what was bought, a return row gives the muffler back
    assert o.loc["20240106-0000002", "amount"] == 80000.0
    assert o.loc["20240106-0000002-R", "amount"] == -20000.0
    assert bool(o.loc["20240106-0000002-R", "is_return"])
    assert bool(o.loc["20240107-0000003", "is_cancelled"])
    # the guest order has no member id: set aside, counted
    assert rep.tables["orders"].quarantined == {"missing_customer_id": 1}
    cust = tables.customers.set_index("customer_id")
    assert cust.loc["kim01", "member_group_no"] == 3.0  # the group of the last order
    assert cust.loc["lee77", "member_group_no"] == 1.0


def test_cafe24_csv_fixture_in_cp949(monkeypatch):
    tables, _ = _fixture("cafe24_csv", monkeypatch)
    o = _by_id(tables)
    assert o.loc["20240105-0000011", "amount"] == 57000.0
    assert o.loc["20240106-0000002-R", "amount"] == -20000.0
    assert o.loc["20240107-0000003", "status"] == "cancelled"
    assert o.loc["20240106-0000002", "ordered_at"] == pd.Timestamp("2024-01-06 14:10:05", tz="UTC")


def test_smartstore_fixture_header_on_row_two_and_password_from_the_environment(monkeypatch):
    tables, _ = _fixture("smartstore", monkeypatch)
    o = _by_id(tables)
    assert len(tables.order_items) == 4
    # an open return request does not make the line a return: 배송완료 decides
    assert o.loc["2024010512345", "status"] == "completed"
    assert o.loc["2024010512345", "amount"] == 32000.0
    assert o.loc["2024010512345", "customer_id"] == "sky_j"
    assert o.loc["2024010698765", "status"] == "returned" and o.loc["2024010698765", "is_return"]
    assert o.loc["2024010698765", "ordered_at"] == pd.Timestamp("2024-01-06 12:40:12", tz="UTC")
    assert bool(o.loc["2024010711111", "is_cancelled"])


@pytest.mark.parametrize(
    ("value", "words"),
    [(None, "SMARTSTORE_XLSX_PASSWORD"), ("wrong", "does not open")],
)
def test_smartstore_password_missing_or_wrong_is_a_clear_error(monkeypatch, value, words):
    if value is None:
        monkeypatch.delenv(PASSWORD_ENV, raising=False)
    else:
        monkeypatch.setenv(PASSWORD_ENV, value)
    with pytest.raises(DataError, match=words) as err:
        load_tables(FIXTURES, config=CONFIG["smartstore"])
    assert "order_lines" in str(err.value) and "vipml-fixture" not in str(err.value)


def test_coupang_fixture_customers_from_buyer_name_and_phone(monkeypatch):
    tables, _ = _fixture("coupang", monkeypatch)
    o = _by_id(tables)
    assert o.loc["21000123456789", "amount"] == 60000.0
    assert o.loc["21000123456789", "customer_id"] == o.loc["21000124000001", "customer_id"]
    assert o.loc["21000123999999", "customer_id"] != o.loc["21000124000001", "customer_id"]
    assert tables.orders["customer_id"].str.fullmatch(r"\d{1,20}").all()


def test_a_workbook_header_on_another_row_is_named(tmp_path, monkeypatch):
    import shutil

    shutil.copy(FIXTURES / "smartstore_orders.xlsx", tmp_path / "smartstore_orders.xlsx")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG["smartstore"].read_text().replace("    header_row: 2\n", ""))
    monkeypatch.setenv(PASSWORD_ENV, "vipml-fixture")
    with pytest.raises(DataError, match="header_row: 2") as err:
        load_tables(tmp_path, config=cfg)
    assert "row 2, not on row 1" in str(err.value)


def test_11st_fixture_compact_korean_time(monkeypatch):
    tables, _ = _fixture("11st", monkeypatch)
    o = _by_id(tables)
    # 2024-01-05 00:30 in Seoul is the 4th in UTC
    assert o.loc["202401050001", "ordered_at"] == pd.Timestamp("2024-01-04 15:30", tz="UTC")
    assert o.loc["202401050001", "amount"] == 91000.0
    assert o.loc["202401062345", "status"] == "returned"
    assert bool(o.loc["202401070100", "is_cancelled"])


def test_korean_text_in_cp949_read_as_utf8_names_the_encoding_fix(tmp_path):
    (tmp_path / "orders.csv").write_bytes(
        "order_id,customer_id,ordered_at,amount,channel\no1,c1,2024-01-01,1000,모바일\n".encode(
            "cp949"
        )
    )
    with pytest.raises(DataError, match="cp949"):
        load_tables(tmp_path)
    cfg = tmp_path / "c.yaml"
    for enc in ("cp949", "auto"):
        cfg.write_text(f"tables:\n  orders:\n    encoding: {enc}\n")
        tables, _ = load_tables(tmp_path, config=cfg)
        assert tables.orders["channel"].tolist() == ["모바일"]


def test_saved_json_in_cp949_with_encoding_auto(tmp_path):
    import json

    doc = [{"order_id": "o1", "customer_id": "김민수", "ordered_at": "2024-01-01T10:00:00+09:00",
            "amount": "1000"}]  # fmt: skip
    (tmp_path / "orders.json").write_bytes(json.dumps(doc, ensure_ascii=False).encode("cp949"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("tables:\n  orders:\n    path: orders.json\n")
    with pytest.raises(DataError, match="encoding"):
        load_tables(tmp_path, config=cfg)
    cfg.write_text("tables:\n  orders:\n    path: orders.json\n    encoding: auto\n")
    tables, _ = load_tables(tmp_path, config=cfg)
    assert tables.orders["customer_id"].tolist() == ["김민수"]
    assert tables.orders["ordered_at"].tolist() == [pd.Timestamp("2024-01-01 01:00", tz="UTC")]
