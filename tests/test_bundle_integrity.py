"""Bundles are untrusted input: checksums, schemas and model text are checked before use."""

from __future__ import annotations

import errno
import json
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from vipml.bundle import load_bundle, write_folder
from vipml.errors import DataError
from vipml.integrity import SCHEMAS, check_model_text, seal, sha256_file


@pytest.fixture
def copy(small_bundle, tmp_path):
    """A fresh copy of the session's small bundle."""
    src, _ = small_bundle
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def _edit_json(folder: Path, name: str, change, *, reseal: bool = True) -> None:
    data = json.loads((folder / name).read_text(encoding="utf-8"))
    data = change(data) or data
    (folder / name).write_text(json.dumps(data), encoding="utf-8")
    if reseal:
        seal(folder)


def test_bundle_json_holds_the_sha256_of_every_file(copy):
    info = json.loads((copy / "bundle.json").read_text(encoding="utf-8"))
    files = sorted(p.name for p in copy.iterdir() if p.name != "bundle.json")
    assert sorted(info["files"]) == files
    for name in files:
        assert info["files"][name] == sha256_file(copy / name)
    bundle = load_bundle(copy)
    assert bundle.booster.num_trees() > 0


@pytest.mark.parametrize(
    "name",
    [
        "model.txt",
        "calibrator.json",
        "feature_spec.json",
        "config.json",
        "metrics.json",
        "backtest.csv",
        "reference.json",
        "curves.json",
    ],
)
def test_a_changed_file_is_refused_naming_it(copy, name):
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(DataError, match=f"bundle changed since it was written: {name}"):
        load_bundle(copy)


def test_a_file_added_to_bundle_json_later_is_hash_checked(copy):
    (copy / "populations.json").write_text('{"a": 1}', encoding="utf-8")
    seal(copy)
    assert "populations.json" not in SCHEMAS  # no schema needed for a file others add
    load_bundle(copy)
    (copy / "populations.json").write_text('{"a": 2}', encoding="utf-8")
    with pytest.raises(DataError, match="changed since it was written: populations.json"):
        load_bundle(copy)


def test_a_bundle_without_checksums_still_gets_every_schema_check(copy):
    _edit_json(
        copy, "bundle.json", lambda d: {k: v for k, v in d.items() if k != "files"}, reseal=False
    )
    with pytest.warns(UserWarning, match="holds no checksums"):
        load_bundle(copy)
    _edit_json(
        copy, "calibrator.json", lambda d: {"method": "platt", "a": None, "b": 1}, reseal=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match="calibrator.json: a: expected a number"):
            load_bundle(copy)


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("calibrator.json", lambda d: {"method": "platt", "a": float("nan"), "b": 0.0}, "finite"),
        ("calibrator.json", lambda d: {"method": "magic"}, "unknown calibration method 'magic'"),
        ("calibrator.json", lambda d: {"method": "isotonic", "x": [0, 1], "y": [0]}, "one length"),
        ("calibrator.json", lambda d: {"method": "isotonic", "x": [0], "y": [7]}, "outside"),
        ("config.json", lambda d: {**d, "seed": "many"}, "config.json"),
        ("config.json", lambda d: {**d, "surprise": 1}, "unknown key 'surprise'"),
        ("config.json", lambda d: [1, 2], "expected an object"),
        ("feature_spec.json", lambda d: {**d, "order": d["order"][:-1]}, "order"),
        ("feature_spec.json", lambda d: {**d, "features": "x"}, "expected a list"),
        ("metrics.json", lambda d: {"model": {"roc_auc": "high"}}, "model.roc_auc"),
        (
            "reference.json",
            lambda d: {"x": {"kind": "numeric", "edges": [1], "shares": [1]}},
            "bin",
        ),
        ("curves.json", lambda d: {"model": {"fpr": [0, float("inf")]}}, "finite"),
        ("bundle.json", lambda d: {**d, "cutoffs": ["2300-01-01"]}, "supported range"),
        ("bundle.json", lambda d: {**d, "task": 5}, "task: expected text"),
        ("bundle.json", lambda d: {**d, "horizon_days": -3}, "horizon_days"),
    ],
)
def test_json_files_are_validated_before_use(copy, name, change, message):
    _edit_json(copy, name, change)
    with pytest.raises(DataError, match=message):
        load_bundle(copy)


