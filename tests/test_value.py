"""Expected value per customer: targets, timing, measures, the trained models and the list."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from vipml import load_tables
from vipml.value import (
    VALUE_COLUMNS,
    conformal_bins,
    decile_table,
    normalised_gini,
    purchase_summary,
    timing,
    value_labels,
    value_measures,
)

AS_OF = pd.Timestamp("2024-06-01", tz="UTC")


def _tables(rows):
    orders = pd.DataFrame(rows, columns=["order_id", "customer_id", "ordered_at", "amount"])
    return load_tables({"orders": orders})[0]


def _cycle_rows():
    """Customer a buys every 30 days; b twice; c once; d only after the cutoff."""
    rows = []
    for k in range(8):
        rows.append((f"a{k}", "a", AS_OF - pd.Timedelta(days=10 + 30 * k), 40.0))
    rows += [
        ("b0", "b", AS_OF - pd.Timedelta(days=200), 100.0),
        ("b1", "b", AS_OF - pd.Timedelta(days=100), 60.0),
        ("c0", "c", AS_OF - pd.Timedelta(days=50), 20.0),
        ("d0", "d", AS_OF + pd.Timedelta(days=3), 500.0),
    ]
    # a crowd so that BG/NBD has enough buyers to fit
    rng = np.random.default_rng(0)
    for i in range(60):
        for j in range(int(rng.integers(1, 5))):
            day = int(rng.integers(1, 300))
            rows.append((f"z{i}-{j}", f"z{i}", AS_OF - pd.Timedelta(days=day), 30.0))
    return rows


def _everyone(rows):
    return pd.Index(sorted({r[1] for r in rows}), name="customer_id")


def test_value_labels_read_only_the_window():
    rows = _cycle_rows()
    t = _tables(rows)
    ids = pd.Index(["a", "b", "c", "d"], name="customer_id")
    base = value_labels(t, as_of=AS_OF, horizon_days=30, customers=ids)
    assert base.loc["d", "spend"] == 500.0 and base.loc["d", "orders"] == 1
    assert base.loc["a", "spend"] == 0.0
    # rows before the window and at or after its end change nothing
    more = rows + [
        ("x1", "a", AS_OF - pd.Timedelta(seconds=1), 999.0),
        ("x2", "b", AS_OF + pd.Timedelta(days=30), 999.0),
    ]
    pd.testing.assert_frame_equal(
        value_labels(_tables(more), as_of=AS_OF, horizon_days=30, customers=ids), base
    )
    # two orders on one day are one purchase day
    same_day = rows + [("x3", "d", AS_OF + pd.Timedelta(days=3, hours=2), 10.0)]
    got = value_labels(_tables(same_day), as_of=AS_OF, horizon_days=30, customers=ids)
    assert got.loc["d", "orders"] == 1 and got.loc["d", "spend"] == 510.0


def test_timing_ignores_rows_at_or_after_as_of():
    rows = _cycle_rows()
    ids = _everyone(rows)
    base = timing(_tables(rows), as_of=AS_OF, customers=ids, horizon_days=90)
    late = rows + [
        ("late1", "a", AS_OF, 1e6),
        ("late2", "z1", AS_OF + pd.Timedelta(days=40), 5.0),
    ]
    pd.testing.assert_frame_equal(
        timing(_tables(late), as_of=AS_OF, customers=ids, horizon_days=90), base
    )
    assert base["p_alive"].notna().sum() == len(ids) - 1  # fitted; d bought nothing before
    # a row before the cutoff does change it
    early = rows + [("early", "c", AS_OF - pd.Timedelta(days=1), 5.0)]
    moved = timing(_tables(early), as_of=AS_OF, customers=ids, horizon_days=90)
    assert moved.loc["c", "next_order_at"] != base.loc["c", "next_order_at"]


def test_next_order_follows_the_customers_own_cycle():
    ids = _everyone(_cycle_rows())
    got = timing(_tables(_cycle_rows()), as_of=AS_OF, customers=ids, horizon_days=90)
    # a last bought 10 days before the cutoff, every 30 days; the crowd buys about every 100
    # days: the own cycle, shrunk a little toward the crowd's, puts the next order 20-40 days on
    gap = (got.loc["a", "next_order_at"] - AS_OF) / pd.Timedelta(days=1)
    assert 20 <= gap <= 40
    assert got.loc["a", "next_order_at"] >= AS_OF
    assert pd.isna(got.loc["d", "next_order_at"])  # nothing bought before the cutoff
    assert np.isnan(got.loc["d", "p_alive"])
    # a regular buyer is more likely alive than one silent for long after two buys
    assert got.loc["a", "p_alive"] > got.loc["b", "p_alive"]
    assert (got["clv_ratio"] > 1).all()  # 365 days hold more purchase days than 90


def test_purchase_summary_counts_days():
    s = purchase_summary(
        _tables(_cycle_rows()).orders, AS_OF, pd.Index(["a", "b"], name="customer_id")
    )
    assert s.loc["a", "days"] == 8 and s.loc["a", "x"] == 7
    assert s.loc["a", "t_x"] == pytest.approx(210 / 7)
    assert s.loc["b", "T"] == pytest.approx(200 / 7)


def test_measures():
    a = np.array([0.0, 0, 0, 10, 20, 100])
    assert normalised_gini(a, a) == pytest.approx(1.0)
    assert normalised_gini(a, -a) < 0
    assert abs(normalised_gini(a, np.ones(len(a)))) < 1e-12  # all tied: no ranking
    m = value_measures(a, a * 1.1)
    assert m["total_error"] == pytest.approx(0.1)
    assert m["spearman"] == pytest.approx(1.0)
    table = decile_table(a, a, bins=3)
    assert table["actual"].tolist() == [60.0, 5.0, 0.0]


def test_conformal_bins_cover_their_level():
    rng = np.random.default_rng(0)
    pred = rng.gamma(2.0, 50.0, 20_000)
    actual = pred * rng.lognormal(0, 0.5, len(pred))
    bins = conformal_bins(actual[:10_000], pred[:10_000], 0.8)
    edges = np.asarray(bins["edges"])
    b = np.searchsorted(edges, pred[10_000:], side="right")
    lo = pred[10_000:] * np.asarray(bins["low"])[b]
    hi = pred[10_000:] * np.asarray(bins["high"])[b]
    covered = ((actual[10_000:] >= lo) & (actual[10_000:] <= hi)).mean()
    assert 0.77 < covered < 0.83


def test_bundle_carries_value_models(vip_bundle_5k):
    v = vip_bundle_5k.value
    assert v is not None and v.kind in ("hurdle", "tweedie")
    info = v.info
    assert info["spend_model"] == v.kind
    assert set(info["validation_deviance"]) == {"hurdle", "tweedie"}
    chosen = min(info["validation_deviance"], key=info["validation_deviance"].get)
    assert chosen == v.kind
    test = info["test"]["spend"]
    assert 0.7 <= test["interval_coverage"] <= 1.0
    assert test["gini"] > 0.3 and abs(test["total_error"]) < 0.5
    # the test fold's window ends by the data's end, after every training window
    assert info["test_cutoffs"][0] == vip_bundle_5k.info["folds"]["test"][0]


def test_target_list_has_value_columns(loaded_5k, vip_bundle_5k):
    from vipml.score import score

    tables = loaded_5k[0]
    as_of = vip_bundle_5k.info["folds"]["test"][0]
    t = score(tables, vip_bundle_5k, as_of=as_of).targets
    for col in VALUE_COLUMNS:
        assert col in t
    assert (t["spend_low"] <= t["expected_spend"] + 1e-9).all()
    assert (t["expected_spend"] <= t["spend_high"] + 1e-9).all()
    assert (t["expected_spend"] >= 0).all() and (t["expected_orders"] >= 0).all()
    bought = t["p_alive"].notna()
    assert bought.mean() > 0.5
    assert (t.loc[bought, "next_order_at"] >= pd.Timestamp(as_of)).all()
    assert t["clv_12m"].sum() > 0
    # deterministic
    again = score(tables, vip_bundle_5k, as_of=as_of).targets
    pd.testing.assert_frame_equal(t, again)
    # the expected spend can be the value of a conversion
    from vipml.config import load_config

    cfg = load_config(None, score={"value_feature": "expected_spend"}, tracking={"enabled": False})
    by_spend = score(tables, vip_bundle_5k, as_of=as_of, config=cfg).targets
    expected = (
        np.where(by_spend["expected_spend"] > 0, by_spend["expected_spend"], cfg.score.value)
        * by_spend["score"].fillna(0)
        - cfg.score.cost
    )
    inside = by_spend["in_population"].astype(bool)
    np.testing.assert_allclose(by_spend.loc[inside, "expected_value"], expected[inside])


def test_damaged_value_file_is_refused(vip_bundle_5k, tmp_path):
    from vipml.bundle import load_bundle
    from vipml.errors import DataError

    folder = tmp_path / "b"
    shutil.copytree(vip_bundle_5k.path, folder)
    info = json.loads((folder / "bundle.json").read_text())
    data = json.loads((folder / "value.json").read_text())
    data["interval"]["low"] = ["x"]
    (folder / "value.json").write_text(json.dumps(data))
    info["files"].pop("value.json")  # checksums alone would catch it: check the contents too
    (folder / "bundle.json").write_text(json.dumps(info))
    with pytest.raises(DataError, match="value.json"):
        load_bundle(folder)


def test_value_folds_never_read_a_later_folds_window(vip_bundle_5k):
    info = vip_bundle_5k.value.info
    h = pd.Timedelta(days=vip_bundle_5k.value.horizon_days)
    folds = {k: [pd.Timestamp(c) for c in v] for k, v in info["folds"].items()}
    assert folds["train"] and folds["valid"] and folds["test"]
    assert max(folds["train"]) + h <= min(folds["valid"])
    assert max(folds["valid"]) + h <= min(folds["test"])
    data_end = pd.Timestamp(vip_bundle_5k.info["folds"]["test"][0]) + h
    assert all(pd.Timestamp(c) + h <= data_end for c in info["shipped_cutoffs"])


def test_value_columns_ignore_rows_at_or_after_the_cutoff(loaded_5k, vip_bundle_5k):
    from vipml.score import score

    tables = loaded_5k[0]
    as_of = pd.Timestamp(vip_bundle_5k.info["folds"]["test"][0])
    base = score(tables, vip_bundle_5k, as_of=as_of).targets
    who = base["customer_id"].iloc[5]
    late = tables.orders.iloc[[0, 0]].copy()
    late["order_id"] = ["late-1", "late-2"]
    late["customer_id"] = who
    late["ordered_at"] = [as_of, as_of + pd.Timedelta(days=3)]
    late["amount"] = 1e6
    more = tables.replace(orders=pd.concat([tables.orders, late], ignore_index=True))
    got = score(more, vip_bundle_5k, as_of=as_of).targets
    pd.testing.assert_frame_equal(got[VALUE_COLUMNS], base[VALUE_COLUMNS])


# ---------------------------------------------------------------- timing: one fit, any split
CUTS = [pd.Timestamp("2025-01-01", tz="UTC"), pd.Timestamp("2024-06-01 13:45:10.123", tz="UTC")]


def _btyd_summary(tables, as_of):
    """The BTYD family's per-customer summary (its ``_btyd_*`` columns) at ``as_of``."""
    from vipml.config import load_config
    from vipml.features import build_snapshots
    from vipml.features.btyd import DEFER

    cfg = load_config(None, features={"families": ["btyd"]})
    frame = build_snapshots(tables, cutoffs=[as_of], config=cfg, population={"btyd": DEFER})
    return frame.xs(as_of, level="as_of")


