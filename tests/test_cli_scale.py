"""vipml features|score --engine local --buckets N and --engine spark from the command line."""

from __future__ import annotations

import pandas as pd
import pytest

from vipml.cli import main
from vipml.features import build_features
from vipml.score import score

from .test_buckets import AS_OF, assert_same_frames


@pytest.fixture(scope="module")
def folder(retailer_5k, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-data")
    for name, frame in retailer_5k.tables().items():
        if name == "orders":
            month = pd.to_datetime(frame["ordered_at"], utc=True).dt.strftime("%Y-%m")
            frame.assign(month=month).to_parquet(out / "orders", partition_cols=["month"])
        else:
            frame.to_parquet(out / f"{name}.parquet")
    return out


def test_features_with_buckets(folder, loaded_5k, tmp_path, capsys):
    out = tmp_path / "features"
    code = main(
        ["features", "--data", str(folder), "--as-of", AS_OF, "--out", str(out)]
        + ["--buckets", "3", "--quiet"]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "rows" in text and "seconds:" in text and "split" in text
    got = pd.read_parquet(out).drop(columns="as_of").set_index("customer_id").sort_index()
    expected = build_features(loaded_5k[0], as_of=AS_OF)
    assert_same_frames(expected, got[expected.columns])
    assert (tmp_path / "features.spec.json").is_file()


def test_score_with_buckets(folder, loaded_5k, bucket_bundle_5k, tmp_path, capsys):
    out = tmp_path / "list"
    code = main(
        ["score", "--bundle", str(bucket_bundle_5k.path), "--data", str(folder), "--as-of", AS_OF]
        + ["--out", str(out), "--buckets", "3", "--quiet"]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    single = score(loaded_5k[0], bucket_bundle_5k, as_of=AS_OF).targets
    assert_same_frames(single, pd.read_parquet(out))
    assert (tmp_path / "list.drift.csv").is_file()
    left = int((single["left_out"] != "").sum())
    assert f"left out: {left:,} (" in printed.out and "negative value" in printed.out


def test_bad_options_exit_2(folder, tmp_path, capsys):
    assert (
        main(
            [
                "features",
                "--data",
                str(folder),
                "--as-of",
                AS_OF,
                "--out",
                str(tmp_path / "f.csv"),
                "--buckets",
                "2",
            ]
        )
        == 2
    )
    assert "Parquet dataset" in capsys.readouterr().err
    assert (
        main(
            [
                "features",
                "--data",
                str(folder),
                "--as-of",
                AS_OF,
                "--out",
                str(tmp_path / "f"),
                "--buckets",
                "0",
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "features",
                "--data",
                str(folder),
                "--as-of",
                AS_OF,
                "--out",
                str(tmp_path / "f"),
                "--master",
                "local[2]",
            ]
        )
        == 2
    )


@pytest.mark.slow
def test_features_on_spark_from_the_command_line(spark, folder, loaded_5k, tmp_path, capsys):
    out = tmp_path / "features"
    code = main(
        ["features", "--engine", "spark", "--master", "local[2]", "--data", str(folder)]
        + ["--as-of", AS_OF, "--out", str(out), "--buckets", "4"]
    )
    assert code == 0, capsys.readouterr().err
    got = pd.read_parquet(out).drop(columns="as_of").set_index("customer_id").sort_index()
    expected = build_features(loaded_5k[0], as_of=AS_OF)
    assert_same_frames(expected, got[expected.columns])
    assert not list(tmp_path.glob(".features.tmp-*"))


@pytest.mark.slow
def test_a_reseller_account_on_spark_is_named_with_exit_2(
    spark, folder, retailer_5k, tmp_path, capsys
):
    top = retailer_5k.tables()["orders"]["customer_id"].value_counts()
    code = main(
        ["features", "--engine", "spark", "--data", str(folder), "--as-of", AS_OF]
        + ["--out", str(tmp_path / "f"), "--buckets", "2"]
        + ["--max-customer-rows", str(int(top.iloc[0]) - 1)]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert str(top.index[0]) in err and f"{int(top.iloc[0]):,} rows" in err
    assert "Traceback" not in err and "JVM" not in err
    assert not (tmp_path / "f").exists()
