"""Type coercion of raw columns: ids to text, money and counts to float, timestamps to UTC."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from vipml.errors import DataError
from vipml.io.contract import _INTEGRAL_FLOAT, _MISSING_TEXT, _OFFSET, TS_DTYPE


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


def _arrow(s: pd.Series) -> pa.ChunkedArray:
    """The Arrow data behind a text column, without a copy where pandas holds Arrow already."""
    arr = pa.array(s.array)
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


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