@pytest.mark.parametrize("as_of", CUTS)
def test_purchase_days_are_the_btyd_familys(loaded_5k, as_of):
    """One definition of a purchase day: the value timing's summary equals the BTYD family's
    bit for bit (cancelled rows, returns, several orders a day and a cutoff inside a day
    included), and so does the BG/NBD fit of the population."""
    from vipml.features.btyd import SUMMARY, fit_population
    from vipml.value import timing_fit

    tables = loaded_5k[0]
    orders = tables.orders
    assert orders["is_cancelled"].any() and orders["is_return"].any()
    btyd = _btyd_summary(tables, as_of)
    s = purchase_summary(tables.orders, as_of, btyd.index)
    for k in ("days", "x", "t_x", "T"):
        a, b = s[k].to_numpy(), btyd[f"_btyd_{k}"].to_numpy()
        assert a.tobytes() == b.tobytes(), k
    assert (s["days"] > 1).sum() > 1000  # repeat buyers, several of them with same-day orders
    buyers = btyd["_btyd_days"].to_numpy() > 0
    whole = fit_population(
        {k: btyd[f"_btyd_{k}"].to_numpy()[buyers] for k in SUMMARY},
        btyd.index.to_numpy(dtype=object)[buyers],
    )
    assert timing_fit(s)["bgnbd"].tobytes() == whole["bgnbd"].tobytes()


