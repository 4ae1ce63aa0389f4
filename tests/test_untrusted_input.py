"""Bad input of every kind is refused or set aside with a message, never a crash."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml import load_tables
from vipml.config import MAX_CONFIG_NODES, load_config
from vipml.errors import ConfigError, VipmlError
from vipml.features import build_features
from vipml.windows import as_cutoff, to_us


def _orders(**extra):
    frame = pd.DataFrame(
        {
            "order_id": ["1", "2", "3", "4"],
            "customer_id": ["a", "b", "c", "c"],
            "ordered_at": ["2020-01-01", "2020-02-01", "2020-03-01", "2020-03-02"],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    return frame.assign(**extra)


@pytest.mark.parametrize("name", ["reason", "row"])
def test_input_columns_named_like_quarantine_columns(name, tmp_path):
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"], name: ["x", "y", "z"]})
    orders = _orders(**{name: ["p", "q", "r", "s"]})
    orders["amount"] = ["1", "not money", "3", "4"]
    tables, report = load_tables({"customers": customers, "orders": orders}, out=tmp_path)
    assert report.tables["orders"].quarantined == {"non_numeric_amount": 1}
    assert list(tables.customers[name]) == ["x", "y", "z"]
    bad = pd.read_parquet(tmp_path / "quarantine" / "orders.parquet")
    assert list(bad.columns[:2]) == ["reason", "row"]
    assert bad["reason"].tolist() == ["non_numeric_amount"]
    assert bad[f"{name}_input"].tolist() == ["q"]


def test_quarantine_keeps_both_reason_and_reason_input(tmp_path):
    orders = _orders(reason=list("pqrs"), reason_input=list("PQRS"))
    orders["amount"] = ["1", "no", "3", "4"]
    load_tables({"orders": orders}, out=tmp_path)
    bad = pd.read_parquet(tmp_path / "quarantine" / "orders.parquet")
    assert bad[["reason_input", "reason_input_input"]].values.tolist() == [["Q", "q"]]


def test_rows_dated_out_of_range_are_quarantined():
    orders = _orders(ordered_at=["2020-01-01", "2263-01-01", "0001-01-01", "2300-05-05"])
    tables, report = load_tables({"orders": orders})
    assert report.tables["orders"].quarantined == {"out_of_range_ordered_at": 3}
    assert tables.orders["order_id"].tolist() == ["1"]
    feats = build_features(tables, as_of="2021-01-01")
    assert feats.loc["a", "spend_all"] == 1.0


def test_optional_dates_out_of_range_are_quarantined():
    customers = pd.DataFrame(
        {"customer_id": ["a", "b"], "signup_at": ["2019-01-01", "9999-12-31 23:00"]}
    )
    _, report = load_tables({"customers": customers, "orders": _orders().iloc[:1]})
    assert report.tables["customers"].quarantined == {"out_of_range_signup_at": 1}


@pytest.mark.parametrize("value", ["2300-01-01", "0001-01-01", "1600-06-01", "2262-04-12"])
def test_cutoffs_out_of_range_are_refused_with_the_range(value):
    with pytest.raises(ConfigError, match="supported range.*1700-01-01.*2200-01-01"):
        as_cutoff(value)


def test_to_us_does_not_go_through_nanoseconds():
    ts = pd.Timestamp("2199-12-31", tz="UTC").as_unit("us")
    assert to_us(ts) == int(ts.asm8.view("i8"))


def test_huge_amounts_are_quarantined_not_summed_to_zero_or_inf():
    orders = _orders(amount=[1e308, 1e308, 3.0, 4.0], customer_id=["a", "a", "c", "c"])
    tables, report = load_tables({"orders": orders})
    assert report.tables["orders"].quarantined == {"out_of_range_amount": 2}
    feats = build_features(tables, as_of="2021-01-01")
    spend = feats[["spend_all", "spend_365d", "spend_30d"]].to_numpy(dtype=float)
    assert np.isfinite(spend).all()
    assert feats.loc["c", "spend_all"] == 7.0


def test_infinite_amounts_are_quarantined():
    orders = _orders(amount=["inf", "-inf", "3", "4"])
    _, report = load_tables({"orders": orders})
    assert report.tables["orders"].quarantined == {"non_numeric_amount": 2}


def test_config_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("seed: 1  # café\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin.yaml: the config file is not UTF-8"):
        load_config(path)


def test_config_alias_bomb_is_refused_before_expansion(tmp_path):
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size < 1000
    import time

    started = time.perf_counter()
    with pytest.raises(ConfigError, match=f"more than {MAX_CONFIG_NODES:,} values"):
        load_config(path)
    assert time.perf_counter() - started < 2


def test_config_too_large_or_self_referring(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("seed: 1\n" + "#" * 2_000_000 + "\n")
    with pytest.raises(ConfigError, match="limit of 1,000,000"):
        load_config(big)
    rec = tmp_path / "rec.yaml"
    rec.write_text("a: &a [*a]\n")
    with pytest.raises(VipmlError):
        load_config(rec)


@pytest.mark.parametrize(("name", "data"), [("t.csv", b"\xff\xfe\x00x"), ("t.parquet", b"PAR1x")])
def test_a_damaged_target_list_is_refused_naming_it(tmp_path, name, data):
    from vipml.errors import DataError
    from vipml.io import read_frame

    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match=f"cannot read target list .*{name}"):
        read_frame(tmp_path / name, what="target list")


@pytest.mark.parametrize("text", ["{", "[1, 2]", "\udcff"])
def test_damaged_campaign_results_are_refused(tmp_path, text):
    from vipml.errors import DataError
    from vipml.report.build import read_campaign

    (tmp_path / "campaign.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(DataError, match="campaign results cannot be read"):
        read_campaign(tmp_path)
