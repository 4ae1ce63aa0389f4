"""The generated retailer: determinism, the data contract, realism, signal and messiness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml.datasets import Messiness, Retailer, make_retailer
from vipml.errors import ConfigError

UTC_US = "datetime64[us, UTC]"

CONTRACT = {
    "customers": (
        "customer_id", "signup_at", "region", "age_band", "acquisition_channel", "tp_affluence",
        "consent_email", "consent_sms", "consent_push", "consent_kakao", "consent_night",
    ),
    "orders": ("order_id", "customer_id", "ordered_at", "amount", "discount", "channel", "status"),
    "order_items": ("order_id", "product_id", "quantity", "unit_price", "category", "tier"),
    "events": (
        "customer_id", "occurred_at", "event_type", "category", "session_id", "duration_s",
        "channel",
    ),
    "offers": (
        "offer_id", "customer_id", "sent_at", "offer_type", "campaign_id", "channel", "category",
        "discount_pct", "cost", "group", "opened_at", "clicked_at", "accepted_at",
    ),
}  # fmt: skip
IDS = {
    "customers": ("customer_id",),
    "orders": ("order_id", "customer_id"),
    "order_items": ("order_id", "product_id"),
    "events": ("customer_id", "session_id"),
    "offers": ("offer_id", "customer_id", "campaign_id"),
}
TIMES = {
    "customers": ("signup_at",),
    "orders": ("ordered_at",),
    "events": ("occurred_at",),
    "offers": ("sent_at", "opened_at", "clicked_at", "accepted_at"),
}
NUMBERS = {
    "orders": ("amount", "discount"),
    "order_items": ("unit_price",),
    "events": ("duration_s",),
    "offers": ("discount_pct", "cost"),
}
ID_PATTERNS = {
    ("customers", "customer_id"): r"^1\d{5}$",
    ("orders", "order_id"): r"^O\d{7}$",
    ("order_items", "product_id"): r"^P\d{4}$",
    ("events", "session_id"): r"^S\d{8}$",
    ("offers", "offer_id"): r"^F\d{7}$",
}


@pytest.fixture(scope="module")
def shop() -> Retailer:
    return make_retailer(3_000, seed=11)


@pytest.fixture(scope="module")
def messy_shop() -> Retailer:
    return make_retailer(2_000, seed=5, messy=Messiness.all())


@pytest.fixture(scope="module")
def clean_twin() -> Retailer:
    """The clean version of ``messy_shop``."""
    return make_retailer(2_000, seed=5)


def per_customer(shop: Retailer, values: pd.Series) -> pd.Series:
    """A per-customer series aligned on ``shop.latent`` (0 for customers without rows)."""
    return values.reindex(shop.latent["customer_id"], fill_value=0)


def rank_corr(a: pd.Series, b: pd.Series) -> float:
    return float(np.corrcoef(a.rank().to_numpy(), b.rank().to_numpy())[0, 1])


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_frames():
    a = make_retailer(600, seed=3, messy=Messiness.all())
    b = make_retailer(600, seed=3, messy=Messiness.all())
    assert a.tables().keys() == b.tables().keys()
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name], obj=name)
    pd.testing.assert_frame_equal(a.latent, b.latent)
    assert a.injected == b.injected


def test_different_seeds_give_different_frames():
    a, b = make_retailer(600, seed=1), make_retailer(600, seed=2)
    for name in ("orders", "events", "offers"):
        assert not a.tables()[name].equals(b.tables()[name]), name
    assert not np.allclose(a.latent["propensity"], b.latent["propensity"])


def test_switching_tables_off_leaves_the_others_unchanged(shop):
    lean = make_retailer(3_000, seed=11, events=False, offers=False, items=False)
    assert lean.events is None and lean.offers is None and lean.order_items is None
    assert list(lean.tables()) == ["customers", "orders"]
    pd.testing.assert_frame_equal(lean.orders, shop.orders)
    pd.testing.assert_frame_equal(lean.customers, shop.customers)
    pd.testing.assert_frame_equal(lean.latent, shop.latent)


# ---------------------------------------------------------------- the contract


def test_every_table_has_the_contract_columns_in_order(shop):
    assert list(shop.tables()) == list(CONTRACT)
    for name, columns in CONTRACT.items():
        assert tuple(shop.tables()[name].columns) == columns, name


def test_dtypes_follow_the_contract(shop):
    for name, frame in shop.tables().items():
        for col in IDS.get(name, ()):
            assert pd.api.types.is_string_dtype(frame[col].dtype), (name, col)
            assert not pd.api.types.is_object_dtype(frame[col].dtype), (name, col)
        for col in TIMES.get(name, ()):
            assert str(frame[col].dtype) == UTC_US, (name, col)
        for col in NUMBERS.get(name, ()):
            assert frame[col].dtype == np.float64, (name, col)
    assert pd.api.types.is_integer_dtype(shop.order_items["quantity"])
    assert str(shop.latent["churn_at"].dtype) == UTC_US
    assert shop.start == pd.Timestamp("2023-01-01", tz="UTC")
    assert shop.end == pd.Timestamp("2025-01-01", tz="UTC")
    assert str(shop.start.tz) == "UTC" and str(shop.end.tz) == "UTC"


def test_ids_look_right_are_unique_and_refer_to_known_rows(shop):
    for (name, col), pattern in ID_PATTERNS.items():
        assert shop.tables()[name][col].str.fullmatch(pattern).all(), (name, col)
    customers = set(shop.customers["customer_id"])
    assert shop.customers["customer_id"].is_unique
    assert shop.orders["order_id"].is_unique
    assert shop.offers["offer_id"].is_unique
    for name in ("orders", "events", "offers"):
        frame = shop.tables()[name]
        assert frame["customer_id"].notna().all(), name
        assert set(frame["customer_id"]) <= customers, name
    assert set(shop.order_items["order_id"]) == set(shop.orders["order_id"])
    assert shop.latent["customer_id"].tolist() == shop.customers["customer_id"].tolist()


def test_clean_tables_have_no_duplicate_rows(shop):
    for name, frame in shop.tables().items():
        assert not frame.duplicated().any(), name
    assert not shop.order_items.duplicated(["order_id", "product_id"]).any()


def test_no_missing_values_where_none_are_expected(shop):
    assert shop.customers.notna().all().all()
    assert shop.orders.notna().all().all()
    assert shop.order_items.notna().all().all()
    ev = shop.events
    assert ev.drop(columns=["category", "duration_s"]).notna().all().all()
    assert ev["category"].isna().eq(ev["event_type"].eq("session_start")).all()
    assert ev["duration_s"].isna().eq(ev["channel"].eq("web")).all()
    assert shop.offers.drop(columns=["opened_at", "clicked_at", "accepted_at"]).notna().all().all()


def test_rows_are_sorted_by_time(shop):
    assert shop.orders["ordered_at"].is_monotonic_increasing
    assert shop.events["occurred_at"].is_monotonic_increasing
    assert shop.offers["sent_at"].is_monotonic_increasing
    within_time = shop.orders.groupby("ordered_at")["order_id"]
    assert within_time.apply(lambda s: s.is_monotonic_increasing).all()


def test_category_values(shop):
    assert set(shop.orders["channel"]) == {"web", "app", "store"}
    assert set(shop.orders["status"]) == {"completed", "returned", "cancelled"}
    assert set(shop.order_items["tier"]) == {"basic", "premium"}
    assert set(shop.events["event_type"]) == {"session_start", "product_view", "add_to_cart"}
    assert set(shop.events["channel"]) == {"app", "web"}
    assert set(shop.offers["offer_type"]) == {"upsell", "cross_sell", "bundle"}
    assert set(shop.offers["channel"]) == {"email", "push", "sms", "kakao"}
    assert set(shop.offers["group"]) == {"treatment", "control"}
    assert set(shop.customers["tp_affluence"]) == {"low", "mid", "high"}


def test_empty_and_tiny_retailers_keep_the_contract():
    empty = make_retailer(0)
    for name, columns in CONTRACT.items():
        frame = empty.tables()[name]
        assert frame.empty and tuple(frame.columns) == columns, name
    assert str(empty.orders["ordered_at"].dtype) == UTC_US
    one_day = make_retailer(200, start="2024-06-01", end="2024-06-02", seed=1)
    ts = one_day.orders["ordered_at"]
    assert ts.empty or (ts.min() >= one_day.start and ts.max() < one_day.end)


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="n_customers"):
        make_retailer(-1)
    with pytest.raises(ConfigError, match="after start"):
        make_retailer(10, start="2024-01-01", end="2023-01-01")
    with pytest.raises(ValueError, match="orders_per_customer_year"):
        make_retailer(10, orders_per_customer_year=-1.0)
    with pytest.raises(ValueError, match="duplicates"):
        Messiness(duplicates=1.5)


# ---------------------------------------------------------------- time


def test_activity_lies_between_signup_and_end(shop):
    signup = shop.customers.set_index("customer_id")["signup_at"]
    for name, col in (("orders", "ordered_at"), ("events", "occurred_at"), ("offers", "sent_at")):
        frame = shop.tables()[name]
        t = frame[col]
        assert (t >= shop.start).all() and (t < shop.end).all(), name
        assert (t >= frame["customer_id"].map(signup)).all(), name


def test_signups_spread_from_a_year_before_start_to_two_months_before_end(shop):
    s = shop.customers["signup_at"]
    assert s.min() >= shop.start - pd.Timedelta(days=366)
    assert s.max() <= shop.end - pd.Timedelta(days=60)
    assert (s < shop.start).mean() > 0.2 and (s >= shop.start).mean() > 0.5


def test_nothing_happens_after_a_customer_drops_out(shop):
    churn = shop.latent.set_index("customer_id")["churn_at"]
    for name, col in (("orders", "ordered_at"), ("events", "occurred_at")):
        frame = shop.tables()[name]
        assert (frame[col] < frame["customer_id"].map(churn)).all(), name
    accepted = shop.offers.dropna(subset=["accepted_at"])
    assert (accepted["accepted_at"] < accepted["customer_id"].map(churn)).all()
    assert (shop.latent["churn_at"] < shop.end).mean() > 0.2


def test_offer_funnel_times_are_ordered(shop):
    of = shop.offers
    opened, clicked, accepted = of["opened_at"], of["clicked_at"], of["accepted_at"]
    assert (opened.dropna() >= of.loc[opened.notna(), "sent_at"]).all()
    assert opened[clicked.notna()].notna().all()
    assert (clicked.dropna() >= opened[clicked.notna()]).all()
    wait = accepted - of["sent_at"]
    assert (wait.dropna() >= pd.Timedelta(0)).all()
    assert (wait.dropna() < pd.Timedelta(days=14)).all()
    assert (accepted.dropna() >= clicked[accepted.notna()].fillna(of["sent_at"])).all()
    for col in ("opened_at", "clicked_at", "accepted_at"):
        assert (of[col].dropna() < shop.end).all(), col
    control = of["group"].eq("control")
    assert 0.05 < control.mean() < 0.15
    assert of.loc[control, ["opened_at", "clicked_at"]].isna().all().all()
    assert of.loc[control, "accepted_at"].notna().any()


def test_offer_terms(shop):
    of = shop.offers
    assert of["discount_pct"].between(0, 50).all()
    assert of["cost"].between(0.5, 3.0).all()
    per_year = len(of) / len(shop.customers) / 2.0
    assert 1.5 < per_year < 4.5


def test_session_rows_are_well_formed(shop):
    ev = shop.events
    first = ev.groupby("session_id", sort=False).head(1)
    assert first["event_type"].eq("session_start").all()
    assert ev["session_id"].nunique() == ev["event_type"].eq("session_start").sum()
    assert ev.groupby("session_id")["customer_id"].nunique().eq(1).all()
    assert ev.groupby("session_id")["channel"].nunique().eq(1).all()
    assert (ev["duration_s"].dropna() > 0).all()
    # An add_to_cart directly follows a view of the same category in its session.
    s = ev.sort_values(["session_id", "occurred_at"], kind="stable").reset_index(drop=True)
    cart = s["event_type"].eq("add_to_cart")
    before = s.shift(1)
    assert before.loc[cart, "event_type"].eq("product_view").all()
    assert before.loc[cart, "category"].eq(s.loc[cart, "category"]).all()


# ---------------------------------------------------------------- money


def test_amount_is_basket_value_less_discount(shop):
    items = shop.order_items
    value = (items["quantity"] * items["unit_price"]).groupby(items["order_id"]).sum()
    o = shop.orders.set_index("order_id")
    np.testing.assert_allclose(o["amount"], value[o.index] - o["discount"], atol=0.011)
    assert (o["discount"] >= 0).all() and (o["amount"] > 0).all()
    assert 0.1 < (o["discount"] > 0).mean() < 0.35
    assert items.groupby("order_id").size().between(1, 4).all()
    assert (items["quantity"] >= 1).all() and (items["unit_price"] > 0).all()


def test_statuses_have_realistic_shares_and_positive_amounts(shop):
    share = shop.orders["status"].value_counts(normalize=True)
    assert 0.015 < share["returned"] < 0.05
    assert 0.005 < share["cancelled"] < 0.04
    assert (shop.orders["amount"] > 0).all()


def test_order_values_are_heavy_tailed(shop):
    amount = shop.orders["amount"]
    assert amount.mean() > 1.2 * amount.median()
    assert amount.quantile(0.99) > 5 * amount.median()


def test_premium_items_cost_more_and_favourite_category_dominates(shop):
    items = shop.order_items
    price = items.groupby("tier")["unit_price"].median()
    assert price["premium"] > 2 * price["basic"]
    orders = shop.orders.set_index("order_id")["customer_id"]
    fav = shop.latent.set_index("customer_id")["favourite_category"]
    assert (items["category"] == items["order_id"].map(orders).map(fav)).mean() > 0.5
    views = shop.events[shop.events["event_type"].eq("product_view")]
    assert (views["category"] == views["customer_id"].map(fav)).mean() > 0.6


# ---------------------------------------------------------------- signal


def test_propensity_drives_spend(shop):
    spend = per_customer(shop, shop.orders.groupby("customer_id")["amount"].sum())
    z = shop.latent.set_index("customer_id")["propensity"]
    assert rank_corr(z, spend) > 0.3
    assert abs(z.mean()) < 0.1 and 0.9 < z.std() < 1.1


def test_propensity_drives_browsing_and_premium_share(shop):
    z = shop.latent.set_index("customer_id")["propensity"]
    app_time = per_customer(shop, shop.events.groupby("customer_id")["duration_s"].sum())
    assert rank_corr(z, app_time) > 0.3
    views = per_customer(
        shop,
        shop.events[shop.events["event_type"].eq("product_view")].groupby("customer_id").size(),
    )
    assert rank_corr(z, views) > 0.3
    items = shop.order_items.merge(shop.orders[["order_id", "customer_id"]], on="order_id")
    premium = items["tier"].eq("premium").groupby(items["customer_id"]).mean()
    assert rank_corr(z[premium.index], premium) > 0.2


def test_observable_attributes_explain_part_of_the_propensity(shop):
    z = shop.latent["propensity"]
    affluence = shop.customers["tp_affluence"]
    channel = shop.customers["acquisition_channel"]
    assert z[affluence.eq("high")].mean() > z[affluence.eq("low")].mean() + 0.3
    assert z[channel.eq("app")].mean() > z[channel.eq("paid_search")].mean() + 0.2


def test_treated_customers_accept_more_than_control(shop):
    accepted = shop.offers["accepted_at"].notna().groupby(shop.offers["group"]).mean()
    assert accepted["treatment"] > accepted["control"] + 0.02
    assert accepted["control"] > 0


def test_latent_uplift_ranks_the_treatment_effect(shop):
    of = shop.offers.merge(shop.latent[["customer_id", "uplift"]], on="customer_id")
    of["high"] = of["uplift"] > of["uplift"].median()
    rate = of["accepted_at"].notna().groupby([of["high"], of["group"]]).mean()
    effect_high = rate[(True, "treatment")] - rate[(True, "control")]
    effect_low = rate[(False, "treatment")] - rate[(False, "control")]
    assert effect_high > effect_low > -0.02
    assert shop.latent["uplift"].between(0, 1).all()


def test_accepted_offers_come_with_an_order(shop):
    accepted = shop.offers.dropna(subset=["accepted_at"])
    keys = set(zip(shop.orders["customer_id"], shop.orders["ordered_at"], strict=True))
    found = [k in keys for k in zip(accepted["customer_id"], accepted["accepted_at"], strict=True)]
    assert all(found)


def test_some_customers_grow_into_vips_while_others_fade(shop):
    o = shop.orders
    year2 = o["ordered_at"] >= shop.start + pd.Timedelta(days=365)
    first = per_customer(shop, o[~year2].groupby("customer_id")["amount"].sum())
    second = per_customer(shop, o[year2].groupby("customer_id")["amount"].sum())
    growth = shop.latent.set_index("customer_id")["vip_affinity"]
    old = shop.customers.set_index("customer_id")["signup_at"] < shop.start
    both = old & (first > 0)
    change = np.log1p(second[both]) - np.log1p(first[both])
    assert rank_corr(growth[both], change) > 0.15
    top2 = second >= second.quantile(0.95)
    assert (top2 & (first < first.quantile(0.95))).sum() > 10  # new VIPs in the second year
    assert ((first > 0) & (second == 0)).sum() > 50  # and customers who faded away


def test_one_order_and_zero_order_customers_exist(shop):
    counts = per_customer(shop, shop.orders.groupby("customer_id").size())
    assert (counts == 1).sum() > 50
    browsing = set(shop.events["customer_id"])
    zero_with_events = [c for c in counts.index[counts == 0] if c in browsing]
    assert len(zero_with_events) > 20
    assert counts.max() >= 20


# ---------------------------------------------------------------- messiness


def test_injected_counts_match_the_rows(messy_shop, clean_twin):
    o, n = messy_shop.orders, messy_shop.injected
    assert set(n) == {"duplicates", "missing_ids", "returns"}
    assert all(v > 0 for v in n.values())
    assert len(o) == len(clean_twin.orders) + n["returns"] + n["duplicates"]
    assert int(o.duplicated().sum()) == n["duplicates"]
    assert int(o.duplicated(keep=False).sum()) == 2 * n["duplicates"]
    assert int(o["customer_id"].isna().sum()) == n["missing_ids"]
    assert int((o["amount"] < 0).sum()) == n["returns"]
    assert n["returns"] == round(0.03 * len(clean_twin.orders))
    assert n["duplicates"] == round(0.01 * len(clean_twin.orders))
    # Duplicates are appended at the end; injected rows never overlap.
    tail = o.iloc[-n["duplicates"] :]
    assert tail["customer_id"].notna().all() and (tail["amount"] > 0).all()
    assert not o.loc[o["amount"] < 0, "customer_id"].isna().any()


def test_return_lines_follow_an_earlier_order_of_the_same_customer():
    shop = make_retailer(2_000, seed=5, messy=Messiness(returns=0.05, mixed_timezones=True))
    o = shop.orders.copy()
    o["t"] = pd.to_datetime(o["ordered_at"], utc=True, format="ISO8601")
    returns = o[o["amount"] < 0]
    assert returns["status"].eq("returned").all()
    assert returns["order_id"].str.fullmatch(r"O\d{7}").all()
    assert returns["order_id"].is_unique and o["order_id"].is_unique
    assert len(returns) == shop.injected["returns"] > 0
    assert (returns["t"] < shop.end).all()
    originals = o[o["amount"] > 0]
    pairs = returns.merge(originals, on="customer_id", suffixes=("", "_orig"))
    lag = pairs["t"] - pairs["t_orig"]
    pairs["match"] = (
        (lag >= pd.Timedelta(days=1))
        & (lag <= pd.Timedelta(days=30))
        & (-pairs["amount"] <= pairs["amount_orig"] + 1e-9)
    )
    assert pairs.groupby("order_id")["match"].any().reindex(returns["order_id"]).all()


def test_float_ids_are_integral_floats_of_the_clean_ids(clean_twin):
    floats = make_retailer(2_000, seed=5, messy=Messiness(float_ids=True)).orders
    assert floats["customer_id"].dtype == np.float64
    ids = floats["customer_id"].to_numpy()
    assert np.array_equal(ids, np.round(ids))
    as_text = pd.Series(ids.astype(np.int64).astype(str), index=floats.index)
    assert as_text.tolist() == clean_twin.orders["customer_id"].tolist()
    pd.testing.assert_frame_equal(
        floats.drop(columns="customer_id"), clean_twin.orders.drop(columns="customer_id")
    )


def test_mixed_timezones_denote_the_same_instants(clean_twin):
    mixed = make_retailer(2_000, seed=5, messy=Messiness(mixed_timezones=True)).orders
    text = mixed["ordered_at"]
    assert pd.api.types.is_string_dtype(text.dtype)
    for suffix in ("+09:00", "-05:00", "Z"):
        assert text.str.endswith(suffix).any(), suffix
    parsed = pd.to_datetime(text, utc=True, format="ISO8601")
    expected = clean_twin.orders["ordered_at"]
    assert (parsed.to_numpy() == expected.to_numpy()).all()
    assert text.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)").all()


def test_messiness_leaves_other_tables_alone(messy_shop, clean_twin):
    for name in ("customers", "order_items", "events", "offers"):
        pd.testing.assert_frame_equal(messy_shop.tables()[name], clean_twin.tables()[name])
    assert clean_twin.injected == {"duplicates": 0, "missing_ids": 0, "returns": 0}


def test_each_switch_alone_injects_only_its_kind():
    clean = make_retailer(800, seed=9).orders
    only = {
        "duplicates": Messiness(duplicates=0.05),
        "missing_ids": Messiness(missing_ids=0.05),
        "returns": Messiness(returns=0.05),
    }
    for kind, messy in only.items():
        shop = make_retailer(800, seed=9, messy=messy)
        assert shop.injected[kind] == round(0.05 * len(clean)), kind
        assert sum(shop.injected.values()) == shop.injected[kind], kind
    dup = make_retailer(800, seed=9, messy=only["duplicates"]).orders
    pd.testing.assert_frame_equal(dup.iloc[: len(clean)], clean)


def test_messiness_preset():
    preset = Messiness.all()
    assert preset.float_ids and preset.mixed_timezones
    assert 0 < preset.duplicates < 0.05 and 0 < preset.missing_ids < 0.05
    assert 0 < preset.returns < 0.1
    assert Messiness() == Messiness(0.0, 0.0, False, 0.0, False)


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_to_dir_writes_one_file_per_table_and_the_latent_truth(tmp_path, fmt):
    shop = make_retailer(300, seed=4, offers=False)
    folder = shop.to_dir(tmp_path / "data" / "nested", format=fmt)
    assert folder == tmp_path / "data" / "nested"
    names = sorted(p.name for p in folder.iterdir())
    expected = sorted([f"{t}.{fmt}" for t in shop.tables()] + ["latent.parquet"])
    assert names == expected
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "latent.parquet"), shop.latent)
    if fmt == "parquet":
        for name, frame in shop.tables().items():
            pd.testing.assert_frame_equal(pd.read_parquet(folder / f"{name}.parquet"), frame)
    else:
        back = pd.read_csv(folder / "orders.csv", dtype={"customer_id": str})
        assert len(back) == len(shop.orders)
        assert back["customer_id"].tolist() == shop.orders["customer_id"].tolist()
        parsed = pd.to_datetime(back["ordered_at"], utc=True)
        assert (parsed.to_numpy() == shop.orders["ordered_at"].to_numpy()).all()


def test_to_dir_refuses_an_unknown_format(tmp_path):
    with pytest.raises(ConfigError, match="format"):
        make_retailer(10).to_dir(tmp_path, format="xlsx")  # type: ignore[arg-type]


def test_write_retailer_writes_chunks_with_unique_ids(tmp_path):
    """A large retailer straight to Parquet, chunk by chunk: ids unique over chunks, the counts
    returned are the rows on disk, and the folder loads as contract tables."""
    import pyarrow.dataset as ds

    from vipml import load_tables
    from vipml.datasets import write_retailer

    out = tmp_path / "big"
    counts = write_retailer(
        out, 2500, seed=4, chunk_customers=1000, orders_per_customer_year=12.5, events=False
    )
    assert sorted(counts) == ["customers", "offers", "order_items", "orders"]
    for name, n in counts.items():
        assert ds.dataset(out / name, format="parquet").count_rows() == n
        assert len(list((out / name).glob("part-*.parquet"))) == 3
    orders = ds.dataset(out / "orders", format="parquet").to_table().to_pandas()
    customers = ds.dataset(out / "customers", format="parquet").to_table().to_pandas()
    assert customers["customer_id"].is_unique and len(customers) == 2500
    assert customers["customer_id"].astype(int).agg(["min", "max"]).tolist() == [100001, 102500]
    assert orders["order_id"].is_unique
    assert orders["customer_id"].isin(customers["customer_id"]).all()
    assert counts["orders"] / 2500 > 12  # denser histories than the default (~3.6 rows)
    tables, report = load_tables(out)
    assert len(tables.orders) == counts["orders"] and len(tables.customers) == 2500
    assert not list(tmp_path.glob(".big.tmp-*"))
    again = write_retailer(
        tmp_path / "again", 2500, seed=4, chunk_customers=1000, orders_per_customer_year=12.5,
        events=False,
    )  # fmt: skip
    assert again == counts
