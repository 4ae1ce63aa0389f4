"""Atomic writers and readers of frames, target lists and quarantine files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from vipml.errors import DataError
from vipml.io.contract import TABLE_NAMES, ValidationReport


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
