"""The driver report: what it shows, in which words, from which data."""

from __future__ import annotations

import html
import json
import re
from importlib import resources

import numpy as np
import pandas as pd
import pytest

from vipml import load_tables
from vipml.config import load_config
from vipml.datasets import CATEGORIES, make_retailer
from vipml.report import build_report, locale, render_report, write_report
from vipml.vip import apply_rule, window_spend

AS_OF = "2025-01-01"


@pytest.fixture(scope="module")
def retailer(retailer_5k):
    return retailer_5k


@pytest.fixture(scope="module")
def loaded(loaded_5k):
    return loaded_5k


@pytest.fixture(scope="module")
def bundle(vip_bundle_5k):
    return vip_bundle_5k


@pytest.fixture(scope="module")
def data(loaded, bundle):
    tables, validation = loaded
    return build_report(tables, bundle, as_of=AS_OF, validation=validation)


@pytest.fixture(scope="module")
def pages(data):
    return {lang: render_report(data, lang=lang) for lang in ("en", "ko")}


def _visible_text(page: str) -> str:
    body = re.sub(r"<style>.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def test_translation_tables_match_key_for_key_and_placeholder_for_placeholder():
    en, ko = locale("en"), locale("ko")
    assert set(en) == set(ko)
    for key in en:
        assert en[key].strip() and ko[key].strip(), key
        assert set(re.findall(r"{(\w+)}", en[key])) == set(re.findall(r"{(\w+)}", ko[key])), key


def test_the_template_holds_markup_and_placeholders_but_no_words():
    text = resources.files("vipml.report").joinpath("template.html").read_text("utf-8")
    text = re.sub(r"<style>.*?</style>", " ", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)  # tags and their attributes
    text = re.sub(r"\$\w+", " ", text)  # placeholders
    assert re.findall(r"[^\W\d_]+", text) == []


def test_every_section_and_its_charts_are_on_the_page(pages):
    for lang, page in pages.items():
        for anchor in ("headline", "drivers", "compare", "quality", "segments", "targets"):
            assert f'<section id="{anchor}">' in page, (lang, anchor)
        # Pareto, drivers, four driver curves, ROC, gains, calibration, backtest, segments
        assert page.count('<svg class="chart"') >= 10
        assert f'<html lang="{lang}">' in page


def test_the_korean_page_is_in_korean(pages):
    ko, en = locale("ko"), locale("en")
    text = _visible_text(pages["ko"])
    assert ko["title"] in text and ko["quality.title"] in text and ko["segment.at_risk"] in text
    # no English sentence of the tables leaks into the Korean page
    for key, words in en.items():
        if "{" not in words and len(words) > 12 and words != ko[key]:
            assert words not in text, key
    hangul = len(re.findall(r"[\uac00-\ud7a3]", text))
    assert hangul > 2000
    # and the English page holds no Korean; the Korean one no English word but acronyms and
    # the data's own column names
    assert not re.search(r"[\uac00-\ud7a3]", pages["en"])
    latin = set(re.findall(r"[A-Za-z][A-Za-z_]{2,}", text))
    allowed = {"AUC", "CRM", "RFM", "ROC", "USD", "VIP", "vipml", "vip", "PSI"}
    allowed |= set(CATEGORIES)  # the data's own category names, which plays name
    assert {w for w in latin - allowed if "_" not in w} == set()


def test_the_page_is_self_contained(pages):
    for page in pages.values():
        assert "<script" not in page and "<link" not in page and "<img" not in page
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
        assert urls <= {"http://www.w3.org/2000/svg"}


def test_headline_is_the_pareto_picture_of_the_vip_rule(data, loaded):
    tables = loaded[0]
    cutoff = pd.Timestamp(AS_OF, tz="UTC")
    spend = window_spend(
        tables.orders, cutoff - pd.Timedelta(days=365), cutoff, tables.known_at(cutoff)
    )
    _, is_vip = apply_rule(spend.to_numpy(), load_config(None).vip)
    a = data.pareto.attrs
    positive = np.clip(spend.to_numpy(), 0, None)
    assert a["vip_revenue_share"] == pytest.approx(positive[is_vip].sum() / positive.sum())
    assert data.pareto["revenue_share"].is_monotonic_increasing
    assert data.pareto["revenue_share"].iloc[-1] == pytest.approx(1.0)


def test_model_quality_comes_from_the_bundle_beside_the_baselines(data, bundle, pages):
    assert set(data.curves_test) == {
        "model",
        "logistic_regression",
        "rfm_heuristic",
        "bgnbd_gamma_gamma",
    }
    auc = bundle.metrics.loc["model", "roc_auc"]
    assert f"{auc:.3f}" in pages["en"]
    assert {"lr_roc_auc", "rfm_roc_auc", "btyd_roc_auc"} <= set(data.backtest.columns)
    assert f"next {bundle.info['horizon_days']} days" in pages["en"]
    assert f"향후 {bundle.info['horizon_days']}일" in pages["ko"]


def test_small_groups_are_suppressed_in_tables(loaded, bundle):
    tables, validation = loaded
    big = load_config(None, report={"min_group": 10**6}, tracking={"enabled": False})
    data = build_report(tables, bundle, as_of=AS_OF, config=big, validation=validation)
    assert data.segments["suppressed"].all()
    assert data.vip_vs_regular["suppressed"].all()
    page = render_report(data, lang="en")
    segs = re.search(r'<table class="segments">.*?</table>', page, flags=re.S).group(0)
    rows = re.findall(r"<tr( class=\"suppressed\")?><td>", segs)
    assert rows and all(rows)  # every segment row is a suppressed row
    assert locale("en")["suppressed"].format(min=10**6) in page
    profiles = re.search(r'<table class="profiles">.*?</table>', page, flags=re.S).group(0)
    assert all(re.findall(r"<tr( class=\"suppressed\")?><td>", profiles))
    # no count of any segment is shown
    for n in data.segments["segment"]:
        assert not re.search(rf"<td>{n}</td><td class=num>\d", segs)
    # nor of any tier of the target list
    assert data.targets_by_tier["suppressed"].all()
    assert data.targets_by_tier[["rows", "selected", "score"]].isna().all().all()
    tiers = re.search(r'<table class="targets">.*?</table>', page, flags=re.S).group(0)
    for tier in data.targets_by_tier["tier"]:
        assert not re.search(rf"<td>{tier}</td><td class=num>\d", tiers)


def test_nothing_after_the_cutoff_reaches_the_report(retailer, bundle, data):
    raw = retailer.tables()
    orders = raw["orders"]
    late = orders.sample(3000, random_state=2)
    late = late.assign(
        order_id="late-" + late["order_id"].astype(str),
        ordered_at=pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=3),
        amount=late["amount"] * 5,
    )
    events = raw["events"]
    more = events.sample(3000, random_state=3).assign(
        occurred_at=pd.Timestamp(AS_OF, tz="UTC")
    )  # the cutoff instant itself is not input
    tables = load_tables(
        {**raw, "orders": pd.concat([orders, late]), "events": pd.concat([events, more])}
    )[0]
    other = build_report(tables, bundle, as_of=AS_OF)
    pd.testing.assert_frame_equal(other.pareto, data.pareto)
    pd.testing.assert_frame_equal(other.drivers, data.drivers)
    pd.testing.assert_frame_equal(other.vip_vs_regular, data.vip_vs_regular)
    pd.testing.assert_frame_equal(other.converters, data.converters)
    pd.testing.assert_frame_equal(other.segments, data.segments)
    pd.testing.assert_frame_equal(other.targets_by_tier, data.targets_by_tier)
    # and a change before the cutoff does reach it
    early = late.assign(ordered_at=pd.Timestamp(AS_OF, tz="UTC") - pd.Timedelta(days=3))
    moved = build_report(
        load_tables({**raw, "orders": pd.concat([orders, early])})[0], bundle, as_of=AS_OF
    )
    assert moved.pareto.attrs["revenue"] > data.pareto.attrs["revenue"]


