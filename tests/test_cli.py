"""The command line: summary, exit codes, messages without tracebacks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vipml.cli import main


def test_validate_prints_summary_and_exits_0(tmp_path, capsys):
    pd.DataFrame(
        {
            "order_id": ["1", "2"],
            "customer_id": ["a", None],
            "ordered_at": ["2024-01-01"] * 2,
            "amount": [1.0, 2.0],
        }
    ).to_csv(tmp_path / "orders.csv", index=False)
    code = main(["validate", "--data", str(tmp_path), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "orders" in out and "missing_customer_id 1" in out and "customers:  1" in out
    assert (tmp_path / "out" / "quarantine" / "orders.parquet").is_file()


def test_misspelled_required_column_exits_2_with_the_fix_and_no_traceback(tmp_path):
    (tmp_path / "orders.csv").write_text(
        "order_id,custmer_id,ordered_at,amount\n1,a,2024-01-01,3\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "vipml.cli", "validate", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "no column 'customer_id'" in run.stderr
    assert "tables.orders.columns.customer_id: custmer_id" in run.stderr
    assert "Traceback" not in run.stderr


def test_bad_config_key_exits_2(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("timezon: UTC\n")
    assert main(["validate", "--data", str(tmp_path), "--config", str(tmp_path / "c.yaml")]) == 2
    assert "did you mean 'timezone'" in capsys.readouterr().err


def test_every_row_set_aside_exits_2(tmp_path, capsys):
    (tmp_path / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,amount\n1,,2024-01-01,3\n"
    )
    assert main(["validate", "--data", str(tmp_path)]) == 2
    assert "not usable" in capsys.readouterr().err


def test_missing_data_folder_and_empty_folder_exit_2(tmp_path, capsys):
    assert main(["validate", "--data", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["validate", "--data", str(tmp_path)]) == 2
    assert "no input tables" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "validate" in capsys.readouterr().out


def test_features_writes_parquet_and_spec_atomically(tmp_path, capsys):
    from tests.features.conftest import raw_tables

    for name, frame in raw_tables().items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    out = tmp_path / "out" / "feats.parquet"
    assert (
        main(
            [
                "features",
                "--data",
                str(tmp_path),
                "--as-of",
                "2024-06-01",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    frame = pd.read_parquet(out)
    assert frame["customer_id"].tolist() == ["a", "b", "c"]
    assert frame.loc[0, "orders_all"] == 3
    assert (tmp_path / "out" / "feats.spec.json").is_file()
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
    assert "written:" in capsys.readouterr().out


def test_features_several_cutoffs_and_csv(tmp_path):
    from tests.features.conftest import raw_tables

    raw_tables()["orders"].to_csv(tmp_path / "orders.csv", index=False)
    out = tmp_path / "f.csv"
    assert (
        main(
            [
                "features",
                "--data",
                str(tmp_path),
                "--as-of",
                "2024-03-01,2024-06-01",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    frame = pd.read_csv(out)
    assert frame.groupby("as_of").size().to_dict() == {
        "2024-03-01 00:00:00+00:00": 2,
        "2024-06-01 00:00:00+00:00": 2,
    }


def test_features_bad_date_and_bad_suffix_exit_2(tmp_path, capsys):
    from tests.features.conftest import raw_tables

    raw_tables()["orders"].to_csv(tmp_path / "orders.csv", index=False)
    assert (
        main(
            [
                "features",
                "--data",
                str(tmp_path),
                "--as-of",
                "someday",
                "--out",
                str(tmp_path / "f.csv"),
            ]
        )
        == 2
    )
    assert "not a date" in capsys.readouterr().err
    assert (
        main(
            [
                "features",
                "--data",
                str(tmp_path),
                "--as-of",
                "2024-06-01",
                "--out",
                str(tmp_path / "f.xlsx"),
            ]
        )
        == 2
    )
    assert ".parquet or .csv" in capsys.readouterr().err


def test_a_crashed_writer_leaves_the_old_file_intact(tmp_path, monkeypatch):
    from vipml.tables import write_frame

    target = tmp_path / "t.parquet"
    write_frame(pd.DataFrame({"x": [1, 2]}), target)

    def boom(self, path, **kw):
        with open(path, "wb") as fh:
            fh.write(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", boom)
    with pytest.raises(RuntimeError):
        write_frame(pd.DataFrame({"x": [9]}), target)
    monkeypatch.undo()
    assert pd.read_parquet(target)["x"].tolist() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert (
        main(
            [
                "demo",
                "--out",
                str(tmp_path),
                "--customers",
                "4000",
                "--models",
                str(tmp_path / "models"),
                "--no-tracking",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "features:" in out and (tmp_path / "features.parquet").is_file()
    assert len(list((tmp_path / "models").glob("vip-*"))) == 1
    assert len(list((tmp_path / "models").glob("upsell-*"))) == 1
    assert (tmp_path / "targets_vip.parquet").is_file() and (
        tmp_path / "targets_upsell.parquet"
    ).is_file()
    assert out.strip().splitlines()[-1].startswith("done in")
    # the campaign of an earlier list, and the driver reports in both languages
    assert (tmp_path / "campaign" / "ab.csv").is_file() and (
        tmp_path / "campaign" / "kpis.csv"
    ).is_file()
    for task in ("vip", "upsell"):
        for lang in ("en", "ko"):
            page = (tmp_path / f"report_{task}.{lang}.html").read_text(encoding="utf-8")
            assert f'<html lang="{lang}">' in page and '<section id="drivers">' in page
            assert (f"report:      {tmp_path / f'report_{task}.{lang}.html'}") in out
    assert '<section id="campaign">' in (tmp_path / "report_vip.en.html").read_text(
        encoding="utf-8"
    )
    assert (tmp_path / "validation.json").is_file() and (
        tmp_path / "data" / "orders.parquet"
    ).is_file()


def test_train_runs_from_any_folder_and_prints_the_bundle_last(tmp_path, monkeypatch, capsys):
    from tests.conftest import ROOT

    cfg = tmp_path / "vip.yaml"
    cfg.write_text(
        (ROOT / "configs" / "vip.yaml").read_text().replace("customers: 20000", "customers: 4000")
    )
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "models")]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("bundle: ") and (tmp_path / "models").is_dir()
    assert any(line.startswith("rfm_heuristic") for line in out)
    assert any(line.startswith("logistic_regression") for line in out)


def test_score_writes_the_target_list_and_says_where_last(tmp_path, capsys):
    from vipml.datasets import make_retailer

    data = make_retailer(3000, seed=4).to_dir(tmp_path / "data")
    cfg = tmp_path / "vip.yaml"
    cfg.write_text(
        "labels: {horizon_days: 90}\ntrain: {n_cutoffs: 4, min_positives: 5}\ntracking: {enabled: false}\n"
    )
    assert (
        main(["train", "--config", str(cfg), "--data", str(data), "--out", str(tmp_path / "m")])
        == 0
    )
    bundle = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("bundle: ")
    out = tmp_path / "lists" / "targets.parquet"
    assert (
        main(
            [
                "score",
                "--bundle",
                bundle,
                "--data",
                str(data),
                "--as-of",
                "2025-01-01",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == f"targets:   {out}"
    targets = pd.read_parquet(out)
    assert {"customer_id", "score", "reason_1_ko", "group"} <= set(targets.columns)
    assert (tmp_path / "lists" / "targets.drift.csv").is_file()


@pytest.fixture(scope="module")
def campaign_data(tmp_path_factory):
    """A small generated retailer and a target list of its customers known by July 2024."""
    from vipml.datasets import make_retailer

    folder = tmp_path_factory.mktemp("campaign")
    retailer = make_retailer(3000, seed=4)
    data = retailer.to_dir(folder / "data")
    customers = retailer.customers
    known = customers[customers["signup_at"] < pd.Timestamp("2024-07-01", tz="UTC")]
    rng = np.random.default_rng(0)
    targets = pd.DataFrame(
        {
            "customer_id": known["customer_id"].to_numpy(),
            "segment": rng.choice(["new", "repeat", "at_risk"], len(known)),
            "group": np.where(rng.random(len(known)) < 0.8, "treatment", "control"),
        }
    )
    targets.to_csv(folder / "targets.csv", index=False)
    return folder, data


def test_campaign_writes_kpi_ab_and_roi_tables(campaign_data, tmp_path, capsys):
    import json

    folder, data = campaign_data
    out = tmp_path / "campaign"
    args = ["campaign", "--targets", str(folder / "targets.csv"), "--data", str(data)]
    args += ["--after", "2024-07-01", "--horizon-days", "60", "--planned-size", "5000"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "read early: " in printed and "of 5,000 planned customers per group" in printed
    assert printed.strip().splitlines()[-1].startswith(f"written:   {out}")
    ab = pd.read_csv(out / "ab.csv")
    assert ab["metric"].tolist() == [
        "conversion",
        "revenue_per_customer",
        "revenue_per_customer",
        "vip_conversion",
    ]
    assert (ab["ci_low"] <= ab["difference"]).all() and (ab["difference"] <= ab["ci_high"]).all()
    kpis = pd.read_csv(out / "kpis.csv")
    assert list(kpis.columns) == ["scope", "key", "metric", "value"]
    assert set(kpis["scope"]) == {"overall", "period", "segment", "group", "channel", "campaign"}
    assert set(kpis.loc[kpis["scope"] == "period", "key"]) == {"2024-07-01", "2024-08-01"}
    roi = pd.read_csv(out / "roi.csv")
    assert roi["campaign_id"].str.startswith("C2024").all() and roi["cost"].gt(0).all()
    summary = json.loads((out / "campaign.json").read_text())
    assert summary["files"] == {"kpis": "kpis.csv", "ab": "ab.csv", "roi": "roi.csv"}
    assert summary["horizon_days"] == 60 and summary["warnings"]
    assert summary["counts"]["treatment"] + summary["counts"]["control"] == len(
        pd.read_csv(folder / "targets.csv")
    )
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_campaign_bad_input_exits_2_with_the_fix(campaign_data, tmp_path, capsys):
    folder, data = campaign_data
    targets = pd.read_csv(folder / "targets.csv")
    base = ["campaign", "--data", str(data), "--after", "2024-07-01", "--out", str(tmp_path / "o")]
    no_group = tmp_path / "no_group.csv"
    targets.drop(columns="group").to_csv(no_group, index=False)
    assert main([*base, "--targets", str(no_group)]) == 2
    err = capsys.readouterr().err
    assert f"{no_group} has no column 'group'" in err and "Fix:" in err
    no_control = tmp_path / "no_control.csv"
    targets.assign(group="treatment").to_csv(no_control, index=False)
    assert main([*base, "--targets", str(no_control)]) == 2
    assert "0 control customers" in capsys.readouterr().err
    late = [*base[:4], "2030-01-01", *base[5:]]
    assert main([*late, "--targets", str(folder / "targets.csv")]) == 2
    assert "after = 2030-01-01 is outside the data (2023-01-01 .." in capsys.readouterr().err
    assert main([*base, "--targets", str(tmp_path / "nope.csv")]) == 2
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.filterwarnings("ignore:Skipping features without any observed values")
def test_score_select_uplift_targets_the_persuaded_not_the_sure_things(tmp_path, capsys):
    from tests.test_uplift import persuadable_shop

    frames, persuadable, sure = persuadable_shop()
    data = tmp_path / "data"
    data.mkdir()
    for name, frame in frames.items():
        frame.to_parquet(data / f"{name}.parquet")
    common = "labels: {acceptance_days: 14}\ntracking: {enabled: false}\n"
    (tmp_path / "upsell.yaml").write_text(
        common + "train: {task: upsell, min_positives: 10}\n"
        "score: {capacity: 300, offers: [{offer_type: upsell}]}\n"
    )
    (tmp_path / "uplift.yaml").write_text(common + "train: {task: uplift}\n")
    bundles = {}
    for task in ("upsell", "uplift"):
        cfg = str(tmp_path / f"{task}.yaml")
        assert main(["train", "--config", cfg, "--data", str(data), "--out", str(tmp_path)]) == 0
        bundles[task] = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("bundle: ")
    base = ["score", "--bundle", bundles["upsell"], "--data", str(data), "--as-of", "2024-07-01"]
    base += ["--config", str(tmp_path / "upsell.yaml"), "--quiet"]
    assert main([*base, "--select", "uplift", "--out", str(tmp_path / "x.csv")]) == 2
    assert "no uplift bundle" in capsys.readouterr().err
    ids = pd.Index(frames["customers"]["customer_id"])
    share = {}
    for how in ("score", "uplift"):
        out = tmp_path / f"targets_{how}.csv"
        args = [*base, "--uplift-bundle", bundles["uplift"], "--select", how, "--out", str(out)]
        assert main(args) == 0
        targets = pd.read_csv(out)
        assert targets.columns[-1] == "uplift" and targets["selected"].sum() == 300
        chosen = ids.get_indexer(targets.loc[targets["selected"], "customer_id"])
        share[how] = (persuadable[chosen].mean(), sure[chosen].mean())
    # 20% of the customers are persuadable, 20% buy anyway
    assert share["score"][1] > 0.8  # the response model picks those who buy anyway
    assert share["uplift"][0] > 0.6 and share["uplift"][1] < 0.4  # uplift picks the persuaded
    assert "uplift: mean" in capsys.readouterr().out
