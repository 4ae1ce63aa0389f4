"""Put a report's data into words: one self-contained HTML page per language.

Every word comes from the translation tables in ``locales/<lang>.json``; the page template holds
markup and placeholders only. Feature descriptions come from the feature registry (``en``/``ko``),
plays from the config's playbook. Charts are inline SVG, so the page opens without a network.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from vipml.errors import ConfigError
from vipml.report.build import PROFILE, ReportData
from vipml.report.charts import NEGATIVE, POSITIVE, Series, bar_chart, line_chart

LANGUAGES = ("en", "ko")


@cache
def locale(lang: str) -> dict[str, str]:
    """The translation table of ``lang``."""
    if lang not in LANGUAGES:
        raise ConfigError(
            f"no translation for language '{lang}'\nFix: use one of {', '.join(LANGUAGES)}"
        )
    text = resources.files("vipml.report").joinpath(f"locales/{lang}.json").read_text("utf-8")
    return json.loads(text)


def template() -> Template:
    """The page skeleton (markup and ``$placeholders`` only)."""
    return Template(resources.files("vipml.report").joinpath("template.html").read_text("utf-8"))


class Words:
    """Translated text of one language, with the number formats the report uses."""

    def __init__(self, lang: str, currency: str) -> None:
        self.lang = lang
        self.table = locale(lang)
        self.currency = currency

    def __call__(self, key: str, **values: Any) -> str:
        try:
            text = self.table[key]
        except KeyError:
            raise KeyError(
                f"translation key '{key}' is missing from locales/{self.lang}.json"
            ) from None
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self.table

    def pct(self, v: float, digits: int = 1) -> str:
        return "–" if v is None or not math.isfinite(v) else f"{v * 100:.{digits}f}%"

    def num(self, v: float, digits: int = 0) -> str:
        return "–" if v is None or not math.isfinite(v) else f"{v:,.{digits}f}"

    def money(self, v: float) -> str:
        return "–" if v is None or not math.isfinite(v) else f"{v:,.0f} {self.currency}"

    def value(self, v: Any, unit: str = "") -> str:
        """A feature value by its unit."""
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "–"
        if isinstance(v, str):
            return v
        if unit == "currency":
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}"
        if unit in ("ratio", "share"):
            return self.pct(v)
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.3g}"


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    classes: Sequence[str] | None = None,
    cls: str = "",
) -> str:
    head = "".join(
        f"<th{' class=num' if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for r, row in enumerate(rows):
        cells = "".join(
            f"<td{' class=num' if i in numeric else ''}>{escape(str(c))}</td>"
            for i, c in enumerate(row)
        )
        row_cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        body.append(f"<tr{row_cls}>{cells}</tr>")
    c = f' class="{cls}"' if cls else ""
    return f"<table{c}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _cols(w: Words, section: str, *names: str) -> list[str]:
    """Translated column headers ``<section>.col.<name>``."""
    return [w(f"{section}.col.{n}") for n in names]


def _p(text: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return f"<p{c}>{escape(text)}</p>"


def _figure(svg: str, caption: str = "") -> str:
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f"<figure>{svg}{cap}</figure>"


def _desc(row: pd.Series, w: Words) -> str:
    text = row.get(f"description_{w.lang}")
    return str(text) if isinstance(text, str) and text else str(row["feature"])


def _date(t: pd.Timestamp) -> str:
    return f"{pd.Timestamp(t):%Y-%m-%d}"


def _rule(d: ReportData, w: Words) -> str:
    r = d.vip_rule
    days = r.get("window_days", 365)
    if r.get("rule") == "threshold":
        return w("rule.threshold", threshold=w.money(float(r.get("threshold") or 0)), days=days)
    if r.get("rule") == "tier":
        return w(
            "rule.tier", column=r.get("tier_column"), values=", ".join(r.get("tier_values", []))
        )
    return w("rule.top_share", share=w.pct(float(r.get("share", 0.1)), 0), days=days)


# --- sections -------------------------------------------------------------------------------


def headline(d: ReportData, w: Words) -> str:
    a = d.pareto.attrs
    days = int(d.vip_rule.get("window_days", 365))
    customers = int(a.get("customers", 0))
    vip_share, rev_share = (
        float(a.get("vip_customer_share", 0.0)),
        float(a.get("vip_revenue_share", 0.0)),
    )
    vips = round(vip_share * customers)
    parts = []
    if vips:
        parts.append(
            _p(
                w(
                    "headline.text",
                    vips=w.num(vips),
                    customers=w.num(customers),
                    vip_share=w.pct(vip_share),
                    rule=_rule(d, w),
                    days=days,
                    vip_revenue_share=w.pct(rev_share),
                    ratio=w.num(rev_share / vip_share, 1) if vip_share else "–",
                )
            )
        )
    else:
        parts.append(_p(w("headline.no_vips", rule=_rule(d, w), as_of=_date(d.as_of))))
    cards = [
        (w.num(customers), w("headline.card.customers")),
        (w.num(vips), w("headline.card.vips")),
        (w.money(float(a.get("revenue", math.nan))), w("headline.card.revenue", days=days)),
        (w.pct(rev_share), w("headline.card.vip_revenue")),
    ]
    parts.append(
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{escape(v)}</div><div class="label">{escape(k)}</div></div>'
            for v, k in cards
        )
        + "</div>"
    )
    p = d.pareto
    if len(p):
        svg = line_chart(
            [
                Series(
                    w("pareto.curve"), p["customer_share"].tolist(), p["revenue_share"].tolist()
                ),
                Series(w("pareto.equal"), [0.0, 1.0], [0.0, 1.0], dashed=True),
            ],
            title=w("pareto.title"),
            x_label=w("pareto.x"),
            y_label=w("pareto.y"),
            x_fmt=lambda v: w.pct(v, 0),
            y_fmt=lambda v: w.pct(v, 0),
            x_range=(0, 1),
            y_range=(0, 1),
        )
        parts.append(_figure(svg, w("pareto.title")))
    return "".join(parts)


def drivers(d: ReportData, w: Words) -> str:
    dr = d.drivers
    if not len(dr):
        return _p(w("none"))
    labels = [_desc(r, w) for _, r in dr.iterrows()]
    signed = (dr["mean_abs_contribution"] * np.where(dr["direction"] < 0, -1, 1)).tolist()
    colors = [NEGATIVE if s < 0 else POSITIVE for s in signed]
    svg = bar_chart(
        labels,
        dr["mean_abs_contribution"].tolist(),
        title=w("drivers.chart"),
        value_fmt=lambda v: f"{v:.3f}",
        colors=colors,
    )
    plays = d.plays.set_index("feature") if len(d.plays) else pd.DataFrame()
    rows = []
    for (_, r), label in zip(dr.iterrows(), labels, strict=True):
        direction = {1: "direction.up", -1: "direction.down"}.get(
            int(r["direction"]), "direction.mixed"
        )
        play = plays.loc[r["feature"]] if r["feature"] in plays.index else None
        play_text = str(play[f"play_{w.lang}"]) if play is not None else ""
        offer = (
            w(f"offer.{play['offer_type']}")
            if play is not None and w.has(f"offer.{play['offer_type']}")
            else ""
        )
        rows.append(
            [int(r["rank"]), label, w.pct(float(r["share"])), w(direction), play_text, offer]
        )
    parts = [
        _p(w("drivers.text", customers=w.num(d.drivers_rows))),
        _figure(svg),
        f"<h3>{escape(w('plays.title'))}</h3>",
        _p(w("plays.text")),
        _table(
            _cols(w, "drivers", "rank", "signal", "share", "direction", "play", "offer"),
            rows,
            numeric=(0, 2),
            cls="drivers",
        ),
    ]
    c = d.curves
    if len(c):
        parts += [f"<h3>{escape(w('curves.title'))}</h3>", _p(w("curves.text"))]
        figs = []
        desc = dict(zip(dr["feature"], labels, strict=True))
        for feature, part in c.groupby("feature", sort=False):
            part = part.sort_values("bin")
            label = desc.get(feature, feature)
            ticks = [
                w(f"bin.{t}") if t in ("missing", "other") else t for t in part["label"].astype(str)
            ]
            every = max(1, math.ceil(len(ticks) / 5))
            svg = line_chart(
                [Series(label, list(range(len(part))), part["mean_score"].tolist(), markers=True)],
                title=w("curves.chart", feature=label),
                x_label=label,
                y_label=w("curves.y"),
                x_fmt=_index_fmt(ticks),
                y_fmt=lambda v: w.pct(v, 1),
                x_range=(0, max(len(part) - 1, 1)),
                x_ticks=list(range(0, len(part), every)),
                width=440,
                height=280,
            )
            figs.append(_figure(svg, w("curves.chart", feature=label)))
        parts.append('<div class="charts">' + "".join(figs) + "</div>")
    return "".join(parts)


def _index_fmt(labels: list[str]) -> Callable[[float], str]:
    def fmt(v: float) -> str:
        i = int(round(v))
        return labels[i] if 0 <= i < len(labels) and abs(v - i) < 1e-9 else ""

    return fmt


def _comparison(
    table: pd.DataFrame, w: Words, d: ReportData, *, converters: bool, limit: int = 15
) -> str:
    if table is None or not len(table):
        return _p(w("none"))
    tested = table[~table.get("suppressed", pd.Series(False, index=table.index)).astype(bool)]
    shown = table.head(limit)
    keys = (
        (
            "compare.col.median_conv",
            "compare.col.median_nonconv",
            "compare.col.mean_conv",
            "compare.col.mean_nonconv",
        )
        if converters
        else (
            "compare.col.median_group",
            "compare.col.median_rest",
            "compare.col.mean_group",
            "compare.col.mean_rest",
        )
    )
    rows, classes = [], []
    for _, r in shown.iterrows():
        unit = str(r.get("unit", "") or "")
        if bool(r.get("suppressed", False)):
            rows.append([_desc(r, w), w("suppressed", min=d.min_group), "", "", "", "", "", "", ""])
            classes.append("suppressed")
            continue
        rows.append(
            [
                _desc(r, w),
                w.value(r["median_group"], unit),
                w.value(r["median_rest"], unit),
                w.value(r["mean_group"], unit),
                w.value(r["mean_rest"], unit),
                w.num(float(r["ratio"]), 2) if pd.notna(r["ratio"]) else "–",
                f"{float(r['effect_size']):+.2f}" if pd.notna(r["effect_size"]) else "–",
                _pvalue(float(r["p_adjusted"])),
                w("yes") if bool(r["significant"]) else w("no"),
            ]
        )
        classes.append("")
    headers = [
        w("compare.col.signal"),
        *(w(k) for k in keys),
        w("compare.col.ratio"),
        w("compare.col.effect"),
        w("compare.col.p"),
        w("compare.col.significant"),
    ]
    note = _p(w("compare.showing", shown=len(shown), tests=len(tested)), "note")
    return (
        _table(headers, rows, numeric=(1, 2, 3, 4, 5, 6, 7), classes=classes, cls="compare") + note
    )


def _pvalue(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def compare(d: ReportData, w: Words) -> str:
    vip = d.vip_vs_regular
    tests = (
        int((~vip.get("suppressed", pd.Series(False, index=vip.index)).astype(bool)).sum())
        if len(vip)
        else 0
    )
    parts = [
        _p(w("compare.text", as_of=_date(d.as_of), tests=tests)),
        _comparison(vip, w, d, converters=False),
        f"<h3>{escape(w('compare.converters.title'))}</h3>",
    ]
    start, end = d.converters_window
    if d.converters is not None:
        conv, rest = d.converters_counts
        parts.append(
            _p(
                w(
                    "compare.converters.text",
                    start=_date(start),
                    end=_date(end),
                    converters=w.num(conv) if conv else "–",
                    rest=w.num(rest) if rest else "–",
                )
            )
        )
        parts.append(_comparison(d.converters, w, d, converters=True))
    else:
        parts.append(_p(w("compare.converters.missing", reason=d.converters_missing or ""), "note"))
    return "".join(parts)


def quality(d: ReportData, w: Words) -> str:
    m = d.metrics
    outcome = w(f"outcome.{d.task}")
    model = m.loc["model"] if "model" in m.index else None
    parts = []
    if model is None:
        return _p(w("none"))

    def get(name: str, col: str) -> float:
        return float(m.loc[name, col]) if name in m.index and col in m else math.nan

    if d.horizon_days:
        asked = d.requested_horizon_days
        shortened = bool(asked) and int(asked) != int(d.horizon_days)
        parts.append(
            _p(
                w(
                    "quality.text.horizon_short" if shortened else "quality.text.horizon",
                    horizon=w.num(float(d.horizon_days)),
                    requested=w.num(float(asked or d.horizon_days)),
                )
            )
        )
    parts.append(
        _p(
            w(
                "quality.text.base",
                positives=w.num(float(model["positives"])),
                rows=w.num(float(model["rows"])),
                base_rate=w.pct(float(model["base_rate"]), 2),
                outcome=outcome,
            )
        )
    )
    parts.append(
        _p(
            w(
                "quality.text.top",
                share=w.pct(0.10, 0),
                capture=w.pct(get("model", "capture_10")),
                outcome=outcome,
                lift=w.num(get("model", "lift_10"), 1),
                rfm_capture=w.pct(get("rfm_heuristic", "capture_10")),
                lr_capture=w.pct(get("logistic_regression", "capture_10")),
            )
        )
    )
    auc = get("model", "roc_auc")
    parts.append(
        _p(
            w(
                "quality.text.auc",
                auc=w.num(auc, 3),
                outcome=outcome,
                auc_pct=w.pct(auc, 0),
                rfm_auc=w.pct(get("rfm_heuristic", "roc_auc"), 0),
            )
        )
    )
    if math.isfinite(get("model", "ece")):
        parts.append(_p(w("quality.text.calibration", ece=w.num(get("model", "ece") * 100, 1))))
    rows = []
    for name in m.index:
        rows.append(
            [
                w(f"scorer.{name}") if w.has(f"scorer.{name}") else name,
                w.num(get(name, "roc_auc"), 3),
                w.num(get(name, "pr_auc"), 3),
                w.num(get(name, "lift_10"), 2),
                w.pct(get(name, "capture_10")),
                w.num(get(name, "brier"), 4),
            ]
        )
    parts.append(
        _table(
            _cols(w, "quality", "scorer", "roc", "pr", "lift", "capture", "brier"),
            rows,
            numeric=(1, 2, 3, 4, 5),
            cls="quality",
        )
    )
    figs = []
    cv = d.curves_test
    names = [
        n
        for n in ("model", "logistic_regression", "rfm_heuristic", "bgnbd_gamma_gamma")
        if cv.get(n)
    ]

    def label(n: str) -> str:
        return w(f"scorer.{n}")

    pct0 = lambda v: w.pct(v, 0)  # noqa: E731
    if names and "fpr" in cv[names[0]]:
        for key, x, y in (("roc", "fpr", "tpr"), ("gains", "contacted", "captured")):
            series = [Series(label(n), cv[n][x], cv[n][y]) for n in names]
            series.append(Series(w("scorer.random"), [0, 1], [0, 1], dashed=True))
            chart = line_chart(
                series,
                title=w(f"{key}.title"),
                x_label=w(f"{key}.x"),
                y_label=w(f"{key}.y", outcome=outcome),
                x_fmt=pct0,
                y_fmt=pct0,
                x_range=(0, 1),
                y_range=(0, 1),
            )
            figs.append(_figure(chart, w(f"{key}.title")))
    if cv.get("model", {}).get("predicted"):
        c = cv["model"]
        top = max(max(c["predicted"]), max(c["observed"]), 0.01)
        top = min(1.0, top * 1.1)
        figs.append(
            _figure(
                line_chart(
                    [
                        Series(label("model"), c["predicted"], c["observed"], markers=True),
                        Series(w("calibration.perfect"), [0, top], [0, top], dashed=True),
                    ],
                    title=w("calibration.title"),
                    x_label=w("calibration.x"),
                    y_label=w("calibration.y"),
                    x_fmt=pct0,
                    y_fmt=pct0,
                    x_range=(0, top),
                    y_range=(0, top),
                ),
                w("calibration.title"),
            )
        )
    bt = d.backtest
    if len(bt) and "roc_auc" in bt:
        bt = bt.sort_values("as_of").reset_index(drop=True)
        dates = [_date(t) for t in bt["as_of"]]
        folds = bt["fold"].astype(str) if "fold" in bt else pd.Series([""] * len(bt))
        ticks = [
            f"{t} ({w(f'fold.{f}')})" if w.has(f"fold.{f}") else t
            for t, f in zip(dates, folds, strict=True)
        ]
        x = list(range(len(bt)))
        series = [Series(label("model"), x, bt["roc_auc"].tolist(), markers=True)]
        for col, n in (
            ("lr_roc_auc", "logistic_regression"),
            ("rfm_roc_auc", "rfm_heuristic"),
            ("btyd_roc_auc", "bgnbd_gamma_gamma"),
        ):
            if col in bt:
                series.append(Series(label(n), x, bt[col].tolist(), markers=True, dashed=True))
        every = max(1, math.ceil(len(ticks) / 4))
        figs.append(
            _figure(
                line_chart(
                    series,
                    title=w("backtest.title"),
                    x_label=w("backtest.x"),
                    y_label=w("backtest.y"),
                    x_fmt=_index_fmt(ticks),
                    y_fmt=lambda v: f"{v:.2f}",
                    x_range=(0, max(len(bt) - 1, 1)),
                    x_ticks=list(range(0, len(bt), every)),
                ),
                w("backtest.title"),
            )
        )
        parts.append(
            _p(
                w(
                    "quality.text.backtest",
                    n=len(dates),
                    first=dates[0],
                    last=dates[-1],
                )
            )
        )
    parts.append('<div class="charts">' + "".join(figs) + "</div>")
    return "".join(parts)


def _unit(d: ReportData, feature: str) -> str:
    return d.descriptions.get(feature, {}).get("unit", "")


def segments(d: ReportData, w: Words) -> str:
    s = d.segments
    if not len(s):
        return _p(w("none"))
    supp = s.get("suppressed", pd.Series(False, index=s.index)).astype(bool)
    names = [w(f"segment.{k}") if w.has(f"segment.{k}") else str(k) for k in s["segment"]]
    rows, classes = [], []
    for (_, r), name, hidden in zip(s.iterrows(), names, supp, strict=True):
        offer = w(f"offer.{r['offer_type']}") if w.has(f"offer.{r['offer_type']}") else ""
        if hidden:
            rows.append(
                [
                    name,
                    w("suppressed", min=d.min_group),
                    "",
                    "",
                    "",
                    "",
                    str(r[f"play_{w.lang}"]),
                    offer,
                ]
            )
            classes.append("suppressed")
            continue
        rows.append(
            [
                name,
                w.num(float(r["customers"])),
                w.pct(float(r["share"])),
                w.pct(float(r["mean_score"])),
                w.num(float(r["selected"])),
                w.money(float(r["expected_value"])),
                str(r[f"play_{w.lang}"]),
                offer,
            ]
        )
        classes.append("")
    profile = [f for f in PROFILE if f"median_{f}" in s]
    profile_table = ""
    if profile:
        prows, pclasses = [], []
        for (_, r), name, hidden in zip(s.iterrows(), names, supp, strict=True):
            if hidden:
                prows.append([name, w("suppressed", min=d.min_group), *[""] * (len(profile) - 1)])
            else:
                prows.append([name, *(w.value(r[f"median_{f}"], _unit(d, f)) for f in profile)])
            pclasses.append("suppressed" if hidden else "")
        heads = [
            w("segments.col.segment"),
            *(d.descriptions.get(f, {}).get(w.lang, f) for f in profile),
        ]
        profile_table = f"<h3>{escape(w('segments.profile'))}</h3>" + _table(
            heads,
            prows,
            numeric=tuple(range(1, len(profile) + 1)),
            classes=pclasses,
            cls="profiles",
        )
    visible = s[~supp]
    svg = bar_chart(
        [n for n, h in zip(names, supp, strict=True) if not h],
        visible["customers"].astype(float).tolist(),
        title=w("segments.chart"),
        value_fmt=lambda v: w.num(v),
        label_width=180,
    )
    return "".join(
        [
            _p(w("segments.text")),
            _table(
                _cols(
                    w,
                    "segments",
                    "segment",
                    "customers",
                    "share",
                    "score",
                    "selected",
                    "value",
                    "play",
                    "offer",
                ),
                rows,
                numeric=(1, 2, 3, 4, 5),
                classes=classes,
                cls="segments",
            ),
            profile_table,
            _figure(svg, w("segments.chart")) if len(visible) else "",
            actions(d, w),
        ]
    )


def actions(d: ReportData, w: Words) -> str:
    """The list's plays by segment and the driver the customers lag the VIPs on most."""
    a = d.actions
    if a is None or not len(a):
        return ""
    rows, classes = [], []
    for _, r in a.iterrows():
        seg = w(f"segment.{r['segment']}") if w.has(f"segment.{r['segment']}") else r["segment"]
        drv = w(f"driver.{r['driver']}") if w.has(f"driver.{r['driver']}") else str(r["driver"])
        way = w(f"driver_direction.{r['driver_direction'] or 'none'}")
        channel = w(f"channel.{r['channel']}") if w.has(f"channel.{r['channel']}") else ""
        if bool(r["suppressed"]):
            rows.append([seg, drv, way, w("suppressed", min=d.min_group), "", "", "", ""])
            classes.append("suppressed")
            continue
        rows.append(
            [
                seg,
                drv or "–",
                way,
                w.num(float(r["customers"])),
                w.num(float(r["selected"])),
                channel,
                str(r[f"play_{w.lang}"]),
                str(r[f"play_reason_{w.lang}"]),
            ]
        )
        classes.append("")
    return "".join(
        [
            f"<h3>{escape(w('actions.title'))}</h3>",
            _p(w("actions.text")),
            _table(
                _cols(
                    w,
                    "actions",
                    "segment",
                    "driver",
                    "direction",
                    "customers",
                    "selected",
                    "channel",
                    "play",
                    "why",
                ),  # fmt: skip
                rows,
                numeric=(3, 4),
                classes=classes,
                cls="actions",
            ),
        ]
    )


