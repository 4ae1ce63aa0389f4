"""The data contract: five tables, typed, validated, bad rows quarantined.

Only ``orders`` is required. Each table is loaded from a DataFrame, a CSV or a Parquet file, a
Parquet dataset folder or a PostgreSQL table or query, optionally through an adapter in the
config (``tables.<name>`` in YAML) that maps another layout onto the contract. Given a cutoff
(``load_tables(..., as_of=, horizon_days=)``), datasets and databases are read only up to
``as_of + horizon``, the filter running in the scan or the database. Loading

* coerces types: ids to strings (``17850.0`` becomes ``"17850"``, text ids keep leading zeros),
  timestamps to UTC (naive ones take the config's ``timezone``), money and counts to float;
* sets aside rows that cannot be used, with a reason, and writes them to
  ``<out>/quarantine/<table>.parquet``; rows in = rows kept + rows quarantined, always;
* keeps returns and cancellations, flagged in ``is_return`` and ``is_cancelled``;
* returns the clean :class:`Tables` and a :class:`ValidationReport`.

Time lives here: every timestamp leaves this module as ``datetime64[us, UTC]``.

The package holds one module per step: ``contract`` (tables and result types), ``coerce``,
``read`` (files), ``exports`` (Excel, saved API JSON, ids from several columns), ``dataset``
(Parquet datasets), ``database`` (PostgreSQL), ``adapt``, ``validate``, ``checks`` (warnings
across tables: partial customers, conflicting orders, why a table was set aside), ``write`` and
``load``.
"""

from vipml.io.adapt import (
    adapt,
    split_order_lines,
)
from vipml.io.coerce import (
    clean_text,
    coerce_id,
    coerce_number,
    coerce_timestamp,
    positions,
)
from vipml.io.contract import (
    CONTRACT,
    FILE_SUFFIXES,
    GROUPS,
    LINE_COLUMNS,
    OFFER_TYPES,
    TABLE_NAMES,
    TS_DTYPE,
    DataLike,
    TableReport,
    Tables,
    TableSpec,
    ValidationReport,
    order_values,
)
from vipml.io.load import (
    load_tables,
)
from vipml.io.read import (
    read_source,
)
from vipml.io.write import (
    atomic_write_text,
    read_frame,
    write_frame,
    write_quarantine,
)

__all__ = [
    "CONTRACT",
    "DataLike",
    "FILE_SUFFIXES",
    "GROUPS",
    "LINE_COLUMNS",
    "OFFER_TYPES",
    "TABLE_NAMES",
    "TS_DTYPE",
    "TableReport",
    "TableSpec",
    "Tables",
    "ValidationReport",
    "adapt",
    "atomic_write_text",
    "clean_text",
    "coerce_id",
    "coerce_number",
    "coerce_timestamp",
    "positions",
    "load_tables",
    "order_values",
    "read_frame",
    "read_source",
    "split_order_lines",
    "write_frame",
    "write_quarantine",
]
