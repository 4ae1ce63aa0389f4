"""The BTYD family: penalised BG/NBD and Gamma-Gamma fits, and the purchase-day summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vipml import load_tables
from vipml.config import load_config
from vipml.features import build_features
from vipml.features.btyd import (
    bgnbd_expected,
    bgnbd_p_alive,
    fit_bgnbd,
    fit_gamma_gamma,
)

from .conftest import AS_OF, raw_tables


def simulate_bgnbd(n, r, alpha, a, b, T, seed):
    """Repeat purchases of n customers under the BG/NBD story, observed for T weeks."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    x = np.zeros(n)
    tx = np.zeros(n)
    t = np.zeros(n)
    alive = np.ones(n, bool)
    for _ in range(200):  # rounds of purchases, vectorised over customers
        gap = rng.exponential(1 / np.maximum(lam, 1e-12))
        nxt = t + gap
        buy = alive & (nxt < T)
        x[buy] += 1
        tx[buy] = nxt[buy]
        t = np.where(buy, nxt, t)
        alive = buy & (rng.random(n) > p)
    return x, tx, np.full(n, float(T))


def test_bgnbd_recovers_its_parameters_from_simulated_customers():
    x, tx, T = simulate_bgnbd(6000, 0.5, 4.0, 0.8, 2.5, 39, seed=1)
    r, alpha, a, b = fit_bgnbd(x, tx, T)
    assert r == pytest.approx(0.5, rel=0.2) and alpha == pytest.approx(4.0, rel=0.3)
    assert a == pytest.approx(0.8, rel=0.35) and b == pytest.approx(2.5, rel=0.5)
    expected = bgnbd_expected(np.array([r, alpha, a, b]), x, tx, T, 39.0)
    assert np.isfinite(expected).all() and (expected >= 0).all()
    alive = bgnbd_p_alive(np.array([r, alpha, a, b]), x, tx, T)
    assert ((alive >= 0) & (alive <= 1)).all()
    # customers silent since long ago are less likely alive than those who just bought
    just = (x >= 3) & (tx > 35)
    silent = (x >= 3) & (tx < 10)
    assert alive[just].mean() > alive[silent].mean()


def test_the_penalty_keeps_a_never_churning_log_finite():
    """Wholesale buyers who never leave: the plain fit runs b (or 1/a) to a boundary; the
    penalised one stays finite and still ranks the heavy buyers first."""
    rng = np.random.default_rng(0)
    n = 500
    x = rng.integers(5, 40, n).astype(float)
    T = np.full(n, 52.0)
    tx = T - rng.uniform(0, 1.0, n)  # everyone bought in the last week
    plain = fit_bgnbd(x, tx, T, penalty=0.0)
    fitted = fit_bgnbd(x, tx, T)
    assert np.isfinite(fitted).all() and np.abs(np.log(fitted)).max() < 12
    assert np.abs(np.log(plain)).max() > np.abs(np.log(fitted)).max()
    expected = bgnbd_expected(fitted, x, tx, T, 13.0)
    assert np.corrcoef(expected, x)[0, 1] > 0.9


def test_gamma_gamma_shrinks_to_the_population_mean():
    rng = np.random.default_rng(2)
    n = 2000
    x = rng.integers(1, 10, n).astype(float)
    true_mean = rng.gamma(6.0, 5.0, n)
    m = np.array(
        [rng.gamma(4.0, mu / 4.0, int(k)).mean() for mu, k in zip(true_mean, x, strict=True)]
    )
    p, q, g = fit_gamma_gamma(x, m)
    assert q > 1 and p > 0 and g > 0
    pop = p * g / (q - 1)
    assert pop == pytest.approx(m.mean(), rel=0.15)


def test_day_summaries_match_a_plain_group_by():
    from vipml.datasets import make_retailer

    raw = make_retailer(800, seed=4).tables()
    tables = load_tables(raw)[0]
    as_of = pd.Timestamp("2024-06-01", tz="UTC")
    f = build_features(tables, as_of=as_of)
    o = tables.orders
    buys = o[(o["ordered_at"] < as_of) & (o["amount"] > 0) & ~o["is_cancelled"]]
    day = buys.assign(day=buys["ordered_at"].dt.floor("D"))
    days = day.groupby(["customer_id", "day"])["amount"].sum().reset_index()
    g = days.groupby("customer_id")
    expected_days = g.size().reindex(f.index, fill_value=0).astype(float)
    pd.testing.assert_series_equal(
        f["purchase_days_all"], expected_days, check_names=False, check_index_type=False
    )
    second = g["day"].nth(1).groupby(days.loc[g["day"].nth(1).index, "customer_id"]).first()
    first = g["day"].min()
    gap = ((second - first.reindex(second.index)).dt.days).reindex(f.index).astype(float)
    pd.testing.assert_series_equal(
        f["days_first_to_second_order"], gap, check_names=False, check_index_type=False
    )
    assert f["btyd_p_alive"].between(0, 1).all() or f["btyd_p_alive"].isna().any()
    assert (f["btyd_expected_spend"].dropna() >= 0).all()


def test_kept_order_columns_are_features_and_ignore_later_rows():
    raw = raw_tables()
    raw["orders"]["units"] = [1, 2, 3, 1, 4, 5, 100, 6, 7]
    raw["orders"]["store_id"] = [11, 12, 13, 14, 15, 16, 17, 18, 19]  # an id, not a quantity
    contract = ["order_id", "customer_id", "ordered_at", "amount", "discount", "channel", "status"]
    cfg = load_config(
        None,
        tables={"orders": {"keep": ["units", "store_id"], "columns": {c: c for c in contract}}},
    )
    base = build_features(load_tables(raw, config=cfg)[0], as_of=AS_OF, config=cfg)
    # a: o1 (1), o2 (2), o3 (3) are purchases; o4 is a return, o7 is at the cutoff
    assert base.loc["a", "units_all"] == 6 and base.loc["a", "units_per_order_all"] == 2
    late = raw_tables()
    late["orders"]["units"] = [1, 2, 3, 1, 4, 5, 9999, 6, 9999]  # o7 and o9 are at/after as_of
    late["orders"]["store_id"] = raw["orders"]["store_id"]
    assert not [c for c in base if c.startswith("store_id")]
    after = build_features(load_tables(late, config=cfg)[0], as_of=AS_OF, config=cfg)
    pd.testing.assert_frame_equal(after, base, check_exact=True)
    spec = base.attrs["feature_spec"]["features"]
    words = {f["name"]: (f["en"], f["ko"]) for f in spec}
    assert all(words[n][0] and words[n][1] for n in ("units_all", "units_per_order_all"))


def test_cdnow_bgnbd_is_close_to_the_published_fit(data_dir):
    from pathlib import Path

    from vipml.features.base import Context
    from vipml.features.btyd import day_summary, purchase_days

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "cdnow.yaml")
    tables, _ = load_tables(data_dir, config=cfg)
    ctx = Context.create(tables, cfg)
    s = day_summary(purchase_days(ctx), pd.Timestamp("1997-10-01", tz="UTC"))
    has = s["days"] > 0
    r, alpha, a, b = fit_bgnbd(s["x"][has], s["t_x"][has], s["T"][has] - 1 / 7)
    # Fader, Hardie and Lee (2005), 39 weeks of the 1/10 sample: 0.243, 4.414, 0.793, 2.426;
    # the small penalty moves a and b by 2-3%
    assert r == pytest.approx(0.243, rel=0.03) and alpha == pytest.approx(4.414, rel=0.03)
    assert a == pytest.approx(0.793, rel=0.05) and b == pytest.approx(2.426, rel=0.05)