def targets(d: ReportData, w: Words) -> str:
    c = d.targets_counts
    parts = [
        _p(
            w(
                "targets.text",
                rows=w.num(c["rows"]),
                as_of=_date(d.as_of),
                selected=w.num(c["selected"]),
                treatment=w.num(c["treatment"]),
                control=w.num(c["control"]),
                value=w.money(c["value"]),
            )
        )
    ]
    rows = [
        [str(r["tier"]), w("suppressed", min=d.min_group), "", "", "", ""]
        if r.get("suppressed", False)
        else [
            str(r["tier"]),
            w.num(float(r["rows"])),
            w.num(float(r["selected"])),
            w.num(float(r["treatment"])),
            w.num(float(r["control"])),
            w.pct(float(r["score"])),
        ]
        for _, r in d.targets_by_tier.iterrows()
    ]
    if d.left_out:
        reasons = ", ".join(
            f"{w(f'left_out.{k}') if w.has(f'left_out.{k}') else k} {w.num(float(v))}"
            for k, v in d.left_out.items()
        )
        parts.append(
            _p(w("targets.left_out", n=w.num(float(sum(d.left_out.values()))), reasons=reasons))
        )
    parts.append(
        _table(
            _cols(w, "targets", "tier", "rows", "selected", "treatment", "control", "score"),
            rows,
            numeric=(1, 2, 3, 4, 5),
            cls="targets",
        )
    )
    if d.drift:
        names = [
            f"{d.descriptions.get(k, {}).get(w.lang, k)} {v:.2f}"
            for k, v in list(d.drift.items())[:8]
        ]
        text = w(
            "targets.drift", n=len(d.drift), threshold=d.drift_threshold, features=", ".join(names)
        )
        parts.append(f'<div class="warning">{escape(w("targets.warnings"))} {escape(text)}</div>')
    return "".join(parts)


