"""The data contract: five tables, typed, validated, bad rows quarantined.

Only ``orders`` is required. Each table is loaded from a DataFrame, a CSV or a Parquet file,
optionally through an adapter in the config (``tables.<name>`` in YAML) that maps another layout
onto the contract. Loading

* coerces types: ids to strings (``17850.0`` becomes ``"17850"``, text ids keep leading zeros),
  timestamps to UTC (naive ones take the config's ``timezone``), money and counts to float;
* sets aside rows that cannot be used, with a reason, and writes them to
  ``<out>/quarantine/<table>.parquet``; rows in = rows kept + rows quarantined, always;
* keeps returns and cancellations, flagged in ``is_return`` and ``is_cancelled``;
* returns the clean :class:`Tables` and a :class:`ValidationReport`.

Time lives here: every timestamp leaves this module as ``datetime64[us, UTC]``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vipml.config import Config, TableSource, as_config
from vipml.errors import DataError, closest, sample_list

TS_DTYPE = "datetime64[us, UTC]"
OFFER_TYPES = ("upsell", "cross_sell", "bundle")
GROUPS = ("treatment", "control")
FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz", ".tsv", ".txt")


@dataclass(frozen=True)
class TableSpec:
    """Columns of one contract table, by kind. The first timestamp is the table's own time."""

    name: str
    required: tuple[str, ...]
    ids: tuple[str, ...] = ()
    times: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    texts: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every contract column, required first."""
        out = list(self.required)
        for col in (*self.ids, *self.times, *self.numbers, *self.texts):
            if col not in out:
                out.append(col)
        return tuple(out)

    @property
    def time(self) -> str | None:
        """The column that dates a row."""
        return self.times[0] if self.times else None


CONTRACT: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        TableSpec(
            "customers",
            required=("customer_id",),
            ids=("customer_id",),
            times=("signup_at",),
        ),
        TableSpec(
            "orders",
            required=("order_id", "customer_id", "ordered_at", "amount"),
            ids=("order_id", "customer_id"),
            times=("ordered_at",),
            numbers=("amount", "discount"),
            texts=("channel", "status"),
        ),
        TableSpec(
            "order_items",
            required=("order_id", "product_id", "quantity", "unit_price"),
            ids=("order_id", "product_id"),
            numbers=("quantity", "unit_price"),
            texts=("category", "tier"),
        ),
        TableSpec(
            "events",
            required=("customer_id", "occurred_at", "event_type"),
            ids=("customer_id", "session_id"),
            times=("occurred_at",),
            numbers=("duration_s",),
            texts=("event_type", "category", "channel"),
        ),
        TableSpec(
            "offers",
            required=("offer_id", "customer_id", "sent_at", "offer_type"),
            ids=("offer_id", "customer_id", "campaign_id"),
            times=("sent_at", "opened_at", "clicked_at", "accepted_at"),
            numbers=("discount_pct", "cost"),
            texts=("offer_type", "channel", "category", "group"),
        ),
    )
}
TABLE_NAMES = tuple(CONTRACT)
LINE_COLUMNS = (
    "order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price",
    "category", "tier", "channel", "status", "discount",
)  # fmt: skip

_MISSING_TEXT = {"", "nan", "none", "null", "na", "n/a", "nat", "<na>"}
_INTEGRAL_FLOAT = re.compile(r"^(-?\d+)\.0*$")
_OFFSET = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_LOWER = {"status", "event_type", "offer_type", "group", "tier", "channel"}
_OFFER_TYPE = {
    "cross-sell": "cross_sell",
    "cross sell": "cross_sell",
    "crosssell": "cross_sell",
    "up-sell": "upsell",
    "up_sell": "upsell",
    "up sell": "upsell",
}
_STATUS = {
    "canceled": "cancelled", "cancel": "cancelled", "cancelled": "cancelled",
    "returned": "returned", "return": "returned", "refund": "returned", "refunded": "returned",
}  # fmt: skip


# --------------------------------------------------------------------------- result types


@dataclass(frozen=True)
class Tables:
    """The clean tables of one data set. Absent tables are None; ``orders`` is required unless
    the config's ``required_tables`` says otherwise."""

    orders: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    order_items: pd.DataFrame | None = None
    events: pd.DataFrame | None = None
    offers: pd.DataFrame | None = None
    undated_known: bool = False  # customers rows without signup_at count as known from the start

    def __iter__(self) -> Iterator[tuple[str, pd.DataFrame]]:
        for name in TABLE_NAMES:
            frame = getattr(self, name)
            if frame is not None:
                yield name, frame

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the tables present."""
        return tuple(name for name, _ in self)

    def get(self, name: str) -> pd.DataFrame | None:
        """One table by name, None when absent."""
        if name not in CONTRACT:
            raise KeyError(f"no table '{name}' in the data contract ({', '.join(TABLE_NAMES)})")
        return getattr(self, name)

    def replace(self, **frames: pd.DataFrame | None) -> Tables:
        """A copy with some tables replaced."""
        return Tables(
            **{**{n: getattr(self, n) for n in TABLE_NAMES}, **frames},
            undated_known=self.undated_known,
        )

    def known_at(self, as_of: pd.Timestamp) -> pd.Index:
        """Customers known strictly before ``as_of``: signed up, ordered, browsed or got an offer.

        A customer without ``signup_at`` and without any dated row before ``as_of`` is not known,
        unless the config says ``undated_customers_known: true`` (a customers table that lists
        existing customers without their sign-up dates).
        """
        parts = []
        cust = self.customers
        if self.undated_known and cust is not None and len(cust):
            undated = (
                cust["signup_at"].isna()
                if "signup_at" in cust
                else pd.Series(True, index=cust.index)
            )
            parts.append(cust.loc[undated.to_numpy(), "customer_id"])
        for name, column in (
            ("customers", "signup_at"),
            ("orders", "ordered_at"),
            ("events", "occurred_at"),
            ("offers", "sent_at"),
        ):
            frame = self.get(name)
            if frame is not None and column in frame and len(frame):
                parts.append(frame.loc[(frame[column] < as_of).to_numpy(), "customer_id"])
        if not parts:
            return pd.Index([], dtype="str", name="customer_id")
        ids = pd.unique(pd.concat(parts, ignore_index=True).dropna())
        return pd.Index(ids, dtype="str", name="customer_id").sort_values()

    def customer_ids(self) -> pd.Index:
        """Every customer id seen in any table, sorted."""
        ids = [f["customer_id"] for _, f in self if "customer_id" in f]
        if not ids:
            return pd.Index([], dtype="str", name="customer_id")
        return pd.Index(
            pd.unique(pd.concat(ids, ignore_index=True).dropna()), name="customer_id"
        ).sort_values()


@dataclass
class TableReport:
    """What loading did to one table."""

    table: str
    rows_in: int = 0
    rows_kept: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    nulled: dict[str, int] = field(default_factory=dict)
    returns: int = 0
    cancellations: int = 0
    date_min: pd.Timestamp | None = None
    date_max: pd.Timestamp | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)
    ids: pd.Series | None = field(default=None, repr=False, compare=False)
    _customers: int | None = field(default=None, repr=False, compare=False)

    @property
    def customers(self) -> int | None:
        """Distinct customers among the kept rows (counted when first asked for)."""
        if self._customers is None and self.ids is not None:
            self._customers = int(self.ids.nunique())
        return self._customers

    @property
    def rows_quarantined(self) -> int:
        """Rows set aside, all reasons."""
        return sum(self.quarantined.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "table": self.table,
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_kept": self.rows_kept,
            "rows_quarantined": self.rows_quarantined,
            "quarantined": dict(self.quarantined),
            "values_set_missing": dict(self.nulled),
            "returns": self.returns,
            "cancellations": self.cancellations,
            "date_min": None if self.date_min is None else self.date_min.isoformat(),
            "date_max": None if self.date_max is None else self.date_max.isoformat(),
            "customers": self.customers,
            "notes": list(self.notes),
        }


@dataclass
class ValidationReport:
    """Counts per table and reason, the date range and the number of customers."""

    tables: dict[str, TableReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    quarantine_dir: Path | None = None
    clean: Tables | None = field(default=None, repr=False, compare=False)
    _customers: int | None = field(default=None, repr=False, compare=False)

    @property
    def customers(self) -> int:
        """Distinct customers over every table (counted when first asked for)."""
        if self._customers is None:
            with_ids = [t for t in self.tables.values() if t.ids is not None]
            if "customers" in self.tables and self.tables["customers"].rows_kept:
                self._customers = (
                    self.tables["customers"].customers or 0
                )  # the others were checked against it
            elif len(with_ids) == 1:
                self._customers = with_ids[0].customers or 0
            elif self.clean is not None:
                self._customers = len(self.clean.customer_ids())
            else:
                self._customers = 0
        return self._customers

    @property
    def date_range(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """Earliest and latest timestamp over every table."""
        lows = [t.date_min for t in self.tables.values() if t.date_min is not None]
        highs = [t.date_max for t in self.tables.values() if t.date_max is not None]
        return (min(lows) if lows else None, max(highs) if highs else None)

    @property
    def rows_quarantined(self) -> int:
        """Rows set aside over every table."""
        return sum(t.rows_quarantined for t in self.tables.values())

    def to_frame(self) -> pd.DataFrame:
        """One row per table and reason (reason '' for the table's totals)."""
        rows = []
        for t in self.tables.values():
            rows.append(
                {
                    "table": t.table,
                    "reason": "",
                    "rows_in": t.rows_in,
                    "rows_kept": t.rows_kept,
                    "rows": t.rows_quarantined,
                }
            )
            for reason, n in t.quarantined.items():
                rows.append(
                    {
                        "table": t.table,
                        "reason": reason,
                        "rows_in": t.rows_in,
                        "rows_kept": t.rows_kept,
                        "rows": n,
                    }
                )
        return pd.DataFrame(rows, columns=["table", "reason", "rows_in", "rows_kept", "rows"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        lo, hi = self.date_range
        return {
            "customers": self.customers,
            "date_min": None if lo is None else lo.isoformat(),
            "date_max": None if hi is None else hi.isoformat(),
            "rows_quarantined": self.rows_quarantined,
            "warnings": list(self.warnings),
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
        }

    def summary(self) -> str:
        """A plain-text table for people."""
        head = f"{'table':<12} {'rows in':>11} {'kept':>11} {'quarantined':>12}  reasons"
        lines = [head, "-" * len(head)]
        for t in self.tables.values():
            reasons = ", ".join(f"{r} {n:,}" for r, n in t.quarantined.items())
            lines.append(
                f"{t.table:<12} {t.rows_in:>11,} {t.rows_kept:>11,} {t.rows_quarantined:>12,}  {reasons}"
            )
            extra = []
            if t.returns or t.cancellations:
                extra.append(
                    f"kept and flagged: {t.returns:,} returns, {t.cancellations:,} cancellations"
                )
            if t.nulled:
                extra.append(
                    "values set missing: " + ", ".join(f"{c} {n:,}" for c, n in t.nulled.items())
                )
            extra.extend(t.notes)
            lines.extend(f"{'':<12} {e}" for e in extra)
        lo, hi = self.date_range
        span = "no dated rows" if lo is None else f"{lo:%Y-%m-%d %H:%M} .. {hi:%Y-%m-%d %H:%M} UTC"
        lines.append("")
        lines.append(f"date range: {span}")
        lines.append(f"customers:  {self.customers:,}")
        if self.quarantine_dir is not None and self.rows_quarantined:
            lines.append(f"quarantine: {self.quarantine_dir}")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def order_values(orders: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per order row: what it adds to purchases, returns and net spend.

    * ``purchase``: True for a bought order (positive amount, not cancelled), also when later returned;
    * ``gross``: its amount when a purchase, else 0;
    * ``returned``: the value given back (a negative line, or a purchase whose status is returned);
    * ``net``: gross - returned; cancelled rows add nothing anywhere.
    """
    amount = orders["amount"].to_numpy(dtype=np.float64)
    cancelled = (
        orders["is_cancelled"].to_numpy(dtype=bool)
        if "is_cancelled" in orders
        else np.zeros(len(orders), bool)
    )
    is_return = orders["is_return"].to_numpy(dtype=bool) if "is_return" in orders else amount < 0
    purchase = (amount > 0) & ~cancelled
    gross = np.where(purchase, amount, 0.0)
    returned = np.where(is_return & ~cancelled, np.abs(amount), 0.0)
    return {
        "purchase": purchase,
        "gross": gross,
        "returned": returned,
        "net": gross - returned,
        "return_row": is_return & ~cancelled,
        "cancel_row": cancelled,
    }


# --------------------------------------------------------------------------- coercion


def _is_missing_text(s: pd.Series) -> pd.Series:
    return s.isna() | s.str.strip().str.lower().isin(_MISSING_TEXT)


def clean_text(
    s: pd.Series, *, lower: bool = False, mapping: Mapping[str, str] | None = None
) -> pd.Series:
    """Text with surrounding blanks removed and missing markers (``''``, ``'nan'``, ...) as NaN.

    Works on the distinct values (fast for low-cardinality columns), and returns the input
    unchanged when nothing needs to change, so large clean columns cost no copy.
    """
    s = s if s.dtype == "str" else s.astype("str")
    arr = _arrow(s)
    uniques = pd.Series(pc.unique(arr).to_pandas(), dtype="str").dropna()
    values = uniques.str.strip()
    if lower:
        values = values.str.lower()
    values = values.mask(values.str.lower().isin(_MISSING_TEXT))
    if mapping:
        values = values.replace(dict(mapping))
    if values.equals(uniques):
        return s
    codes, found = pd.factorize(s, use_na_sentinel=True)
    lookup = dict(zip(uniques.tolist(), values.tolist(), strict=True))
    out = np.array([lookup[v] for v in found.tolist()] + [None], dtype=object)
    return pd.Series(out[codes], index=s.index, name=s.name, dtype="str")


def _clean_id_text(s: pd.Series) -> pd.Series:
    """High-cardinality id text: cheap checks first; only odd values are looked at and copied."""
    arr = _arrow(s)
    odd = pc.or_(pc.invert(pc.ascii_is_alnum(arr)), pc.less_equal(pc.binary_length(arr), 4))
    odd = pc.fill_null(odd, False)
    if not pc.any(odd).as_py():
        return s
    mask = (
        odd.to_numpy()
        if isinstance(odd, pa.Array)
        else np.concatenate([c.to_numpy(zero_copy_only=False) for c in odd.chunks])
    )
    part = s[mask].str.strip()
    part = part.str.replace(_INTEGRAL_FLOAT, r"\1", regex=True)
    part = part.mask(part.str.lower().isin(_MISSING_TEXT))
    if part.equals(s[mask]):
        return s
    out = s.copy()
    out[mask] = part
    return out


def coerce_id(s: pd.Series) -> pd.Series:
    """Ids as strings: floats that hold integers lose their ``.0``; text keeps leading zeros."""
    if pd.api.types.is_bool_dtype(s):
        out = s.astype("str")
    elif pd.api.types.is_integer_dtype(s):
        out = s.astype("Int64").astype("str") if s.hasnans else s.astype("str")
    elif pd.api.types.is_float_dtype(s):
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        integral = np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2**63)
        out = pd.Series(pd.array([None] * len(s), dtype="str"), index=s.index)
        if integral.any():
            out[integral] = values[integral].astype(np.int64).astype(str)
        rest = np.isfinite(values) & ~integral
        if rest.any():
            out[rest] = [repr(float(v)) for v in values[rest]]
    else:
        return _clean_id_text(s if s.dtype == "str" else s.astype("str"))
    return out.astype("str").rename(s.name)


def coerce_number(s: pd.Series) -> pd.Series:
    """Money and counts as float64; text like ``'$1,234.50'`` is read, anything else is NaN."""
    if pd.api.types.is_bool_dtype(s):
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s):
        out = s.astype("float64")
    else:
        text = s.astype("str").str.strip()
        text = text.str.replace(r"[\s$€£¥₩]", "", regex=True)
        thousands = text.str.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?").fillna(False)
        if thousands.any():
            text = text.mask(thousands, text.str.replace(",", "", regex=False))
        out = pd.to_numeric(text, errors="coerce").astype("float64")
    return out.where(np.isfinite(out))


def coerce_timestamp(s: pd.Series, *, timezone: str = "UTC", fmt: str | None = None) -> pd.Series:
    """Timestamps as UTC. Naive ones are read in ``timezone``; offsets are converted.

    Unparseable values become NaT. Numbers need ``fmt`` (e.g. ``'%Y%m%d'``) and are read as text.
    """
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").astype(TS_DTYPE)
    if pd.api.types.is_datetime64_dtype(s):
        return _localize(s, timezone)
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        if fmt is None:
            example = s.dropna().iloc[0] if s.notna().any() else None
            raise DataError(
                f"column '{s.name}' holds numbers (e.g. {example}), not timestamps.\n"
                f"Fix: give its format in the config: date_formats.{s.name}: '%Y%m%d' (or the format it uses)"
            )
        s = coerce_id(s)
    if s.dtype == object:
        s = s.map(lambda v: v.isoformat() if hasattr(v, "isoformat") else v)
    text = s.astype("str").str.strip()
    text = text.mask(text.str.lower().isin(_MISSING_TEXT))
    if fmt is not None:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc="%z" in fmt or "%Z" in fmt)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            return parsed.dt.tz_convert("UTC").astype(TS_DTYPE)
        return _localize(parsed, timezone)
    aware = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy()
    out = pd.Series(pd.NaT, index=s.index, dtype=TS_DTYPE, name=s.name)
    if aware.any():
        part = text[aware]
        parsed = _parse_text(part, utc=True)
        out[aware] = parsed.astype(TS_DTYPE)
    if (~aware).any():
        part = text[~aware]
        parsed = _parse_text(part, utc=False)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC").astype(TS_DTYPE)
        else:
            parsed = _localize(parsed, timezone)
        out[~aware] = parsed
    return out


def _parse_text(text: pd.Series, *, utc: bool) -> pd.Series:
    """Fast ISO-8601 first, then the pandas guesser, then per-value parsing for the rest."""
    parsed = pd.to_datetime(text, errors="coerce", utc=utc, format="ISO8601")
    failed = parsed.isna() & text.notna()
    if failed.any():
        with _quiet():
            retry = pd.to_datetime(text[failed], errors="coerce", utc=utc, format="mixed")
        if not utc and isinstance(retry.dtype, pd.DatetimeTZDtype):
            retry = retry.dt.tz_localize(None)
        parsed = parsed.astype(retry.dtype if parsed.isna().all() else parsed.dtype)
        parsed[failed] = retry
    return parsed


class _quiet:
    """Silence pandas' format-guessing warnings inside a block."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", UserWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def _localize(s: pd.Series, timezone: str) -> pd.Series:
    if timezone == "UTC":
        return s.dt.tz_localize("UTC").astype(TS_DTYPE)
    local = s.dt.tz_localize(
        timezone, ambiguous=np.zeros(len(s), dtype=bool), nonexistent="shift_forward"
    )
    return local.dt.tz_convert("UTC").astype(TS_DTYPE)


# --------------------------------------------------------------------------- adapters


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


def adapt(frame: pd.DataFrame, source: TableSource | None, *, table: str) -> pd.DataFrame:
    """Map a source layout onto the contract's column names, as the adapter says."""
    if source is None:
        return frame
    contract = LINE_COLUMNS if table == "order_lines" else CONTRACT[table].columns
    for target in [
        *source.columns,
        *source.date_formats,
        *source.values,
        *source.row_ids,
        *source.flag_times,
    ]:
        if table != "customers" and target not in contract:
            near = closest(target, contract)
            hint = f" (did you mean '{near}'?)" if near else ""
            raise DataError(
                f"table '{table}': the config maps '{target}', which is not a column of the "
                f"contract{hint}.\nFix: use one of: {', '.join(contract)}"
            )
    n = len(frame)
    out: dict[str, pd.Series] = {}
    for target, src in source.columns.items():
        if src not in frame.columns:
            raise DataError(
                f"table '{table}': the config maps {target} <- '{src}', but the file has no column "
                f"'{src}' (found: {sample_list(frame.columns, 12)}).\n"
                f"Fix: correct tables.{table}.columns.{target}"
            )
        out[target] = frame[src]
    used = set(source.columns.values())
    if source.amount_from is not None:
        qty, price = source.amount_from
        for col in (qty, price):
            if col not in frame.columns:
                raise DataError(
                    f"table '{table}': amount_from names '{col}', which the file lacks "
                    f"(found: {sample_list(frame.columns, 12)})"
                )
        out["amount"] = coerce_number(frame[qty]) * coerce_number(frame[price])
        used.update(source.amount_from)
    for col in source.row_ids:
        out[col] = pd.Series(np.arange(1, n + 1).astype(str), index=frame.index, dtype="str")
    for col, value in source.constants.items():
        out[col] = pd.Series([value] * n, index=frame.index, dtype=None if n else "str")
    for col, mapping in source.values.items():
        if col in out:
            s = out[col].astype("str")
            out[col] = s.replace(mapping)
    keep = source.keep
    rest = [c for c in frame.columns if c not in used and c not in out]
    if keep is not None:
        missing = [c for c in keep if c not in frame.columns]
        if missing:
            raise DataError(
                f"table '{table}': keep names columns the file lacks: {sample_list(missing)} "
                f"(found: {sample_list(frame.columns, 12)})"
            )
        rest = [c for c in keep if c not in out]
    for col in rest:
        out[col] = frame[col]
    if source.flag_times:
        own = CONTRACT["offers" if table == "offers" else table].time if table in CONTRACT else None
        if own is None or own not in out:
            raise DataError(
                f"table '{table}': flag_times needs the table's own time column in the mapping"
            )
        for col, flag in source.flag_times.items():
            if flag not in frame.columns:
                raise DataError(
                    f"table '{table}': flag_times.{col} names '{flag}', which the file lacks"
                )
            on = coerce_number(frame[flag]).fillna(0).to_numpy() > 0
            out[col] = out[own].where(on)
    return pd.DataFrame(out, index=frame.index, copy=False)


def split_order_lines(
    lines: pd.DataFrame, *, cancel_prefix: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A line-level export (one row per invoice line) as ``orders`` plus ``order_items``."""
    _require(
        lines, "order_lines", ("order_id", "customer_id", "ordered_at", "quantity", "unit_price")
    )
    lines = lines.copy()
    qty = coerce_number(lines["quantity"])
    price = coerce_number(lines["unit_price"])
    lines["_value"] = qty * price
    lines["_key"] = coerce_id(lines["order_id"]).fillna("")
    grouped = lines.groupby("_key", sort=False, dropna=False)
    orders = grouped.agg(
        order_id=("order_id", "first"),
        customer_id=("customer_id", "first"),
        ordered_at=("ordered_at", "first"),
        amount=("_value", lambda v: v.sum(min_count=len(v))),
    ).reset_index(drop=True)
    for col in ("channel", "status", "discount"):
        if col in lines:
            orders[col] = grouped[col].first().to_numpy()
    if cancel_prefix:
        orders["status"] = np.where(
            coerce_id(orders["order_id"]).str.startswith(cancel_prefix).fillna(False),
            "cancelled",
            orders.get("status"),
        )
    item_cols = [
        c
        for c in ("order_id", "product_id", "quantity", "unit_price", "category", "tier")
        if c in lines
    ]
    return orders, lines[item_cols].reset_index(drop=True)


# --------------------------------------------------------------------------- validation


def _require(frame: pd.DataFrame, table: str, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in frame.columns]
    if not missing:
        return
    found = ", ".join(map(str, frame.columns)) or "no columns"
    col = missing[0]
    near = closest(col, [str(c) for c in frame.columns])
    guess = near or "<source column>"
    also = f" (also missing: {', '.join(missing[1:])})" if len(missing) > 1 else ""
    raise DataError(
        f"table '{table}' has no column '{col}'{also} (found: {found}).\n"
        f"Fix: rename the column, or map it in the config: tables.{table}.columns.{col}: {guess}"
    )


class _Quarantine:
    """Reason codes per row; the first reason a row gets is the one it keeps."""

    def __init__(self, n: int) -> None:
        self.codes = np.zeros(n, dtype=np.int16)
        self.reasons: list[str] = []
        self.found: dict[str, int] = {}

    def add(self, reason: str, bad: np.ndarray | pd.Series) -> None:
        bad = np.asarray(bad, dtype=bool)
        if not bad.any():
            return
        bad = bad & (self.codes == 0)
        n = int(bad.sum())
        if n:
            if reason not in self.reasons:
                self.reasons.append(reason)
            self.codes[bad] = self.reasons.index(reason) + 1
            self.found[reason] = self.found.get(reason, 0) + n

    @property
    def keep(self) -> np.ndarray:
        return self.codes == 0

    def counts(self) -> dict[str, int]:
        return dict(self.found)

    def labels(self) -> np.ndarray:
        names = np.array(["", *self.reasons], dtype=object)
        return names[self.codes[~self.keep]]


def _validate(
    raw: pd.DataFrame,
    spec: TableSpec,
    *,
    timezone: str,
    date_formats: Mapping[str, str],
    known_customers: pd.Series | None,
    known_orders: pd.Series | None,
    cancel_prefix: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame, TableReport]:
    table = spec.name
    _require(raw, table, spec.required)
    report = TableReport(table, rows_in=len(raw))
    raw = raw.reset_index(drop=True)
    q = _Quarantine(len(raw))
    out: dict[str, pd.Series] = {}

    def one(col: str) -> tuple[pd.Series, list[tuple[str, Any]], int]:
        """Coerce one column: its values, its quarantine reasons, its count of values set missing."""
        s = raw[col]
        reasons: list[tuple[str, Any]] = []
        nulled = 0
        if col in spec.ids:
            s = coerce_id(s)
            if col in spec.required:
                reasons.append((f"missing_{col}", s.isna().to_numpy()))
        elif col in spec.times or col in spec.numbers:
            absent = s.isna() if not _is_text(s) else _is_missing_text(s.astype("str"))
            if col in spec.times:
                s = coerce_timestamp(s, timezone=timezone, fmt=date_formats.get(col))
                what = "unparseable"
            else:
                s = coerce_number(s)
                what = "non_numeric"
            bad = s.isna().to_numpy() & ~np.asarray(absent, dtype=bool)
            if col in spec.required:
                reasons += [(f"missing_{col}", absent), (f"{what}_{col}", bad)]
            else:
                nulled = int(bad.sum())
        elif col in spec.texts:
            mapping = {"status": _STATUS, "offer_type": _OFFER_TYPE}.get(col)
            s = clean_text(s, lower=col in _LOWER, mapping=mapping)
            if col in spec.required:
                reasons.append((f"missing_{col}", s.isna().to_numpy()))
        elif _is_text(s):
            s = _numbers_if_all_numeric(s)
        return s, reasons, nulled

    # columns are independent: two threads (Arrow and numpy release the GIL); reasons are then
    # applied in column order, so a row's first reason does not depend on thread timing
    # the duplicate check's sort runs beside the text columns' coercion
    cols = list(raw.columns)
    typed = [c for c in cols if c in spec.times or c in spec.numbers]
    results = {c: one(c) for c in typed}
    key = _duplicate_key({c: results[c][0] for c in typed}, spec)
    with ThreadPoolExecutor(max_workers=2) as pool:
        repeated = pool.submit(_repeated, key) if key is not None else None
        rest = [c for c in cols if c not in results]
        results.update(zip(rest, pool.map(one, rest), strict=True))
        candidates = repeated.result() if repeated is not None else None
    done = [results[c] for c in cols]
    for col, (s, reasons, nulled) in zip(cols, done, strict=True):
        for reason, mask in reasons:
            q.add(reason, mask)
        if nulled:
            report.nulled[str(col)] = nulled
        out[str(col)] = s
    frame = pd.DataFrame(out, copy=False)

    # values with a fixed vocabulary
    if table == "offers":
        kind = frame["offer_type"]
        q.add("unknown_offer_type", ~kind.isin(OFFER_TYPES) & kind.notna())
        if "group" in frame:
            grp = frame["group"].str.lower()
            odd = grp.notna() & ~grp.isin(GROUPS)
            if odd.any():
                report.nulled["group"] = int(odd.sum())
            frame["group"] = grp.mask(odd)
        for col in ("opened_at", "clicked_at", "accepted_at"):
            if col in frame:
                early = (frame[col] < frame["sent_at"]).fillna(False)
                q.add(f"{col.removesuffix('_at')}_before_sent", early)

    # exact duplicates among rows still kept
    q.add("duplicate_row", _duplicate_rows(frame, q.keep, candidates))
    if table == "customers":
        keep = q.keep
        dup = np.zeros(len(frame), dtype=bool)
        dup[keep] = frame.loc[keep, "customer_id"].duplicated(keep="first").to_numpy()
        q.add("duplicate_customer_id", dup)

    # references to other tables
    if known_customers is not None and "customer_id" in frame and table != "customers":
        q.add(
            "unknown_customer",
            ~_is_in(frame["customer_id"], known_customers)
            & frame["customer_id"].notna().to_numpy(),
        )
    if known_orders is not None and table == "order_items":
        q.add(
            "unknown_order",
            ~_is_in(frame["order_id"], known_orders) & frame["order_id"].notna().to_numpy(),
        )

    keep = q.keep
    clean = frame if keep.all() else _filter_rows(frame, keep)
    if table == "orders":
        status = (
            clean["status"]
            if "status" in clean
            else pd.Series(np.nan, index=clean.index, dtype="str")
        )
        clean["is_return"] = ((clean["amount"] < 0) | (status == "returned")).to_numpy(dtype=bool)
        cancelled = status == "cancelled"
        if cancel_prefix:
            cancelled = cancelled | clean["order_id"].str.startswith(cancel_prefix)
        clean["is_cancelled"] = cancelled.fillna(False).to_numpy(dtype=bool)
        report.returns = int(clean["is_return"].sum())
        report.cancellations = int(clean["is_cancelled"].sum())
    order = [c for c in spec.columns if c in clean] + [c for c in clean if c not in spec.columns]
    clean = clean[order]

    report.rows_kept = len(clean)
    report.quarantined = q.counts()
    if spec.time and spec.time in clean and len(clean):
        report.date_min = clean[spec.time].min()
        report.date_max = clean[spec.time].max()
    if "customer_id" in clean:
        report.ids = clean["customer_id"]  # counted only when someone asks

    bad_rows = _filter_rows(raw, ~keep)
    quarantined = pd.DataFrame({str(c): bad_rows[c].astype("str") for c in bad_rows.columns})
    quarantined.insert(0, "reason", q.labels())
    quarantined.insert(1, "row", np.flatnonzero(~keep))
    assert report.rows_kept + report.rows_quarantined == report.rows_in, "bug, please report"
    return clean, quarantined.reset_index(drop=True), report


def _arrow(s: pd.Series) -> pa.ChunkedArray:
    """The Arrow data behind a text column, without a copy where pandas holds Arrow already."""
    arr = pa.array(s.array)
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def _filter_rows(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """Rows where ``keep`` is true, column by column on two threads (Arrow and numpy release the GIL)."""
    mask = pa.array(keep)

    def one(col: str) -> Any:
        s = frame[col]
        if s.dtype == "str":
            return pd.array(pa.array(s.array).filter(mask), dtype="str")
        return s.array[keep]

    with ThreadPoolExecutor(max_workers=2) as pool:
        arrays = list(pool.map(one, frame.columns))
    out = dict(zip(frame.columns, arrays, strict=True))
    return pd.DataFrame(
        out, index=pd.RangeIndex(int(keep.sum())), columns=frame.columns, copy=False
    )


def _repeated(key: np.ndarray) -> np.ndarray:
    """Which entries of ``key`` occur more than once (a sort, no hash table: fast for integers)."""
    ordered = np.sort(key)
    same = ordered[1:] == ordered[:-1]
    if not same.any():
        return np.zeros(len(key), dtype=bool)
    values = np.unique(ordered[1:][same])
    del ordered, same
    # a cheap filter first: a 64 KiB table of the low 16 bits (it stays in cache), then the
    # exact test on the few rows that pass
    seen = np.zeros(1 << 16, dtype=bool)
    seen[(values & np.uint64(0xFFFF)).astype(np.intp)] = True
    low = (
        key.view(np.uint16)[::4]
        if key.dtype.byteorder in "=<" and np.little_endian
        else (key & 0xFFFF)
    )
    out = np.take(seen, low)
    rows = np.flatnonzero(out)
    pos = np.minimum(np.searchsorted(values, key[rows]), len(values) - 1)
    out[rows] = values[pos] == key[rows]
    return out


def _duplicate_key(columns: Mapping[str, pd.Series], spec: TableSpec) -> np.ndarray | None:
    """One integer per row from the time and number columns: equal rows have equal keys."""
    key: np.ndarray | None = None
    for col in (*spec.times, *spec.numbers):
        s = columns.get(col)
        if s is not None and str(s.dtype) in (TS_DTYPE, "float64"):
            values = s.array.asi8 if col in spec.times else s.to_numpy()
            bits = np.ascontiguousarray(values).view(np.uint64)
            if key is None:
                key = bits.copy()
            else:  # in place: no temporaries of ten million rows
                np.multiply(key, np.uint64(0x9E3779B97F4A7C15), out=key)
                np.bitwise_xor(key, bits, out=key)
    return key


def _duplicate_rows(
    frame: pd.DataFrame, keep: np.ndarray, candidates: np.ndarray | None
) -> np.ndarray:
    """Exact duplicates (after the first) among kept rows.

    Whole-row hashing of millions of rows is slow, so a cheap key (:func:`_duplicate_key`) picks
    the candidate rows first (``candidates``; None means every row), then whole rows are compared.
    """
    dup = np.zeros(len(frame), dtype=bool)
    if not keep.any() or not len(frame.columns):
        return dup
    rows = keep if candidates is None else keep & candidates
    if rows.any():
        dup[rows] = frame[rows].duplicated(keep="first").to_numpy()
    return dup


def _is_in(values: pd.Series, allowed: pd.Series) -> np.ndarray:
    """``values.isin(allowed)`` for text, with Arrow's hash set (pandas builds a Python list)."""
    found = pc.is_in(
        _arrow(values.astype("str")),
        value_set=pa.concat_arrays(
            [c.cast(pa.large_string()) for c in _arrow(allowed.astype("str")).chunks]
            or [pa.array([], pa.large_string())]
        ),
    )
    return np.asarray(
        found.to_numpy(zero_copy_only=False)
        if isinstance(found, pa.Array)
        else np.concatenate(
            [c.to_numpy(zero_copy_only=False) for c in found.chunks] or [np.zeros(0, dtype=bool)]
        ),
        dtype=bool,
    )


def _numbers_if_all_numeric(s: pd.Series) -> pd.Series:
    """An extra text column whose every value is a number (and none has a leading zero) as float."""
    head = s.head(1000).astype("str").str.strip()
    head = head[head.notna() & (head != "")]
    if len(head) and pd.to_numeric(head, errors="coerce").isna().any():
        return s  # a quick look finds text: no need to parse the whole column
    text = s.astype("str").str.strip()
    present = text.notna() & (text != "")
    if not present.any() or text[present].str.match(r"^-?0\d").any():
        return s
    numbers = pd.to_numeric(text[present], errors="coerce")
    if numbers.isna().any():
        return s
    out = pd.Series(np.nan, index=s.index, dtype="float64", name=s.name)
    out[present] = numbers.astype("float64")
    return out


def _is_text(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_datetime64_any_dtype(s))


# --------------------------------------------------------------------------- loading


DataLike = Mapping[str, "pd.DataFrame | str | os.PathLike[str]"] | str | os.PathLike[str] | None


def _discover(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for name in TABLE_NAMES:
        for suffix in FILE_SUFFIXES:
            p = folder / f"{name}{suffix}"
            if p.is_file():
                found[name] = p
                break
    return found


def _resolve_sources(
    data: DataLike, config: Config
) -> dict[str, tuple[pd.DataFrame | Path, TableSource | None]]:
    sources: dict[str, tuple[pd.DataFrame | Path, TableSource | None]] = {}
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
        origin[name] = "DataFrame" if isinstance(value, pd.DataFrame) else str(value)
        frames[name] = adapt(frame, src, table=name)
    line_prefix = None
    if "order_lines" in frames:
        lines = frames.pop("order_lines")
        line_prefix = sources["order_lines"][1].cancel_prefix if sources["order_lines"][1] else None
        if "orders" in frames or "order_items" in frames:
            raise DataError(
                "both order_lines and orders/order_items were given.\n"
                "Fix: give a line-level export as order_lines alone, or orders and order_items"
            )
        fmts = sources["order_lines"][1].date_formats if sources["order_lines"][1] else {}
        frames["orders"], frames["order_items"] = split_order_lines(
            lines, cancel_prefix=line_prefix
        )
        origin["orders"] = origin["order_items"] = f"{origin.pop('order_lines')} (order lines)"
        sources["orders"] = (
            frames["orders"],
            TableSource(date_formats=fmts, cancel_prefix=line_prefix),
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
            report.warnings.append(f"every row of '{name}' was set aside")
    if out is not None:
        write_quarantine(quarantine, report, out)
    return tables, report


def write_quarantine(
    quarantine: Mapping[str, pd.DataFrame], report: ValidationReport, out: str | os.PathLike[str]
) -> Path:
    """Write ``quarantine/<table>.parquet`` per table with set-aside rows and ``validation.json``."""
    folder = Path(out) / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    for name in TABLE_NAMES:
        target = folder / f"{name}.parquet"
        frame = quarantine.get(name)
        if frame is not None and len(frame):
            write_frame(frame, target)
        elif target.exists():
            target.unlink()  # a stale file from an earlier run would mislead
    report.quarantine_dir = folder
    atomic_write_text(
        json.dumps(report.to_dict(), indent=2, ensure_ascii=False), Path(out) / "validation.json"
    )
    return folder


def _replace_atomically(target: Path, write: Callable[[Path], object]) -> None:
    """Write to a temporary file beside ``target`` with ``write``, then rename it into place:
    a crash leaves the old file whole (and at most a stray temporary file)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_frame(
    frame: pd.DataFrame, target: str | os.PathLike[str], *, index: bool = False
) -> Path:
    """Write a frame as Parquet or CSV (by the suffix), atomically: temp file beside it, then rename."""
    target = Path(target)
    suffix = (
        "".join(target.suffixes[-2:]).lower()
        if target.name.endswith(".gz")
        else target.suffix.lower()
    )
    if suffix not in (".parquet", ".pq", ".csv", ".csv.gz"):
        raise DataError(f"cannot write '{target}': use a .parquet or .csv file name")
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".parquet", ".pq"):
        _replace_atomically(target, lambda tmp: frame.to_parquet(tmp, index=index))
    else:
        compression = "gzip" if suffix.endswith(".gz") else None
        _replace_atomically(
            target, lambda tmp: frame.to_csv(tmp, index=index, compression=compression)
        )
    return target


def atomic_write_text(text: str, target: Path) -> None:
    """Write text to a temporary file beside ``target``, then rename it into place."""
    _replace_atomically(target, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def read_frame(
    source: str | os.PathLike[str], *, text: tuple[str, ...] = (), what: str = "file"
) -> pd.DataFrame:
    """Read a frame written by :func:`write_frame` (Parquet or CSV, by the suffix); the ``text``
    columns of a CSV are read as text (ids such as ``00123`` keep their zeros)."""
    path = Path(source)
    if not path.is_file():
        raise DataError(f"{what} {path} not found\nFix: give the path of an existing file")
    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, dtype=dict.fromkeys(text, "str"))
    raise DataError(f"cannot read {what} {path}: give a .parquet or .csv file")