def test_scoring_reuses_the_btyd_features_fit(loaded_5k, monkeypatch):
    """After the features (BTYD family) are built, the timing's BG/NBD fit of the same buyers
    is read back, not fitted a second time."""
    import vipml.features.btyd as btyd
    from vipml.features import build_features

    tables, as_of = loaded_5k[0], CUTS[0]
    btyd._FITTED.clear()
    X = build_features(tables, as_of=as_of)
    fitted = []
    real = btyd._fit
    monkeypatch.setattr(btyd, "_fit", lambda *a, **k: fitted.append(1) or real(*a, **k))
    got = timing(tables, as_of=as_of, customers=X.index, horizon_days=90)
    assert not fitted and got["p_alive"].notna().sum() > 3000
    btyd._FITTED.clear()  # nothing to read back: the fit runs, and gives the same bits
    again = timing(tables, as_of=as_of, customers=X.index, horizon_days=90)
    assert len(fitted) == 1
    pd.testing.assert_frame_equal(again, got, check_exact=True)


@pytest.mark.parametrize("limit", [100_000, 700])
def test_timing_bucket_by_bucket_equals_the_whole(loaded_5k, monkeypatch, limit):
    """Customers split in buckets, each with its own summary and the population's fit from the
    buckets' candidates, get the whole population's timing bit for bit; the customers' order
    does not matter (also when the fit samples: ``limit`` buyers of about 4,000)."""
    import vipml.features.btyd as btyd
    from vipml.buckets import timing_candidates
    from vipml.value import summary_columns, summary_from_columns, timing_fit

    monkeypatch.setattr(btyd, "MAX_FIT_CUSTOMERS", limit)
    tables, as_of = loaded_5k[0], CUTS[1]
    ids = tables.known_at(as_of).sort_values()
    whole = timing(tables, as_of=as_of, customers=ids, horizon_days=90)
    shuffled = ids[np.random.default_rng(3).permutation(len(ids))]
    pd.testing.assert_frame_equal(
        timing(tables, as_of=as_of, customers=shuffled, horizon_days=90).loc[ids], whole
    )
    merged, parts = None, np.array_split(shuffled, 4)
    summaries = []
    for part in parts:
        s = purchase_summary(tables.orders, as_of, pd.Index(part, name="customer_id"))
        summaries.append(s)
        found = timing_candidates(pd.DataFrame(summary_columns(s)), part)
        merged = btyd.merge_candidates(merged, found)
    fit = btyd.fit_from_candidates(merged)
    assert (
        fit["bgnbd"].tobytes()
        == timing_fit(purchase_summary(tables.orders, as_of, ids))["bgnbd"].tobytes()
    )
    # as a bucket hands it over: float columns beside the features (the last day as a number)
    summaries[0] = summary_from_columns(pd.DataFrame(summary_columns(summaries[0]), index=parts[0]))
    got = pd.concat(
        timing(None, as_of=as_of, customers=s.index, horizon_days=90, fit=fit, summary=s)
        for s in summaries
    ).loc[ids]
    pd.testing.assert_frame_equal(got, whole, check_exact=True)