def validation(d: ReportData, w: Words) -> str:
    v = d.validation
    if not len(v):
        return _p(w("validation.none"))
    parts = [_p(w("validation.text") if v["set_aside"].sum() else w("validation.none"))]
    rows = [
        [
            w(f"table.{r['table']}") if w.has(f"table.{r['table']}") else str(r["table"]),
            w.num(float(r["rows_in"])),
            w.num(float(r["kept"])),
            w.num(float(r["set_aside"])),
            ", ".join(f"{_reason(k, w)}: {n:,}" for k, n in r["reasons"].items()) or "–",
            w.num(float(r["returns"])),
        ]
        for _, r in v.iterrows()
    ]
    parts.append(
        _table(
            _cols(w, "validation", "table", "rows_in", "kept", "set_aside", "reasons", "returns"),
            rows,
            numeric=(1, 2, 3, 5),
            cls="validation",
        )
    )
    return "".join(parts)


def _reason(code: str, w: Words) -> str:
    """A quarantine reason code in words (``missing_amount`` -> "amount missing")."""
    if w.has(f"reason.{code}"):
        return w(f"reason.{code}")
    for kind in ("missing", "unparseable", "non_numeric"):
        if code.startswith(kind + "_"):
            return w(f"reason.{kind}", column=code.removeprefix(kind + "_"))
    if code.endswith("_before_sent"):
        return w("reason.before_sent", column=code.removesuffix("_before_sent") + "_at")
    return code


