"""Uplift: the incremental effect of an offer, its learners and its evaluation.

An uplift model estimates, per customer, P(outcome | treated) - P(outcome | not treated): who
the offer persuades, as opposed to who would buy anyway. Two learners on LightGBM:

* :class:`TwoModelUplift`: one classifier per group, uplift = the difference of their
  probabilities;
* :class:`TransformedOutcomeUplift`: class transformation generalised to any treatment share, a
  regression of ``z = y (t - e) / (e (1 - e))`` whose expectation given X is the uplift.

Evaluation follows scikit-uplift's order of arguments, ``(y_true, uplift, treatment)``: the Qini
curve and coefficient, the uplift curve and its area (AUUC), and the uplift among the top k.

``train.task: uplift`` trains a learner on offers with a treatment and a control group
(:func:`train_uplift`): one row per offer, the customer's features as of the start of the send
day or week (the upsell task's rows, held-out offers included), outcome = accepted within
``labels.acceptance_days`` (for a held-out offer: bought anyway). The offer's own attributes are
left out, so the model rates customers for the offer mix they got, and any target list can use
it. :func:`save_uplift_bundle` writes ``uplift-<YYYYmmdd-HHMMSS>/`` atomically:

* ``treated.txt`` and ``control.txt`` (two-model) or ``model.txt`` (transformed outcome): the
  LightGBM boosters as text;
* ``feature_spec.json`` (features, order, categories), ``config.json``, ``metrics.json`` (Qini
  coefficient, AUUC and uplift at 30% on the test fold, beside a response model and a random
  ranking) and ``bundle.json`` (task ``uplift``, learner, treatment share, notes, fingerprint).

Loading (:func:`load_uplift_bundle`) reads text and JSON only; ``vipml score --select uplift
--uplift-bundle DIR`` adds an ``uplift`` column and selects by it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vipml.bundle import fingerprint, spec_json, write_folder, write_json
from vipml.config import Config, as_config, config_record
from vipml.errors import DataError, NotFittedError
from vipml.features.registry import FeatureSpec
from vipml.integrity import seal
from vipml.io import Tables
from vipml.model import prepare_matrix
from vipml.train import OFFER_FEATURES, Plan, build_offer_dataset

LEARNERS = {"two_model": ("treated.txt", "control.txt"), "transformed_outcome": ("model.txt",)}


def _uplift_inputs(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, ...]:
    y, u, t = (np.asarray(a, dtype=np.float64) for a in (y_true, uplift, treatment))
    if not (len(y) == len(u) == len(t)):
        raise DataError(
            f"y_true, uplift and treatment differ in length: {len(y)}, {len(u)}, {len(t)}"
        )
    if t.sum() == 0 or t.sum() == len(t):
        raise DataError(
            f"uplift needs treated and control rows; found {int(t.sum())} treated of {len(t)}.\n"
            "Fix: evaluate on a sample that holds both groups"
        )
    order = np.argsort(-u, kind="stable")
    return y[order], t[order]


def qini_curve(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Qini curve: for the top k rows by uplift, treated conversions minus control conversions
    scaled to the treated count. Returns (k, qini) with k = 0 .. n."""
    y, t = _uplift_inputs(y_true, uplift, treatment)
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * (1 - t))
    with np.errstate(divide="ignore", invalid="ignore"):
        q = y_t - np.where(n_c > 0, y_c * n_t / np.where(n_c > 0, n_c, 1), 0.0)
    return np.arange(len(y) + 1), np.concatenate([[0.0], q])


