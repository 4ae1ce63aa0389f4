"""Bundle folders are untrusted input: checksums, JSON schemas and LightGBM model text checks.

A bundle may have been copied, edited or damaged since it was written. Before anything in it is
used, :func:`check_folder`

1. reads ``bundle.json`` and compares the SHA-256 of every file it lists (written by
   :func:`seal` when the bundle was saved): a mismatch is "bundle changed since it was written";
2. validates every JSON file it reads against the schema registered for its name in
   :data:`SCHEMAS` (types, finite numbers, known calibrator methods), so that no value can make
   scoring crash or give NaN scores with exit 0;
3. checks every LightGBM model text file (:func:`check_model_text`: header, tree count, the byte
   size of every tree, array lengths, child indices forming a tree, feature and category
   indices in range) before LightGBM parses it, since LightGBM's parser trusts its input and a
   crafted file can abort or crash the process.

Adding a file to a bundle
-------------------------
Files written into the bundle's temporary folder are hashed by :func:`seal` whatever their name,
so a new file is integrity-checked with no change here. To also check its contents, register a
validator: ``SCHEMAS["my_file.json"] = my_validator``, where ``my_validator(data, where)`` raises
:class:`BundleError` (use :func:`_fail` and the small helpers below, which name the file and the
JSON path of the bad value). Files with no registered schema are hash-checked only; a loader
that reads such a file must still treat its values with care.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vipml.errors import DataError

MAX_JSON_BYTES = 256 * 1024 * 1024
"""Largest JSON file of a bundle that is read."""
MAX_MODEL_BYTES = 1024 * 1024 * 1024
"""Largest model text of a bundle that is read."""
CALIBRATION_METHODS = ("isotonic", "platt", "none")


class BundleError(DataError):
    """A bundle file that is damaged, changed, or does not hold what a bundle holds."""


def _fail(where: str, what: str) -> None:
    raise BundleError(
        f"bundle file {where}: {what}\nFix: use the bundle folder as vipml train wrote it, or "
        "train the model again"
    )


# ---------------------------------------------------------------------------------------------
# checksums


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundle_files(folder: Path) -> list[str]:
    """Every file under ``folder`` but ``bundle.json``, as sorted relative POSIX paths."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).as_posix() != "bundle.json"
    )


