"""Model bundles: one folder per trained model, complete or absent, loaded without pickle.

``models/<task>-<YYYYmmdd-HHMMSS>/`` holds

* ``model.txt``: the LightGBM booster as text;
* ``calibrator.json``: the calibration as plain numbers;
* ``feature_spec.json``: feature names, en/ko descriptions, dtypes, and the categories of each
  categorical feature as seen in training;
* ``config.json``, ``metrics.json`` (test metrics beside the baselines), ``backtest.csv`` (per
  cutoff, the model beside the baselines), ``curves.json`` (ROC, gains and calibration points of
  the test fold, for reports);
* ``bundle.json``: task, cutoffs, the horizon the labels used (``horizon_days``) and the one
  asked for (``requested_horizon_days``), the population (``population``, ``vip_spend``), notes,
  what the evaluated model and the shipped model each saw (``evaluated``, ``shipped``: cutoffs,
  rows, positives, trees, how the calibration was fitted), a fingerprint of the training data,
  the library version and the creation time. ``reference.json`` holds the drift reference: the
  newest snapshot the shipped model was trained on.

The folder is written under a temporary name and renamed into place, so a crash never leaves a
half-written bundle. Loading reads text and JSON only.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from vipml.config import Config, config_record
from vipml.errors import DataError
from vipml.features.registry import FeatureSpec
from vipml.integrity import seal
from vipml.io import Tables
from vipml.model import Calibrator, prepare_matrix
from vipml.value import ValueModel

if TYPE_CHECKING:  # training is an earlier stage; a bundle is read without it
    from vipml.train import TrainResult

FILES = (
    "model.txt",
    "calibrator.json",
    "feature_spec.json",
    "config.json",
    "metrics.json",
    "backtest.csv",
    "bundle.json",
    "reference.json",
)


def fingerprint(tables: Tables) -> str:
    """A short hash of the training tables' contents (rows, columns and values)."""
    digest = hashlib.sha256()
    for name, frame in tables:
        digest.update(name.encode())
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class Bundle:
    """A trained model read back from its folder."""

    path: Path
    booster: lgb.Booster
    calibrator: Calibrator
    spec: FeatureSpec
    categories: dict[str, list[str]]
    features: list[str]
    info: dict[str, Any]
    metrics: pd.DataFrame
    reference: dict[str, Any]
    config: dict[str, Any]
    backtest: pd.DataFrame | None = None
    curves: dict[str, dict[str, list[float]]] | None = None
    value: ValueModel | None = None  # expected spend and purchase days (bundles since 0.x)

    @property
    def version(self) -> str:
        """The bundle's name, used as model version in target lists."""
        return self.path.name

    def check(self, X: pd.DataFrame) -> None:
        """Refuse features that do not match the training spec, naming the columns."""
        missing = sorted(set(self.features) - set(X.columns))
        extra = sorted(set(X.columns) - set(self.features))
        if missing:
            raise DataError(
                f"the data's features do not match bundle {self.version}: missing "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
                + (f"; not seen in training: {', '.join(extra[:5])}" if extra else "")
                + "\nFix: give the tables the model was trained on (same tables and columns), "
                "and the same config"
            )
        for f in self.spec.features:
            if f.name in X and f.kind == "numeric" and not pd.api.types.is_numeric_dtype(X[f.name]):
                raise DataError(f"feature '{f.name}' should be numeric, found {X[f.name].dtype}")

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities."""
        self.check(X)
        raw = self.booster.predict(prepare_matrix(X, self.features, self.categories))
        out = self.calibrator.predict(raw)
        if not np.isfinite(out).all():
            raise DataError(
                f"bundle {self.version} gave {int((~np.isfinite(out)).sum()):,} scores that are "
                "not numbers (NaN or inf): its model or calibrator is damaged\n"
                "Fix: train the model again"
            )
        return out


def write_folder(root: Path, name: str, write: Callable[[Path], None]) -> Path:
    """Create ``root/name`` (``name-2``, ... when taken) complete or not at all: ``write`` fills a
    temporary folder beside it, which is then renamed into place.

    Two processes writing the same name at once both succeed: the rename fails when the name was
    taken in the meantime, and the next free name is tried. Temporary folders left by killed
    writers of this name are removed."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        write(tmp)
        suffix = 1
        while True:
            target = root / (name if suffix == 1 else f"{name}-{suffix}")
            if not target.exists():
                try:
                    os.rename(tmp, target)  # refuses a non-empty folder of that name
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                        raise
            suffix += 1
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    from vipml.io.write import remove_stale_temporaries

    remove_stale_temporaries(root, name)
    return target


def spec_json(result: Any) -> dict[str, Any]:
    """The feature spec of a trained result with its categories and column order."""
    spec = result.spec.to_dict()
    spec["categories"] = result.categories
    spec["order"] = result.features
    return spec