PERCENT_KPIS = {"crr", "rpr", "pcr", "purchase_rate", "vip_conversion_rate"}  # already x 100
MONEY_KPIS = {"revenue", "aov", "cost", "revenue_per_customer"}


def _metric(name: str, w: Words) -> str:
    return w(f"metric.{name}") if w.has(f"metric.{name}") else name


def _kpi(name: str, v: Any, w: Words) -> str:
    """A KPI value as the dashboard shows it."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "–"
    if name in PERCENT_KPIS:
        return f"{f:.1f}%"
    if name.endswith("_rate"):
        return w.pct(f)
    if name in MONEY_KPIS:
        return w.money(f) if abs(f) >= 100 else f"{f:,.2f} {w.currency}"
    if name.startswith("days_"):
        return w("unit.days", value=f"{f:,.0f}")
    return w.num(f)


def _method(text: str, w: Words) -> str:
    t = str(text).lower()
    return (
        w("method.bootstrap")
        if "bootstrap" in t
        else w("method.welch")
        if "welch" in t
        else w("method.z")
    )


def _qini_chart(q: dict[str, Any] | None, w: Words) -> list[str]:
    """The list's Qini curve on what happened, beside the band of random rankings."""
    if not q:
        return []
    band = q["band"]
    pct = lambda v: f"{v * 100:.0f}%"  # noqa: E731
    chart = line_chart(
        [
            Series(w("campaign.qini.model"), q["share"], q["qini"]),
            Series(w("campaign.qini.band_high"), band["share"], band["high"], dashed=True),
            Series(w("campaign.qini.band_low"), band["share"], band["low"], dashed=True),
        ],
        title=w("campaign.qini.title"),
        x_label=w("campaign.qini.x"),
        y_label=w("campaign.qini.y"),
        x_fmt=pct,
        y_fmt=pct,
        x_range=(0.0, 1.0),
        diagonal=True,
    )
    inside = band["qini_low"] <= q["qini_auc"] <= band["qini_high"]
    text = w(
        "campaign.qini.text",
        qini=f"{q['qini_auc']:.3f}",
        low=f"{band['qini_low']:.3f}",
        high=f"{band['qini_high']:.3f}",
        level=f"{band['level'] * 100:.0f}",
        n=w.num(float(q["treatment"])),
        m=w.num(float(q["control"])),
    )
    verdict = w("campaign.qini.inside" if inside else "campaign.qini.outside")
    return [
        f"<h3>{escape(w('campaign.qini.title'))}</h3>",
        _p(f"{text} {verdict}"),
        _figure(chart),
    ]


