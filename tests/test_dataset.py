"""Tables from Parquet datasets: a folder per table, hive-partitioned or not, read lazily with the
time filter pushed down."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from vipml.config import load_config
from vipml.datasets import make_retailer
from vipml.io import load_tables
from vipml.io.dataset import open_dataset, scan_stats, time_filter

UNTIL = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.fixture(scope="module")
def retailer():
    return make_retailer(400, seed=5)


def _by_month(frame: pd.DataFrame, col: str, folder, *, rows_per_group: int = 200) -> None:
    """A hive-partitioned dataset: one folder per month (``month=2024-03``), time-sorted files."""
    frame = frame.sort_values(col, kind="stable")
    month = frame[col].dt.strftime("%Y-%m")
    table = pa.Table.from_pandas(frame.assign(month=month), preserve_index=False)
    ds.write_dataset(
        table,
        folder,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("month", pa.string())]), flavor="hive"),
        max_rows_per_group=rows_per_group,
        min_rows_per_group=rows_per_group,
    )


@pytest.fixture(scope="module")
def folders(retailer, tmp_path_factory):
    """The retailer as plain files, and as datasets: orders and events by month, the rest as
    folders of unpartitioned parts."""
    files = retailer.to_dir(tmp_path_factory.mktemp("files"))
    root = tmp_path_factory.mktemp("datasets")
    t = retailer.tables()
    _by_month(t["orders"], "ordered_at", root / "orders")
    _by_month(t["events"], "occurred_at", root / "events")
    for name in ("customers", "order_items", "offers"):
        (root / name).mkdir()
        half = len(t[name]) // 2
        for i, part in enumerate((t[name].iloc[:half], t[name].iloc[half:])):
            pq.write_table(
                pa.Table.from_pandas(part, preserve_index=False), root / name / f"part-{i}.parquet"
            )
    return files, root


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


KEYS = {
    "customers": ["customer_id"],
    "orders": ["order_id"],
    "order_items": ["order_id", "product_id", "quantity", "unit_price"],
    "events": ["customer_id", "occurred_at", "event_type", "session_id"],
    "offers": ["offer_id"],
}


def test_dataset_folders_give_the_same_tables_as_files(folders):
    files, root = folders
    from_files, _ = load_tables(files)
    from_sets, report = load_tables(root)
    for name, frame in from_files:
        got = getattr(from_sets, name)
        time = {"orders": "ordered_at", "events": "occurred_at"}.get(name)
        if time:  # the partition folder is a column like any extra one
            assert got["month"].tolist() == got[time].dt.strftime("%Y-%m").tolist()
            got = got.drop(columns="month")
        pd.testing.assert_frame_equal(
            _sorted(got, KEYS[name]), _sorted(frame, KEYS[name]), obj=name
        )
        assert str(root / name) == report.tables[name].source


def test_time_filter_is_pushed_down(folders, retailer):
    _, root = folders
    tables, report = load_tables(root, as_of="2024-02-01", horizon_days=29)
    full = retailer.tables()
    for name, col in (("orders", "ordered_at"), ("events", "occurred_at")):
        expected = int((full[name][col] < UNTIL).sum())
        assert 0 < expected < len(full[name])
        assert report.tables[name].rows_in == expected
        assert getattr(tables, name)[col].max() < UNTIL
        notes = " ".join(report.tables[name].notes)
        assert f"{len(full[name]):,} in it" in notes
    # offers sit in unpartitioned parts: still filtered while scanning
    assert report.tables["offers"].rows_in == int((full["offers"]["sent_at"] < UNTIL).sum())
    # no time of their own: read whole
    assert report.tables["order_items"].rows_in == len(full["order_items"])


def test_partitions_and_row_groups_after_the_cutoff_are_not_scanned(folders, retailer):
    _, root = folders
    dataset = open_dataset(root / "orders")
    expression = time_filter(dataset, "ordered_at", UNTIL)
    stats = scan_stats(dataset, expression)
    orders = retailer.tables()["orders"]
    assert stats.rows == len(orders)
    assert stats.rows_returned == int((orders["ordered_at"] < UNTIL).sum())
    # files after the cutoff are skipped whole, and the cutoff's own month only in part
    assert stats.files_read < stats.files
    assert stats.rows_returned <= stats.rows_scanned < stats.rows
    assert stats.rows_scanned - stats.rows_returned < 200  # at most one row group too many


def test_naive_and_date_columns_compare_in_the_config_zone(tmp_path):
    frame = pd.DataFrame(
        {
            "order_id": ["a", "b", "c"],
            "customer_id": ["c1", "c1", "c2"],
            "ordered_at": pd.to_datetime(
                ["2024-06-01 08:59", "2024-06-01 09:00", "2024-06-02 12:00"]
            ),
            "amount": [1.0, 2.0, 3.0],
        }
    )
    (tmp_path / "shop").mkdir()
    pq.write_table(pa.Table.from_pandas(frame), tmp_path / "shop" / "part-0.parquet")
    cfg = load_config(
        None,
        timezone="Asia/Seoul",
        tables={"orders": {"path": str(tmp_path / "shop"), "format": "dataset"}},
    )
    tables, _ = load_tables(config=cfg, as_of="2024-06-01")
    assert tables.orders["order_id"].tolist() == ["a"]
    dated = frame.assign(ordered_at=frame["ordered_at"].dt.date)
    (tmp_path / "dated").mkdir()
    pq.write_table(pa.Table.from_pandas(dated), tmp_path / "dated" / "part-0.parquet")
    dataset = open_dataset(tmp_path / "dated")
    # 2024-06-01 00:00 UTC is 09:00 in Seoul: the whole local day 2024-06-01 can hold earlier rows
    cut = time_filter(
        dataset, "ordered_at", pd.Timestamp("2024-06-01", tz="UTC"), timezone="Asia/Seoul"
    )
    assert dataset.to_table(filter=cut).num_rows == 2
    cut = time_filter(
        dataset, "ordered_at", pd.Timestamp("2024-05-31 15:00", tz="UTC"), timezone="Asia/Seoul"
    )
    assert dataset.to_table(filter=cut).num_rows == 0


def test_without_a_cutoff_every_row_is_read(folders, retailer):
    _, root = folders
    _, report = load_tables(root)
    for name, frame in retailer.tables().items():
        assert report.tables[name].rows_in == len(frame)
