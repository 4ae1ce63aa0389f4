"""The generated retailer's messy switches against the loader: exactly what was injected is set aside."""

from __future__ import annotations

import pandas as pd

from vipml import load_tables
from vipml.datasets import Messiness, make_retailer
from vipml.features import build_features


def test_loader_quarantines_exactly_the_injected_rows_and_flags_returns(tmp_path):
    retailer = make_retailer(3000, seed=3, messy=Messiness.all())
    tables, report = load_tables(retailer.tables(), out=tmp_path)
    o = report.tables["orders"]
    assert o.quarantined == {
        "missing_customer_id": retailer.injected["missing_ids"],
        "duplicate_row": retailer.injected["duplicates"],
    }
    assert o.rows_kept + o.rows_quarantined == o.rows_in == len(retailer.orders)
    assert (tables.orders["amount"] < 0).sum() == retailer.injected["returns"]
    assert tables.orders["customer_id"].str.fullmatch(r"\d+").all()  # float ids came back as text
    clean = make_retailer(3000, seed=3)
    assert tables.orders["ordered_at"].min() == clean.orders["ordered_at"].min()  # mixed offsets
    assert (tmp_path / "quarantine" / "orders.parquet").is_file()


def test_features_on_messy_data_handle_returns_one_order_and_browse_only_customers():
    retailer = make_retailer(2000, seed=5, messy=Messiness.all())
    tables, _ = load_tables(retailer.tables())
    as_of = retailer.start + (retailer.end - retailer.start) * 0.75
    feats = build_features(tables, as_of=as_of)
    assert feats.index.is_unique and feats.index.is_monotonic_increasing
    one = feats[feats["orders_all"] == 1]
    assert len(one) and one["interval_mean_days"].isna().all() and one["recency_days"].notna().all()
    browse_only = feats[(feats["orders_all"] == 0) & (feats["views_90d"] > 0)]
    assert len(browse_only) and browse_only["recency_days"].isna().all()
    assert (feats["net_spend_all"] <= feats["spend_all"] + 1e-9).all()
    assert (feats["return_rate_all"].dropna() > 0).any()
    numeric = feats.select_dtypes("number")
    assert not numeric.isin([float("inf"), float("-inf")]).any().any()


def test_features_track_the_latent_propensity():
    retailer = make_retailer(3000, seed=1)
    tables, _ = load_tables(retailer.tables())
    feats = build_features(tables, as_of=retailer.end)
    joined = feats.join(retailer.latent.set_index("customer_id")["propensity"], how="inner")
    assert joined["spend_all"].rank().corr(joined["propensity"].rank()) > 0.4  # Spearman
    assert pd.api.types.is_float_dtype(joined["spend_all"])
