"""Loading: read, adapt and validate every table of a data set; quarantine what cannot be used."""

from __future__ import annotations

import os

import pandas as pd

from vipml.config import Config, TableSource, as_config
from vipml.errors import ConfigError, DataError
from vipml.io.adapt import adapt, split_order_lines
from vipml.io.checks import all_set_aside, conflicting_orders, partial_customers
from vipml.io.contract import CONTRACT, TABLE_NAMES, DataLike, Tables, ValidationReport
from vipml.io.database import FILTERED, DatabaseTable, read_database
from vipml.io.dataset import read_dataset
from vipml.io.read import _resolve_sources, read_source
from vipml.io.validate import _validate
from vipml.io.write import write_quarantine


def load_tables(
    data: DataLike = None,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
    as_of: object | None = None,
    horizon_days: int | None = None,
) -> tuple[Tables, ValidationReport]:
    """Load, type and validate the input tables.

    Parameters
    ----------
    data
        A mapping of table name to DataFrame or file, a folder holding ``<table>.parquet`` /
        ``<table>.csv`` files, or None to use the config's ``data_dir``.
    config
        A :class:`~vipml.config.Config` or a YAML path: time zone and adapters (``tables.*``).
    out
        Folder for ``quarantine/<table>.parquet`` and ``validation.json``; None writes nothing.
    progress
        Draw a progress bar on a terminal (reading, then validating, table by table).
    as_of, horizon_days
        The cutoff and the label horizon the tables are read for (default: no cutoff, every
        row). With a cutoff, tables in a database or a Parquet dataset are read only up to
        ``as_of + horizon_days`` (``orders``, ``events`` and ``offers`` by their own time,
        ``order_items`` of a database by their orders), the filter running in the database
        or the scan; features see rows before ``as_of`` and labels ``[as_of, as_of +
        horizon)``, so nothing they use is left out. Files and frames are read whole.

    Returns
    -------
    (Tables, ValidationReport)
        The clean tables and what was kept, flagged and set aside.

    Raises
    ------
    DataError
        When ``orders`` or a required column is missing, or a file cannot be read.
    """
    config = as_config(config)
    until = _until(as_of, horizon_days)
    sources = _resolve_sources(data, config)
    frames: dict[str, pd.DataFrame] = {}
    report = ValidationReport()
    origin: dict[str, str] = {}
    read_notes: dict[str, str] = {}
    from vipml.progress import progress as bar

    for name, (value, src) in bar(list(sources.items()), label="reading", enabled=progress):
        if isinstance(value, pd.DataFrame):
            frame = value
            origin[name] = "DataFrame"
        elif isinstance(value, DatabaseTable):
            parent = sources.get("orders", (None, None))[0]
            frame, read_notes[name] = read_database(
                value,
                until=until,
                timezone=config.timezone,
                parent=parent if isinstance(parent, DatabaseTable) else None,
            )
            origin[name] = value.describe()
        elif (src is not None and src.format == "dataset") or value.is_dir():
            own = FILTERED.get(name)
            frame, read_notes[name] = read_dataset(
                value,
                table=name,
                column=(src.columns.get(own, own) if src else own) if own else None,
                until=until,
                timezone=config.timezone,
            )
            origin[name] = str(value)
        else:
            frame = read_source(value, src, table=name)
            report.warnings.extend(frame.attrs.get("warnings", []))
            origin[name] = str(value)
        frames[name] = adapt(frame, src, table=name)
    line_prefix = None
    line_means = "void"
    if "order_lines" in frames:
        lines = frames.pop("order_lines")
        line_src = sources["order_lines"][1]
        line_prefix = line_src.cancel_prefix if line_src else None
        line_means = line_src.prefix_means if line_src else "void"
        if "orders" in frames or "order_items" in frames:
            raise DataError(
                "both order_lines and orders/order_items were given.\n"
                "Fix: give a line-level export as order_lines alone, or orders and order_items"
            )
        fmts = sources["order_lines"][1].date_formats if sources["order_lines"][1] else {}
        frames["orders"], frames["order_items"] = split_order_lines(
            lines, cancel_prefix=line_prefix, prefix_means=line_means
        )
        origin["orders"] = origin["order_items"] = f"{origin.pop('order_lines')} (order lines)"
        if "order_lines" in read_notes:
            read_notes["orders"] = read_notes["order_items"] = read_notes.pop("order_lines")
        sources["orders"] = (
            frames["orders"],
            TableSource(date_formats=fmts, cancel_prefix=line_prefix, prefix_means=line_means),
        )
        sources["order_items"] = (frames["order_items"], None)
        report.warnings.append(
            f"order_lines: {len(lines):,} lines became {len(frames['orders']):,} orders"
        )
    for name in config.required_tables:
        if name not in frames:
            raise DataError(
                f"table '{name}' is required but was not given (found: {', '.join(frames) or 'none'}).\n"
                f"Fix: add {name}.parquet or {name}.csv to the data folder, or map a file in the "
                f"config: tables.{name}.path"
            )

    clean: dict[str, pd.DataFrame] = {}
    quarantine: dict[str, pd.DataFrame] = {}
    known_customers: pd.Series | None = None
    for name in bar([n for n in TABLE_NAMES if n in frames], label="validating", enabled=progress):
        src = sources[name][1]
        known_orders = clean["orders"]["order_id"] if name == "order_items" else None
        table, bad, rep = _validate(
            frames[name],
            CONTRACT[name],
            timezone=config.timezone,
            date_formats=src.date_formats if src else {},
            known_customers=known_customers,
            known_orders=known_orders,
            cancel_prefix=(src.cancel_prefix if src else None) or line_prefix,
            prefix_means=src.prefix_means if src else line_means,
        )
        rep.source = origin.get(name)
        if name in read_notes:
            rep.notes.append(read_notes[name])
        if name == "customers":
            if len(table):
                known_customers = table["customer_id"]
            else:
                rep.notes.append("empty: orders and events are not checked against it")
        if rep.rows_in == 0:
            rep.notes.append("empty table")
        clean[name] = table
        quarantine[name] = bad
        report.tables[name] = rep

    tables = Tables(**clean, undated_known=config.undated_customers_known)
    report.clean = tables
    for name, rep in report.tables.items():
        if rep.rows_in and not rep.rows_kept:
            report.warnings.append(all_set_aside(name, rep, quarantine[name], sources[name][1]))
    report.warnings.extend(conflicting_orders(clean.get("orders")))
    report.warnings.extend(partial_customers(report, quarantine))
    if out is not None:
        write_quarantine(quarantine, report, out)
    return tables, report


def _until(as_of: object | None, horizon_days: int | None) -> pd.Timestamp | None:
    """The end of what a cutoff and horizon need: rows strictly before it are read."""
    if as_of is None:
        if horizon_days is not None:
            raise ConfigError("horizon_days needs as_of: give the cutoff too")
        return None
    from vipml.windows import as_cutoff

    days = 0 if horizon_days is None else int(horizon_days)
    if days < 0:
        raise ConfigError(f"horizon_days = {horizon_days}: give 0 or more days")
    return as_cutoff(as_of) + pd.Timedelta(days=days)