def qini_coefficient(y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """Area between the Qini curve and the random-targeting line, divided by the number of rows
    (0 for random targeting; higher is better)."""
    k, q = qini_curve(y_true, uplift, treatment)
    random_line = q[-1] * k / k[-1]
    return float(np.trapezoid(q - random_line, k) / k[-1] / max(abs(q[-1]), 1e-12))


def uplift_curve(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Uplift curve: (treated rate - control rate) among the top k rows, times k."""
    y, t = _uplift_inputs(y_true, uplift, treatment)
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n_t > 0, np.cumsum(y * t) / np.where(n_t > 0, n_t, 1), 0.0) - np.where(
            n_c > 0, np.cumsum(y * (1 - t)) / np.where(n_c > 0, n_c, 1), 0.0
        )
    k = np.arange(1, len(y) + 1)
    return np.concatenate([[0], k]), np.concatenate([[0.0], rate * k])


def auuc(y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray) -> float:
    """Area under the uplift curve over the unit square (rows as a share, uplift x share):
    the uplift of the whole population halved for random targeting; higher is better."""
    k, u = uplift_curve(y_true, uplift, treatment)
    return float(np.trapezoid(u, k) / k[-1] ** 2)


def uplift_at_k(
    y_true: np.ndarray, uplift: np.ndarray, treatment: np.ndarray, k: float = 0.3
) -> float:
    """Treated rate minus control rate among the top share ``k`` by uplift."""
    y, t = _uplift_inputs(y_true, uplift, treatment)
    top = max(1, math.ceil(k * len(y)))
    yt, tt = y[:top], t[:top]
    if tt.sum() == 0 or tt.sum() == top:
        return math.nan
    return float(yt[tt == 1].mean() - yt[tt == 0].mean())


class TwoModelUplift:
    """Two LightGBM classifiers, one per group; uplift = P(y | treated) - P(y | control).

    scikit-learn conventions: ``fit`` returns self; learned state ends in ``_``.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        num_leaves: int = 15,
        learning_rate: float = 0.05,
        n_estimators: int = 300,
        min_child_samples: int = 50,
    ) -> None:
        self.seed = seed
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.n_estimators = n_estimators
        self.min_child_samples = min_child_samples

    def _params(self) -> dict[str, object]:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "random_state": self.seed,
            "deterministic": True,
            "force_col_wise": True,
            "n_jobs": 2,
            "verbose": -1,
        }

    def _model(self) -> object:
        import lightgbm as lgb

        return lgb.LGBMClassifier(**self._params())

    def fit(self, X: pd.DataFrame, y: np.ndarray, treatment: np.ndarray) -> TwoModelUplift:
        """Fit one model on the treated rows and one on the control rows."""
        t = np.asarray(treatment).astype(bool)
        y = np.asarray(y)
        self.treated_ = self._model().fit(X[t], y[t])
        self.control_ = self._model().fit(X[~t], y[~t])
        self.feature_names_in_ = list(X.columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated uplift per row."""
        if not hasattr(self, "treated_"):
            raise NotFittedError("TwoModelUplift is not fitted: call fit(X, y, treatment) first")
        return self.treated_.predict_proba(X)[:, 1] - self.control_.predict_proba(X)[:, 1]


class TransformedOutcomeUplift(TwoModelUplift):
    """Class transformation generalised to any treatment share: a LightGBM regression of
    ``y * (t - e) / (e * (1 - e))``, whose expectation is the uplift (``e`` the treated share)."""

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, treatment: np.ndarray
    ) -> TransformedOutcomeUplift:
        """Fit the regression of the transformed outcome."""
        import lightgbm as lgb

        t = np.asarray(treatment, dtype=np.float64)
        e = t.mean()
        if not 0 < e < 1:
            raise DataError(
                f"uplift needs treated and control rows; found {int(t.sum())} treated of {len(t)}.\n"
                "Fix: train on offers that hold both groups (offers.group: treatment / control)"
            )
        z = np.asarray(y, dtype=np.float64) * (t - e) / (e * (1 - e))
        self.treatment_share_ = float(e)
        self.model_ = lgb.LGBMRegressor(**self._params()).fit(X, z)
        self.feature_names_in_ = list(X.columns)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated uplift per row."""
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "TransformedOutcomeUplift is not fitted: call fit(X, y, treatment) first"
            )
        return self.model_.predict(X)


# --------------------------------------------------------------------------- training and bundles


@dataclass
class UpliftResult:
    """What an uplift training run produced."""

    learner: TwoModelUplift
    kind: str
    spec: FeatureSpec
    features: list[str]
    categories: dict[str, list[str]]
    metrics: pd.DataFrame
    plan: Plan
    treatment_share: float
    notes: list[str] = field(default_factory=list)

    def boosters(self) -> dict[str, Any]:
        """The LightGBM boosters by file name."""
        if self.kind == "two_model":
            return {
                "treated.txt": self.learner.treated_.booster_,
                "control.txt": self.learner.control_.booster_,
            }
        return {"model.txt": self.learner.model_.booster_}


