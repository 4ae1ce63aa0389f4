"""Plays by segment and lagging driver, the default selection, channel, send window, Korean
messaging rules and per-channel send files."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from vipml.config import Config, ScoreConfig, load_config
from vipml.plays import (
    CHANNELS,
    assign_plays,
    best_channel,
    channel_history,
    choose_driver,
    consents,
    contradicts,
    korean_rules,
    next_order_at,
    send_window,
)
from vipml.score import COLUMNS, score, selection
from vipml.sends import send_file

AS_OF = "2025-01-01"
CUT = pd.Timestamp(AS_OF, tz="UTC")


@pytest.fixture(scope="module")
def tables(loaded_5k):
    return loaded_5k[0]


@pytest.fixture(scope="module")
def scored(tables, vip_bundle_5k):
    return score(tables, vip_bundle_5k, as_of=AS_OF)


# --------------------------------------------------------------------------- plays


def test_new_customers_never_get_win_back_and_at_risk_never_welcome(scored):
    t = scored.targets
    new, risk = t[t["segment"] == "new"], t[t["segment"] == "at_risk"]
    assert len(new) and len(risk)
    assert not new["play_theme"].eq("win_back").any()
    assert not new["play_en"].str.contains("[Ww]in-back").any()
    assert not risk["play_theme"].eq("welcome").any()
    assert not risk["play_en"].str.contains("[Ww]elcome").any()
    sel = t[t["selected"]]
    assert contradicts(sel["segment"].to_numpy(), sel["play_theme"].to_numpy()).mean() == 0.0


def test_a_contradicting_playbook_is_refused():
    with pytest.raises(ValidationError, match="contradicts the segment 'new'"):
        ScoreConfig(playbook={"new": {"en": "x", "ko": "y", "theme": "win_back"}})
    with pytest.raises(ValidationError, match="unknown driver 'charm'"):
        ScoreConfig(playbook={**ScoreConfig().playbook, "new.charm": {"en": "x", "ko": "y"}})
    with pytest.raises(ValidationError, match="did you mean 'at_risk'"):
        ScoreConfig(playbook={**ScoreConfig().playbook, "at_rsk": {"en": "x", "ko": "y"}})


def test_the_driver_is_where_the_customer_lags_the_vips_most():
    sc = ScoreConfig()
    names = ["views_90d", "recency_days", "orders_all", "spend_365d", "app_minutes_90d"]
    contrib = np.array(
        [
            [0.9, -0.2, -0.5, -2.0, 0.0],  # spend is not actionable; repeat purchase lags most
            [0.4, 0.1, 0.3, -1.0, 0.2],  # nothing actionable lags: the strongest positive leads
            [0.0, 0.0, 0.0, 1.0, 0.0],  # no actionable signal at all
            [-0.1, 0.5, 0.0, 0.0, -0.3],
        ]
    )
    driver, direction, strength = choose_driver(contrib, names, sc)
    assert driver.tolist() == ["repeat_purchase", "browsing", "", "app_time"]
    assert direction.tolist() == ["lags", "leads", "", "lags"]
    assert strength[0] == pytest.approx(-0.5)


def test_plays_follow_segment_and_driver_and_name_the_category():
    sc = ScoreConfig()
    out = assign_plays(
        np.array(["new", "new", "at_risk", "repeat", "category_interest", "other"], dtype=object),
        np.array(
            ["recency", "browsing", "recency", "repeat_purchase", "browsing", ""], dtype=object
        ),
        np.array(["leads", "lags", "lags", "lags", "leads", ""], dtype=object),
        np.array(["beauty", "home", "food", "", "sports", ""], dtype=object),
        sc,
    )
    # a new customer whose recent visit runs ahead keeps the welcome play (no win-back)
    assert out["play_en"][0] == sc.playbook["new"].en
    assert out["play_en"][1] == "Welcome coupon with new arrivals in home"
    assert out["play_ko"][1].startswith("home 신상품")
    assert out["play_en"][2] == "Win-back coupon with news of new or improved products in food"
    assert out["_replenishment"][3] and "best-selling category" in out["play_en"][3]
    assert "sports" in out["play_en"][4]
    assert not any("{category}" in p for p in [*out["play_en"], *out["play_ko"]])
    assert "lags the VIPs most" in out["play_reason_en"][1]
    assert "VIP 대비" in out["play_reason_ko"][1]
    assert "nothing lags" in out["play_reason_en"][0]


def test_list_rows_carry_driver_direction_reason_and_contact(scored):
    t = scored.targets
    assert list(t.columns)[: len(COLUMNS)] == COLUMNS  # then the value models' columns
    inside = t[t["in_population"]]
    assert set(inside["driver_direction"]) <= {"lags", "leads", ""}
    assert (inside["driver_direction"] == "lags").mean() > 0.5
    assert (inside["play_reason_en"].str.len() > 0).all()
    assert (inside["play_reason_ko"].str.len() > 0).all()
    assert not t["play_en"].str.contains("{category}", regex=False).any()
    sel = t[t["selected"]]
    assert set(sel["channel"]) <= set(CHANNELS) and (sel["channel"] != "").all()
    assert (sel["send_from"] >= CUT).all() and (sel["send_until"] > sel["send_from"]).all()


# --------------------------------------------------------------------------- selection


def test_default_selection_is_positive_value_not_everyone(scored):
    t = scored.targets
    sel = t[t["selected"]]
    assert 0 < len(sel) < len(t)
    assert (sel["expected_value"] > 0).all()
    left = t[~t["selected"]]
    assert (left["left_out"] != "").all() and (sel["left_out"] == "").all()
    assert set(left.loc[left["expected_value"] <= 0, "left_out"]) <= {
        "negative_value",
        "not_scored",
        "consent",
    }
    assert "left out:" in scored.summary() and "negative value" in scored.summary()


def test_capacity_budget_and_caps_are_named_as_reasons():
    frame = pd.DataFrame(
        {
            "customer_id": list("abcdefg"),
            "score": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, np.nan],
            "expected_value": [5.0, 4.0, 3.0, 2.0, 1.0, -1.0, np.nan],
            "segment": ["new", "new", "new", "repeat", "repeat", "repeat", "other"],
            "channel": ["email", "sms", "email", "", "push", "push", "email"],
            "tier": ["A", "A", "B", "B", "C", "C", None],
            "_cost": 1.0,
        }
    )
    chosen, why = selection(frame, ScoreConfig(segment_caps={"new": 1}, capacity=1))
    assert chosen.tolist() == [True] + [False] * 6
    assert why.tolist() == [
        "", "segment_cap", "segment_cap", "consent", "capacity", "negative_value", "not_scored",
    ]  # fmt: skip
    chosen, why = selection(frame, ScoreConfig(budget=2.0))
    assert chosen.tolist() == [True, True, False, False, False, False, False]
    assert why[2] == "budget"
    chosen, why = selection(frame, ScoreConfig(), "top_tier")
    assert chosen.tolist() == [True, True, False, False, False, False, False]
    assert why[2] == "not_top_tier"


def test_without_a_known_value_the_top_tier_is_selected(tables, vip_bundle_5k):
    cfg = load_config(None, score={"value_feature": None})
    t = score(tables, vip_bundle_5k, as_of=AS_OF, config=cfg).targets
    assert set(t.loc[t["selected"], "tier"]) == {"A"}
    assert set(t.loc[(t["tier"] == "A") & ~t["selected"], "left_out"]) <= {"consent"}


def test_the_selection_beats_everyone_and_by_score_at_the_same_capacity(scored):
    t = scored.targets
    inside = t[t["in_population"] & (t["channel"] != "")]
    chosen = t[t["selected"]]
    n = len(chosen)
    by_score = inside.nlargest(n, "score")["expected_value"].sum()
    everyone = inside["expected_value"].sum()
    assert chosen["expected_value"].sum() > by_score > 0
    assert chosen["expected_value"].sum() > everyone


# --------------------------------------------------------------------------- channel


def test_channel_history_reads_only_before_the_cutoff():
    offers = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "channel": ["sms", "sms", "email", "sms", "kakao"],
            "sent_at": pd.to_datetime(
                ["2024-12-01", "2024-12-20", "2025-01-01", "2024-11-01", "2024-11-02"], utc=True
            ),
            "accepted_at": pd.to_datetime(
                ["2024-12-02", "2025-01-02", "2025-01-01", None, "2024-11-03"], utc=True
            ),
            "group": ["treatment", "treatment", "treatment", "control", "treatment"],
        }
    )
    sent, resp = channel_history(offers, CUT, pd.Index(["a", "b"]), CHANNELS)
    sms, email, kakao = CHANNELS.index("sms"), CHANNELS.index("email"), CHANNELS.index("kakao")
    assert sent[0, sms] == 2 and resp[0, sms] == 1  # the second response came after the cutoff
    assert sent[0, email] == 0  # sent at the cutoff instant: not before it
    assert sent[1, sms] == 0 and sent[1, kakao] == 1 and resp[1, kakao] == 1  # control: no send


def test_best_channel_shrinks_thin_histories_and_respects_consent():
    sc = ScoreConfig(channel_prior=20)
    pop = np.array([0.10, 0.05, 0.08, 0.12])  # email, sms, push, kakao
    sent = np.zeros((4, 4))
    resp = np.zeros((4, 4))
    sent[0, 1], resp[0, 1] = 1, 1  # one lucky SMS: not enough to beat kakao's population rate
    sent[1, 1], resp[1, 1] = 200, 100  # a long, strong SMS history wins
    consent = np.full((4, 4), np.nan)
    consent[2, 3] = 0  # refused kakao: the next best consented channel
    consent[3, :] = 0  # refused every channel
    name, rate = best_channel(sent, resp, pop, consent, sc, CHANNELS)
    assert name.tolist() == ["kakao", "sms", "email", ""]
    assert rate[0] == pytest.approx(0.12) and rate[1] > 0.45 and np.isnan(rate[3])


def test_consent_columns_absent_or_empty_mean_not_known():
    cust = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "consent_sms": [True, False, None],
            "consent_night": ["yes", None, "no"],
        }
    )
    c, night = consents(cust, pd.Index(["a", "b", "c", "zz"]), CHANNELS)
    sms = CHANNELS.index("sms")
    assert c[:, sms].tolist()[:2] == [1.0, 0.0] and np.isnan(c[2, sms]) and np.isnan(c[3, sms])
    assert np.isnan(c[:, CHANNELS.index("email")]).all()
    assert night.tolist() == [True, False, False, False]


# --------------------------------------------------------------------------- moment


def test_replenishment_is_timed_to_the_customer_s_own_cycle():
    X = pd.DataFrame(
        {"recency_days": [20.0, 50.0, 5.0], "interval_mean_days": [30.0, 30.0, np.nan]}
    )
    due = next_order_at(X, CUT)
    assert due[0] == CUT + pd.Timedelta(days=10) and due[1] == CUT - pd.Timedelta(days=20)
    assert pd.isna(due[2])
    cfg = Config()
    w = send_window(np.array([True, True, True]), due, np.zeros(3, bool), CUT, cfg)
    frm, until = pd.Series(w["send_from"]), pd.Series(w["send_until"])
    assert frm[0] == CUT + pd.Timedelta(days=7) and until[0] == CUT + pd.Timedelta(days=10)
    assert frm[1] == CUT  # overdue: as soon as the campaign starts
    assert frm[2] == CUT and until[2] == CUT + pd.Timedelta(days=14)  # no cycle: the campaign


def test_korean_rules_keep_ads_inside_08_to_21_without_night_consent():
    hours = korean_rules(np.array([7, 10, 21, 23, 23]), np.array([0, 0, 0, 0, 1], bool), (8, 21))
    assert hours.tolist() == [8, 10, 32, 32, 23]
    cfg = load_config(None, locale="ko", score={"send_hour": 22})
    w = send_window(
        np.zeros(2, bool), pd.Series([pd.NaT, pd.NaT]), np.array([False, True]), CUT, cfg
    )
    seoul = pd.Series(w["send_at"]).dt.tz_convert("Asia/Seoul")
    assert seoul[0] == pd.Timestamp("2025-01-02 08:00", tz="Asia/Seoul")
    assert seoul[1] == pd.Timestamp("2025-01-01 22:00", tz="Asia/Seoul")
    en = load_config(None, score={"send_hour": 22})  # rules off outside ko
    w = send_window(np.zeros(1, bool), pd.Series([pd.NaT]), np.array([False]), CUT, en)
    assert pd.Series(w["send_at"]).dt.tz_convert("Asia/Seoul")[0].hour == 22


# --------------------------------------------------------------------------- export


def test_send_file_has_only_selected_treatment_of_the_channel(scored):
    t = scored.targets
    cfg = load_config(None, locale="ko")
    for channel in CHANNELS:
        out = send_file(t, channel, cfg)
        want = t[t["selected"] & (t["group"] == "treatment") & (t["channel"] == channel)]
        assert out["customer_id"].tolist() == want["customer_id"].astype(str).tolist()
        control = set(t.loc[t["group"] == "control", "customer_id"])
        assert not control & set(out["customer_id"])
        assert out["message"].str.startswith("(광고)").all()
        assert out["message"].str.endswith(cfg.score.messaging.opt_out).all()
        hours = pd.to_datetime(out["send_at"], format="%Y-%m-%d %H:%M:%S%z").dt.hour
        assert hours.between(8, 20).all()
        kinds = set(out["message_type"])
        assert kinds <= ({"friendtalk"} if channel == "kakao" else {"advertising"})
        assert "alimtalk" not in kinds
    assert not send_file(t, "email", Config())["message"].str.startswith("(광고)").any()


def test_export_command_writes_a_send_file_and_refuses_bad_input(scored, tmp_path):
    src = tmp_path / "targets.parquet"
    scored.targets.to_parquet(src)
    out = tmp_path / "kakao.csv"
    run = [sys.executable, "-m", "vipml.cli", "export", "--targets", str(src)]
    done = subprocess.run(
        [*run, "--channel", "kakao", "--out", str(out), "--locale", "ko"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    sent = pd.read_csv(out, dtype={"customer_id": str})
    assert len(sent) and {"name", "category", "offer", "coupon", "send_at"} <= set(sent.columns)
    old = tmp_path / "old.parquet"
    scored.targets.drop(columns=["channel", "send_at"]).to_parquet(old)
    bad = subprocess.run(
        [*run[:-1], str(old), "--channel", "sms", "--out", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "'channel'" in bad.stderr and "score again" in bad.stderr


def test_auto_selects_by_incremental_value_when_an_uplift_bundle_gave_one():
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "score": [0.9, 0.5, 0.2],
            "expected_value": [40.0, 10.0, 5.0],  # sure things score high ...
            "incremental_value": [-0.5, 3.0, 1.0],  # ... but the offer persuades b and c
            "segment": "repeat",
            "_cost": 1.0,
        }
    )
    chosen, why = selection(frame, ScoreConfig(capacity=1))
    assert chosen.tolist() == [False, True, False]
    assert why.tolist() == ["negative_value", "", "capacity"]


def test_the_upsell_offer_is_the_customer_s_best_expected_value():
    from vipml.score import chosen_offer

    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "score": [0.5, 0.4, 0.3, 0.2, 0.2],
            "expected_value": [1.0, 3.0, 2.0, -1.0, -1.0],
        }
    )
    assert chosen_offer(frame).tolist() == [False, True, False, True, False]
    frame["_chosen_offer"] = chosen_offer(frame)
    chosen, why = selection(frame.assign(segment="new", _cost=1.0), ScoreConfig())
    assert chosen.tolist() == [False, True, False, False, False]
    assert why.tolist() == ["other_offer", "", "other_offer", "negative_value", "other_offer"]


def test_a_bad_campaign_start_is_a_config_error(tmp_path):
    from vipml.errors import ConfigError

    cfg = tmp_path / "c.yaml"
    cfg.write_text("score: {campaign_start: 'next tuesday'}\n")
    with pytest.raises(ConfigError, match="campaign_start must be a date"):
        load_config(cfg)
    assert ScoreConfig(campaign_start="2025-02-01").campaign_start == "2025-02-01"
