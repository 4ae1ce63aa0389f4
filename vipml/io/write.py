"""Atomic writers and readers of frames, target lists and quarantine files."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
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
    remove_stale_temporaries(target.parent, target.name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale_temporaries(folder: Path, name: str) -> list[Path]:
    """Remove temporary files or folders of ``name`` (``.<name>.<pid>[.<hex>].tmp``) whose
    writer process is gone: what a killed writer left. Returns what was removed."""
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)(\.[0-9a-f]{{8}})?\.tmp")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        found = pattern.fullmatch(entry.name)
        if not found or _alive(int(found.group(1))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass  # another writer removed it first, or it is not ours to remove
    return removed


FRAME_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")


def _suffix(target: Path) -> str:
    return (
        "".join(target.suffixes[-2:]).lower()
        if target.name.endswith(".gz")
        else target.suffix.lower()
    )


def check_output(
    target: str | os.PathLike[str] | None,
    *,
    suffixes: Iterable[str] | None = FRAME_SUFFIXES,
    folder: bool = False,
    what: str = "--out",
) -> Path | None:
    """Refuse an output path that cannot be written, before any work starts.

    A file output must have a known suffix and not be a folder; a folder output must not be a
    file. The nearest existing parent must be a writable folder (missing ones are created on
    write). None passes (no output asked for).

    Raises
    ------
    DataError
        Naming the path and the fix.
    """
    if target is None:
        return None
    path = Path(target)
    if folder:
        if path.exists() and not path.is_dir():
            raise DataError(
                f"{what} {path} is a file, not a folder\nFix: give a folder path (new or existing)"
            )
    else:
        if path.is_dir():
            raise DataError(
                f"{what} {path} is a folder\nFix: give a file path, e.g. {path / 'out.csv'}"
            )
        if suffixes is not None:
            known = tuple(suffixes)
            if _suffix(path) not in known:
                raise DataError(
                    f"{what} {path}: unknown file type '{_suffix(path) or '(none)'}'\n"
                    + (
                        "Fix: use a .parquet or .csv file name"
                        if known == FRAME_SUFFIXES
                        else f"Fix: end the name in {', '.join(k for k in known if k)}"
                    )
                )
    parent = path if folder and path.is_dir() else path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(
            f"{what} {path}: {parent} is a file, so nothing can be written under it\n"
            "Fix: give a path in a folder"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(
            f"{what} {path}: the folder {parent} is not writable\n"
            "Fix: give a path in a folder you can write to"
        )
    return path


def write_frame(
    frame: pd.DataFrame, target: str | os.PathLike[str], *, index: bool = False
) -> Path:
    """Write a frame as Parquet or CSV (by the suffix), atomically: temp file beside it, then rename."""
    target = Path(target)
    suffix = _suffix(target)
    if suffix not in FRAME_SUFFIXES:
        raise DataError(f"cannot write '{target}': use a .parquet or .csv file name")
    check_output(target, what="output")
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".parquet", ".pq"):
        _replace_atomically(target, lambda tmp: frame.to_parquet(tmp, index=index))
    else:
        compression = "gzip" if suffix.endswith(".gz") else None
        _replace_atomically(
            target, lambda tmp: frame.to_csv(tmp, index=index, compression=compression)
        )
    return target


def replace_dir(tmp: Path, out: Path) -> None:
    """Put a finished output folder ``tmp`` in place at ``out`` (the old one, if any, goes only
    when the new one is in place)."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)


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
    if not name.endswith((".parquet", ".pq", ".csv", ".csv.gz")):
        raise DataError(f"cannot read {what} {path}: give a .parquet or .csv file")
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=dict.fromkeys(text, "str"))
    except Exception as exc:  # the parsers raise many types on a damaged file
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise DataError(
            f"cannot read {what} {path}: {type(exc).__name__}: {detail}\n"
            f"Fix: give the {what} as vipml wrote it (Parquet or UTF-8 CSV)"
        ) from None