def uplift_report(
    y: np.ndarray, treatment: np.ndarray, rankings: dict[str, np.ndarray], *, k: float = 0.3
) -> pd.DataFrame:
    """Qini coefficient, AUUC and uplift at ``k`` of each ranking on the same rows.

    Parameters
    ----------
    y, treatment
        Outcomes (0/1) and the group of each row (1 treated).
    rankings
        Name -> a score per row (higher: target first).
    k
        The top share for uplift at k.

    Returns
    -------
    pandas.DataFrame
        Index the ranking names; columns ``rows``, ``qini``, ``auuc``, ``uplift_at_{k}``.
    """
    rows = {
        name: {
            "rows": float(len(y)),
            "qini": qini_coefficient(y, score, treatment),
            "auuc": auuc(y, score, treatment),
            f"uplift_at_{round(k * 100)}": uplift_at_k(y, score, treatment, k),
        }
        for name, score in rankings.items()
    }
    return pd.DataFrame(rows).T


def train_uplift(
    tables: Tables, config: Config | str | None = None, *, progress: bool = False
) -> UpliftResult:
    """Train the configured uplift learner on the offers and evaluate it on the test fold.

    Folds are the upsell task's (by send time, or a seeded random split when every offer went
    out within three weeks); the learner fits on the training and validation folds, and the
    test fold compares it with a response model (LightGBM on the treated offers, P(accept)) and
    a seeded random ranking.

    Parameters
    ----------
    tables
        Offers with ``group`` (treatment / control) and the tables the features need.
    config
        ``train.uplift_learner``, ``labels.acceptance_days`` and ``labels.offer_event``, the
        feature settings and ``seed``.
    progress
        Draw a progress bar while features are built.

    Returns
    -------
    UpliftResult

    Raises
    ------
    DataError
        When the offers have no control group, or a fold lacks treated or control offers.
    """
    config = as_config(config)
    offers = tables.offers
    if offers is None or "group" not in offers or not (offers["group"] == "control").any():
        raise DataError(
            "the uplift task needs offers with a control group (offers.group: treatment / "
            "control); none is held out.\nFix: hold out a random control group when sending, or "
            "map the column in tables.offers.columns.group"
        )
    X, y, masks, plan = build_offer_dataset(tables, config, progress=progress, include_control=True)
    group = offers.set_index("offer_id")["group"]
    t = (group.reindex(X.index.get_level_values("offer_id")) != "control").to_numpy(dtype=bool)
    spec = FeatureSpec.from_dict(X.attrs["feature_spec"])
    offer_columns = {f.name for f in OFFER_FEATURES}
    spec.features[:] = [f for f in spec.features if f.name not in offer_columns]
    features = [c for c in spec.names if c in X]
    fit = masks["train"] | masks["valid"]
    test = masks["test"]
    for name, mask in (("training", fit), ("test", test)):
        if not (t[mask].any() and (~t[mask]).any()):
            raise DataError(
                f"the {name} offers hold {int(t[mask].sum()):,} treated and "
                f"{int((~t[mask]).sum()):,} control offers; uplift needs both.\n"
                "Fix: give more offers with a held-out control group"
            )
    categories = {
        c: sorted(X.loc[fit, c].dropna().astype("str").unique().tolist()) for c in spec.categorical
    }
    M = prepare_matrix(X, features, categories)
    kind = config.train.uplift_learner
    cls = TwoModelUplift if kind == "two_model" else TransformedOutcomeUplift
    learner = cls(seed=config.seed).fit(M[fit], y[fit].to_numpy(), t[fit])
    response = TwoModelUplift(seed=config.seed)._model().fit(M[fit & t], y[fit & t].to_numpy())
    rng = np.random.default_rng(config.seed)
    metrics = uplift_report(
        y[test].to_numpy(),
        t[test],
        {
            "uplift": learner.predict(M[test]),
            "response": response.predict_proba(M[test])[:, 1],
            "random": rng.random(int(test.sum())),
        },
    )
    return UpliftResult(
        learner=learner,
        kind=kind,
        spec=spec,
        features=features,
        categories=categories,
        metrics=metrics,
        plan=plan,
        treatment_share=float(t[fit].mean()),
        notes=list(plan.notes),
    )


