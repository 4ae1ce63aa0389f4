"""Commerce exports as retailers download them: Excel workbooks (a header on a later row, a
password held in an environment variable), saved API JSON (a list of orders, each with a list
of items), text in cp949, and exports without a buyer id.

Each reader returns one frame of text columns, as the CSV reader does; the config's adapter
(``tables.<t>.columns``, ``values``, ``date_formats``) then maps it onto the contract. The
shipped configs ``configs/cafe24.yaml``, ``cafe24-csv.yaml``, ``smartstore.yaml``,
``coupang.yaml`` and ``11st.yaml`` map the documented columns of each export.

Excel needs the ``excel`` extra (``pip install 'vipml[excel]'``: openpyxl, and msoffcrypto-tool
for password-protected files).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vipml.config import TableSource
from vipml.errors import DataError, sample_list

_EXCEL_MAGIC_ZIP = b"PK\x03\x04"
_EXCEL_MAGIC_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted .xlsx and legacy .xls


def read_excel(path: Path, source: TableSource, *, table: str) -> pd.DataFrame:
    """One sheet of a workbook as text columns, the header on ``source.header_row``.

    A password-protected workbook is decrypted in memory with the password found in the
    environment variable ``source.password_env`` names.
    """
    try:
        import openpyxl  # noqa: F401
    except ImportError:
        raise DataError(
            f"table '{table}': reading {path.name} needs openpyxl.\nFix: pip install 'vipml[excel]'"
        ) from None
    raw = path.read_bytes()
    data: Any = io.BytesIO(raw)
    if raw[:8] == _EXCEL_MAGIC_OLE:
        data = _decrypt(raw, path, source, table=table)
    try:
        frame = pd.read_excel(
            data,
            sheet_name=source.sheet,
            header=source.header_row - 1 if source.header else None,
            names=source.names,
            dtype=object,
            engine="openpyxl",
        )
    except (ValueError, KeyError, OSError) as exc:
        legacy = raw[:8] == _EXCEL_MAGIC_OLE and path.suffix.lower() == ".xls"
        hint = "\nFix: open it and save it as .xlsx (legacy .xls is not read)" if legacy else ""
        raise DataError(f"table '{table}': cannot read {path}: {exc}{hint}") from None
    except Exception as exc:  # zip and XML errors of damaged workbooks
        raise DataError(
            f"table '{table}': cannot read {path}: {type(exc).__name__}: {exc}"
        ) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    _header_elsewhere(frame, source, table=table, path=path)
    frame = frame.dropna(how="all").reset_index(drop=True)
    return _as_text(frame)


def _header_elsewhere(frame: pd.DataFrame, source: TableSource, *, table: str, path: Path) -> None:
    """Refuse a sheet whose mapped columns sit on a later row than ``header_row``, naming it."""
    if not source.header:
        return
    wanted = [
        c for spec in source.columns.values() for c in ([spec] if isinstance(spec, str) else spec)
    ]
    missing = [c for c in wanted if c not in frame.columns]
    if not missing:
        return
    for i in range(min(10, len(frame))):
        cells = {str(v).strip() for v in frame.iloc[i].tolist() if pd.notna(v)}
        if all(c in cells for c in missing):
            row = source.header_row + 1 + i
            raise DataError(
                f"table '{table}': {path.name} has its column names on row {row}, not on row "
                f"{source.header_row} (row {source.header_row} holds: "
                f"{sample_list(frame.columns, 6)}).\nFix: tables.{table}.header_row: {row}"
            )


def _decrypt(raw: bytes, path: Path, source: TableSource, *, table: str) -> io.BytesIO:
    try:
        import msoffcrypto
    except ImportError:
        raise DataError(
            f"table '{table}': {path.name} is password-protected; decrypting it needs "
            "msoffcrypto-tool.\nFix: pip install 'vipml[excel]'"
        ) from None
    office = msoffcrypto.OfficeFile(io.BytesIO(raw))
    if not office.is_encrypted():
        return io.BytesIO(raw)  # a legacy .xls: openpyxl cannot read it either, said below
    var = source.password_env
    if not var:
        raise DataError(
            f"table '{table}': {path.name} is password-protected and the config names no "
            "variable holding its password.\n"
            f"Fix: tables.{table}.password_env: SMARTSTORE_PASSWORD, and export "
            "SMARTSTORE_PASSWORD=... in the shell that runs vipml"
        )
    password = os.environ.get(var)
    if not password:
        raise DataError(
            f"table '{table}': {path.name} is password-protected and the environment variable "
            f"{var} (tables.{table}.password_env) is not set.\nFix: export {var}=<password>"
        )
    out = io.BytesIO()
    try:
        office.load_key(password=password)
        office.decrypt(out)
    except Exception:
        raise DataError(
            f"table '{table}': the password in {var} does not open {path.name}.\n"
            f"Fix: set {var} to the file's password"
        ) from None
    out.seek(0)
    return out


def read_json(path: Path, source: TableSource, *, table: str) -> pd.DataFrame:
    """Saved API JSON as rows: a list of records (or ``{"orders": [...]}``), one row per
    element of ``source.json_records`` in each record when given, nested fields dotted."""
    try:
        encoding = _text_encoding(source.encoding)
        if encoding == "auto":
            encoding = _sniff_encoding(path)
        doc = json.loads(path.read_text(encoding=encoding))
    except (ValueError, OSError, LookupError) as exc:
        hint = (
            f"\nFix: set tables.{table}.encoding to the file's encoding (cp949, or auto)"
            if isinstance(exc, UnicodeDecodeError)
            else ""
        )
        raise DataError(f"table '{table}': cannot read {path} as JSON: {exc}{hint}") from None
    if isinstance(doc, dict):
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(
                f"table '{table}': {path.name} is a JSON object with {len(lists)} lists "
                f'({sample_list(lists)}); expected one list of records (e.g. {{"orders": [...]}})'
            )
        doc = doc[lists[0]]
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise DataError(f"table '{table}': {path.name} holds no list of JSON records")
    if not doc:
        return pd.DataFrame()
    key = source.json_records
    if key is None:
        frame = pd.json_normalize(doc, sep=".")
    else:
        lacking = sum(1 for r in doc if not isinstance(r.get(key), list))
        if lacking == len(doc):
            raise DataError(
                f"table '{table}': no record of {path.name} has a list '{key}' "
                f"(found: {sample_list(sorted(doc[0]), 12)}).\n"
                f"Fix: correct tables.{table}.json_records"
            )
        meta = sorted(
            {k for r in doc for k, v in r.items() if k != key and not isinstance(v, list | dict)}
        )
        nested = sorted(
            {(k, sub) for r in doc for k, v in r.items() if isinstance(v, dict) for sub in v}
        )
        rows = [
            {**r, key: r.get(key) if isinstance(r.get(key), list) else []} for r in doc
        ]  # a record without items still counts: it becomes no row, and is counted below
        frame = pd.json_normalize(
            rows,
            record_path=key,
            meta=[*meta, *[[k, sub] for k, sub in nested]],
            record_prefix=f"{key}.",
            sep=".",
            errors="ignore",
        )
        empty = sum(1 for r in rows if not r[key])
        if empty:
            frame.attrs["warnings"] = [
                f"{table}: {empty:,} of {len(rows):,} records of {path.name} have no '{key}' "
                "and give no row"
            ]
    warnings = frame.attrs.get("warnings", [])
    frame = _as_text(frame)
    frame.attrs["warnings"] = warnings
    return frame


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Every column as text (missing stays missing); whole floats lose their ``.0``."""
    out = {}
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_float_dtype(s) or s.dtype == object:
            s = s.map(_text_value, na_action="ignore")
        out[str(col)] = s.astype("str")
    return pd.DataFrame(out, index=frame.index)