# ---------------------------------------------------------------- next order: the cycle weight
def _gap_rows(regular: bool, seed: int = 1):
    """120 customers buying from about 400 days before AS_OF to 200 days after: each at a gap
    of its own, exactly (``regular``) or as a Poisson process with one rate for all."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(120):
        start = -400 + float(rng.uniform(0, 30))
        if regular:
            gap = float(rng.uniform(15, 60))
            days = start + gap * np.arange(60)
        else:
            days = start + np.cumsum(rng.exponential(30.0, 60))
        for k, d in enumerate(days[days < 200]):
            rows.append((f"o{i}-{k}", f"c{i}", AS_OF + pd.Timedelta(days=float(d)), 25.0))
    return rows


def test_cycle_weight_follows_the_training_windows():
    from vipml.value import CYCLE_PRIORS, choose_cycle_prior, next_order_errors

    cuts = [AS_OF - pd.Timedelta(days=120), AS_OF - pd.Timedelta(days=60)]
    regular = _tables(_gap_rows(regular=True))
    table = next_order_errors(regular, cuts, horizon_days=60)
    assert table["prior"].tolist() == list(CYCLE_PRIORS)
    assert (table["customers"] > 100).all()
    prior, info = choose_cycle_prior(regular, cuts, horizon_days=60, test=[AS_OF])
    # each customer keeps a gap of its own, exactly: its own gap is the best guess
    assert prior == 0.1
    assert info["training_mae_days"]["0.1"] == min(info["training_mae_days"].values()) < 2
    assert info["training_mae_days"]["16"] > 5 * info["training_mae_days"]["0.1"]
    assert info["test_mae_days_chosen"] == info["test_mae_days"]["0.1"] < info["test_mae_days"]["2"]
    # one Poisson rate for everyone: a customer's own mean gap is noise, the population's helps
    noisy, _ = choose_cycle_prior(_tables(_gap_rows(regular=False)), cuts, horizon_days=60)
    assert noisy > 0.1
    # no repeat buyer in any window: the default
    assert choose_cycle_prior(regular, [AS_OF - pd.Timedelta(days=600)], horizon_days=60)[0] == 2


def test_cycle_weight_reads_nothing_after_the_training_windows():
    from vipml.value import next_order_errors

    rows = _gap_rows(regular=False)
    cuts = [AS_OF - pd.Timedelta(days=120), AS_OF - pd.Timedelta(days=60)]
    base = next_order_errors(_tables(rows), cuts, horizon_days=60)
    # rows at or after the last window's end (AS_OF) change nothing
    later = [r for r in rows if r[2] < AS_OF] + [("late", "c1", AS_OF, 9.0)]
    pd.testing.assert_frame_equal(next_order_errors(_tables(later), cuts, horizon_days=60), base)
    # a first purchase moved inside a window does
    inside = [r for r in rows if r[2] < AS_OF] + [
        ("new", "c1", AS_OF - pd.Timedelta(days=119, hours=12), 9.0)
    ]
    moved = next_order_errors(_tables(inside), cuts, horizon_days=60)
    assert not np.allclose(moved["mae_days"], base["mae_days"])


def test_bundle_keeps_the_chosen_cycle_weight(vip_bundle_5k, loaded_5k, tmp_path):
    import dataclasses

    from vipml.bundle import load_bundle
    from vipml.score import score
    from vipml.value import CYCLE_PRIOR, CYCLE_PRIORS

    v = vip_bundle_5k.value
    nxt = v.info["next_order"]
    assert v.cycle_prior == nxt["cycle_prior"] and v.cycle_prior in CYCLE_PRIORS
    maes = nxt["training_mae_days"]
    assert maes[f"{v.cycle_prior:g}"] == min(maes.values())
    assert nxt["training_customers"] > 50
    # chosen on windows that end by the test cutoff; the test fold is only measured
    h = pd.Timedelta(days=v.horizon_days)
    test = pd.Timestamp(v.info["test_cutoffs"][0])
    assert all(pd.Timestamp(c) + h <= test for c in nxt["cutoffs"])
    assert np.isfinite(nxt["test_mae_days_chosen"])
    # scoring passes it to timing
    tables = loaded_5k[0]
    as_of = pd.Timestamp(vip_bundle_5k.info["folds"]["test"][0])
    other = 16.0 if v.cycle_prior != 16.0 else 0.0
    swapped = dataclasses.replace(vip_bundle_5k, value=dataclasses.replace(v, cycle_prior=other))
    t = score(tables, swapped, as_of=as_of).targets.set_index("customer_id")
    want = timing(tables, as_of=as_of, customers=t.index, horizon_days=v.horizon_days, prior=other)
    pd.testing.assert_series_equal(
        t["next_order_at"], want["next_order_at"], check_names=False, check_dtype=False
    )
    # a bundle written before the choice (no cycle_prior in value.json) loads with the default
    folder = tmp_path / "old"
    shutil.copytree(vip_bundle_5k.path, folder)
    data = json.loads((folder / "value.json").read_text())
    data.pop("cycle_prior")
    (folder / "value.json").write_text(json.dumps(data))
    info = json.loads((folder / "bundle.json").read_text())
    info["files"].pop("value.json")
    (folder / "bundle.json").write_text(json.dumps(info))
    assert load_bundle(folder).value.cycle_prior == CYCLE_PRIOR


# ---------------------------------------------------------------- blend with BG/NBD + Gamma-Gamma
def test_blend_and_its_choice():
    from vipml.value import blend, choose_blend

    pred = np.array([1.0, 2.0, 3.0, 4.0])
    base = np.array([2.0, np.nan, 0.0, 8.0])
    got = blend(pred, base, 0.25, 0.5)
    # 0.25 x pred + 0.75 x 0.5 x base; LightGBM alone where BTYD says nothing
    np.testing.assert_allclose(got, [0.25 + 0.75, 2.0, 0.75, 1.0 + 3.0])
    np.testing.assert_allclose(blend(pred, base, 1.0, 3.0), pred)
    rng = np.random.default_rng(0)
    mean = rng.gamma(0.5, 2.0, 20_000)
    actual = rng.poisson(mean).astype(float)
    noise = mean * rng.lognormal(0, 1.0, len(mean))
    # BTYD (here at another horizon: half the scale) holds the truth, LightGBM is noisy
    good_base = choose_blend(actual, noise, mean / 2)
    assert good_base["weight"] <= 0.2 and good_base["scale"] == pytest.approx(2.0, rel=0.15)
    assert good_base["deviance"] < good_base["lightgbm_deviance"]
    # LightGBM holds the truth: it is kept alone
    assert choose_blend(actual, mean, noise)["weight"] >= 0.9
    assert choose_blend(actual, mean, np.full(len(mean), np.nan))["weight"] == 1.0
    # a gain under 1% of the deviance is noise: LightGBM alone
    slightly = choose_blend(actual, mean * 1.02, mean)
    assert slightly["weight"] == 1.0 and slightly["best_blend"]["weight"] < 1.0
    # BTYD of the label's horizon: the scale given (1) instead of the ratio of totals
    as_is = choose_blend(actual, noise, mean, scale=1.0)
    assert as_is["weight"] <= 0.2 and as_is["scale"] == 1.0


def test_btyd_mode_choice():
    from vipml.value import choose_btyd_mode

    ways = {"lightgbm": {"deviance": 1.0}, "blend": {"deviance": 0.95}, "boost": {"deviance": 0.9}}
    assert choose_btyd_mode(ways) == "boost"  # the lower validation deviance
    assert choose_btyd_mode({**ways, "boost": {"deviance": 0.999}}) == "blend"
    # under 1% below LightGBM alone: noise, LightGBM alone
    close = {"lightgbm": {"deviance": 1.0}, "blend": {"deviance": 0.995}}
    assert choose_btyd_mode(close) == "lightgbm"
    assert choose_btyd_mode({"lightgbm": {"deviance": 1.0}}) == "lightgbm"
    # a way asked for is taken as it is (when it was measured)
    assert choose_btyd_mode(close, "blend") == "blend"
    assert choose_btyd_mode({"lightgbm": {"deviance": 1.0}}, "boost") == "lightgbm"


def test_bundle_btyd_mode_is_chosen_on_validation(vip_bundle_5k):
    from vipml.value import HORIZON_BASE, choose_btyd_mode

    v = vip_bundle_5k.value
    for target, b in v.info["btyd"].items():
        dev = b["validation_deviance"]
        assert set(dev) == {"lightgbm", "blend", "boost"}
        assert b["mode"] == choose_btyd_mode({k: {"deviance": d} for k, d in dev.items()})
        assert set(b["test"]) == set(dev)  # every way measured on the test fold, for the record
        assert (target in v.blend) == (b["mode"] == "blend")
        assert (target in v.boost) == (b["mode"] == "boost")
        if target in v.blend:
            assert v.blend[target] == {
                "column": HORIZON_BASE, "weight": b["blend_weight"], "scale": 1.0
            }  # fmt: skip
    # BG/NBD + Gamma-Gamma on the test fold is measured at the models' horizon
    assert {"bgnbd_spend", "bgnbd_orders"} <= set(v.info["test"])


def test_btyd_at_the_horizon_equals_the_features_at_the_labels_horizon(loaded_5k):
    """At the labels' horizon, BG/NBD + Gamma-Gamma at the horizon (the timing's expected
    purchase days times the Gamma-Gamma feature) is the BTYD family's feature pair."""
    from vipml.features import build_features
    from vipml.value import horizon_base

    tables, as_of = loaded_5k[0], CUTS[0]
    X = build_features(tables, as_of=as_of)  # labels.horizon_days: 90
    t = timing(tables, as_of=as_of, customers=X.index, horizon_days=90)
    base = horizon_base(X, t["expected_days"].to_numpy())
    for target, col in (("orders", "btyd_expected_orders"), ("spend", "btyd_expected_spend")):
        want = X[col].to_numpy(dtype=float)
        assert np.isfinite(want).sum() > 3000
        np.testing.assert_allclose(base[target], want, rtol=1e-12, equal_nan=True)
    assert np.isnan(horizon_base(None, t["expected_days"].to_numpy())["spend"]).all()