def campaign(d: ReportData, w: Words) -> str:
    c = d.campaign or {}
    s = c.get("summary", {})
    parts = [
        _p(
            w(
                "campaign.text",
                after=str(s.get("after", ""))[:10],
                horizon=s.get("horizon_days", ""),
            )
        )
    ]
    ab = c.get("ab")
    early = 0
    if ab is not None and len(ab):
        rows = []
        for _, r in ab.iterrows():
            metric = str(r["metric"])
            rate = metric in ("conversion", "vip_conversion")

            def fmt(v: Any, signed: bool = False, rate: bool = rate) -> str:
                if rate:
                    f = float(v)
                    return (
                        "–"
                        if not math.isfinite(f)
                        else f"{f * 100:{'+' if signed else ''}.2f}%p"
                        if signed
                        else w.pct(f, 2)
                    )
                return _stat(v, signed=signed)

            rows.append(
                [
                    _metric(metric, w),
                    _method(r.get("method", ""), w),
                    f"{w.num(float(r['treatment_n']))} / {w.num(float(r['control_n']))}",
                    fmt(r["treatment_value"]),
                    fmt(r["control_value"]),
                    fmt(r["difference"], True),
                    f"{fmt(r['ci_low'], True)} … {fmt(r['ci_high'], True)}",
                    _pvalue(float(r["p_value"])),
                ]
            )
        parts.append(
            _table(
                _cols(
                    w,
                    "campaign",
                    "metric",
                    "method",
                    "n",
                    "treatment",
                    "control",
                    "difference",
                    "ci",
                    "p",
                ),
                rows,
                numeric=(2, 3, 4, 5, 6, 7),
                cls="ab",
            )
        )
        warned = ab[ab.get("warning", pd.Series("", index=ab.index)).fillna("").astype(str) != ""]
        for metric, part in warned.groupby("metric", sort=False):
            r = part.iloc[0]
            needed = s.get("planned_size") or r.get("needed_per_group")
            n = min(float(r["treatment_n"]), float(r["control_n"]))
            text = w(
                "campaign.read_early",
                metric=_metric(str(metric), w),
                n=w.num(n),
                needed=w.num(float(needed)),
            )
            parts.append(
                f'<div class="warning">{escape(w("campaign.warning"))}: {escape(text)}</div>'
            )
            early += 1
    parts += _qini_chart(c.get("qini"), w)
    others = [x for x in s.get("warnings", []) if "read early" not in str(x)]
    if others:
        parts.append(_p(w("campaign.more_warnings", n=len(others)), "note"))
    kpis = c.get("kpis")
    if kpis is not None and len(kpis):
        overall = kpis[kpis["scope"].astype(str) == "overall"] if "scope" in kpis else kpis
        rows = [
            [_metric(str(r["metric"]), w), _kpi(str(r["metric"]), r["value"], w)]
            for _, r in overall.iterrows()
        ]
        parts += [
            f"<h3>{escape(w('campaign.kpis'))}</h3>",
            _table(
                [w("campaign.col.metric"), w("campaign.col.value")], rows, numeric=(1,), cls="kpis"
            ),
        ]
    roi = c.get("roi")
    if roi is not None and len(roi):
        rows = [
            [
                str(r["campaign_id"]),
                w.num(float(r["treated_customers"])),
                w.money(float(r["incremental_revenue"])),
                w.money(float(r["cost"])),
                w.num(float(r["roi"]), 2),
            ]
            for _, r in roi.iterrows()
        ]
        parts += [
            f"<h3>{escape(w('campaign.roi'))}</h3>",
            _table(
                _cols(w, "campaign", "campaign", "treated", "incremental", "cost", "roi"),
                rows,
                numeric=(1, 2, 3, 4),
                cls="roi",
            ),
        ]
    return "".join(parts)


