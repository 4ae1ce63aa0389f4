"""Loading: read, adapt and validate every table of a data set; quarantine what cannot be used."""

from __future__ import annotations

import os

import pandas as pd

from vipml.config import Config, TableSource, as_config
from vipml.errors import DataError
from vipml.io.adapt import adapt, split_order_lines
from vipml.io.checks import all_set_aside, conflicting_orders, partial_customers
from vipml.io.contract import CONTRACT, TABLE_NAMES, DataLike, Tables, ValidationReport
from vipml.io.read import _resolve_sources, read_source
from vipml.io.validate import _validate
from vipml.io.write import write_quarantine


def load_tables(
    data: DataLike = None,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
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
    sources = _resolve_sources(data, config)
    frames: dict[str, pd.DataFrame] = {}
    report = ValidationReport()
    origin: dict[str, str] = {}
    from vipml.progress import progress as bar

    for name, (value, src) in bar(list(sources.items()), label="reading", enabled=progress):
        frame = value if isinstance(value, pd.DataFrame) else read_source(value, src, table=name)
        report.warnings.extend(frame.attrs.get("warnings", []) if frame is not value else [])
        origin[name] = "DataFrame" if isinstance(value, pd.DataFrame) else str(value)
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