def test_converters_compare_the_last_full_horizon_before_the_cutoff(data, bundle):
    start, end = data.converters_window
    assert end == pd.Timestamp(AS_OF, tz="UTC")
    assert (end - start).days == bundle.info["horizon_days"]
    conv, rest = data.converters_counts
    assert conv > 0 and rest > conv


def test_same_inputs_give_the_same_page(loaded, bundle, pages):
    tables, validation = loaded
    again = build_report(tables, bundle, as_of=AS_OF, validation=validation)
    assert render_report(again, lang="ko") == pages["ko"]


def test_written_atomically_and_unknown_language_is_refused(data, tmp_path):
    from vipml.errors import ConfigError

    out = write_report(data, tmp_path / "r" / "report.html", lang="ko")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
    with pytest.raises(ConfigError, match="use one of en, ko"):
        render_report(data, lang="fr")


def test_campaign_results_make_a_campaign_section(data, tmp_path):
    from dataclasses import replace

    from vipml.report import read_campaign

    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "campaign.json").write_text(
        json.dumps({"after": "2025-01-01", "horizon_days": 30, "warnings": ["read early"]})
    )
    pd.DataFrame(
        {
            "metric": ["conversion"],
            "treatment_n": [900],
            "control_n": [100],
            "treatment_value": [0.12],
            "control_value": [0.08],
            "difference": [0.04],
            "ci_low": [-0.01],
            "ci_high": [0.09],
            "p_value": [0.2],
            "needed_per_group": [5000],
            "warning": ["read early: 100 of the 5,000 customers per group needed"],
        }
    ).to_csv(folder / "ab.csv", index=False)
    page = render_report(replace(data, campaign=read_campaign(folder)), lang="ko")
    assert '<section id="campaign">' in page and locale("ko")["campaign.title"] in page
    assert "+4.00%p" in page and "-1.00%p … +9.00%p" in page
    early = locale("ko")["campaign.read_early"].format(
        metric=locale("ko")["metric.conversion"], n="100", needed="5,000"
    )
    assert early in page
    with pytest.raises(Exception, match="no campaign results"):
        read_campaign(tmp_path)


