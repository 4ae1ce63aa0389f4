"""The shipped mappings on the public data sets (skipped when VIPML_DATA_DIR is absent)."""

from __future__ import annotations

import pandas as pd
import pytest

from vipml import load_tables
from vipml.cli import main
from vipml.config import load_config

from .conftest import ROOT

pytestmark = pytest.mark.realdata


def test_cdnow_through_the_shipped_mapping(data_dir):
    tables, report = load_tables(data_dir, config=ROOT / "configs" / "cdnow.yaml")
    o = report.tables["orders"]
    assert (o.rows_in, o.rows_kept, o.rows_quarantined) == (6919, 6919, 0)
    assert report.customers == 2357
    assert report.date_range == (
        pd.Timestamp("1997-01-01", tz="UTC"),
        pd.Timestamp("1998-06-30", tz="UTC"),
    )
    assert tables.orders["customer_id"].str.len().eq(5).all()  # leading zeros kept: "00004"
    assert tables.orders["amount"].sum() == pytest.approx(
        244_091.94, abs=0.01
    )  # awk sum of column 5


def test_hillstrom_customers_and_one_offer_each(data_dir):
    tables, report = load_tables(data_dir, config=ROOT / "configs" / "hillstrom.yaml")
    assert report.tables["customers"].rows_kept == 64_000
    assert report.tables["offers"].rows_kept == 64_000
    offers = tables.offers
    assert offers["group"].value_counts().to_dict() == {"treatment": 42_694, "control": 21_306}
    accepted = offers["accepted_at"].notna()
    assert accepted.groupby(offers["segment"]).mean().round(5).to_dict() == {
        "Mens E-Mail": 0.01253,
        "No E-Mail": 0.00573,
        "Womens E-Mail": 0.00884,
    }
    assert (offers.loc[accepted, "accepted_at"] >= offers.loc[accepted, "sent_at"]).all()
    assert offers.groupby("segment")["spend"].mean().round(3).to_dict()["Mens E-Mail"] == 1.423
    assert "history" in tables.customers and tables.customers["history"].dtype == "float64"


