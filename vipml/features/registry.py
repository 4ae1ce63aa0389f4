"""Every feature is declared once: name, family, source table, window, unit, fill, en/ko words.

Reports and the plain-word reasons of the scorer read these declarations; nothing else names a
feature's meaning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from vipml.windows import Window

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Feature:
    """One feature column.

    ``fill`` is the value for a customer with no rows in the window (0 for counts and sums);
    None leaves it missing (a recency without any order has no value). ``en`` and ``ko`` are
    the one-line descriptions shown to people.
    """

    name: str
    family: str
    table: str
    en: str
    ko: str
    unit: str = "count"
    window: Window | None = None
    fill: float | None = 0.0
    kind: Kind = "numeric"

    @property
    def dtype(self) -> str:
        """The pandas dtype of the column."""
        return "str" if self.kind == "categorical" else "float64"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = asdict(self)
        out["window"] = None if self.window is None else self.window.suffix
        out["window_days"] = None if self.window is None else self.window.days
        out["dtype"] = self.dtype
        return out


def windowed(
    base: str,
    family: str,
    table: str,
    windows: tuple[Window, ...],
    *,
    en: str,
    ko: str,
    unit: str = "count",
    fill: float | None = 0.0,
) -> list[Feature]:
    """One feature per window: ``{base}_{30d|...|all}``; ``{span}`` in en/ko names the window."""
    out = []
    for w in windows:
        span_en = "before the cutoff" if w.days is None else f"in the last {w.days} days"
        span_ko = "전체 기간" if w.days is None else f"최근 {w.days}일"
        out.append(
            Feature(
                name=f"{base}_{w.suffix}",
                family=family,
                table=table,
                window=w,
                unit=unit,
                fill=fill,
                en=en.format(span=span_en),
                ko=ko.format(span=span_ko),
            )
        )
    return out


@dataclass
class FeatureSpec:
    """The columns of a feature frame, in order, and the families that were built."""

    features: list[Feature] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    absent: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Column names in order."""
        return [f.name for f in self.features]

    @property
    def categorical(self) -> list[str]:
        """Names of the categorical columns."""
        return [f.name for f in self.features if f.kind == "categorical"]

    def __getitem__(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "families": list(self.families),
            "absent": dict(self.absent),
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        """Read back what :meth:`to_dict` wrote."""
        feats = []
        for item in data["features"]:
            days = item.get("window_days")
            window = None if item.get("window") is None else Window(days)
            feats.append(
                Feature(
                    name=item["name"],
                    family=item["family"],
                    table=item["table"],
                    en=item["en"],
                    ko=item["ko"],
                    unit=item["unit"],
                    window=window,
                    fill=item["fill"],
                    kind=item["kind"],
                )
            )
        return cls(
            features=feats, families=list(data["families"]), absent=dict(data.get("absent", {}))
        )

    def to_frame(self) -> Any:
        """The spec as a table (one row per feature), for docs and reports."""
        import pandas as pd

        return pd.DataFrame([f.to_dict() for f in self.features])