def save_bundle(
    result: TrainResult,
    *,
    tables: Tables | None,
    config: Config,
    out: str | os.PathLike[str] = "models",
    now: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle folder atomically and return its path. ``extra`` adds entries to
    ``bundle.json`` (how a sample of the data was drawn, say)."""
    from vipml import __version__

    now = now or datetime.now(UTC)

    def write(tmp: Path) -> None:
        (tmp / "model.txt").write_text(result.booster.model_to_string(), encoding="utf-8")
        write_json(tmp / "calibrator.json", result.calibrator.to_dict())
        write_json(tmp / "feature_spec.json", spec_json(result))
        write_json(tmp / "config.json", config_record(config))
        write_json(tmp / "metrics.json", json.loads(result.metrics.to_json(orient="index")))
        result.backtest.to_csv(tmp / "backtest.csv", index=False)
        write_json(tmp / "reference.json", result.reference)
        write_json(tmp / "curves.json", result.curves)
        if getattr(result, "value", None) is not None:
            result.value.to_folder(tmp)
        write_json(tmp / "bundle.json", info)

    def sealed(tmp: Path) -> None:
        write(tmp)
        seal(tmp)  # checksums of every file written, whoever added it

    info = {
        "task": config.train.task,
        "cutoffs": [c.isoformat() for c in result.plan.cutoffs],
        "folds": {k: [c.isoformat() for c in v] for k, v in result.plan.folds.items()},
        "horizon_days": result.plan.trained_horizon,
        "requested_horizon_days": result.plan.requested_horizon or config.labels.horizon_days,
        "horizons": result.plan.horizons,
        "notes": result.plan.notes,
        "population": config.labels.population,
        "vip_spend": config.labels.vip_spend,
        "evaluated": result.evaluated,
        "shipped": result.shipped,
        "calibration": result.calibrator.method,
        "calibration_briers": result.calibration_briers,
        "best_iteration": result.best_iteration,
        "data_fingerprint": fingerprint(tables) if tables is not None else None,
        "vipml_version": __version__,
        "created_at": now.isoformat(),
        **(extra or {}),
    }
    return write_folder(Path(out), f"{config.train.task}-{now:%Y%m%d-%H%M%S}", sealed)


def load_bundle(path: str | os.PathLike[str]) -> Bundle:
    """Read a bundle folder (text and JSON only; no pickled code runs).

    The folder is untrusted input: checksums, JSON schemas and the model text's structure are
    checked (:mod:`vipml.integrity`) before anything in it is used.

    Raises
    ------
    DataError
        When the folder is not a complete bundle, a file changed since it was written, or a
        file does not hold what a bundle holds (the message names the file).
    """
    import warnings

    from vipml.integrity import (
        booster,
        check_backtest,
        read_json,
        read_model_text,
        verify_checksums,
    )

    path = Path(path)
    if not path.is_dir():
        raise DataError(
            f"bundle folder {path} not found\nFix: give a folder written by vipml train"
        )
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise DataError(f"{path} is not a complete model bundle (missing {', '.join(missing)})")
    info = read_json(path, "bundle.json")
    for warning in verify_checksums(path, info, [*FILES, "curves.json"]):
        warnings.warn(warning, stacklevel=2)
    spec_data = read_json(path, "feature_spec.json")
    features = list(spec_data["order"])
    model_text = read_model_text(path, "model.txt", n_features=len(features))
    calibrator = read_json(path, "calibrator.json")
    metrics = pd.DataFrame(read_json(path, "metrics.json")).T
    reference = read_json(path, "reference.json")
    config = read_json(path, "config.json")
    curves = read_json(path, "curves.json") if (path / "curves.json").is_file() else None
    try:
        backtest = pd.read_csv(path / "backtest.csv")
        if "as_of" in backtest:
            backtest["as_of"] = pd.to_datetime(backtest["as_of"], utc=True, format="ISO8601")
    except Exception as exc:  # any parser error: the file is damaged
        raise DataError(
            f"bundle file backtest.csv: cannot be read ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''})\n"
            "Fix: use the bundle folder as vipml train wrote it, or train the model again"
        ) from None
    check_backtest(backtest, "backtest.csv")
    return Bundle(
        path=path,
        booster=booster(model_text, "model.txt"),
        calibrator=Calibrator.from_dict(calibrator),
        spec=FeatureSpec.from_dict(spec_data),
        categories={k: list(v) for k, v in spec_data["categories"].items()},
        features=features,
        info=info,
        metrics=metrics,
        reference=reference,
        config=config,
        backtest=backtest,
        # bundles written before curves were kept have none
        curves=curves,
        value=ValueModel.from_folder(path),
    )


def write_json(path: Path, data: Any) -> None:
    """JSON as bundles keep it: indented, Unicode as is."""
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