def test_blend_is_applied(vip_bundle_5k, loaded_5k, tmp_path):
    import dataclasses

    from vipml.bundle import load_bundle
    from vipml.config import Config
    from vipml.features import build_features
    from vipml.value import BLEND_COLUMNS, HORIZON_BASE, horizon_base

    v = vip_bundle_5k.value
    tables = loaded_5k[0]
    as_of = pd.Timestamp(vip_bundle_5k.info["folds"]["test"][0])
    cfg = Config.model_validate(vip_bundle_5k.config)  # the bundle's features, as scoring builds
    X = build_features(tables, as_of=as_of, config=cfg).head(300)
    alone = dataclasses.replace(v, blend={}, boost={}).predict(X)
    # at the horizon: weight x LightGBM + (1 - weight) x BTYD at the horizon, as it is
    t = timing(tables, as_of=as_of, customers=X.index, horizon_days=v.horizon_days)
    base = horizon_base(X, t["expected_days"].to_numpy())
    mix = {t: {"column": HORIZON_BASE, "weight": 0.5, "scale": 1.0} for t in BLEND_COLUMNS}
    at_h = dataclasses.replace(v, blend=mix, boost={})
    with pytest.raises(ValueError, match="horizon"):
        at_h.predict(X)
    mixed = at_h.predict(X, base=base)
    for target, key in (("expected_spend", "spend"), ("expected_orders", "orders")):
        b = base[key]
        want = np.where(np.isnan(b), alone[target], 0.5 * alone[target] + 0.5 * b)
        np.testing.assert_allclose(mixed[target], np.maximum(want, 0))
    # bundles from before: a BTYD feature column, scaled
    mix = {t: {"column": c, "weight": 0.5, "scale": 2.0} for t, c in BLEND_COLUMNS.items()}
    mixed = dataclasses.replace(v, blend=mix, boost={}).predict(X)
    for target, col in (("expected_spend", "btyd_expected_spend"),
                        ("expected_orders", "btyd_expected_orders")):  # fmt: skip
        b = X[col].to_numpy(dtype=float)
        want = np.where(np.isnan(b), alone[target], 0.5 * alone[target] + b)
        np.testing.assert_allclose(mixed[target], np.maximum(want, 0))
    # older bundles (no blend in value.json) load without one; a damaged one is refused
    folder = tmp_path / "old"
    shutil.copytree(vip_bundle_5k.path, folder)
    data = json.loads((folder / "value.json").read_text())
    info = json.loads((folder / "bundle.json").read_text())
    info["files"].pop("value.json")
    (folder / "bundle.json").write_text(json.dumps(info))
    old = {k: v for k, v in data.items() if k not in ("blend", "boost")}
    (folder / "value.json").write_text(json.dumps(old))
    loaded = load_bundle(folder).value
    assert loaded.blend == {} and loaded.boost == {}
    from vipml.errors import DataError

    bad = [
        {"blend": {"spend": {"column": "btyd_expected_spend", "weight": 2.0, "scale": 1.0}}},
        {"blend": {"spend": {"column": "no_such_column", "weight": 0.5, "scale": 1.0}}},
        {"boost": {"orders": {"fallback": -1.0}}},
        {"boost": {"visits": {"fallback": 1.0}}},
    ]
    for change in bad:
        (folder / "value.json").write_text(json.dumps({**data, **change}))
        with pytest.raises(DataError, match="value.json"):
            load_bundle(folder)


