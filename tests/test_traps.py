"""The traps of real exports: credit notes, duplicate lines, date conventions, unusable files,
two files for one table, conflicting orders, partial customers tables, cut-off files."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from vipml import DataError, load_tables
from vipml.io import order_values

README = Path(__file__).resolve().parents[1] / "README.md"


def _lines(**extra):
    base = {
        "InvoiceNo": ["536365", "536365", "C536379", "536366"],
        "StockCode": ["A", "B", "A", "C"],
        "Quantity": ["6", "2", "-2", "1"],
        "UnitPrice": ["2.50", "3.00", "2.50", "1.00"],
        "CustomerID": ["17850.0", "17850.0", "17850.0", "13047.0"],
        "InvoiceDate": [
            "2010-12-01 08:26",
            "2010-12-01 08:26",
            "2010-12-03 09:41",
            "2010-12-01 10:00",
        ],
    }
    base.update(extra)
    return pd.DataFrame(base)


def _config(tmp_path, body: str) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(body)
    return cfg


LINES_CFG = (
    "timezone: Europe/London\n"
    "tables:\n  order_lines:\n    path: retail.csv\n"
    "    columns: {order_id: InvoiceNo, product_id: StockCode, quantity: Quantity,\n"
    "              unit_price: UnitPrice, customer_id: CustomerID, ordered_at: InvoiceDate}\n"
)


# ------------------------------------------------------------------ credit notes


@pytest.mark.parametrize("means", ["return", "void"])
def test_a_prefix_means_return_nets_against_spend_or_void_counts_nowhere(tmp_path, means):
    _lines().to_csv(tmp_path / "retail.csv", index=False)
    cfg = _config(tmp_path, LINES_CFG + f"    cancel_prefix: C\n    prefix_means: {means}\n")
    t, rep = load_tables(tmp_path, config=cfg)
    o = t.orders.set_index("order_id")
    vals = pd.DataFrame(order_values(t.orders), index=t.orders["order_id"])
    credit = "C536379"
    if means == "return":
        assert bool(o.loc[credit, "is_return"]) and not bool(o.loc[credit, "is_cancelled"])
        assert vals.loc[credit, "returned"] == pytest.approx(5.0)
        # 21.00 bought by 17850, 5.00 given back
        net = vals.loc[["536365", credit], "net"].sum()
        assert net == pytest.approx(21.0 - 5.0)
        assert (rep.tables["orders"].returns, rep.tables["orders"].cancellations) == (1, 0)
    else:
        assert bool(o.loc[credit, "is_cancelled"]) and not bool(o.loc[credit, "is_return"])
        assert vals.loc[credit, ["gross", "returned", "net"]].tolist() == [0.0, 0.0, 0.0]
        assert (rep.tables["orders"].returns, rep.tables["orders"].cancellations) == (0, 1)


def test_prefix_means_is_validated(tmp_path):
    from vipml.errors import ConfigError

    cfg = _config(tmp_path, LINES_CFG + "    cancel_prefix: C\n    prefix_means: refund\n")
    with pytest.raises(ConfigError, match="prefix_means"):
        load_tables(tmp_path, config=cfg)


def test_readme_online_retail_example_keeps_uk_days_and_nets_credit_notes(tmp_path):
    block = re.search(r"```yaml\n(timezone: Europe/London.*?)```", README.read_text(), re.S)
    assert block, "README: the Online Retail example config is missing"
    cfg = yaml.safe_load(block.group(1))
    assert cfg["timezone"] == "Europe/London"
    src = cfg["tables"]["order_lines"]
    assert src["prefix_means"] == "return"
    cfg.pop("data_dir", None)
    src["path"] = "retail.csv"
    lines = _lines(
        InvoiceDate=["01/12/2010 08:26", "01/12/2010 08:26", "03/12/2010 09:41", "13/12/2010 00:30"]
    )
    lines.to_csv(tmp_path / "retail.csv", index=False)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    t, _ = load_tables(tmp_path, config=path)
    o = t.orders.set_index("order_id")
    # a UK order just after midnight stays on its own day
    assert o.loc["536366", "ordered_at"] == pd.Timestamp("2010-12-13 00:30", tz="UTC")
    assert bool(o.loc["C536379", "is_return"])


# ------------------------------------------------------------------ duplicate lines


def test_orders_are_summed_after_line_deduplication(tmp_path):
    lines = _lines()
    lines = pd.concat([lines, lines.iloc[[0]]], ignore_index=True)  # line 1 exported twice
    lines.to_csv(tmp_path / "retail.csv", index=False)
    t, rep = load_tables(tmp_path, config=_config(tmp_path, LINES_CFG))
    o = t.orders.set_index("order_id")
    assert o.loc["536365", "amount"] == pytest.approx(6 * 2.5 + 2 * 3.0)
    assert rep.tables["order_items"].quarantined == {"duplicate_row": 1}
    items = t.order_items
    by_order = (items["quantity"] * items["unit_price"]).groupby(items["order_id"]).sum()
    pd.testing.assert_series_equal(
        by_order.sort_index(), o["amount"].sort_index(), check_names=False
    )


def test_partly_returned_and_partly_cancelled_orders_from_line_statuses():
    from vipml.io import split_order_lines

    lines = pd.DataFrame(
        {
            "order_id": ["A", "A", "A", "B", "B", "C"],
            "customer_id": ["c1"] * 3 + ["c2"] * 2 + ["c3"],
            "ordered_at": ["2024-01-01"] * 6,
            "product_id": ["p1", "p2", "p3", "p1", "p2", "p1"],
            "quantity": [1, 1, 1, 1, 1, 2],
            "unit_price": [10.0, 20.0, 40.0, 5.0, 7.0, 3.0],
            "status": ["paid", "cancelled", "returned", "cancelled", "cancelled", "returned"],
        }
    )
    orders, items = split_order_lines(lines, cancel_prefix=None)
    o = orders.set_index("order_id")
    assert o.loc["A", "amount"] == 50.0 and o.loc["A", "status"] == "paid"
    assert o.loc["A-R", "amount"] == -40.0 and o.loc["A-R", "status"] == "returned"
    assert o.loc["B", "status"] == "cancelled" and o.loc["B", "amount"] == 12.0
    assert o.loc["C", "status"] == "returned" and o.loc["C", "amount"] == 6.0
    assert len(items) == 6


# ------------------------------------------------------------------ date conventions


def _orders(dates):
    n = len(dates)
    return pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "customer_id": ["c1"] * n,
            "ordered_at": dates,
            "amount": [1.0] * n,
        }
    )


def test_day_first_is_detected_from_the_values():
    t, _ = load_tables({"orders": _orders(["13/01/2024", "01/03/2024"])})
    assert t.orders["ordered_at"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-13", "2024-03-01"]
    t, _ = load_tables({"orders": _orders(["01/13/2024", "03/01/2024"])})
    assert t.orders["ordered_at"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-13", "2024-03-01"]


@pytest.mark.parametrize(
    ("dates", "words"),
    [
        (["13/01/2024", "01/13/2024"], "mixes day-first"),
        (["01/03/2024", "02/03/2024"], "cannot be told apart"),
    ],
)
def test_a_column_of_two_conventions_or_of_ambiguous_dates_is_refused(dates, words):
    with pytest.raises(DataError, match=words) as err:
        load_tables({"orders": _orders(dates)})
    msg = str(err.value)
    assert "table 'orders'" in msg and "'01/" in msg and "date_formats.ordered_at" in msg


def test_a_format_the_values_contradict_is_refused(tmp_path):
    # month-first file, day-first config: 12/13 fails, 01/12 would silently become 1 Dec
    _orders(["12/13/2010 08:26", "01/12/2010 09:00"]).to_csv(tmp_path / "orders.csv", index=False)
    cfg = _config(
        tmp_path, "tables:\n  orders:\n    date_formats: {ordered_at: '%d/%m/%Y %H:%M'}\n"
    )
    with pytest.raises(DataError, match=r"'%m/%d/%Y %H:%M'") as err:
        load_tables(tmp_path, config=cfg)
    assert "'12/13/2010 08:26'" in str(err.value)
    # ISO file, day-first config: every row would be set aside
    _orders(["2010-12-01 08:26:00", "2010-12-13 09:00:00"]).to_csv(
        tmp_path / "orders.csv", index=False
    )
    with pytest.raises(DataError, match="ISO dates"):
        load_tables(tmp_path, config=cfg)


# ------------------------------------------------------------------ unusable tables


def test_every_row_set_aside_shows_three_raw_values_and_the_likely_fix(tmp_path):
    frame = _orders(["x"] * 4).assign(ordered_at=["soon", "later", "never", "today"])
    _, rep = load_tables({"orders": frame})
    (warning,) = [w for w in rep.warnings if "every row of 'orders'" in w]
    assert "'soon', 'later', 'never'" in warning and "'today'" not in warning
    assert "date_formats.ordered_at" in warning and "Likely fix" in warning
    # shifted columns: amount holds text
    shifted = _orders(["2024-01-01"] * 3).assign(amount=["Widget", "Gadget", "Gizmo"])
    _, rep = load_tables({"orders": shifted})
    (warning,) = [w for w in rep.warnings if "every row" in w]
    assert "'Widget', 'Gadget', 'Gizmo'" in warning and "shifted columns" in warning


def test_the_cli_refuses_an_unusable_table_with_values_and_fix(tmp_path, capsys):
    from vipml.cli import main

    _orders(["x"] * 3).assign(ordered_at=["a", "b", "c"]).to_csv(
        tmp_path / "orders.csv", index=False
    )
    assert main(["validate", "--data", str(tmp_path)]) == 2
    out = capsys.readouterr()
    assert "'a', 'b', 'c'" in out.err and "Likely fix" in out.err
    # the other commands stop too, instead of working on an empty table
    args = ["features", "--data", str(tmp_path), "--as-of", "2024-01-01"]
    assert main([*args, "--out", str(tmp_path / "f.parquet")]) == 2
    assert "'a', 'b', 'c'" in capsys.readouterr().err
    assert not (tmp_path / "f.parquet").exists()


def test_two_files_for_one_table_is_an_error_naming_both(tmp_path):
    frame = _orders(["2024-01-01"])
    frame.to_csv(tmp_path / "orders.csv", index=False)
    frame.to_parquet(tmp_path / "orders.parquet", index=False)
    with pytest.raises(DataError, match="orders.parquet") as err:
        load_tables(tmp_path)
    assert "orders.csv" in str(err.value) and "tables.orders.path" in str(err.value)
    # naming the one to read settles it
    cfg = _config(tmp_path, "tables:\n  orders:\n    path: orders.csv\n")
    t, _ = load_tables(tmp_path, config=cfg)
    assert len(t.orders) == 1


def test_the_same_order_id_with_different_amounts_is_flagged():
    frame = _orders(["2024-01-01", "2024-01-02", "2024-01-03"])
    frame["order_id"] = ["o1", "o1", "o2"]
    frame["amount"] = [10.0, 12.5, 3.0]
    t, rep = load_tables({"orders": frame})
    (warning,) = [w for w in rep.warnings if "different amounts" in w]
    assert "1 order ids" in warning and "o1 (10.00 .. 12.50)" in warning
    assert len(t.orders) == 3


def test_a_customers_table_covering_part_of_the_orders_is_warned_with_counts():
    frame = _orders(["2024-01-01"] * 4)
    frame["customer_id"] = ["c1", "c2", "c3", "c3"]
    customers = pd.DataFrame({"customer_id": ["c1"]})
    _, rep = load_tables({"orders": frame, "customers": customers})
    (warning,) = [w for w in rep.warnings if "customers lists" in w]
    assert "2 of the 3 customers" in warning and "3 orders (of 4)" in warning


def test_a_csv_whose_last_line_is_cut_short_is_warned(tmp_path):
    text = "order_id,customer_id,ordered_at,amount\no1,c1,2024-01-01,10\no2,c2,2024-01"
    (tmp_path / "orders.csv").write_text(text)
    _, rep = load_tables(tmp_path)
    (warning,) = [w for w in rep.warnings if "cut short" in w]
    assert "3 of 4 fields" in warning and "orders.csv" in warning
    (tmp_path / "orders.csv").write_text(text + "-02,5\n")
    _, rep = load_tables(tmp_path)
    assert not [w for w in rep.warnings if "cut short" in w]