def test_deeply_nested_json_is_refused(copy):
    (copy / "metrics.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    seal(copy)
    with pytest.raises(DataError, match="metrics.json"):
        load_bundle(copy)


def _model(copy: Path) -> str:
    return (copy / "model.txt").read_text(encoding="utf-8")


def _check(text: str, n: int | None = None) -> None:
    check_model_text(text, "model.txt", n_features=n)


def test_the_written_model_text_passes(copy):
    _check(_model(copy))


def test_tree_sizes_that_do_not_match_the_trees_are_refused(copy):
    text = _model(copy)
    # one more digit in a leaf value: the tree is a byte longer than tree_sizes says (SIGABRT)
    text = text.replace("leaf_value=", "leaf_value=1", 1)
    with pytest.raises(DataError, match="tree sizes in the header do not match"):
        _check(text)


def _edit_tree(text: str, key: str, edit) -> str:
    """Change one line of the first tree with a split, keeping tree_sizes right."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("Tree="))
    i = next(j for j in range(start, len(lines)) if lines[j].startswith(key + "="))
    old = lines[i]
    lines[i] = key + "=" + edit(old.split("=", 1)[1])
    delta = len(lines[i]) - len(old)
    sizes_at = next(j for j, line in enumerate(lines) if line.startswith("tree_sizes="))
    tree_no = int(lines[max(j for j in range(i) if lines[j].startswith("Tree="))][5:])
    sizes = lines[sizes_at][len("tree_sizes=") :].split(" ")
    sizes[tree_no] = str(int(sizes[tree_no]) + delta)
    lines[sizes_at] = "tree_sizes=" + " ".join(sizes)
    return "\n".join(lines)


@pytest.mark.parametrize(
    ("key", "edit", "message"),
    [
        ("split_feature", lambda v: "100000 " + " ".join(v.split(" ")[1:]), "split_feature"),
        ("left_child", lambda v: " ".join(["0"] * len(v.split(" "))), "tree"),
        ("right_child", lambda v: "-1" + v[len(v.split(" ")[0]) :], "tree"),
        ("leaf_value", lambda v: "nan" + v[len(v.split(" ")[0]) :], "finite"),
        ("leaf_value", lambda v: v + " 1", "expected"),
        ("num_leaves", lambda v: "100", "expected"),
        ("num_cat", lambda v: "1", "cat_boundaries"),
        ("decision_type", lambda v: "13" + v[len(v.split(" ")[0]) :], "decision_type"),
        ("decision_type", lambda v: "1" + v[len(v.split(" ")[0]) :], "categorical"),
        ("shrinkage", lambda v: "x", "finite"),
        ("leaf_value", lambda v: "1e300" + v[len(v.split(" ")[0]) :], "leaf value past"),
    ],
)
def test_crafted_trees_are_refused_before_lightgbm_parses_them(copy, key, edit, message):
    text = _edit_tree(_model(copy), key, edit)
    with pytest.raises(DataError, match=message):
        _check(text)


def test_model_text_header_is_checked(copy):
    text = _model(copy)
    with pytest.raises(DataError, match="feature_names should list 9"):
        _check(text.replace("max_feature_idx=", "max_feature_idx=9", 1))
    with pytest.raises(DataError, match="unexpected header line"):
        _check(text.replace("objective=", "surprise=1\nobjective=", 1))
    with pytest.raises(DataError, match="objective"):
        _check(text.replace("objective=binary", "objective=evil", 1))
    with pytest.raises(DataError, match="not LightGBM model text"):
        _check("hello")
    with pytest.raises(DataError, match="num_class"):
        _check(text.replace("num_class=1", "num_class=2", 1))
    n = int(text.split("max_feature_idx=")[1].split("\n")[0]) + 1
    with pytest.raises(DataError, match=f"reads {n} features, the feature spec lists 3"):
        _check(text, 3)


def test_a_crafted_model_with_fixed_checksums_exits_2_not_a_signal(copy):
    """The model text checks run before LightGBM: no abort, no segfault, in a subprocess."""
    import subprocess
    import sys

    text = _edit_tree(_model(copy), "split_feature", lambda v: "99999" + v[len(v.split(" ")[0]) :])
    (copy / "model.txt").write_text(text, encoding="utf-8")
    seal(copy)
    run = subprocess.run(
        [sys.executable, "-c", f"from vipml.bundle import load_bundle; load_bundle({str(copy)!r})"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and "BundleError" in run.stderr and "split_feature" in run.stderr


def test_scores_of_a_loaded_bundle_are_finite(small_bundle):
    from vipml import load_tables
    from vipml.features import build_features
    from vipml.score import scoring_config

    path, data = small_bundle
    bundle = load_bundle(path)
    X = build_features(
        load_tables(data)[0], as_of="2024-12-01", config=scoring_config(bundle, None)
    )
    assert np.isfinite(bundle.predict(X)).all()


def test_two_bundles_of_one_name_both_survive(tmp_path):
    """A second writer finishing while the first is renaming: the second takes name-2."""

    def first(tmp):
        (tmp / "a.txt").write_text("first")
        # another process finished the same name in the meantime
        (tmp_path / "vip-1").mkdir()
        (tmp_path / "vip-1" / "a.txt").write_text("other")

    out = write_folder(tmp_path, "vip-1", first)
    assert out.name == "vip-1-2"
    assert (tmp_path / "vip-1" / "a.txt").read_text() == "other"
    assert (out / "a.txt").read_text() == "first"
    assert not list(tmp_path.glob(".*.tmp"))


def test_stale_temporary_folders_of_killed_writers_are_removed(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".vip-1.{dead}.0123abcd.tmp"
    stale.mkdir()
    (stale / "model.txt").write_text("half")
    alive = tmp_path / f".vip-1.{os.getppid()}.0123abcd.tmp"
    alive.mkdir()
    write_folder(tmp_path, "vip-1", lambda tmp: (tmp / "a.txt").write_text("x"))
    assert not stale.exists() and alive.exists()


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except OSError as exc:
            assert exc.errno == errno.EPERM
        pid -= 1


def test_stale_temporary_files_of_killed_writers_are_removed(tmp_path):
    import pandas as pd

    from vipml.io import write_frame

    dead = _dead_pid()
    stale = tmp_path / f".targets.csv.{dead}.tmp"
    stale.write_bytes(b"x" * 1000)
    other = tmp_path / f".targets.csv.gz.{dead}.tmp"  # another output's: not ours to remove
    other.write_bytes(b"x")
    write_frame(pd.DataFrame({"a": [1]}), tmp_path / "targets.csv")
    assert not stale.exists() and other.exists()


def test_uplift_bundles_are_checked_too(tmp_path):
    from vipml import load_config, load_tables
    from vipml.uplift import load_uplift_bundle, save_uplift_bundle, train_uplift

    from .test_uplift import UPLIFT_CONFIG, persuadable_shop

    frames, _, _ = persuadable_shop(600)
    tables = load_tables(frames)[0]
    config = load_config(None, **UPLIFT_CONFIG)
    path = save_uplift_bundle(
        train_uplift(tables, config), tables=tables, config=config, out=tmp_path
    )
    info = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
    assert set(info["files"]) == {p.name for p in path.iterdir()} - {"bundle.json"}
    load_uplift_bundle(path)
    model = next(f for f in info["files"] if f.endswith(".txt"))
    text = (path / model).read_text(encoding="utf-8")
    (path / model).write_text(text.replace("leaf_value=", "leaf_value=1", 1), encoding="utf-8")
    with pytest.raises(DataError, match=f"changed since it was written: {model}"):
        load_uplift_bundle(path)
    seal(path)
    with pytest.raises(DataError, match="tree sizes"):
        load_uplift_bundle(path)
    _edit_json(path, "bundle.json", lambda d: {**d, "learner": "oracle"})
    with pytest.raises(DataError, match="unknown uplift learner 'oracle'"):
        load_uplift_bundle(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.assign(as_of="someday"), "backtest.csv"),
        (lambda f: f.assign(roc_auc="high"), "roc_auc"),
        (lambda f: f.assign(roc_auc=float("inf")), "infinite"),
        (lambda f: f.drop(columns="as_of"), "no column 'as_of'"),
    ],
)
def test_backtest_csv_is_validated(copy, edit, message):
    import pandas as pd

    edit(pd.read_csv(copy / "backtest.csv")).to_csv(copy / "backtest.csv", index=False)
    seal(copy)
    with pytest.raises(DataError, match=message):
        load_bundle(copy)


def test_pandas_categorical_of_the_wrong_shape_is_refused(copy):
    from vipml.integrity import booster

    text = _model(copy)
    head, _, _ = text.rpartition("pandas_categorical:")
    with pytest.raises(DataError, match="pandas_categorical"):
        booster(head + "pandas_categorical:5\n", "model.txt")
    with pytest.raises(DataError, match="LightGBM cannot read it"):
        booster(head + "pandas_categorical:[[\n", "model.txt")


def test_non_finite_scores_are_refused(small_bundle):
    from vipml import load_tables
    from vipml.features import build_features
    from vipml.score import scoring_config

    path, data = small_bundle
    bundle = load_bundle(path)
    X = build_features(
        load_tables(data)[0], as_of="2024-12-01", config=scoring_config(bundle, None)
    )
    bundle.calibrator.predict = lambda raw: np.full(len(raw), np.nan)
    with pytest.raises(DataError, match="scores that are not numbers"):
        bundle.predict(X)