# ---------------------------------------------------------------- boosted from BG/NBD + GG
def test_boosted_bundle_saves_loads_and_predicts(boost_bundle_5k, loaded_5k, tmp_path):
    """``value.with_btyd: boost``: LightGBM started at log BTYD at the horizon; value.json
    records it, the models load back, and a prediction is exp(raw score + log BTYD)."""
    import dataclasses

    from vipml.bundle import load_bundle
    from vipml.config import Config
    from vipml.features import build_features
    from vipml.model import prepare_matrix
    from vipml.value import BASE_FLOOR, horizon_base

    v = boost_bundle_5k.value
    assert v.kind == "tweedie" and set(v.boost) == {"spend", "orders"} and not v.blend
    data = json.loads((boost_bundle_5k.path / "value.json").read_text())
    assert set(data["boost"]) == {"spend", "orders"}
    for target, b in v.info["btyd"].items():
        assert b["mode"] == b["asked"] == "boost" and b["boost_trees"] >= 1
        assert v.info["trees"][target] == b["boost_trees"]
    tables = loaded_5k[0]
    as_of = pd.Timestamp(boost_bundle_5k.info["folds"]["test"][0])
    cfg = Config.model_validate(boost_bundle_5k.config)
    X = build_features(tables, as_of=as_of, config=cfg).head(400)
    t = timing(tables, as_of=as_of, customers=X.index, horizon_days=v.horizon_days)
    base = horizon_base(X, t["expected_days"].to_numpy())
    with pytest.raises(ValueError, match="horizon"):
        v.predict(X)
    got = v.predict(X, base=base)
    M = prepare_matrix(X, v.features, v.categories)
    for target, key in (("expected_spend", "spend"), ("expected_orders", "orders")):
        b = base[key]
        start = np.log(np.maximum(np.where(np.isnan(b), v.boost[key]["fallback"], b), BASE_FLOOR))
        raw = v.boosters[key].predict(M, raw_score=True)
        np.testing.assert_allclose(got[target], np.exp(raw + start), rtol=1e-12)
        # not BTYD as it is: the trees move it
        assert not np.allclose(got[target], np.nan_to_num(b), rtol=1e-6)
    # written and read back: the same predictions, bit for bit
    v.to_folder(tmp_path)
    for name in v.boosters:
        assert (tmp_path / f"value_{name}.txt").is_file()
    again = load_bundle(boost_bundle_5k.path).value
    pd.testing.assert_frame_equal(again.predict(X, base=base), got, check_exact=True)
    # without the boost, the same boosters are plain LightGBM (another prediction)
    plain = dataclasses.replace(v, boost={}).predict(X)
    assert not np.allclose(plain["expected_orders"], got["expected_orders"])


