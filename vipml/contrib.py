"""TreeSHAP contributions of a LightGBM model, computed once per decision pattern of each tree.

A tree's path-dependent TreeSHAP values for a row depend on the row only through the way it goes
at each of the tree's splits: two rows that go the same way at every split get the same values,
bit for bit. A tree with ``k`` splits has at most ``2**k`` such patterns (64 for the default 7
leaves), so each tree's values are asked of LightGBM (``pred_contrib`` for that tree alone) for
one row per pattern present, and handed to every row with that pattern by a gather. Cost per
tree: ``k`` comparisons and a gather of the tree's features per row, instead of TreeSHAP's
``leaves x depth**2`` per row.

The result agrees with LightGBM's own ``pred_contrib`` to rounding (the trees' values are added
in tree order, each tree's already summed), and is deterministic: the same rows give the same
bits, alone or among others.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

ZERO = 1e-35  # LightGBM's kZeroThreshold
MAX_PATTERN_BITS = 16  # more splits than this: LightGBM's own TreeSHAP
PARALLEL_ROWS = 50_000  # from this many rows, two threads share the rows
_PREDICT = threading.Lock()


class _Columns:
    """The numbers LightGBM reads from a prepared frame, one contiguous array per feature
    (categorical codes, missing NaN), with each feature's missing mask and zero-filled copy made
    once."""

    def __init__(self, M: pd.DataFrame) -> None:
        self.raw: list[np.ndarray] = []
        for c in M.columns:
            s = M[c]
            if isinstance(s.dtype, pd.CategoricalDtype):
                codes = s.cat.codes.to_numpy().astype(np.float64)
                codes[codes < 0] = np.nan
                self.raw.append(codes)
            else:
                self.raw.append(np.ascontiguousarray(s.to_numpy(dtype=np.float64)))
        self._nan: dict[int, np.ndarray | None] = {}
        self._filled: dict[int, np.ndarray] = {}
        self._codes: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}

    def codes(self, j: int) -> tuple[np.ndarray, np.ndarray, int]:
        """A categorical column as LightGBM reads it (NaN as 0, then truncated to int), clipped
        at 0 to index a lookup table, the mask of negative values (never in a category) and the
        largest code."""
        if j not in self._codes:
            ints = self.filled(j).astype(np.int64)
            negative = ints < 0
            codes = np.where(negative, 0, ints)
            self._codes[j] = (codes, negative, int(codes.max(initial=0)))
        return self._codes[j]

    def nan(self, j: int) -> np.ndarray | None:
        if j not in self._nan:
            mask = np.isnan(self.raw[j])
            self._nan[j] = mask if mask.any() else None
        return self._nan[j]

    def filled(self, j: int) -> np.ndarray:
        """NaN read as 0 (LightGBM does so unless the split's missing type is NaN)."""
        if j not in self._filled:
            mask = self.nan(j)
            self._filled[j] = self.raw[j] if mask is None else np.where(mask, 0.0, self.raw[j])
        return self._filled[j]

    def rows(self, idx: np.ndarray) -> np.ndarray:
        return np.column_stack([col[idx] for col in self.raw])


def _splits(tree: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    stack = [tree["tree_structure"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            out.append(node)
            stack.append(node["left_child"])
            stack.append(node["right_child"])
    return out


def _goes_left(node: dict[str, Any], cols: _Columns) -> np.ndarray:
    """LightGBM's decision at one split for every row (NumericalDecision/CategoricalDecision)."""
    j = node["split_feature"]
    nan = cols.nan(j)
    if node["decision_type"] == "==":
        cats = np.array([int(v) for v in str(node["threshold"]).split("||")], dtype=np.int64)
        codes, negative, top = cols.codes(j)
        table = np.zeros(max(top, int(cats.max(initial=0))) + 1, dtype=bool)
        table[cats[cats >= 0]] = True
        left = table[codes] & ~negative  # the same as np.isin(ints, cats) & (ints >= 0)
        return left if nan is None else left & ~nan
    missing = node.get("missing_type", "None")
    if missing == "NaN":
        left = cols.raw[j] <= float(node["threshold"])
        if nan is not None:
            left[nan] = bool(node["default_left"])
        return left
    v = cols.filled(j)
    left = v <= float(node["threshold"])
    if missing == "Zero":
        left = np.where(np.abs(v) <= ZERO, bool(node["default_left"]), left)
    return left


def tree_contributions(booster: lgb.Booster, M: pd.DataFrame) -> np.ndarray:
    """``booster.predict(M, pred_contrib=True)`` for a binary model: one column per feature,
    then the expected value; computed per decision pattern of each tree."""
    n = len(M)
    n_features = booster.num_feature()
    dump = booster.dump_model()
    trees = dump["tree_info"]
    if n == 0 or any(len(_splits(t)) > MAX_PATTERN_BITS for t in trees):
        return booster.predict(M, pred_contrib=True)
    splits = [_splits(t) for t in trees]
    acc = np.zeros((n_features + 1, n))  # one contiguous row per feature
    parts = 1 if n < PARALLEL_ROWS else max(1, min(2, os.cpu_count() or 1))
    if parts == 1:
        _contributions(booster, splits, M, acc)
        return acc.T
    # a row's values do not depend on the other rows: halves of the rows in two threads give
    # the same bits as one pass (numpy and LightGBM release the GIL in their loops); each
    # thread adds into its own columns of the one result
    edges = np.linspace(0, n, parts + 1).astype(np.int64)
    with ThreadPoolExecutor(parts) as pool:
        list(
            pool.map(
                lambda ab: _contributions(
                    booster, splits, M.iloc[ab[0] : ab[1]], acc[:, ab[0] : ab[1]]
                ),
                zip(edges[:-1], edges[1:], strict=True),
            )
        )
    return acc.T


def _contributions(
    booster: lgb.Booster, splits: list[list[dict[str, Any]]], M: pd.DataFrame, acc: np.ndarray
) -> None:
    """Add the trees' contributions of the rows of ``M`` into ``acc`` (features x rows)."""
    n = len(M)
    n_features = acc.shape[0] - 1
    cols = _Columns(M)
    for i, tree_splits in enumerate(splits):
        pattern = np.zeros(n, dtype=np.uint16)  # at most MAX_PATTERN_BITS splits
        for bit, node in enumerate(tree_splits):
            pattern |= _goes_left(node, cols).astype(np.uint16) << np.uint16(bit)
        size = 1 << len(tree_splits)
        first = np.full(size, -1, dtype=np.int64)
        first[pattern[::-1]] = np.arange(n - 1, -1, -1)  # first row of each pattern
        present = np.flatnonzero(first >= 0)
        with _PREDICT:  # a booster predicting other iterations at once is not thread-safe
            values = booster.predict(
                cols.rows(first[present]),
                pred_contrib=True,
                start_iteration=i,
                num_iteration=1,
                num_threads=1,
            )
        table = np.zeros((size, n_features + 1))
        table[present] = values
        used = np.flatnonzero((values[:, :-1] != 0).any(axis=0))
        for c in used:
            acc[c] += table[pattern, c]
        acc[-1] += values[0, -1]  # the expected value: the same for every pattern