def test_cli_reports_the_cdnow_counts_from_any_folder(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIPML_DATA_DIR", str(data_dir))
    assert main(["validate", "--config", str(ROOT / "configs" / "cdnow.yaml")]) == 0
    out = capsys.readouterr().out
    assert "6,919" in out and "2,357" in out


def test_shipped_configs_are_valid():
    for path in (ROOT / "configs").glob("*.yaml"):
        load_config(path)


def test_loaders_for_the_public_data(data_dir):
    from vipml.datasets import load_cdnow, load_hillstrom

    tables, report = load_cdnow(data_dir)
    assert len(tables.orders) == 6919 and report.customers == 2357
    tables, _ = load_hillstrom(data_dir)
    assert len(tables.offers) == 64_000 and tables.orders is None


def test_loaders_say_where_to_point_when_the_data_is_absent(tmp_path):
    from vipml import DataError
    from vipml.datasets import load_cdnow

    with pytest.raises(DataError, match="VIPML_DATA_DIR"):
        load_cdnow(tmp_path)


def test_cdnow_vip_conversion_beats_the_rfm_baseline_on_pr_auc(data_dir, monkeypatch):
    from vipml.train import train

    monkeypatch.setenv("VIPML_DATA_DIR", str(data_dir))
    config = load_config(ROOT / "configs" / "cdnow-vip.yaml")
    tables, _ = load_tables(config=config)
    result = train(tables, config)
    assert result.plan.cutoffs[-1] == pd.Timestamp("1997-09-30", tz="UTC")
    assert result.plan.horizon_at(result.plan.cutoffs[-1]) == 273
    assert "91-day horizon" in result.plan.notes[0]
    m = result.metrics
    assert m.loc["model", "pr_auc"] > m.loc["rfm_heuristic", "pr_auc"]
    assert m.loc["model", "rows"] == 2121  # 2,357 customers less the 236 VIPs at the cutoff


@pytest.mark.parametrize("event", ["accepted", "clicked"])
def test_hillstrom_offer_response_among_the_treated(data_dir, monkeypatch, event):
    from vipml.train import train

    monkeypatch.setenv("VIPML_DATA_DIR", str(data_dir))
    config = load_config(
        ROOT / "configs" / "hillstrom-upsell.yaml",
        labels={"acceptance_days": 14, "offer_event": event, "observed_until": "2008-03-15"},
    )
    tables, _ = load_tables(config=config)
    result = train(tables, config)
    rows = sum(int(m.sum()) for m in [result.backtest["rows"]])
    assert rows == 42_694  # the two e-mailed arms
    assert "random split" in result.plan.notes[0]
    m = result.metrics
    assert m.loc["model", "roc_auc"] > 0.55  # better than chance on the test fifth
    assert set(m.index) == {"model", "logistic_regression"}  # no orders: no RFM baseline


def test_cdnow_driver_report_with_orders_only(data_dir, monkeypatch, tmp_path):
    """A report from one real table: purchase histories only, no events, offers or customers."""
    from vipml.bundle import load_bundle, save_bundle
    from vipml.report import build_report, render_report
    from vipml.train import train

    monkeypatch.setenv("VIPML_DATA_DIR", str(data_dir))
    config = load_config(ROOT / "configs" / "cdnow-vip.yaml", tracking={"enabled": False})
    tables, validation = load_tables(config=config)
    bundle = load_bundle(
        save_bundle(train(tables, config), tables=tables, config=config, out=tmp_path)
    )
    data = build_report(tables, bundle, as_of="1998-07-01", config=config, validation=validation)
    a = data.pareto.attrs
    assert a["customers"] == 2357
    # the VIPs (top 10% of trailing-year spend) hold most of that year's revenue
    assert 0.5 < a["vip_revenue_share"] < 1.0
    assert data.converters is not None and data.converters_counts[0] > 0
    for lang in ("en", "ko"):
        page = render_report(data, lang=lang)
        assert '<section id="compare">' in page and page.count('<svg class="chart"') >= 8


def test_cdnow_features_as_of_t_depend_on_rows_before_t_alone(data_dir):
    """CDNOW has several orders of one customer on one day: changing rows on or after the
    cutoff (tripled amounts, two later orders) changes no feature, to the last bit."""
    from vipml.features import build_features

    tables, _ = load_tables(data_dir, config=ROOT / "configs" / "cdnow.yaml")
    orders = tables.orders.drop(columns=["is_return", "is_cancelled"])
    as_of = pd.Timestamp("1997-10-01", tz="UTC")
    base = build_features(load_tables({"orders": orders})[0], as_of=as_of)
    late = orders["ordered_at"] >= as_of
    changed = orders.assign(amount=orders["amount"].where(~late, orders["amount"] * 3))
    extra = changed.iloc[:2].assign(
        order_id=["late-1", "late-2"], ordered_at=pd.Timestamp("1998-03-01", tz="UTC")
    )
    changed = pd.concat([extra, changed], ignore_index=True)
    after = build_features(load_tables({"orders": changed})[0], as_of=as_of)
    pd.testing.assert_frame_equal(after.loc[base.index], base, check_exact=True)


def _rfm_quintiles(f: pd.DataFrame) -> pd.Series:
    """Classic RFM: quintiles (1-5) of -recency, orders and spend, summed (spend breaks ties)."""

    def q(s: pd.Series) -> pd.Series:
        return pd.qcut(s.rank(method="first"), 5, labels=False) + 1

    return (
        q(-f["recency_days"].fillna(1e9))
        + q(f["orders_all"])
        + q(f["spend_all"])
        + 1e-9 * f["spend_all"].rank()
    )


def test_cdnow_acceptance_every_customer_top_spenders_of_the_next_39_weeks(
    data_dir, monkeypatch, tmp_path
):
    """The published split: the model sees rows before 1997-10-01 only (the tables are cut
    there); the label is the top 10% of spend in the next 273 days, over every customer."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    from vipml.bundle import load_bundle, save_bundle
    from vipml.features import build_features
    from vipml.score import score
    from vipml.train import train
    from vipml.vip import window_spend

    monkeypatch.setenv("VIPML_DATA_DIR", str(data_dir))
    mapping = load_config(ROOT / "configs" / "cdnow.yaml")
    cfg = load_config(ROOT / "configs" / "vip-all.yaml", tracking={"enabled": False})
    cfg = cfg.model_copy(update={"tables": mapping.tables, "data_dir": mapping.data_dir})
    cfg._base_dir = mapping.base_dir
    cfg.generated = None
    cfg.labels.horizon_days = 273
    full, _ = load_tables(config=cfg)
    as_of = pd.Timestamp("1997-10-01", tz="UTC")
    seen = full.replace(orders=full.orders[full.orders["ordered_at"] < as_of])
    result = train(seen, cfg)
    assert "horizon shortened from 273" in result.plan.notes[0]
    assert result.shipped["model"] == "refit" and "out of time" in result.shipped["calibration"]
    newest = max(pd.Timestamp(c) for c in result.shipped["cutoffs"])
    assert newest + pd.Timedelta(days=result.plan.trained_horizon) <= as_of
    bundle = load_bundle(save_bundle(result, tables=seen, config=cfg, out=tmp_path))
    assert bundle.info["population"] == "all" and bundle.info["requested_horizon_days"] == 273
    t = score(seen, bundle, as_of=as_of, config=cfg).targets.set_index("customer_id")
    assert t["in_population"].all() and len(t) == 2357
    assert (t["horizon_days"] == bundle.info["horizon_days"]).all()
    assert t["horizon_days"].iloc[0] < 273  # the list says the horizon it really used

    ids = t.index.sort_values()
    spend = window_spend(full.orders, as_of, as_of + pd.Timedelta(days=273), ids)
    y = ((spend >= np.quantile(spend.to_numpy(), 0.9)) & (spend > 0)).astype(int)
    f = build_features(seen, as_of=as_of, config=cfg).reindex(ids)
    scores = {
        "model": t["score"].reindex(ids),
        "prior spend": f["spend_all"],
        "RFM quintiles": _rfm_quintiles(f),
        "BG/NBD + Gamma-Gamma": f["btyd_expected_spend"].fillna(-1),
    }
    pr = {k: average_precision_score(y, v.to_numpy()) for k, v in scores.items()}
    assert pr["model"] > pr["prior spend"] + 0.05, pr
    assert pr["model"] > pr["RFM quintiles"], pr
    # level with BG/NBD + Gamma-Gamma on this file (0.517 against 0.512 when measured; the
    # bootstrap standard error is 0.037): not clearly ahead, see benchmarks/RESULTS.md
    assert pr["model"] > pr["BG/NBD + Gamma-Gamma"] - 0.03, pr
