"""The driver report for marketers: one self-contained HTML page, in English or Korean.

``build_report`` gathers what the page shows (from data strictly before the cutoff);
``render_report`` words it in one language; ``write_report`` writes it atomically.
"""

from __future__ import annotations

from pathlib import Path

from vipml.io import atomic_write_text
from vipml.report.build import ReportData, build_report, read_campaign, read_monitor
from vipml.report.render import LANGUAGES, locale, render_report

__all__ = [
    "LANGUAGES",
    "ReportData",
    "build_report",
    "locale",
    "read_campaign",
    "read_monitor",
    "render_report",
    "write_report",
]


def write_report(data: ReportData, out: str | Path, *, lang: str = "en") -> Path:
    """Render ``data`` in ``lang`` and write it to ``out`` atomically; return the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(render_report(data, lang=lang), path)
    return path
