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
        _check_format(text, parsed, fmt, name=s.name)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            return parsed.dt.tz_convert("UTC").astype(TS_DTYPE)
        return _localize(parsed, timezone)
    dayfirst = _day_first(text, name=s.name)
    aware = text.str.contains(_OFFSET, regex=True).fillna(False).to_numpy()
    out = pd.Series(pd.NaT, index=s.index, dtype=TS_DTYPE, name=s.name)
    if aware.any():
        part = text[aware]
        parsed = _parse_text(part, utc=True, dayfirst=dayfirst)
        out[aware] = parsed.astype(TS_DTYPE)
    if (~aware).any():
        part = text[~aware]
        parsed = _parse_text(part, utc=False, dayfirst=dayfirst)
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC").astype(TS_DTYPE)
        else:
            parsed = _localize(parsed, timezone)
        out[~aware] = parsed
    return out


_DAY_MONTH = r"^(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}(?:$|[ T])"


def _samples(values: pd.Series, n: int = 3) -> str:
    return ", ".join(repr(v) for v in pd.unique(values.dropna())[:n])


def _day_first(text: pd.Series, *, name: object) -> bool:
    """One convention per column: day-first or month-first, told from the values, or refused.

    Values such as ``13/01/2024`` are day-first, ``01/13/2024`` month-first; a column with both
    is refused, and so is one whose every value is ambiguous (``01/03/2024``), with samples.
    """
    if not len(text):
        return False
    # a cheap look first (Arrow's regex engine): ISO and other year-first columns stop here
    lead = pc.match_substring_regex(_arrow(text), r"^\d{1,2}[/.-]\d{1,2}[/.-]")
    if not pc.any(pc.fill_null(lead, False)).as_py():
        return False
    head = text.dropna()
    parts = head.str.extract(_DAY_MONTH).dropna()
    if not len(parts):
        return False
    a = parts[0].astype("int64")
    b = parts[1].astype("int64")
    day_first = head.loc[a.index[(a > 12).to_numpy()]]
    month_first = head.loc[b.index[(b > 12).to_numpy()]]
    fix = (
        f"Fix: give the column's format in the config: date_formats.{name}: '%d/%m/%Y' "
        "(day first) or '%m/%d/%Y' (month first), with the time part if any, e.g. ' %H:%M'"
    )
    if len(day_first) and len(month_first):
        raise DataError(
            f"column '{name}' mixes day-first dates ({_samples(day_first)}) and month-first "
            f"dates ({_samples(month_first)}); one convention per column is read.\n{fix}"
        )
    if len(day_first):
        return True
    if len(month_first):
        return False
    raise DataError(
        f"column '{name}' holds dates whose day and month cannot be told apart from the values "
        f"({_samples(head.loc[parts.index])}: no day above 12 in either place).\n{fix}"
    )


def _check_format(text: pd.Series, parsed: pd.Series, fmt: str, *, name: object) -> None:
    """Refuse a date format the values contradict: day and month swapped, or ISO dates."""
    failed = text[parsed.isna().to_numpy() & text.notna().to_numpy()]
    if not len(failed):
        return
    alternatives = []
    if "%d" in fmt and "%m" in fmt:
        swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
        alternatives.append((swapped, "day and month are the other way round"))
    present = text.dropna()
    for other, why in alternatives:
        again = pd.to_datetime(failed, format=other, errors="coerce")
        if again.notna().all():
            raise DataError(
                f"column '{name}': {len(failed):,} values do not match date_formats.{name} "
                f"'{fmt}' but do match '{other}' ({why}; e.g. {_samples(failed)}). Rows that "
                f"fit both would be read with day and month swapped.\n"
                f"Fix: date_formats.{name}: '{other}'"
            )
    if len(failed) == len(present):
        iso = pd.to_datetime(failed, format="ISO8601", errors="coerce")
        if iso.notna().all():
            raise DataError(
                f"column '{name}': no value matches date_formats.{name} '{fmt}'; they are "
                f"ISO dates (e.g. {_samples(failed)}).\n"
                f"Fix: remove date_formats.{name} from the config (ISO dates are read as they are)"
            )


def _parse_text(text: pd.Series, *, utc: bool, dayfirst: bool = False) -> pd.Series:
    """Fast ISO-8601 first, then the pandas guesser, then per-value parsing for the rest."""
    parsed = pd.to_datetime(text, errors="coerce", utc=utc, format="ISO8601")
    # words pandas reads as the clock's time ("today", "now") are not dates of the data
    words = pc.match_substring_regex(_arrow(text), r"^\s*(?i:now|today|tomorrow|yesterday)\s*$")
    words = np.asarray(pc.fill_null(words, False).to_numpy(zero_copy_only=False), dtype=bool)
    if words.any():
        parsed = parsed.mask(words)
    failed = parsed.isna() & text.notna() & ~words
    if failed.any():
        with _quiet():
            retry = pd.to_datetime(
                text[failed], errors="coerce", utc=utc, format="mixed", dayfirst=dayfirst
            )
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


def positions(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Where each value sits in ``index`` (unique values), -1 where it is absent or missing:
    ``index.get_indexer(values)``, done by Arrow's hash lookup when both are text (several times
    faster on millions of rows); other ids go through pandas' own matching."""
    try:
        found_in = pa.array(values, from_pandas=True)
        known = pa.array(np.asarray(index, dtype=object), from_pandas=True)
    except (TypeError, ValueError, ArithmeticError, pa.ArrowException):
        return index.get_indexer(values)
    text = (pa.types.is_string, pa.types.is_large_string)
    if not (any(f(found_in.type) for f in text) and any(f(known.type) for f in text)):
        return index.get_indexer(values)
    found_in, known = found_in.cast(pa.large_string()), known.cast(pa.large_string())
    found = pc.index_in(found_in, value_set=known).fill_null(-1)
    return found.to_numpy(zero_copy_only=False).astype(np.int64)
