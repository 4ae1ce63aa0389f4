"""Shared fixtures: small seeded tables and the path of the public data sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``VIPML_DATA_DIR``, else ``../shared/data`` beside the project."""
    env = os.environ.get("VIPML_DATA_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared public data; tests that use it skip when it is absent."""
    folder = shared_data_dir()
    if not (folder / "cdnow_sample.txt").is_file() or not (folder / "hillstrom.csv").is_file():
        pytest.skip(
            f"public data sets not found in {folder} (set VIPML_DATA_DIR to the folder holding "
            "cdnow_sample.txt and hillstrom.csv)"
        )
    return folder


@pytest.fixture(scope="session")
def retailer_5k():
    """A generated retailer of 5,000 customers (seed 1), shared by the scoring and report tests."""
    from vipml.datasets import make_retailer

    return make_retailer(5000, seed=1)


@pytest.fixture(scope="session")
def loaded_5k(retailer_5k):
    """Its tables and validation report."""
    from vipml import load_tables

    return load_tables(retailer_5k.tables())


@pytest.fixture(scope="session")
def vip_bundle_5k(loaded_5k, tmp_path_factory):
    """A VIP bundle trained once on it (90-day horizon, four cutoffs, no tracking)."""
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.train import train

    tables = loaded_5k[0]
    cfg = load_config(
        None, labels={"horizon_days": 90}, train={"n_cutoffs": 4}, tracking={"enabled": False}
    )
    result = train(tables, cfg)
    return load_bundle(
        save_bundle(result, tables=tables, config=cfg, out=tmp_path_factory.mktemp("models"))
    )


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a throwaway PostgreSQL server, started once for the session and stopped after.

    `make test` installs PostgreSQL (make postgres); where it is missing the database tests skip,
    except under CI, where a missing server is a failure.
    """
    from .pgserver import ServerUnavailable, postgres_server

    try:
        import adbc_driver_postgresql  # noqa: F401
    except ImportError:
        _missing_postgres(
            "the ADBC PostgreSQL driver is not installed (pip install -e '.[postgres]')"
        )
    server = postgres_server()
    try:
        url = server.__enter__()
    except ServerUnavailable as exc:
        _missing_postgres(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


def _missing_postgres(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the database tests (make test installs PostgreSQL)")
    pytest.skip(f"{reason} (run 'make postgres' as root to install it)")


@pytest.fixture(scope="session")
def small_bundle(tmp_path_factory):
    """A small VIP bundle (800 customers, three cutoffs, no tracking) and its data folder, built
    once per session for the tests that damage copies of it."""
    from vipml import load_tables
    from vipml.bundle import save_bundle
    from vipml.config import load_config
    from vipml.datasets import make_retailer
    from vipml.train import train

    root = tmp_path_factory.mktemp("small_bundle")
    retailer = make_retailer(800, seed=1)
    data = retailer.to_dir(root / "data")
    tables = load_tables(data)[0]
    cfg = load_config(
        None, labels={"horizon_days": 90}, train={"n_cutoffs": 3}, tracking={"enabled": False}
    )
    path = save_bundle(train(tables, cfg), tables=tables, config=cfg, out=root / "models")
    return path, data


@pytest.fixture(scope="session")
def spark():
    """One local Spark session (two cores) for the whole test session.

    `make test` installs a headless Java runtime (make java); where Java or pyspark is missing
    the Spark tests skip, except under CI, where that is a failure.
    """
    import shutil
    import sys

    try:
        import pyspark  # noqa: F401
    except ImportError:
        _missing_spark("pyspark is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        _missing_spark("no Java runtime (java not on PATH, JAVA_HOME unset)")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from vipml.spark import session

    spark = session("local[2]", app="vipml-tests")
    spark.sparkContext.setLogLevel("ERROR")
    yield spark
    spark.stop()


def _missing_spark(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the Spark tests (make test installs Java)")
    pytest.skip(f"{reason} (run 'make java' as root to install a headless Java runtime)")


@pytest.fixture(scope="session")
def bucket_bundle_5k(vip_bundle_5k):
    """The VIP bundle the bucketed engines are compared with: every family, the BTYD models
    (fitted on the whole population by the aggregate pass) and the expected-value models (their
    timing fitted on the whole population too) included."""
    return vip_bundle_5k


@pytest.fixture(scope="session")
def boost_bundle_5k(loaded_5k, tmp_path_factory):
    """The VIP bundle's training with both value models boosted from BG/NBD + Gamma-Gamma at
    the horizon (``value.with_btyd: boost``): the scoring paths that read BTYD at the horizon."""
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.train import train

    tables = loaded_5k[0]
    cfg = load_config(
        None,
        labels={"horizon_days": 90},
        train={"n_cutoffs": 4},
        tracking={"enabled": False},
        value={"with_btyd": "boost"},
    )
    out = tmp_path_factory.mktemp("boosted")
    return load_bundle(save_bundle(train(tables, cfg), tables=tables, config=cfg, out=out))


@pytest.fixture(scope="session")
def bundle_no_btyd_5k(loaded_5k, tmp_path_factory):
    """A VIP bundle with expected-value models but without the BTYD family: the bucketed
    engines then fit the timing's BG/NBD on candidates of their own, gathered bucket by bucket."""
    from vipml.bundle import load_bundle, save_bundle
    from vipml.config import load_config
    from vipml.train import train

    tables = loaded_5k[0]
    cfg = load_config(
        None,
        labels={"horizon_days": 90},
        train={"n_cutoffs": 4},
        tracking={"enabled": False},
        features={"families": ["purchase", "vip", "static"]},
    )
    out = tmp_path_factory.mktemp("no-btyd")
    return load_bundle(save_bundle(train(tables, cfg), tables=tables, config=cfg, out=out))
