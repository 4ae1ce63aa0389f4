"""Features as of a cutoff: one row per customer known before ``as_of``, from rows before it.

>>> from vipml.features import build_features
>>> frame = build_features(tables, as_of="2024-06-01")          # doctest: +SKIP
"""

from vipml.features.build import FAMILIES, build_features, build_snapshots, feature_spec
from vipml.features.registry import Feature, FeatureSpec

__all__ = [
    "FAMILIES",
    "Feature",
    "FeatureSpec",
    "build_features",
    "build_snapshots",
    "feature_spec",
]