def _stat(v: Any, signed: bool = False) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "–"
    sign = "+" if signed else ""
    return f"{f:{sign},.4f}" if abs(f) < 10 else f"{f:{sign},.1f}"


def value(d: ReportData, w: Words) -> str:
    v = d.value or {}
    info = v.get("info", {})
    test = info.get("test", {})
    spend = test.get("spend", {})
    base = test.get("bgnbd_spend", {})
    parts = [
        _p(
            w(
                "value.text.list",
                customers=w.num(float(v.get("customers", 0))),
                horizon=w.num(float(v.get("horizon_days", 0))),
                spend=w.money(float(v.get("expected_spend", 0.0))),
                clv=w.money(float(v.get("clv_12m", 0.0))),
                level=w.pct(float(v.get("level", 0.8)), 0),
            )
        ),
        _p(
            w(
                "value.text.test",
                model=w(f"value.model.{info.get('spend_model', 'tweedie')}"),
                error=w.pct(abs(float(spend.get("total_error", math.nan))), 1),
                gini=w.num(float(spend.get("gini", math.nan)), 3),
                base_gini=w.num(float(base.get("gini", math.nan)), 3),
                coverage=w.pct(float(spend.get("interval_coverage", math.nan)), 0),
                level=w.pct(float(v.get("level", 0.8)), 0),
            )
        ),
    ]
    deciles = test.get("spend_deciles")
    if deciles:
        parts.append(_value_deciles(deciles, w, "value.chart.test"))
    return "".join(parts)