def _text_value(v: Any) -> Any:
    if isinstance(v, float) and np.isfinite(v) and v == int(v):
        return str(int(v))
    if isinstance(v, pd.Timestamp):
        return v.isoformat(sep=" ")
    if hasattr(v, "isoformat"):
        return v.isoformat(sep=" ") if hasattr(v, "hour") else v.isoformat()
    if isinstance(v, bool):
        return "T" if v else "F"
    return v if isinstance(v, str) else str(v)


def _sniff_encoding(path: Path) -> str:
    """utf-8 (with or without a byte-order mark) when the bytes decode as such, else cp949."""
    try:
        with path.open(encoding="utf-8-sig") as fh:
            while fh.read(1 << 20):
                pass
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "cp949"


def _text_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding


def hash_ids(frame: pd.DataFrame, columns: list[str], *, table: str, target: str) -> pd.Series:
    """An id made of several source columns (e.g. buyer name and phone): a short stable hash.

    Rows where every one of the columns is empty get no id (and are quarantined as missing).
    """
    lacking = [c for c in columns if c not in frame.columns]
    if lacking:
        raise DataError(
            f"table '{table}': hash_ids.{target} names columns the file lacks: "
            f"{sample_list(lacking)} (found: {sample_list(frame.columns, 12)})"
        )
    parts = pd.DataFrame(
        {f"c{i}": frame[c].astype("str").fillna("").str.strip() for i, c in enumerate(columns)},
        index=frame.index,
    )
    empty = (parts == "").all(axis=1).to_numpy()
    # pandas' fixed-key 64-bit hash of the row's values: vectorised and the same on every run
    digest = pd.util.hash_pandas_object(parts, index=False).to_numpy(dtype=np.uint64)
    values = digest.astype(str).astype(object)
    values[empty] = None
    return pd.Series(pd.array(values, dtype="str"), index=frame.index, name=target)


def one_row_per_customer(frame: pd.DataFrame, *, table: str) -> pd.DataFrame:
    """The last row of each customer (file order), for a customers table read from orders."""
    if "customer_id" not in frame:
        raise DataError(
            f"table '{table}': per_customer needs customer_id in the mapping "
            f"(tables.{table}.columns.customer_id)"
        )
    key = frame["customer_id"].astype("str").str.strip()
    keep = ~key.duplicated(keep="last").to_numpy() | key.isna().to_numpy()
    return frame.loc[keep].reset_index(drop=True)
