"""vipml monitor: a past list against what happened, on a generated retailer.

The bundle is trained on the tables as they stood at the list's cutoff (nothing after it), so the
list's horizon is out of time for the model, as it is for a real list read a horizon later.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vipml import load_tables
from vipml.errors import DataError

CUTOFF = pd.Timestamp("2024-09-01", tz="UTC")
HORIZON = 60
DATED = (("orders", "ordered_at"), ("events", "occurred_at"), ("offers", "sent_at"))


def cut(tables, when):
    """The tables as they stood at ``when``: dated rows before it only."""
    out = {}
    for name, col in DATED:
        frame = tables.get(name)
        if frame is not None:
            out[name] = frame[frame[col] < when].reset_index(drop=True)
    return tables.replace(**out)


def shifted(tables, factor=2.5, days=120):
    """A planted shift of the spend distribution: orders from ``days`` before the cutoff on
    cost ``factor`` times as much."""
    o = tables.orders.copy()
    late = o["ordered_at"] >= CUTOFF - pd.Timedelta(days=days)
    o.loc[late, "amount"] = o.loc[late, "amount"] * factor
    return tables.replace(orders=o)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.datasets import make_retailer
    from vipml.train import train

    retailer = make_retailer(3000, seed=2)
    raw = retailer.tables()
    full = load_tables(raw)[0]
    seen = cut(full, CUTOFF)
    cfg = load_config(
        None,
        labels={"horizon_days": HORIZON},
        train={"n_cutoffs": 4},
        tracking={"enabled": False},
    )
    root = tmp_path_factory.mktemp("monitor")
    bundle = load_bundle(
        save_bundle(train(seen, cfg), tables=seen, config=cfg, out=root / "models")
    )
    return {"full": full, "bundle": bundle, "root": root, "raw": raw}


def _list(tables, bundle):
    from vipml.score import score

    return score(tables, bundle, as_of=CUTOFF).targets


def test_quiet_when_nothing_is_planted(shop):
    from vipml.monitor import monitor

    full, bundle = shop["full"], shop["bundle"]
    r = monitor(_list(full, bundle), full, bundle)
    assert not r.retrain and r.signals == [], r.verdict()
    assert r.verdict().startswith("No retrain needed")
    assert all(v < 0.25 for v in r.summary["spend_drift"].values()), r.summary["spend_drift"]
    assert set(r.summary["spend_drift"]) == {"order_amount", "customer_spend"}
    # every measure the issue names, for the model and the baselines recomputed on the cutoff
    assert {"model", "rfm_heuristic", "bgnbd_gamma_gamma"} <= set(r.metrics.index)
    for col in ("roc_auc", "pr_auc", "lift_5", "lift_10", "lift_20", "capture_10", "lift_quality"):
        assert r.metrics[col].notna().all(), col
    assert r.metrics.loc["model", "brier"] >= 0 and r.metrics.loc["model", "ece"] >= 0
    assert 0 < r.metrics.loc["model", "lift_quality"] <= 1
    rel = r.reliability
    assert (rel["by"] == "decile").sum() == 10 and set(rel.loc[rel["by"] == "tier", "group"]) <= {
        "A",
        "B",
        "C",
    }
    # the top decile realises a higher rate than the bottom one
    deciles = rel[rel["by"] == "decile"]
    assert deciles["realised"].iloc[0] > deciles["realised"].iloc[-1]
    assert {"promised", "realised", "backtest_min", "backtest_max"} <= set(r.promised.columns)
    assert r.promised.loc["roc_auc", "promised"] == pytest.approx(
        bundle.metrics.loc["model", "roc_auc"]
    )
    assert len(r.drift) == len(bundle.reference)
    assert r.value is not None and len(r.value) == 10
    assert abs(r.summary["value"]["total_error"]) < 0.25
    assert "재학습 불필요" in r.verdict("ko")


def test_a_planted_spend_shift_is_found(shop):
    from vipml.monitor import monitor

    tables = shifted(shop["full"])
    bundle = shop["bundle"]
    r = monitor(_list(tables, bundle), tables, bundle)
    kinds = {s["kind"] for s in r.signals}
    assert "spend drift" in kinds, r.verdict()
    assert r.summary["spend_drift"]["order_amount"] > 0.25
    assert r.retrain and r.verdict().startswith("Retrain")
    assert "order amounts" in r.verdict()
    assert "구매 금액 분포 변화" in r.verdict("ko")


def test_refuses_a_list_read_before_its_horizon_ends(shop):
    from vipml.monitor import monitor

    bundle = shop["bundle"]
    early = cut(shop["full"], CUTOFF + pd.Timedelta(days=30))
    targets = _list(shop["full"], bundle)
    with pytest.raises(DataError) as err:
        monitor(targets, early, bundle)
    text = str(err.value)
    assert "2024-09-01" in text and "2024-10-31" in text and "--partial" in text
    r = monitor(targets, early, bundle, partial=True)
    assert r.summary["partial"] and not r.retrain
    assert 28 <= r.summary["observed_days"] < HORIZON
    assert r.verdict().startswith("Partial read")


def test_bad_lists_are_refused(shop):
    from vipml.monitor import monitor

    full, bundle = shop["full"], shop["bundle"]
    targets = _list(full, bundle)
    with pytest.raises(DataError, match="no column 'cutoff'"):
        monitor(targets.drop(columns="cutoff"), full, bundle)
    with pytest.raises(DataError, match="no column 'model_version'"):
        monitor(targets.drop(columns="model_version"), full, bundle)
    other = targets.assign(model_version="vip-19990101-000000")
    with pytest.raises(DataError, match="vip-19990101-000000"):
        monitor(other, full, bundle)


def test_cli_writes_every_output_and_logs_to_mlflow(shop, tmp_path, monkeypatch, capsys):
    from vipml.cli import main

    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in shop["raw"].items():
        frame.to_parquet(data / f"{name}.parquet")
    bundle = shop["bundle"]
    listed = tmp_path / "list.csv"
    _list(shop["full"], bundle).to_csv(listed, index=False)
    models = str(bundle.path.parent)
    out = tmp_path / "mon"
    args = ["monitor", "--targets", str(listed), "--data", str(data), "--models", models]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict:   No retrain needed" in printed and "mlflow:" in printed
    names = {p.name for p in out.iterdir()}
    assert {
        "reliability.csv",
        "metrics.csv",
        "promised.csv",
        "drift.csv",
        "value_deciles.csv",
        "monitor.json",
    } <= names
    assert not [n for n in names if n.startswith(".")]  # no temporary file left
    summary = json.loads((out / "monitor.json").read_text())
    assert summary["model_version"] == bundle.version and summary["retrain"] is False
    # the bundle is missing: exit 2, the version, cutoff and fix named
    assert main([*args[:-2], "--models", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert bundle.version in err and "2024-09-01" in err and "Fix:" in err
    # the data does not reach the horizon's end: exit 2 with the dates
    short = tmp_path / "short"
    short.mkdir()
    early = CUTOFF + pd.Timedelta(days=20)
    for name, frame in shop["raw"].items():
        col = dict(DATED).get(name)
        if col is not None:
            when = pd.to_datetime(frame[col], utc=True, format="mixed")
            frame = frame[(when < early).to_numpy()]
        frame.to_parquet(short / f"{name}.parquet")
    args = ["monitor", "--targets", str(listed), "--data", str(short), "--models", models]
    assert main([*args, "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err
    assert "2024-10-31" in err and "--partial" in err and "Traceback" not in err
    assert main([*args, "--partial", "--out", str(tmp_path / "m2")]) == 0
    assert "PARTIAL" in capsys.readouterr().out