def _value_deciles(deciles: Any, w: Words, title: str) -> str:
    """Predicted against actual mean spend per decile of the prediction: chart and table."""
    frame = pd.DataFrame(deciles)
    x = [float(k) for k in frame["decile"]]
    chart = line_chart(
        [
            Series(w("value.series.predicted"), x, frame["predicted"].tolist(), markers=True),
            Series(
                w("value.series.actual"), x, frame["actual"].tolist(), dashed=True, markers=True
            ),
        ],
        title=w(title),
        x_label=w("value.axis.decile"),
        y_label=w("value.axis.spend"),
        x_fmt=lambda t: f"{t:.0f}",
        y_fmt=lambda t: w.money(t),
        x_ticks=x,
    )
    rows = [
        [
            f"{int(r['decile'])}",
            w.num(float(r["customers"])),
            w.money(float(r["predicted"])),
            w.money(float(r["actual"])),
        ]
        for _, r in frame.iterrows()
    ]
    table = _table(
        _cols(w, "value", "decile", "customers", "predicted", "actual"),
        rows,
        numeric=(1, 2, 3),
        cls="value",
    )
    return _figure(chart, w(title)) + table


def monitor(d: ReportData, w: Words) -> str:
    m = d.monitor or {}
    s = m.get("summary", {})
    lang = "ko" if w.lang == "ko" else "en"
    parts = [
        _p(
            w(
                "monitor.text.list",
                version=str(s.get("model_version", "")),
                cutoff=str(s.get("cutoff", ""))[:10],
                end=str(s.get("horizon_end", ""))[:10],
                observed=w.num(float(s.get("observed_days", 0))),
                horizon=w.num(float(s.get("horizon_days", 0))),
                customers=w.num(float(s.get("customers_measured", 0))),
            )
        ),
        f'<div class="{"warning" if s.get("retrain") else "note"}">'
        f"{escape(w('monitor.verdict'))}: {escape(str(s.get(f'verdict_{lang}', '')))}</div>",
    ]
    rel = m.get("reliability")
    if rel is not None and len(rel):
        dec = rel[rel["by"].astype(str) == "decile"]
        chart = line_chart(
            [
                Series(
                    w("monitor.series.realised"),
                    dec["predicted"].tolist(),
                    dec["realised"].tolist(),
                    markers=True,
                )
            ],
            title=w("monitor.chart.reliability"),
            x_label=w("monitor.axis.predicted"),
            y_label=w("monitor.axis.realised"),
            x_fmt=lambda t: w.pct(t, 0),
            y_fmt=lambda t: w.pct(t, 0),
            x_range=(0.0, max(float(dec["predicted"].max()), float(dec["realised"].max()), 0.05)),
            y_range=(0.0, max(float(dec["predicted"].max()), float(dec["realised"].max()), 0.05)),
            diagonal=True,
        )
        parts.append(_figure(chart, w("monitor.chart.reliability")))
    met = m.get("metrics")
    if met is not None and len(met):
        rows = [
            [
                w(f"scorer.{r['scorer']}") if w.has(f"scorer.{r['scorer']}") else str(r["scorer"]),
                w.num(float(r.get("roc_auc", math.nan)), 3),
                w.num(float(r.get("pr_auc", math.nan)), 3),
                w.num(float(r.get("lift_10", math.nan)), 2),
                w.pct(float(r.get("capture_10", math.nan))),
                w.num(float(r.get("lift_quality", math.nan)), 3),
            ]
            for _, r in met.iterrows()
        ]
        parts.append(
            _table(
                _cols(w, "monitor", "scorer", "roc", "pr", "lift", "capture", "quality"),
                rows,
                numeric=(1, 2, 3, 4, 5),
                cls="monitor",
            )
        )
    prom = m.get("promised")
    if prom is not None and len(prom):
        rows = [
            [
                str(r["metric"]),
                w.num(float(r["promised"]), 4),
                w.num(float(r["realised"]), 4),
                f"{w.num(float(r['backtest_min']), 4)} … {w.num(float(r['backtest_max']), 4)}",
            ]
            for _, r in prom.iterrows()
        ]
        parts.append(
            _table(
                _cols(w, "monitor", "metric", "promised", "realised", "range"),
                rows,
                numeric=(1, 2, 3),
                cls="promised",
            )
        )
    if m.get("value") is not None and len(m["value"]):
        parts.append(_value_deciles(m["value"], w, "monitor.chart.value"))
    return "".join(parts)


