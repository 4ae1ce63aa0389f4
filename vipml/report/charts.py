"""Plots as inline SVG: small, crisp at any zoom, no plotting library and no script.

Text in a chart stays text, so the viewing browser draws it with the page's fonts: Korean labels
render wherever the page's Korean renders, and a chart costs a few kilobytes instead of a
multi-megabyte inlined plotting library. Every label arrives from the caller (translated);
nothing here is a word a reader sees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f5fa8", "#d9822b", "#6c757d", "#2e8b57", "#b03a48", "#7b5ea7")
POSITIVE, NEGATIVE = "#1f5fa8", "#b03a48"

Fmt = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One line of a line chart."""

    name: str
    x: Sequence[float]
    y: Sequence[float]
    dashed: bool = False
    markers: bool = False


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1 if math.isfinite(lo) else 1.0
        lo = lo if math.isfinite(lo) else 0.0
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi - step * 1e-9:
        ticks.append(round(t, 12))
    return ticks


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(
    x: float, y: float, s: str, *, anchor: str = "start", cls: str = "", rotate: bool = False
) -> str:
    t = f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}{t}>{escape(s)}</text>'


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_fmt: Fmt = lambda v: f"{v:g}",
    y_fmt: Fmt = lambda v: f"{v:g}",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: bool = False,
    x_ticks: Sequence[float] | None = None,
    width: int = 500,
    height: int = 320,
) -> str:
    """A line chart with axes, ticks and a legend; ``diagonal`` draws the y = x reference;
    ``x_ticks`` places the x ticks (default: round values)."""
    xs = [v for s in series for v in s.x if v is not None and math.isfinite(v)]
    ys = [v for s in series for v in s.y if v is not None and math.isfinite(v)]
    x0, x1 = x_range or (min(xs, default=0.0), max(xs, default=1.0))
    y0, y1 = y_range or (min(ys, default=0.0), max(ys, default=1.0))
    xt, yt = _nice_ticks(x0, x1), _nice_ticks(y0, y1)
    if x_ticks is not None:
        xt = list(x_ticks)
    elif not x_range:
        x0, x1 = xt[0], xt[-1]
    if not y_range:
        y0, y1 = yt[0], yt[-1]
    xt = [t for t in xt if x0 - 1e-12 <= t <= x1 + 1e-12]
    yt = [t for t in yt if y0 - 1e-12 <= t <= y1 + 1e-12]
    left, right, top = 64, 40, 16
    legend_rows = math.ceil(len(series) / 2) if len(series) > 1 else 0
    bottom = 52 + 18 * legend_rows
    pw, ph = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + (v - x0) / ((x1 - x0) or 1) * pw

    def py(v: float) -> float:
        return top + ph - (v - y0) / ((y1 - y0) or 1) * ph

    body = [f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="plot-bg"/>']
    for t in yt:
        body.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" class="grid"/>'
        )
        body.append(_text(left - 6, py(t) + 4, y_fmt(t), anchor="end", cls="tick"))
    for t in xt:
        body.append(
            f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{top}" y2="{top + ph}" class="grid"/>'
        )
        body.append(_text(px(t), top + ph + 16, x_fmt(t), anchor="middle", cls="tick"))
    if diagonal:
        lo, hi = max(x0, y0), min(x1, y1)
        body.append(
            f'<line x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(hi):.1f}" y2="{py(hi):.1f}" class="ref"/>'
        )
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        pts = [
            (px(a), py(b))
            for a, b in zip(s.x, s.y, strict=True)
            if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
        ]
        if not pts:
            continue
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
        body.append(
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash} '
            f'data-series="{escape(s.name)}"/>'
        )
        if s.markers:
            body += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>' for a, b in pts]
    body.append(_text(left + pw / 2, top + ph + 36, x_label, anchor="middle", cls="axis"))
    body.append(_text(14, top + ph / 2, y_label, anchor="middle", cls="axis", rotate=True))
    for i, s in enumerate(series if legend_rows else []):
        lx = left + (i % 2) * (pw / 2)
        ly = top + ph + 54 + 18 * (i // 2)
        color = PALETTE[i % len(PALETTE)]
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        body.append(
            f'<line x1="{lx:.1f}" x2="{lx + 22:.1f}" y1="{ly - 4:.1f}" y2="{ly - 4:.1f}" '
            f'stroke="{color}" stroke-width="2"{dash}/>'
        )
        body.append(_text(lx + 28, ly, s.name, cls="legend"))
    return _svg(width, height, title, body)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    value_fmt: Fmt = lambda v: f"{v:g}",
    colors: Sequence[str] | None = None,
    width: int = 640,
    label_width: int = 260,
    bar_height: int = 22,
) -> str:
    """Horizontal bars, one per label, longest first as given; values may be negative."""
    n = len(values)
    height = 12 + n * (bar_height + 6)
    vmax = max((abs(v) for v in values if math.isfinite(v)), default=1.0) or 1.0
    has_neg = any(v < 0 for v in values if math.isfinite(v))
    plot_w = width - label_width - 70
    zero = label_width + (plot_w / 2 if has_neg else 0)
    scale = (plot_w / 2 if has_neg else plot_w) / vmax
    body = []
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 6 + i * (bar_height + 6)
        body.append(
            _text(label_width - 8, y + bar_height * 0.7, label, anchor="end", cls="bar-label")
        )
        if not math.isfinite(v):
            continue
        w = abs(v) * scale
        x = zero - w if v < 0 else zero
        color = (colors[i] if colors else None) or (NEGATIVE if v < 0 else POSITIVE)
        body.append(
            f'<rect x="{x:.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{bar_height}" fill="{color}" class="bar"/>'
        )
        tx = x + w + 6 if v >= 0 else x - 6
        body.append(
            _text(
                tx,
                y + bar_height * 0.7,
                value_fmt(v),
                anchor="start" if v >= 0 else "end",
                cls="tick",
            )
        )
    body.append(
        f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="2" y2="{height - 2}" class="axis-line"/>'
    )
    return _svg(width, height, title, body)