def test_btyd_at_the_horizon_reads_nothing_at_or_after_the_cutoff(loaded_5k):
    """The start of the boosted models at training: BG/NBD at the horizon as of each cutoff,
    from purchases strictly before it (rows at the cutoff instant and after change nothing)."""
    from vipml.config import load_config
    from vipml.features import build_snapshots
    from vipml.value import training_base

    tables = loaded_5k[0]
    cut = pd.Timestamp("2024-06-01", tz="UTC")
    cfg = load_config(None, features={"families": ["btyd"]})
    feats = build_snapshots(tables, cutoffs=[cut], config=cfg)
    base = training_base(feats, tables, 90)
    assert np.isfinite(base["orders"]).sum() > 2000 and np.isfinite(base["spend"]).sum() > 2000
    who = feats.index.get_level_values("customer_id")[7]
    late = tables.orders.iloc[[0, 0, 0]].copy()
    late["order_id"] = ["late-1", "late-2", "late-3"]
    late["customer_id"] = who
    late["ordered_at"] = [cut, cut + pd.Timedelta(days=2), cut + pd.Timedelta(days=40)]
    late["amount"] = 1e6
    more = tables.replace(orders=pd.concat([tables.orders, late], ignore_index=True))
    again = training_base(feats, more, 90)
    for key in ("orders", "spend"):
        assert base[key].tobytes() == again[key].tobytes()
    # a purchase before the cutoff does change it
    early = late.assign(ordered_at=cut - pd.Timedelta(days=1))
    moved = training_base(feats, tables.replace(orders=pd.concat([tables.orders, early])), 90)
    assert moved["orders"].tobytes() != base["orders"].tobytes()


def test_boosted_value_columns_ignore_rows_at_or_after_the_cutoff(loaded_5k, boost_bundle_5k):
    from vipml.score import score

    tables = loaded_5k[0]
    as_of = pd.Timestamp(boost_bundle_5k.info["folds"]["test"][0])
    base = score(tables, boost_bundle_5k, as_of=as_of).targets
    who = base["customer_id"].iloc[5]
    late = tables.orders.iloc[[0, 0]].copy()
    late["order_id"] = ["late-1", "late-2"]
    late["customer_id"] = who
    late["ordered_at"] = [as_of, as_of + pd.Timedelta(days=3)]
    late["amount"] = 1e6
    more = tables.replace(orders=pd.concat([tables.orders, late], ignore_index=True))
    got = score(more, boost_bundle_5k, as_of=as_of).targets
    pd.testing.assert_frame_equal(got[VALUE_COLUMNS], base[VALUE_COLUMNS])