SECTIONS: list[tuple[str, str, Callable[[ReportData, Words], str]]] = [
    ("headline", "headline.title", headline),
    ("drivers", "drivers.title", drivers),
    ("compare", "compare.title", compare),
    ("quality", "quality.title", quality),
    ("segments", "segments.title", segments),
    ("targets", "targets.title", targets),
    ("value", "value.title", value),
    ("monitor", "monitor.title", monitor),
    ("campaign", "campaign.title", campaign),
    ("validation", "validation.title", validation),
]


def render_report(data: ReportData, *, lang: str = "en") -> str:
    """The report as one self-contained HTML page in ``lang`` (``en`` or ``ko``)."""
    w = Words(lang, data.currency)
    body, nav = [], []
    for anchor, title_key, make in SECTIONS:
        if anchor == "campaign" and data.campaign is None:
            continue
        if (anchor == "value" and data.value is None) or (
            anchor == "monitor" and data.monitor is None
        ):
            continue
        title = w(title_key)
        nav.append(f'<a href="#{anchor}">{escape(title)}</a>')
        body.append(f'<section id="{anchor}"><h2>{escape(title)}</h2>{make(data, w)}</section>')
    page = template().substitute(
        lang=escape(lang),
        lib_version=escape(data.lib_version),
        title=escape(w(f"title.{data.task}") if w.has(f"title.{data.task}") else w("title")),
        subtitle=escape(
            w(
                "subtitle",
                task=w(f"task.{data.task}"),
                version=data.version,
                as_of=_date(data.as_of),
                currency=data.currency,
            )
        ),
        nav_label=escape(w("nav.label")),
        nav="".join(nav),
        body="\n".join(body),
        footer=escape(
            w("footer", lib_version=data.lib_version, version=data.version, as_of=_date(data.as_of))
        ),
    )
    return re.sub(r"[ \t]+\n", "\n", page)
