"""A bundle carries its data mapping: score, report and campaign find the data it was trained on
without the config; --config still overrides; where runs are logged is never the bundle's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from vipml.bundle import load_bundle, save_bundle
from vipml.cli import main
from vipml.config import load_config
from vipml.datasets import make_retailer
from vipml.integrity import seal
from vipml.io import load_tables
from vipml.score import scoring_config
from vipml.train import train


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A project folder: data with a renamed column, a config mapping it by a relative data_dir
    and logging to its own store, and a bundle trained with that config."""
    root = tmp_path_factory.mktemp("project")
    retailer = make_retailer(3000, seed=4)
    data = retailer.to_dir(root / "data")
    orders = pd.read_parquet(data / "orders.parquet").rename(columns={"customer_id": "buyer"})
    orders.to_parquet(data / "orders.parquet", index=False)
    config = root / "vip.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data_dir": "data",
                "tables": {"orders": {"columns": {"customer_id": "buyer"}}},
                "labels": {"horizon_days": 90},
                "train": {"n_cutoffs": 4, "min_positives": 5},
                "tracking": {"uri": f"sqlite:///{root / 'training-runs.db'}"},
            }
        ),
        encoding="utf-8",
    )
    cfg = load_config(config)
    tables, _ = load_tables(config=cfg)
    bundle = save_bundle(train(tables, cfg), tables=tables, config=cfg, out=root / "models")
    known = retailer.customers[
        retailer.customers["signup_at"] < pd.Timestamp("2024-07-01", tz="UTC")
    ]
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "customer_id": known["customer_id"].to_numpy(),
            "group": np.where(rng.random(len(known)) < 0.8, "treatment", "control"),
        }
    ).to_csv(root / "targets.csv", index=False)
    return root, bundle


def test_bundle_records_where_its_data_is(project):
    root, bundle = project
    recorded = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    assert recorded["data_dir"] == str(root / "data")
    assert recorded["tables"]["orders"]["columns"] == {"customer_id": "buyer"}
    cfg = scoring_config(load_bundle(bundle), None)
    assert cfg.data_dir == str(root / "data")
    assert cfg.tracking.uri is None and cfg.tracking.enabled  # the caller's, not the bundle's


def test_score_report_and_campaign_use_the_bundles_data(project, tmp_path, monkeypatch, capsys):
    root, bundle = project
    monkeypatch.chdir(tmp_path)  # another folder: nothing relative to the project resolves
    caller = tmp_path / "caller-runs.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{caller}")
    out = tmp_path / "targets.parquet"
    args = ["score", "--bundle", str(bundle), "--as-of", "2024-07-01", "--out", str(out)]
    assert main([*args, "--quiet"]) == 0
    targets = pd.read_parquet(out)
    inside = targets["in_population"].to_numpy(dtype=bool)  # VIPs at the cutoff: no score
    assert len(targets) > 1000 and targets.loc[inside, "score"].notna().all()
    assert targets.loc[~inside, "score"].isna().all()
    assert caller.is_file()
    assert not (root / "training-runs.db").exists()

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    page = tmp_path / "report.html"
    args = ["report", "--bundle", str(bundle), "--as-of", "2024-07-01", "--out", str(page)]
    assert main([*args, "--quiet", "--targets", str(out)]) == 0
    assert page.is_file() and (tmp_path / "mlflow.db").is_file()
    assert not (root / "training-runs.db").exists()

    campaign = tmp_path / "campaign"
    args = ["campaign", "--targets", str(root / "targets.csv"), "--bundle", str(bundle)]
    assert main([*args, "--after", "2024-07-01", "--out", str(campaign)]) == 0
    summary = json.loads((campaign / "campaign.json").read_text(encoding="utf-8"))
    assert summary["horizon_days"] == 90 and summary["counts"]["treatment"] > 0
    capsys.readouterr()


def test_config_still_overrides_the_bundles_mapping(project, tmp_path, capsys):
    _, bundle = project
    other = tmp_path / "other.yaml"
    other.write_text("data_dir: elsewhere\n", encoding="utf-8")
    args = ["score", "--bundle", str(bundle), "--as-of", "2024-07-01"]
    assert main([*args, "--out", str(tmp_path / "t.csv"), "--config", str(other)]) == 2
    assert f"data folder not found: {tmp_path / 'elsewhere'}" in capsys.readouterr().err


def test_a_bundle_without_a_mapping_asks_for_data(project, tmp_path, capsys):
    root, bundle = project
    copy = tmp_path / bundle.name
    copy.mkdir()
    for f in Path(bundle).iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    recorded = json.loads((copy / "config.json").read_text(encoding="utf-8"))
    recorded["data_dir"] = None
    recorded["tables"]["orders"] = None
    (copy / "config.json").write_text(json.dumps(recorded), encoding="utf-8")
    seal(copy)  # as if written so: checksums of the edited files
    args = [
        "score",
        "--bundle",
        str(copy),
        "--as-of",
        "2024-07-01",
        "--out",
        str(tmp_path / "t.csv"),
    ]
    assert main(args) == 2
    assert "does not say where its data is" in capsys.readouterr().err


def test_callers_config_supplies_tables_and_connection(project):
    _, bundle = project
    caller = load_config(
        None,
        connection="${OTHER_DB_URL}",
        tables={"orders": {"table": "sales.orders"}},
        tracking={"enabled": False},
    )
    cfg = scoring_config(load_bundle(bundle), caller)
    assert cfg.connection == "${OTHER_DB_URL}"
    assert cfg.tables.orders.table == "sales.orders" and cfg.data_dir is None
    assert not cfg.tracking.enabled
    assert cfg.labels.horizon_days == 90  # the bundle's own
