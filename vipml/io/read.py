"""Finding and reading raw table files (CSV, Parquet, whitespace text) into frames."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from vipml.config import Config, TableSource
from vipml.errors import ConfigError, DataError, closest
from vipml.io.contract import FILE_SUFFIXES, TABLE_NAMES, DataLike
from vipml.io.database import DatabaseTable
from vipml.io.dataset import is_dataset


def read_source(path: Path, source: TableSource | None = None, *, table: str = "") -> pd.DataFrame:
    """Read one file as the adapter describes: Parquet natively, text files as strings."""
    source = source or TableSource()
    if not path.is_file():
        raise DataError(
            f"table '{table}': file not found: {path}\n"
            f"Fix: check tables.{table}.path in the config, or the --data folder"
        )
    fmt = source.format
    if fmt == "auto":
        name = path.name.lower()
        if name.endswith((".parquet", ".pq")):
            fmt = "parquet"
        elif name.endswith((".tsv", ".tsv.gz")):
            fmt = "tsv"
        else:
            fmt = "csv"
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        sep = source.sep or {"csv": ",", "tsv": "\t", "whitespace": r"\s+"}[fmt]
        header = 0 if source.header else None
        names = source.names
        if names is None and not source.header:
            raise DataError(
                f"table '{table}': {path.name} has no header and the config names no columns.\n"
                f"Fix: list them: tables.{table}.names: [col1, col2, ...]"
            )
        return pd.read_csv(
            path,
            sep=sep,
            header=header,
            names=names,
            dtype="str",
            encoding=source.encoding,
            keep_default_na=False,
            skipinitialspace=True,
        )
    except DataError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"table '{table}': cannot read {path}: {exc}") from None
    except Exception as exc:  # pyarrow and the csv parser raise many types
        raise DataError(
            f"table '{table}': cannot read {path}: {type(exc).__name__}: {exc}"
        ) from None


def _discover(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in TABLE_NAMES:
        for suffix in FILE_SUFFIXES:
            p = folder / f"{name}{suffix}"
            if p.is_file():
                found[name] = p
                break
        else:  # a Parquet dataset: a folder <table>/ or <table>.parquet/
            for p in (folder / name, folder / f"{name}.parquet"):
                if is_dataset(p):
                    found[name] = p
                    break
    return found


Source = pd.DataFrame | Path | DatabaseTable


def _resolve_sources(
    data: DataLike, config: Config
) -> dict[str, tuple[Source, TableSource | None]]:
    sources: dict[str, tuple[Source, TableSource | None]] = {}
    adapters = {k: v for k, v in config.tables.model_dump().items() if v is not None}
    folder: Path | None = None
    if isinstance(data, Mapping):
        unknown = [k for k in data if k not in (*TABLE_NAMES, "order_lines")]
        if unknown:
            near = closest(unknown[0], TABLE_NAMES)
            hint = f" (did you mean '{near}'?)" if near else ""
            raise DataError(
                f"unknown table '{unknown[0]}'{hint}; the data contract has: {', '.join(TABLE_NAMES)}"
            )
        for name, value in data.items():
            src = config.tables.__getattribute__(name)
            sources[name] = (value if isinstance(value, pd.DataFrame) else Path(value), src)
        return sources
    if data is not None:
        folder = Path(data).expanduser()
    elif config.data_dir:
        folder = config.resolve(config.data_dir)
    if folder is not None and not folder.is_dir():
        raise DataError(
            f"data folder not found: {folder}\nFix: pass --data DIR, or set data_dir in the config"
        )
    for name in adapters:
        src = getattr(config.tables, name)
        if src.in_database:
            connection = src.connection or config.connection
            if not connection:
                key = "table" if src.table else "sql"
                raise ConfigError(
                    f"tables.{name}.{key} reads from a database, but no connection is given.\n"
                    f"Fix: add connection: ${{VIPML_DB_URL}} to the config (or "
                    f"tables.{name}.connection) and export VIPML_DB_URL=postgresql://user:"
                    "password@host:5432/dbname"
                )
            sources[name] = (DatabaseTable(name, src, connection), src)
            continue
        if src.path is None:
            if folder is None or name not in _discover(folder):
                continue
            path = _discover(folder)[name]
        else:
            p = Path(src.path).expanduser()
            path = p if p.is_absolute() else (folder / p if folder else config.resolve(p))
        sources[name] = (path, src)
    if folder is not None:
        for name, path in _discover(folder).items():
            sources.setdefault(name, (path, None))
    if not sources:
        where = f" in {folder}" if folder else ""
        raise DataError(
            f"no input tables found{where}.\nFix: put orders.parquet or orders.csv in the folder "
            "(and any of customers, order_items, events, offers), or map files in a config"
        )
    return sources
