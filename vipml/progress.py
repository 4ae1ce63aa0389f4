"""A small progress bar on standard error for long work (no dependency).

Shown when enabled and standard error is a terminal, or when ``VIPML_PROGRESS=1``;
``VIPML_PROGRESS=0`` hides it everywhere.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def _wanted(enabled: bool) -> bool:
    flag = os.environ.get("VIPML_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no", "")
    return enabled and sys.stderr.isatty()


def progress(
    items: Iterable[T], *, total: int | None = None, label: str = "", enabled: bool = True
) -> Iterator[T]:
    """Yield ``items`` while drawing ``label [#####.....] 3/8 1.2s`` on standard error."""
    if not _wanted(enabled):
        yield from items
        return
    total = total if total is not None else (len(items) if hasattr(items, "__len__") else None)  # type: ignore[arg-type]
    started = time.perf_counter()
    done = 0

    def draw(note: str = "") -> None:
        elapsed = time.perf_counter() - started
        if total:
            filled = int(24 * done / total)
            bar = "#" * filled + "." * (24 - filled)
            text = f"\r{label} [{bar}] {done}/{total} {elapsed:.1f}s {note}"
        else:
            text = f"\r{label} {done} {elapsed:.1f}s {note}"
        sys.stderr.write(text.ljust(79)[:160])
        sys.stderr.flush()

    draw()
    for item in items:
        yield item
        done += 1
        draw(str(item) if isinstance(item, str) else "")
    sys.stderr.write("\n")
    sys.stderr.flush()