@dataclass
class UpliftBundle:
    """An uplift model read back from its folder."""

    path: Path
    kind: str
    boosters: dict[str, Any]
    features: list[str]
    categories: dict[str, list[str]]
    info: dict[str, Any]
    metrics: pd.DataFrame
    config: dict[str, Any]

    @property
    def version(self) -> str:
        """The bundle's folder name."""
        return self.path.name

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated uplift per row of a feature frame that holds the trained features."""
        missing = sorted(set(self.features) - set(X.columns))
        if missing:
            raise DataError(
                f"the data's features do not match uplift bundle {self.version}: missing "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}\n"
                "Fix: build features with the config the uplift model was trained with"
            )
        M = prepare_matrix(X, self.features, self.categories)
        if self.kind == "two_model":
            return self.boosters["treated.txt"].predict(M) - self.boosters["control.txt"].predict(M)
        return self.boosters["model.txt"].predict(M)


def save_uplift_bundle(
    result: UpliftResult,
    *,
    tables: Tables,
    config: Config,
    out: str | os.PathLike[str] = "models",
    now: datetime | None = None,
) -> Path:
    """Write an uplift bundle folder atomically and return its path."""
    from vipml import __version__

    now = now or datetime.now(UTC)

    def write(tmp: Path) -> None:
        for file, booster in result.boosters().items():
            (tmp / file).write_text(booster.model_to_string(), encoding="utf-8")
        write_json(tmp / "feature_spec.json", spec_json(result))
        write_json(tmp / "config.json", config_record(config))
        write_json(tmp / "metrics.json", json.loads(result.metrics.to_json(orient="index")))
        write_json(tmp / "bundle.json", info)

    info = {
        "task": "uplift",
        "learner": result.kind,
        "treatment_share": result.treatment_share,
        "acceptance_days": config.labels.acceptance_days,
        "offer_event": config.labels.offer_event,
        "folds": {k: [c.isoformat() for c in v] for k, v in result.plan.folds.items()},
        "notes": result.notes,
        "data_fingerprint": fingerprint(tables),
        "vipml_version": __version__,
        "created_at": now.isoformat(),
    }

    def sealed(tmp: Path) -> None:
        write(tmp)
        seal(tmp)  # checksums of every file written

    return write_folder(Path(out), f"uplift-{now:%Y%m%d-%H%M%S}", sealed)


def load_uplift_bundle(path: str | os.PathLike[str]) -> UpliftBundle:
    """Read an uplift bundle folder (text and JSON only; no pickled code runs).

    Raises
    ------
    DataError
        When the folder is not a complete uplift bundle.
    """
    import warnings

    from vipml.integrity import booster, read_json, read_model_text, verify_checksums

    path = Path(path)
    info_file = path / "bundle.json"
    info = read_json(path, "bundle.json") if info_file.is_file() else {}
    if info.get("task") != "uplift":
        found = f"task '{info['task']}'" if "task" in info else "no bundle.json"
        raise DataError(
            f"{path} is not an uplift bundle ({found}).\nFix: train one with train.task: uplift "
            "and give its folder"
        )
    kind = info.get("learner", "two_model")
    if not isinstance(kind, str) or kind not in LEARNERS:
        raise DataError(
            f"bundle file bundle.json: unknown uplift learner {kind!r} (known: "
            f"{', '.join(LEARNERS)})\nFix: use the bundle folder as vipml train wrote it"
        )
    files = [*LEARNERS[kind], "feature_spec.json", "config.json", "metrics.json"]
    missing = [f for f in files if not (path / f).is_file()]
    if missing:
        raise DataError(f"{path} is not a complete uplift bundle (missing {', '.join(missing)})")
    for warning in verify_checksums(path, info, files):
        warnings.warn(warning, stacklevel=2)
    spec = read_json(path, "feature_spec.json")
    features = list(spec["order"])
    texts = {f: read_model_text(path, f, n_features=len(features)) for f in LEARNERS[kind]}
    return UpliftBundle(
        path=path,
        kind=kind,
        boosters={f: booster(text, f) for f, text in texts.items()},
        features=features,
        categories={k: list(v) for k, v in spec["categories"].items()},
        info=info,
        metrics=pd.DataFrame(read_json(path, "metrics.json")).T,
        config=read_json(path, "config.json"),
    )