def test_report_command_writes_the_page_and_refuses_bad_input(retailer, bundle, tmp_path, capsys):
    from vipml.cli import main

    data_dir = retailer.to_dir(tmp_path / "data")
    out = tmp_path / "out" / "report.html"
    args = ["report", "--bundle", str(bundle.path), "--data", str(data_dir), "--as-of", AS_OF]
    assert main([*args, "--lang", "ko", "--out", str(out), "--quiet"]) == 0
    page = out.read_text(encoding="utf-8")
    assert '<html lang="ko">' in page and locale("ko")["title"] in page
    assert f"report:    {out}" in capsys.readouterr().out
    # both languages at once
    assert main([*args, "--lang", "en,ko", "--out", str(out), "--quiet"]) == 0
    assert (tmp_path / "out" / "report.en.html").is_file()
    assert (tmp_path / "out" / "report.ko.html").is_file()
    # a target list from a file (CSV: ids come back as text) gives the same target summary
    from vipml.score import score
    from vipml.tables import write_frame

    tables = load_tables(data_dir)[0]
    listed = write_frame(score(tables, bundle, as_of=AS_OF).targets, tmp_path / "targets.csv")
    given = ["--targets", str(listed), "--out", str(tmp_path / "given.html"), "--quiet"]
    assert main([*args, "--lang", "en", *given]) == 0
    page = (tmp_path / "given.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="targets">.*?</table>', page, flags=re.S).group(0)
    assert table in out.with_name("report.en.html").read_text(encoding="utf-8")
    # a language without a translation table, a missing campaign folder: exit 2, no traceback
    assert main([*args, "--lang", "fr", "--out", str(tmp_path / "fr.html"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "use one of en, ko" in err and "Traceback" not in err
    assert not (tmp_path / "fr.html").exists()
    missing = ["--campaign", str(tmp_path / "nowhere"), "--out", str(tmp_path / "c.html")]
    assert main([*args, *missing, "--quiet"]) == 2
    assert "vipml campaign" in capsys.readouterr().err


def test_reports_are_logged_beside_the_models_runs(data, bundle, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from vipml.tracking import log_report

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = load_config(None, tracking={"uri": uri, "experiment": "reports"})
    pages = [write_report(data, tmp_path / f"r.{lang}.html", lang=lang) for lang in ("en", "ko")]
    share = data.pareto.attrs["vip_revenue_share"]
    logged = log_report(pages, bundle, cfg, AS_OF, {"vip_revenue_share": share})
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(logged["run_id"])
    assert run.data.tags["vipml.kind"] == "report"
    assert run.data.metrics["vip_revenue_share"] == pytest.approx(share)
    names = sorted(a.path for a in client.list_artifacts(logged["run_id"], "reports"))
    assert names == ["reports/r.en.html", "reports/r.ko.html"]
    off = load_config(None, tracking={"enabled": False})
    assert log_report(pages, bundle, off, AS_OF, {}) is None


def test_messy_data_the_page_says_what_was_set_aside_in_words(bundle):
    from vipml.datasets import Messiness

    messy = make_retailer(
        5000, seed=1, messy=Messiness(duplicates=0.02, missing_ids=0.01, float_ids=True)
    )
    tables, validation = load_tables(messy.tables())
    data = build_report(tables, bundle, as_of=AS_OF, validation=validation)
    orders = data.validation.set_index("table").loc["orders"]
    assert orders["set_aside"] == sum(validation.tables["orders"].quarantined.values()) > 0
    assert orders["rows_in"] == orders["kept"] + orders["set_aside"]
    en, ko = render_report(data, lang="en"), render_report(data, lang="ko")
    section = re.search(r'<section id="validation">.*?</section>', ko, flags=re.S).group(0)
    assert locale("ko")["reason.duplicate_row"] in section
    assert locale("ko")["reason.missing"].format(column="customer_id") in section
    assert locale("en")["reason.duplicate_row"] in en
    assert "duplicate_row" not in section  # codes are put into words


def test_campaign_section_draws_the_lists_qini_curve_with_the_random_band(data, tmp_path):
    """A list ranked by uplift, measured on what happened: persuadable customers (high uplift)
    buy when contacted, the held-out ones do not; the curve leaves the random band."""
    from dataclasses import replace

    from vipml import load_tables
    from vipml.campaign import campaign_qini
    from vipml.report import read_campaign

    rng = np.random.default_rng(0)
    n = 2000
    ids = np.array([f"c{i:04d}" for i in range(n)])
    uplift = rng.random(n)
    group = np.where(rng.random(n) < 0.5, "treatment", "control")
    buys = rng.random(n) < 0.05 + 0.4 * (uplift > 0.7) * (group == "treatment")
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(int(buys.sum()))],
            "customer_id": ids[buys],
            "ordered_at": pd.Timestamp("2025-01-05", tz="UTC"),
            "amount": 20.0,
        }
    )
    tables = load_tables({"orders": orders})[0]
    targets = pd.DataFrame({"customer_id": ids, "uplift": uplift, "group": group})
    q = campaign_qini(targets, tables, after="2025-01-01", horizon_days=30, rankings=100)
    assert q["qini_auc"] > q["band"]["qini_high"] and q["treatment"] + q["control"] == n
    assert (
        campaign_qini(targets.drop(columns="uplift"), tables, after="2025-01-01", horizon_days=30)
        is None
    )
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "campaign.json").write_text(json.dumps({"after": "2025-01-01", "horizon_days": 30}))
    (folder / "qini.json").write_text(json.dumps(q))
    for lang in ("en", "ko"):
        page = render_report(replace(data, campaign=read_campaign(folder)), lang=lang)
        words = locale(lang)
        assert words["campaign.qini.title"] in page and words["campaign.qini.outside"] in page
        assert words["campaign.qini.band_low"] in page and 'data-series="' in page
