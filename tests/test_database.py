"""Tables from PostgreSQL: a throwaway server (the session's ``postgres_url``) holding a generated
retailer; the same tables as from files, the time filter run in the database, no password shown."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
import yaml

from vipml.cli import main
from vipml.config import load_config
from vipml.datasets import make_retailer
from vipml.errors import ConfigError, DataError
from vipml.io import database as db
from vipml.io import load_tables

from .pgserver import PASSWORD


def _adbc():
    import adbc_driver_postgresql.dbapi as dbapi

    return dbapi


@pytest.fixture(scope="module")
def retailer():
    return make_retailer(400, seed=3)


@pytest.fixture(scope="module")
def shop(postgres_url, retailer, tmp_path_factory):
    """The retailer in schema ``shop`` of the server, and the same tables as Parquet files."""
    with _adbc().connect(postgres_url) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS shop CASCADE")
        cur.execute("CREATE SCHEMA shop")
        for name, frame in retailer.tables().items():
            arrow = pa.Table.from_pandas(frame, preserve_index=False)
            cur.adbc_ingest(name, arrow, mode="create", db_schema_name="shop")
        conn.commit()
    folder = retailer.to_dir(tmp_path_factory.mktemp("files"))
    return postgres_url, folder


@pytest.fixture
def db_env(shop, monkeypatch):
    monkeypatch.setenv("VIPML_DB_URL", shop[0])
    return shop


def _db_config(**overrides):
    tables = {n: {"table": f"shop.{n}"} for n in ("customers", "orders", "order_items")}
    tables |= {"events": {"table": "shop.events"}, "offers": {"table": "shop.offers"}}
    return load_config(None, connection="${VIPML_DB_URL}", tables=tables, **overrides)


def test_same_tables_from_files_and_from_the_database(db_env):
    _, folder = db_env
    from_files, files_report = load_tables(folder)
    from_db, db_report = load_tables(config=_db_config())
    for name, frame in from_files:
        pd.testing.assert_frame_equal(getattr(from_db, name), frame, obj=name)
        assert db_report.tables[name].rows_in == files_report.tables[name].rows_in
    assert "table shop.orders" in db_report.tables["orders"].source


def test_connection_keeps_its_reference_until_connecting(db_env):
    cfg = _db_config()
    assert cfg.connection == "${VIPML_DB_URL}"
    assert PASSWORD not in json.dumps(cfg.model_dump(mode="json"))


class _Spy:
    """The ADBC module with its cursors recording every Arrow table that crossed the wire."""

    def __init__(self, dbapi, seen):
        self._dbapi, self._seen = dbapi, seen

    def connect(self, url):
        conn = self._dbapi.connect(url)
        seen = self._seen
        cursor = conn.cursor

        def spying_cursor():
            cur = cursor()
            fetch = cur.fetch_arrow_table

            def fetch_arrow_table():
                table = fetch()
                seen.append(table)
                return table

            cur.fetch_arrow_table = fetch_arrow_table
            return cur

        conn.cursor = spying_cursor
        return conn


def test_rows_outside_the_window_never_leave_the_database(db_env, retailer, monkeypatch):
    seen: list[pa.Table] = []
    monkeypatch.setattr(db, "_driver", lambda: _Spy(_adbc(), seen))
    as_of, horizon = pd.Timestamp("2024-03-01", tz="UTC"), 30
    until = as_of + pd.Timedelta(days=horizon)
    tables, report = load_tables(config=_db_config(), as_of="2024-03-01", horizon_days=horizon)
    full = retailer.tables()
    by_time = {"orders": "ordered_at", "events": "occurred_at", "offers": "sent_at"}
    fetched = [t for t in seen if t.num_rows]
    assert fetched, "nothing was read"
    for table in fetched:
        for col in by_time.values():
            if col in table.column_names:
                assert pd.Series(table[col].to_pandas()).max() < until
    # every row before the window end came, none after: counts match the source
    for name, col in by_time.items():
        expected = int((full[name][col] < until).sum())
        assert 0 < expected < len(full[name])
        assert report.tables[name].rows_in == expected, name
        assert getattr(tables, name)[col].max() < until
        assert "filtered in the database" in " ".join(report.tables[name].notes)
    kept_orders = set(full["orders"].loc[full["orders"]["ordered_at"] < until, "order_id"])
    items = full["order_items"]
    assert report.tables["order_items"].rows_in == int(items["order_id"].isin(kept_orders).sum())
    assert set(tables.order_items["order_id"]) <= kept_orders
    # customers have no time of their own here: read whole
    assert report.tables["customers"].rows_in == len(full["customers"])


def test_window_gives_the_same_features_as_every_row(db_env):
    from vipml.features import build_features

    cfg = _db_config()
    whole, _ = load_tables(config=cfg)
    window, _ = load_tables(config=cfg, as_of="2024-06-01")
    a = build_features(whole, as_of="2024-06-01")
    b = build_features(window, as_of="2024-06-01")
    pd.testing.assert_frame_equal(a, b)


def test_sql_source_with_mapped_columns(db_env, retailer):
    cfg = load_config(
        None,
        connection="${VIPML_DB_URL}",
        tables={
            "orders": {
                "sql": "SELECT order_id AS oid, customer_id AS cust, ordered_at AS placed, "
                "amount AS total FROM shop.orders WHERE status IS DISTINCT FROM 'cancelled';",
                "columns": {
                    "order_id": "oid",
                    "customer_id": "cust",
                    "ordered_at": "placed",
                    "amount": "total",
                },
            }
        },
    )
    tables, report = load_tables(config=cfg, as_of="2024-01-01")
    orders = retailer.tables()["orders"]
    expected = orders[
        (orders["status"] != "cancelled")
        & (orders["ordered_at"] < pd.Timestamp("2024-01-01", tz="UTC"))
    ]
    assert report.tables["orders"].rows_in == len(expected)
    assert set(tables.orders["order_id"]) == set(expected["order_id"])
    assert "placed before 2024-01-01" in " ".join(report.tables["orders"].notes)


def test_naive_timestamps_are_local_time_in_the_config_zone(db_env):
    url, _ = db_env
    with _adbc().connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS shop.local_orders")
        cur.execute(
            "CREATE TABLE shop.local_orders (order_id text, customer_id text, "
            "ordered_at timestamp without time zone, amount numeric(12, 2))"
        )
        cur.execute(
            "INSERT INTO shop.local_orders VALUES "
            "('a', 'c1', '2024-06-01 08:59:00', 10.50), "  # 2024-05-31 23:59 UTC
            "('b', 'c1', '2024-06-01 09:00:00', 20.25), "  # 2024-06-01 00:00 UTC
            "('c', 'c2', '2024-06-02 12:00:00', 5)"
        )
        conn.commit()
    cfg = load_config(
        None,
        connection="${VIPML_DB_URL}",
        timezone="Asia/Seoul",
        tables={"orders": {"table": "shop.local_orders"}},
    )
    tables, report = load_tables(config=cfg, as_of="2024-06-01")
    assert tables.orders["order_id"].tolist() == ["a"]
    assert tables.orders["amount"].tolist() == [10.5]
    assert str(tables.orders["ordered_at"].iloc[0]) == "2024-05-31 23:59:00+00:00"
    everything, _ = load_tables(config=cfg)
    assert everything.orders["amount"].tolist() == [10.5, 20.25, 5.0]


def test_text_time_column_is_read_whole_and_said_so(db_env):
    url, _ = db_env
    with _adbc().connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS shop.text_orders")
        cur.execute(
            "CREATE TABLE shop.text_orders AS SELECT order_id, customer_id, "
            "to_char(ordered_at AT TIME ZONE 'UTC', 'YYYYMMDD') AS ordered_at, amount "
            "FROM shop.orders"
        )
        conn.commit()
    cfg = load_config(
        None,
        connection="${VIPML_DB_URL}",
        tables={"orders": {"table": "shop.text_orders", "date_formats": {"ordered_at": "%Y%m%d"}}},
    )
    tables, report = load_tables(config=cfg, as_of="2024-01-01")
    notes = " ".join(report.tables["orders"].notes)
    assert "cannot run in the database" in notes
    assert report.tables["orders"].rows_kept == report.tables["orders"].rows_in > 0


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="one of path, table and sql"):
        load_config(None, tables={"orders": {"table": "shop.orders", "path": "o.csv"}})
    with pytest.raises(ConfigError, match=r"tables\.orders\.table"):
        load_config(None, tables={"orders": {"table": "shop.orders; DROP TABLE x"}})
    with pytest.raises(ConfigError, match="one SELECT"):
        load_config(None, tables={"orders": {"sql": "SELECT 1; DELETE FROM shop.orders"}})
    cfg = load_config(None, tables={"orders": {"table": "shop.orders"}})
    with pytest.raises(ConfigError, match="no connection is given"):
        load_tables(config=cfg)


def _write_config(path, url="${VIPML_DB_URL}", **extra):
    raw = {"connection": url, "tables": {"orders": {"table": "shop.orders"}}, **extra}
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_cli_never_prints_the_password(db_env, tmp_path, capsys):
    cfg = _write_config(tmp_path / "db.yaml")
    assert main(["validate", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    written = (tmp_path / "out" / "validation.json").read_text(encoding="utf-8")
    assert "shop.orders" in written
    for text in (captured.out, captured.err, written):
        assert PASSWORD not in text


def test_unset_variable_and_wrong_password_exit_2_without_the_password(
    shop, tmp_path, capsys, monkeypatch
):
    monkeypatch.delenv("VIPML_DB_URL", raising=False)
    cfg = _write_config(tmp_path / "db.yaml")
    assert main(["validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "VIPML_DB_URL is not set" in err and "Fix: export VIPML_DB_URL=" in err
    wrong = shop[0].replace(PASSWORD, "Wr0ng-Secret-42")
    monkeypatch.setenv("VIPML_DB_URL", wrong)
    assert main(["validate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "cannot read from the database" in err and "table 'orders'" in err
    assert "Wr0ng-Secret-42" not in err and PASSWORD not in err
    assert "Traceback" not in err


def test_literal_password_is_kept_out_of_messages_and_bundles(shop):
    from vipml.config import config_record

    cfg = load_config(None, connection=shop[0], tables={"orders": {"table": "shop.nowhere"}})
    with pytest.raises(DataError) as info:
        load_tables(config=cfg)
    assert "shop.nowhere" in str(info.value) and PASSWORD not in str(info.value)
    record = json.dumps(config_record(cfg))
    assert PASSWORD not in record and "vipml@127.0.0.1" in record


def test_a_bundle_trained_from_the_database_scores_from_it(db_env, tmp_path, monkeypatch, capsys):
    url, _ = db_env
    retailer = make_retailer(2500, seed=4)
    with _adbc().connect(url) as conn, conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS big CASCADE")
        cur.execute("CREATE SCHEMA big")
        for name in ("customers", "orders"):
            arrow = pa.Table.from_pandas(retailer.tables()[name], preserve_index=False)
            cur.adbc_ingest(name, arrow, mode="create", db_schema_name="big")
        conn.commit()
    cfg = tmp_path / "db.yaml"
    raw = {
        "connection": "${VIPML_DB_URL}",
        "tables": {n: {"table": f"big.{n}"} for n in ("customers", "orders")},
        "labels": {"horizon_days": 90},
        "train": {"n_cutoffs": 4, "min_positives": 5},
        "tracking": {"enabled": False},
    }
    cfg.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "models")]) == 0
    bundle = capsys.readouterr().out.strip().splitlines()[-1].removeprefix("bundle: ")
    recorded = (tmp_path / "models" / bundle.rsplit("/", 1)[-1] / "config.json").read_text()
    assert "${VIPML_DB_URL}" in recorded and PASSWORD not in recorded
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'runs.db'}")
    out = elsewhere / "targets.csv"
    args = ["score", "--bundle", bundle, "--as-of", "2024-10-01", "--out", str(out), "--quiet"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err
    targets = pd.read_csv(out)
    assert len(targets) > 1000
