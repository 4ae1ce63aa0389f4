"""Finding and reading raw table files (CSV, Parquet, whitespace text) into frames."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from vipml.config import Config, TableSource
from vipml.errors import ConfigError, DataError, closest
from vipml.io.contract import FILE_SUFFIXES, TABLE_NAMES, DataLike
from vipml.io.database import DatabaseTable
from vipml.io.dataset import is_dataset
from vipml.io.exports import _sniff_encoding, _text_encoding, read_excel, read_json


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
        elif name.endswith((".xlsx", ".xlsm", ".xls")):
            fmt = "excel"
        elif name.endswith(".json"):
            fmt = "json"
        elif name.endswith((".tsv", ".tsv.gz")):
            fmt = "tsv"
        else:
            fmt = "csv"
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt == "excel":
            return read_excel(path, source, table=table)
        if fmt == "json":
            return read_json(path, source, table=table)
        sep = source.sep or {"csv": ",", "tsv": "\t", "whitespace": r"\s+"}[fmt]
        header = 0 if source.header else None
        names = source.names
        if names is None and not source.header:
            raise DataError(
                f"table '{table}': {path.name} has no header and the config names no columns.\n"
                f"Fix: list them: tables.{table}.names: [col1, col2, ...]"
            )
        encoding = _text_encoding(source.encoding)
        if encoding == "auto":
            encoding = _sniff_encoding(path)
        frame = pd.read_csv(
            path,
            sep=sep,
            header=header,
            names=names,
            dtype="str",
            encoding=encoding,
            keep_default_na=False,
            skipinitialspace=True,
        )
        if fmt in ("csv", "tsv"):
            frame.attrs["warnings"] = _cut_short(path, sep, frame, encoding, table=table)
        return frame
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(
            f"table '{table}': {path.name} is not {source.encoding} text ({exc.reason} at byte "
            f"{exc.start:,}).\nFix: set tables.{table}.encoding to the file's encoding: cp949 "
            "(also read as euc-kr) for most Korean exports, or 'auto'"
        ) from None
    except (ValueError, OSError) as exc:
        raise DataError(f"table '{table}': cannot read {path}: {exc}") from None
    except Exception as exc:  # pyarrow and the csv parser raise many types
        raise DataError(
            f"table '{table}': cannot read {path}: {type(exc).__name__}: {exc}"
        ) from None


def _cut_short(
    path: Path, sep: str, frame: pd.DataFrame, encoding: str, *, table: str
) -> list[str]:
    """A warning when the file's last line has fewer fields than its header (a cut-off copy)."""
    if path.name.lower().endswith(".gz") or not len(frame) or len(sep) != 1:
        return []
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - (1 << 16)))
        tail = fh.read()
    lines = [ln for ln in tail.decode(encoding, errors="replace").splitlines() if ln.strip()]
    if not lines:
        return []
    last = next(csv.reader([lines[-1]], delimiter=sep), [])
    width = frame.shape[1]
    if len(last) >= width:
        return []
    ended = tail.endswith((b"\n", b"\r"))
    return [
        f"{table}: the last line of {path.name} has {len(last)} of {width} fields"
        f"{'' if ended else ' and no line end'}: the file looks cut short (row {len(frame):,}: "
        f"{lines[-1][:60]!r}).\nFix: export or copy the file again"
    ]


def _discover(folder: Path, skip: set[str] | frozenset[str] = frozenset()) -> dict[str, Path]:
    """``<table>.<suffix>`` files in a folder; two files for one table are an error."""
    found: dict[str, Path] = {}
    for name in TABLE_NAMES:
        if name in skip:
            continue
        hits = [folder / f"{name}{suffix}" for suffix in FILE_SUFFIXES]
        hits = [p for p in hits if p.is_file()]
        # a Parquet dataset: a folder <table>/ or <table>.parquet/
        hits += [p for p in (folder / name, folder / f"{name}.parquet") if is_dataset(p)]
        if len(hits) > 1:
            raise DataError(
                f"table '{name}': {len(hits)} files in {folder} could hold it: "
                f"{', '.join(p.name for p in hits)}; only one would be read.\n"
                f"Fix: move all but one away, or name the one to read: tables.{name}.path: "
                f"{hits[0].name}"
            )
        if hits:
            found[name] = hits[0]
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
            if folder is None or name not in TABLE_NAMES:
                continue
            hit = _discover(folder, skip=set(TABLE_NAMES) - {name}).get(name)
            if hit is None:
                continue
            path = hit
        else:
            p = Path(src.path).expanduser()
            path = p if p.is_absolute() else (folder / p if folder else config.resolve(p))
        sources[name] = (path, src)
    if folder is not None:
        for name, path in _discover(folder, skip=set(sources)).items():
            sources.setdefault(name, (path, None))
    if not sources:
        where = f" in {folder}" if folder else ""
        raise DataError(
            f"no input tables found{where}.\nFix: put orders.parquet or orders.csv in the folder "
            "(and any of customers, order_items, events, offers), or map files in a config"
        )
    return sources