def seal(folder: Path) -> None:
    """Add ``files`` (SHA-256 of every other file in the folder) to ``folder/bundle.json``.

    Called on the temporary folder once everything else is written, so files added to a bundle
    by any writer are covered."""
    info_path = folder / "bundle.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    info["files"] = {name: sha256_file(folder / name) for name in _bundle_files(folder)}
    info_path.write_text(
        json.dumps(info, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
    )


_HEX64 = re.compile(r"[0-9a-f]{64}")


def verify_checksums(folder: Path, info: dict[str, Any], needed: Iterable[str]) -> list[str]:
    """Compare the files listed in ``info['files']`` with their SHA-256; every file in
    ``needed`` that exists must be listed. Returns warnings (a bundle written before
    checksums were kept has none)."""
    files = info.get("files")
    if files is None:
        return [
            f"bundle {folder.name} holds no checksums (written by an older vipml): its files "
            "are checked for structure only"
        ]
    if not isinstance(files, dict):
        _fail("bundle.json", "'files' should map file names to SHA-256 checksums")
    root = folder.resolve()
    for name, digest in files.items():
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            _fail("bundle.json", f"'files.{name}' is not a SHA-256 checksum")
        target = (folder / name).resolve()
        if not isinstance(name, str) or name.startswith("/") or root not in target.parents:
            _fail("bundle.json", f"'files' lists {name!r}, which is not a file of the bundle")
        if not target.is_file():
            raise BundleError(
                f"bundle changed since it was written: {name} (missing)\n"
                f"Fix: copy the whole bundle folder {folder} again, or train the model again"
            )
        if sha256_file(target) != digest:
            raise BundleError(
                f"bundle changed since it was written: {name}\n"
                f"Fix: copy the whole bundle folder {folder} again, or train the model again"
            )
    for name in needed:
        if name != "bundle.json" and (folder / name).is_file() and name not in files:
            raise BundleError(
                f"bundle changed since it was written: {name} (added after it was written)\n"
                f"Fix: remove {folder / name}, or train the model again"
            )
    return []


# ---------------------------------------------------------------------------------------------
# reading JSON


def read_json(folder: Path, name: str) -> Any:
    """A bundle JSON file, parsed and validated against ``SCHEMAS[name]`` when one is known."""
    path = folder / name
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            _fail(name, f"larger than {MAX_JSON_BYTES:,} bytes")
        text = path.read_bytes().decode("utf-8")
        data = json.loads(text)
    except BundleError:
        raise
    except UnicodeDecodeError:
        _fail(name, "not UTF-8 text")
    except RecursionError:
        _fail(name, "nested too deeply")
    except json.JSONDecodeError as exc:
        _fail(name, f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
    except (OSError, ValueError) as exc:
        _fail(name, f"cannot be read ({exc})")
    validator = SCHEMAS.get(name)
    if validator is not None:
        try:
            validator(data, name)
        except RecursionError:
            _fail(name, "nested too deeply")
    return data


# small schema helpers: each names the file and the JSON path of the bad value


def _dict(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        _fail(where, f"expected an object, found {type(v).__name__}")
    return v


def _list(v: Any, where: str, *, max_len: int = 10_000_000) -> list[Any]:
    if not isinstance(v, list):
        _fail(where, f"expected a list, found {type(v).__name__}")
    if len(v) > max_len:
        _fail(where, f"more than {max_len:,} entries")
    return v


def _str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        _fail(where, f"expected text, found {type(v).__name__}")
    return v


def _num(v: Any, where: str, *, lo: float = -math.inf, hi: float = math.inf) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        _fail(where, f"expected a number, found {type(v).__name__}")
    if not math.isfinite(v):
        _fail(where, f"expected a finite number, found {v!r}")
    if not lo <= v <= hi:
        _fail(where, f"{v!r} is outside [{lo}, {hi}]")
    return float(v)


def _int(v: Any, where: str, *, lo: int = 0, hi: int = 2**31 - 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        _fail(where, f"expected a whole number, found {v!r}")
    if not lo <= v <= hi:
        _fail(where, f"{v!r} is outside [{lo}, {hi}]")
    return v


def _nums(v: Any, where: str, **bounds: float) -> list[float]:
    return [_num(x, f"{where}[{i}]", **bounds) for i, x in enumerate(_list(v, where))]


def _key(d: dict[str, Any], key: str, where: str) -> Any:
    if key not in d:
        _fail(where, f"'{key}' is missing")
    return d[key]


def _date(v: Any, where: str) -> None:
    from vipml.windows import as_cutoff

    try:
        as_cutoff(_str(v, where), name=where)
    except DataError:
        raise
    except Exception as exc:  # ConfigError and anything the parser raises
        _fail(where, str(exc).splitlines()[0])


# ---------------------------------------------------------------------------------------------
# the schemas


def check_calibrator(data: Any, where: str) -> None:
    """``calibrator.json``: a known method and finite numbers."""
    d = _dict(data, where)
    method = _key(d, "method", where)
    if method not in CALIBRATION_METHODS:
        _fail(
            f"{where}: method",
            f"unknown calibration method {method!r}; known: {', '.join(CALIBRATION_METHODS)}",
        )
    if method == "isotonic":
        x = _nums(_key(d, "x", where), f"{where}: x")
        y = _nums(_key(d, "y", where), f"{where}: y", lo=0.0, hi=1.0)
        if len(x) != len(y) or not x:
            _fail(where, f"x and y should be two lists of one length, found {len(x)} and {len(y)}")
        if any(b < a for a, b in zip(x, x[1:], strict=False)):
            _fail(f"{where}: x", "should be sorted ascending")
    elif method == "platt":
        _num(_key(d, "a", where), f"{where}: a", lo=-1e6, hi=1e6)
        _num(_key(d, "b", where), f"{where}: b", lo=-1e6, hi=1e6)


_KINDS = ("numeric", "categorical")


def check_feature_spec(data: Any, where: str) -> None:
    """``feature_spec.json``: features with names and descriptions, categories, column order."""
    d = _dict(data, where)
    names = []
    for i, item in enumerate(_list(_key(d, "features", where), f"{where}: features")):
        w = f"{where}: features[{i}]"
        item = _dict(item, w)
        names.append(_str(_key(item, "name", w), f"{w}.name"))
        for key in ("family", "table", "en", "ko", "unit"):
            _str(_key(item, key, w), f"{w}.{key}")
        if _key(item, "kind", w) not in _KINDS:
            _fail(f"{w}.kind", f"should be one of {', '.join(_KINDS)}")
        if item.get("window") is not None:
            _str(item["window"], f"{w}.window")
        if item.get("window_days") is not None:
            _int(item["window_days"], f"{w}.window_days", lo=1, hi=100_000)
        fill = item.get("fill")
        if fill is not None and not isinstance(fill, str):
            _num(fill, f"{w}.fill")
    for i, f in enumerate(_list(_key(d, "families", where), f"{where}: families")):
        _str(f, f"{where}: families[{i}]")
    absent = _dict(d.get("absent", {}), f"{where}: absent")
    for k, v in absent.items():
        _str(v, f"{where}: absent.{k}")
    order = _list(_key(d, "order", where), f"{where}: order")
    for i, name in enumerate(order):
        _str(name, f"{where}: order[{i}]")
    if len(set(order)) != len(order):
        _fail(f"{where}: order", "names a feature twice")
    if set(order) != set(names):
        _fail(f"{where}: order", "does not list the same features as 'features'")
    cats = _dict(_key(d, "categories", where), f"{where}: categories")
    for name, values in cats.items():
        if name not in order:
            _fail(f"{where}: categories.{name}", "is not a feature of the bundle")
        for j, v in enumerate(_list(values, f"{where}: categories.{name}")):
            _str(v, f"{where}: categories.{name}[{j}]")


def check_metrics(data: Any, where: str) -> None:
    """``metrics.json``: per model, metric name to a finite number (or null)."""
    for model, row in _dict(data, where).items():
        for key, value in _dict(row, f"{where}: {model}").items():
            if value is not None:
                _num(value, f"{where}: {model}.{key}")


def check_reference(data: Any, where: str) -> None:
    """``reference.json``: per feature, numeric bin edges and shares, or category shares."""
    for name, ref in _dict(data, where).items():
        w = f"{where}: {name}"
        ref = _dict(ref, w)
        kind = _key(ref, "kind", w)
        if kind == "numeric":
            edges = _nums(_key(ref, "edges", w), f"{w}.edges")
            shares = _nums(_key(ref, "shares", w), f"{w}.shares", lo=0.0, hi=1.0)
            if len(shares) != len(edges) + 2:
                _fail(w, "should hold one share per bin (edges + 1) and one for missing values")
            if any(b < a for a, b in zip(edges, edges[1:], strict=False)):
                _fail(f"{w}.edges", "should be sorted ascending")
        elif kind == "categorical":
            for k, v in _dict(_key(ref, "shares", w), f"{w}.shares").items():
                _num(v, f"{w}.shares.{k}", lo=0.0, hi=1.0)
        else:
            _fail(f"{w}.kind", "should be numeric or categorical")


def check_curves(data: Any, where: str) -> None:
    """``curves.json``: per model, curve name to a list of finite numbers."""
    if data is None:
        return
    for model, curves in _dict(data, where).items():
        for key, values in _dict(curves, f"{where}: {model}").items():
            if values is not None:
                _nums(values, f"{where}: {model}.{key}")


def check_info(data: Any, where: str) -> None:
    """``bundle.json``: the task, cutoffs and horizon; keys it does not know are left alone."""
    d = _dict(data, where)
    _str(_key(d, "task", where), f"{where}: task")
    for i, c in enumerate(_list(d.get("cutoffs", []), f"{where}: cutoffs")):
        _date(c, f"{where}: cutoffs[{i}]")
    folds = d.get("folds")
    if folds is not None:
        for k, v in _dict(folds, f"{where}: folds").items():
            for i, c in enumerate(_list(v, f"{where}: folds.{k}")):
                _date(c, f"{where}: folds.{k}[{i}]")
    if d.get("horizon_days") is not None:
        _int(d["horizon_days"], f"{where}: horizon_days", lo=1, hi=36_500)
    for i, n in enumerate(_list(d.get("notes", []), f"{where}: notes")):
        _str(n, f"{where}: notes[{i}]")
    if d.get("calibration") is not None and d["calibration"] not in CALIBRATION_METHODS:
        _fail(f"{where}: calibration", f"unknown calibration method {d['calibration']!r}")
    for k, v in _dict(d.get("calibration_briers") or {}, f"{where}: calibration_briers").items():
        _num(v, f"{where}: calibration_briers.{k}")
    if d.get("best_iteration") is not None:
        _int(d["best_iteration"], f"{where}: best_iteration")
    for key in ("data_fingerprint", "vipml_version", "created_at"):
        if d.get(key) is not None:
            _str(d[key], f"{where}: {key}")


def check_config(data: Any, where: str) -> None:
    """``config.json``: a config the current vipml accepts."""
    from pydantic import ValidationError

    from vipml.config import Config, format_validation_error

    try:
        Config.model_validate(_dict(data, where))
    except ValidationError as exc:
        _fail(where, format_validation_error(exc, Config, None))
    except (ValueError, TypeError) as exc:
        _fail(where, str(exc))


def check_backtest(frame: Any, where: str) -> None:
    """``backtest.csv``: one row per cutoff with a date, a fold name and numbers (NaN allowed,
    inf not)."""
    import numpy as np
    import pandas as pd

    if "as_of" not in frame:
        _fail(where, "has no column 'as_of'")
    if len(frame) > 100_000:
        _fail(where, f"{len(frame):,} rows, more than a backtest holds")
    if not pd.api.types.is_datetime64_any_dtype(frame["as_of"]) or frame["as_of"].isna().any():
        _fail(f"{where}: as_of", "holds values that are not dates")
    for col in frame.columns:
        if col in ("as_of", "fold"):
            continue
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            _fail(f"{where}: {col}", "holds values that are not numbers")
        if np.isinf(values.to_numpy(dtype=np.float64)).any():
            _fail(f"{where}: {col}", "holds an infinite number")


SCHEMAS: dict[str, Callable[[Any, str], None]] = {
    "bundle.json": check_info,
    "calibrator.json": check_calibrator,
    "feature_spec.json": check_feature_spec,
    "config.json": check_config,
    "metrics.json": check_metrics,
    "reference.json": check_reference,
    "curves.json": check_curves,
}
"""Validator of each bundle JSON file, by file name. Files not listed are hash-checked only."""


# ---------------------------------------------------------------------------------------------
# LightGBM model text

_INT = re.compile(r"-?\d{1,10}")
_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d{1,3})?")
_HEADER_KEYS = {
    "version",
    "num_class",
    "num_tree_per_iteration",
    "label_index",
    "max_feature_idx",
    "objective",
    "average_output",
    "feature_names",
    "feature_infos",
    "monotone_constraints",
    "tree_sizes",
}
_OBJECTIVES = {
    "binary",
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "poisson",
    "quantile",
    "mape",
    "gamma",
    "tweedie",
    "cross_entropy",
    "cross_entropy_lambda",
}
_TREE_KEYS = {
    "num_leaves",
    "num_cat",
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_weight",
    "leaf_count",
    "internal_value",
    "internal_weight",
    "internal_count",
    "cat_boundaries",
    "cat_threshold",
    "is_linear",
    "shrinkage",
}
MAX_LEAVES = 1 << 17
MAX_LEAF = 1e10  # a trained leaf holds a few units of log-odds
MAX_FEATURES = 1 << 20


def _ints(text: str, n: int, where: str, *, lo: int, hi: int) -> list[int]:
    tokens = text.split(" ")
    if len(tokens) != n:
        _fail(where, f"expected {n} values, found {len(tokens)}")
    out = []
    for t in tokens:
        if not _INT.fullmatch(t) or not lo <= int(t) <= hi:
            _fail(where, f"value {t[:20]!r} is not a whole number in [{lo}, {hi}]")
        out.append(int(t))
    return out


def _floats(text: str, n: int, where: str, *, infinite: bool = False) -> list[float]:
    """``n`` numbers; ``inf``/``-inf`` only where ``infinite`` (split thresholds), never NaN."""
    tokens = text.split(" ")
    if len(tokens) != n:
        _fail(where, f"expected {n} values, found {len(tokens)}")
    out = []
    for t in tokens:
        ok = _FLOAT.fullmatch(t) and math.isfinite(float(t))
        if not ok and not (infinite and t in ("inf", "-inf")):
            _fail(where, f"value {t[:20]!r} is not a finite number")
        out.append(float(t))
    return out


def _check_tree(block: str, index: int, n_features: int, where: str) -> None:
    w = f"{where}: Tree={index}"
    if not block.endswith("\n\n\n"):
        _fail(w, "the tree sizes in the header do not match the trees")
    lines = block[:-3].split("\n")
    if lines[0] != f"Tree={index}":
        _fail(w, f"expected the line 'Tree={index}', found {lines[0][:40]!r}")
    if not all(lines[1:]):
        _fail(w, "a tree should be key=value lines ending in two blank lines")
    kv: dict[str, str] = {}
    for line in lines[1:]:
        key, eq, value = line.partition("=")
        if not eq or key not in _TREE_KEYS or key in kv:
            _fail(w, f"unexpected line {line[:40]!r}")
        kv[key] = value
    for key in ("num_leaves", "num_cat", "leaf_value"):
        if key not in kv:
            _fail(w, f"'{key}' is missing")
    (leaves,) = _ints(kv["num_leaves"], 1, f"{w} num_leaves", lo=1, hi=MAX_LEAVES)
    (num_cat,) = _ints(kv["num_cat"], 1, f"{w} num_cat", lo=0, hi=max(leaves - 1, 0))
    if "is_linear" in kv and _ints(kv["is_linear"], 1, f"{w} is_linear", lo=0, hi=1) != [0]:
        _fail(w, "linear trees are not used by vipml")
    if "shrinkage" in kv:
        _floats(kv["shrinkage"], 1, f"{w} shrinkage")
    values = _floats(kv["leaf_value"], leaves, f"{w} leaf_value")
    if any(abs(v) > MAX_LEAF for v in values):
        _fail(w, f"a leaf value past {MAX_LEAF:g}: sums of them could overflow")
    # a one-leaf tree (a constant model) is written with empty leaf weights and counts
    stump = leaves == 1
    if "leaf_weight" in kv and not (stump and kv["leaf_weight"] == ""):
        _floats(kv["leaf_weight"], leaves, f"{w} leaf_weight")
    if "leaf_count" in kv and not (stump and kv["leaf_count"] == ""):
        _ints(kv["leaf_count"], leaves, f"{w} leaf_count", lo=0, hi=2**31 - 1)
    if leaves == 1:
        return
    inner = leaves - 1
    for key in ("left_child", "right_child", "split_feature", "threshold"):
        if key not in kv:
            _fail(w, f"'{key}' is missing")
    left = _ints(kv["left_child"], inner, f"{w} left_child", lo=-leaves, hi=inner - 1)
    right = _ints(kv["right_child"], inner, f"{w} right_child", lo=-leaves, hi=inner - 1)
    _ints(kv["split_feature"], inner, f"{w} split_feature", lo=0, hi=n_features - 1)
    threshold = _floats(kv["threshold"], inner, f"{w} threshold", infinite=True)
    decision = (
        _ints(kv["decision_type"], inner, f"{w} decision_type", lo=0, hi=15)
        if "decision_type" in kv
        else [0] * inner
    )
    for key in ("split_gain", "internal_value", "internal_weight"):
        if key in kv:
            _floats(kv[key], inner, f"{w} {key}", infinite=True)
    if "internal_count" in kv:
        _ints(kv["internal_count"], inner, f"{w} internal_count", lo=0, hi=2**31 - 1)
    # every internal node and every leaf is reached exactly once from the root: no cycles
    seen_inner, seen_leaf = [False] * inner, [False] * leaves
    seen_inner[0] = True
    stack = [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child >= 0:
                if seen_inner[child]:
                    _fail(w, "child links do not form a tree")
                seen_inner[child] = True
                stack.append(child)
            else:
                if seen_leaf[~child]:
                    _fail(w, "child links do not form a tree")
                seen_leaf[~child] = True
    if not (all(seen_inner) and all(seen_leaf)):
        _fail(w, "child links do not reach every node")
    for node, kind in enumerate(decision):
        if (kind >> 2) & 3 == 3:
            _fail(w, f"decision_type {kind} is not a known split")
        if kind & 1:
            if not num_cat or not math.isfinite(threshold[node]) or threshold[node] % 1:
                _fail(w, "a categorical split points to no category set")
            if not 0 <= int(threshold[node]) < num_cat:
                _fail(w, "a categorical split points past the category sets")
    if num_cat:
        for key in ("cat_boundaries", "cat_threshold"):
            if key not in kv:
                _fail(w, f"'{key}' is missing")
        bounds = _ints(kv["cat_boundaries"], num_cat + 1, f"{w} cat_boundaries", lo=0, hi=1 << 24)
        if bounds[0] != 0 or any(b < a for a, b in zip(bounds, bounds[1:], strict=False)):
            _fail(w, "cat_boundaries should rise from 0")
        _ints(kv["cat_threshold"], bounds[-1], f"{w} cat_threshold", lo=0, hi=2**32 - 1)
    elif "cat_boundaries" in kv or "cat_threshold" in kv:
        _fail(w, "category sets given with num_cat=0")


def check_model_text(text: str, where: str, *, n_features: int | None = None) -> None:
    """Check LightGBM model text for structure before LightGBM parses it: header keys and
    sizes, that the trees tile the text exactly as ``tree_sizes`` says, and every tree's arrays.

    Raises
    ------
    BundleError
        Naming the file and what is wrong.
    """
    if "\r" in text or "\x00" in text:
        _fail(where, "holds carriage returns or NUL bytes")
    first = text.find("\nTree=")
    if not text.startswith("tree\n") or first < 0:
        _fail(where, "not LightGBM model text (no 'tree' header or no trees)")
    header: dict[str, str] = {}
    for line in text[5:first].split("\n"):
        if not line:
            continue
        key, eq, value = line.partition("=")
        if key not in _HEADER_KEYS or key in header or ("=" in value and key != "feature_names"):
            _fail(where, f"unexpected header line {line[:40]!r}")
        header[key] = value
    for key in (
        "version",
        "num_class",
        "label_index",
        "max_feature_idx",
        "feature_names",
        "feature_infos",
        "tree_sizes",
    ):
        if key not in header:
            _fail(where, f"header has no '{key}'")
    if header["version"] not in ("v2", "v3", "v4"):
        _fail(where, f"unknown model version {header['version'][:20]!r}")
    # vipml's models give one number per row (binary or regression)
    _ints(header["num_class"], 1, f"{where} num_class", lo=1, hi=1)
    per_iter = 1
    if "num_tree_per_iteration" in header:
        _ints(header["num_tree_per_iteration"], 1, f"{where} num_tree_per_iteration", lo=1, hi=1)
    _ints(header["label_index"], 1, f"{where} label_index", lo=0, hi=MAX_FEATURES)
    (max_idx,) = _ints(
        header["max_feature_idx"], 1, f"{where} max_feature_idx", lo=0, hi=MAX_FEATURES
    )
    n = max_idx + 1
    if len(header["feature_names"].split(" ")) != n or not all(header["feature_names"].split(" ")):
        _fail(where, f"feature_names should list {n} names")
    if len(header["feature_infos"].split(" ")) != n:
        _fail(where, f"feature_infos should hold {n} entries")
    if "monotone_constraints" in header:
        _ints(header["monotone_constraints"], n, f"{where} monotone_constraints", lo=-1, hi=1)
    if n_features is not None and n != n_features:
        _fail(where, f"the model reads {n} features, the feature spec lists {n_features}")
    objective = header.get("objective")
    if objective is not None:
        name, *params = objective.split(" ")
        if name not in _OBJECTIVES:
            _fail(where, f"unknown objective {name[:30]!r}")
        for p in params:
            k, colon, v = p.partition(":")
            if not colon or not re.fullmatch(r"[a-z_]+", k) or not _FLOAT.fullmatch(v):
                _fail(where, f"unexpected objective parameter {p[:30]!r}")
            if not 0 < float(v) < 1e6:
                _fail(where, f"objective parameter {p[:30]!r} is out of range")
    sizes_text = header["tree_sizes"]
    if not sizes_text:
        _fail(where, "tree_sizes is empty")
    tokens = sizes_text.split(" ")
    sizes = _ints(sizes_text, len(tokens), f"{where} tree_sizes", lo=1, hi=len(text))
    if len(sizes) % per_iter:
        _fail(where, f"{len(sizes)} trees is not a multiple of {per_iter} trees per iteration")
    # tree_sizes count bytes: LightGBM cuts the text at those offsets, so they must tile it
    raw = text.encode("utf-8")
    pos = raw.find(b"\nTree=") + 1
    for i, size in enumerate(sizes):
        block = raw[pos : pos + size]
        if len(block) != size or not block.isascii():
            _fail(where, f"Tree={i}: the tree sizes in the header do not match the trees")
        _check_tree(block.decode("ascii"), i, n, where)
        pos += size
    if not raw[pos:].startswith(b"end of trees\n"):
        _fail(where, "the tree sizes in the header do not match the trees ('end of trees')")
    rest = raw[pos:].decode("utf-8")
    params = rest.find("\nparameters:\n")
    if params >= 0:
        end = rest.find("\nend of parameters\n", params)
        if end < 0:
            _fail(where, "parameters have no end")
        for line in rest[params + 13 : end].split("\n"):
            if line and not (
                re.fullmatch(r"\[[a-z_0-9]+: [^\[\]]*\]", line)
                or re.fullmatch(r"\[interaction_constraints: \[[0-9,]*\](,\[[0-9,]*\])*\]", line)
            ):
                _fail(where, f"unexpected parameter line {line[:40]!r}")


def read_model_text(folder: Path, name: str, *, n_features: int | None = None) -> str:
    """A bundle's LightGBM model text, checked (:func:`check_model_text`)."""
    path = folder / name
    try:
        if path.stat().st_size > MAX_MODEL_BYTES:
            _fail(name, f"larger than {MAX_MODEL_BYTES:,} bytes")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        _fail(name, "not UTF-8 text")
    except OSError as exc:
        _fail(name, f"cannot be read ({exc.strerror})")
    check_model_text(text, name, n_features=n_features)
    return text


def booster(text: str, name: str) -> Any:
    """A LightGBM booster from checked model text; LightGBM's own errors become BundleError."""
    import lightgbm as lgb

    try:
        found = lgb.Booster(model_str=text)
    except Exception as exc:  # LightGBMError, and json errors on the pandas_categorical line
        _fail(
            name,
            f"LightGBM cannot read it ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})",
        )
    cats = found.pandas_categorical
    if cats is not None and not (
        isinstance(cats, list)
        and all(
            isinstance(c, list)
            and all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in c)
            for c in cats
        )
    ):
        _fail(name, "pandas_categorical should be a list of category lists")
    return found
