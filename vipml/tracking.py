"""Experiment tracking with MLflow, from the side: nothing in the flow needs it.

Where runs go, first match wins: the config's ``tracking.uri``; ``MLFLOW_TRACKING_URI``; an
embedded SQLite store ``mlflow.db`` in the working folder (artifacts in ``./mlruns``).
``tracking.enabled: false`` turns it off. MLflow is imported only when a run is logged, so the
command line starts fast.

Tracking is on the side: a failure (server down, store locked, a bad URI) is a
:class:`TrackingWarning` and the ``log_*`` function returns None; the command's own work is
already written and still succeeds. A new SQLite store is created under a file lock
(``mlflow.db.lock`` beside it), so runs starting at once do not race to create its tables. A
bundle's own config never chooses the store (see :func:`vipml.score.scoring_config`).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from vipml.config import Config


class TrackingWarning(UserWarning):
    """Logging to MLflow failed; the work itself is done."""


def _on_the_side(
    func: Callable[..., dict[str, str] | None],
) -> Callable[..., dict[str, str] | None]:
    """Turn any failure of a ``log_*`` function into a :class:`TrackingWarning` and None."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> dict[str, str] | None:
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # tracking must never fail the work
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
            warnings.warn(
                f"MLflow tracking failed, the results are written all the same "
                f"({type(exc).__name__}: {first}). Fix: check tracking.uri / "
                "MLFLOW_TRACKING_URI, or set tracking.enabled: false",
                TrackingWarning,
                stacklevel=2,
            )
            return None

    return wrapper


@contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive file lock beside a SQLite store while it is opened (and maybe created)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def tracking_uri(config: Config) -> str | None:
    """The tracking URI in force, or None when tracking is off."""
    if not config.tracking.enabled:
        return None
    if config.tracking.uri:
        return config.tracking.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


@contextmanager
def _caller_environment() -> Iterator[None]:
    """MLflow exports the tracking URI to the environment; leave the caller's as it was."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before


def _mlflow(uri: str) -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # a server that is down costs seconds, not minutes of retries
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow


def _experiment(mlflow: Any, name: str) -> str:
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = (Path.cwd() / "mlruns").resolve().as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@contextmanager
def _run(
    config: Config, experiment: str, run_name: str
) -> Iterator[tuple[Any, dict[str, str]] | None]:
    """An MLflow run in the config's store (``None`` when tracking is off): the mlflow module and
    the ids to return (run id, tracking URI)."""
    uri = tracking_uri(config)
    if uri is None:
        yield None
        return
    with _caller_environment():
        with _store_lock(uri):
            mlflow = _mlflow(uri)
            experiment_id = _experiment(mlflow, config.tracking.experiment or experiment)
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
            yield mlflow, {"run_id": run.info.run_id, "tracking_uri": uri}


@_on_the_side
def log_training(result: Any, bundle: Path, config: Config) -> dict[str, str] | None:
    """Log a training run: parameters, metrics beside the baselines, the backtest, the bundle,
    and a pyfunc model registered under the task's name. Returns run id and model URI."""
    task = config.train.task
    with _run(config, f"vipml-{task}", bundle.name) as active:
        if active is None:
            return None
        mlflow, ids = active
        tc = config.train
        mlflow.log_params(
            {
                "task": task,
                "horizon_days": result.plan.trained_horizon,
                "requested_horizon_days": result.plan.requested_horizon or result.plan.horizon_days,
                "population": config.labels.population,
                "vip_spend": config.labels.vip_spend,
                "refit": bool(result.plan.refit),
                "cutoffs": len(result.plan.cutoffs),
                "first_cutoff": f"{result.plan.cutoffs[0]:%Y-%m-%d}",
                "test_cutoff": f"{result.plan.cutoffs[-1]:%Y-%m-%d}",
                "calibration": result.calibrator.method,
                "best_iteration": result.best_iteration,
                "num_leaves": tc.num_leaves,
                "learning_rate": tc.learning_rate,
                "min_child_samples": tc.min_child_samples,
                "features": len(result.features),
                "seed": config.seed,
                "vip_rule": config.vip.rule,
                "vip_share": config.vip.share,
            }
        )
        metrics = {}
        for model_name, row in result.metrics.iterrows():
            for key, value in row.items():
                if pd.notna(value):
                    metrics[f"{model_name}.{key}"] = float(value)
        value_model = getattr(result, "value", None)
        if value_model is not None:  # expected spend and purchase days on the test fold
            for target, row in value_model.info.get("test", {}).items():
                if not isinstance(row, dict) or "gini" not in row:
                    continue
                for key, v in row.items():
                    if isinstance(v, (int, float)) and pd.notna(v):
                        metrics[f"value.{target}.{key}"] = float(v)
            nxt = value_model.info.get("next_order", {})
            if "cycle_prior" in nxt:  # next_order_at's weight of the BG/NBD cycle, chosen
                metrics["value.next_order.cycle_prior"] = float(nxt["cycle_prior"])
                for key in ("training_mae_days_chosen", "test_mae_days_chosen"):
                    if nxt.get(key) is not None and pd.notna(nxt[key]):
                        metrics[f"value.next_order.{key}"] = float(nxt[key])
        mlflow.log_metrics(metrics)
        for i, row in result.backtest.iterrows():
            for key in ("roc_auc", "pr_auc", "brier"):
                if pd.notna(row.get(key)):
                    mlflow.log_metric(f"backtest.{key}", float(row[key]), step=int(i))
        mlflow.set_tags({"vipml.bundle": str(bundle), "vipml.notes": " | ".join(result.plan.notes)})
        mlflow.log_artifacts(str(bundle), artifact_path="bundle")
        example = pd.DataFrame(
            {
                # a categorical feature may have no value in training (all missing): ""
                f.name: [
                    (result.categories.get(f.name) or [""])[0] if f.kind == "categorical" else 0.0
                ]
                for f in result.spec.features
            }
        )
        info = mlflow.pyfunc.log_model(
            name="model",
            input_example=example,
            python_model=str(Path(__file__).with_name("mlflow_model.py")),
            artifacts={"bundle": str(bundle)},
            registered_model_name=config.tracking.registered_model or task,
            pip_requirements=["vipml", "lightgbm", "pandas", "numpy", "scikit-learn"],
        )
        return {
            "run_id": ids["run_id"],
            "model_uri": info.model_uri,
            "tracking_uri": ids["tracking_uri"],
        }


@_on_the_side
def log_scoring(
    result: Any, bundle: Any, targets: Path, config: Config, as_of: Any
) -> dict[str, str] | None:
    """Log a scoring run beside its model's training runs: counts, score summary, drift."""
    task = bundle.info.get("task", "vip")
    with _run(config, f"vipml-{task}", f"score-{bundle.version}") as active:
        if active is None:
            return None
        mlflow, ids = active
        t = result.targets
        mlflow.set_tags(
            {"vipml.kind": "scoring", "vipml.bundle": bundle.version, "vipml.targets": str(targets)}
        )
        mlflow.log_params(
            {
                "as_of": str(as_of),
                "model_version": bundle.version,
                "rows": len(t),
                "select_by": config.score.select_by,
                "control_share": config.score.control_share,
            }
        )
        sel = t[t["selected"]]
        mlflow.log_metrics(
            {
                "rows": float(len(t)),
                "selected": float(len(sel)),
                "control": float((sel["group"] == "control").sum()),
                # an uplift list ranks by uplift and has no response score
                "score_mean": float(t["score" if "score" in t else "uplift"].mean()),
                "score_p90": float(t["score" if "score" in t else "uplift"].quantile(0.9)),
                "expected_value_treatment": float(
                    sel.loc[sel["group"] == "treatment", "expected_value"].sum()
                ),
                "psi_max": float(result.drift.max()) if len(result.drift) else 0.0,
                "features_drifted": float((result.drift > config.score.drift_threshold).sum()),
            }
        )
        mlflow.log_text(result.drift.to_frame().to_csv(), "drift.csv")
        mlflow.log_text(result.summary(), "summary.txt")
        return ids


@_on_the_side
def log_report(
    paths: list[Path], bundle: Any, config: Config, as_of: Any, summary: dict[str, float]
) -> dict[str, str] | None:
    """Log driver reports (the HTML pages) beside the model's runs, with their headline figures."""
    task = bundle.info.get("task", "vip")
    with _run(config, f"vipml-{task}", f"report-{bundle.version}") as active:
        if active is None:
            return None
        mlflow, ids = active
        mlflow.set_tags({"vipml.kind": "report", "vipml.bundle": bundle.version})
        mlflow.log_params({"as_of": str(as_of), "model_version": bundle.version})
        mlflow.log_metrics({k: float(v) for k, v in summary.items()})
        for path in paths:
            mlflow.log_artifact(str(path), artifact_path="reports")
        return ids


@_on_the_side
def log_uplift_training(result: Any, bundle: Path, config: Config) -> dict[str, str] | None:
    """Log an uplift training run: the learner, the test-fold Qini, AUUC and uplift at k beside
    a response model and a random ranking, and the bundle folder."""
    with _run(config, "vipml-uplift", bundle.name) as active:
        if active is None:
            return None
        mlflow, ids = active
        mlflow.set_tags({"vipml.kind": "uplift", "vipml.bundle": str(bundle)})
        mlflow.log_params(
            {
                "task": "uplift",
                "learner": result.kind,
                "treatment_share": round(float(result.treatment_share), 6),
                "acceptance_days": config.labels.acceptance_days,
                "offer_event": config.labels.offer_event,
                "outcome": getattr(result, "outcome", config.labels.offer_event),
                "arms": ",".join(getattr(result, "arms", ["treatment"])),
                "control_arm": config.train.control_arm,
                "seed": config.seed,
                **{f"learner.{k}": v for k, v in result.learner.get_params().items()},
                **{
                    f"trees.{k}": v
                    for k, v in getattr(result.learner, "best_iterations_", {}).items()
                },
            }
        )
        mlflow.log_metrics(
            {
                f"{name}.{key}": float(value)
                for name, row in result.metrics.iterrows()
                for key, value in row.items()
                if pd.notna(value)
            }
        )
        mlflow.log_artifacts(str(bundle), artifact_path="bundle")
        return ids


def log_uplift_evaluation(
    summary: pd.DataFrame,
    per_split: pd.DataFrame,
    config: Config,
    *,
    params: dict[str, Any],
    run_name: str = "uplift-evaluation",
) -> dict[str, str] | None:
    """Log repeated-split uplift figures (``vipml.uplift.repeated_splits``): the learner's
    parameters, each ranking's mean, sd and bootstrap interval, and every split's rows."""
    with _run(config, "vipml-uplift", run_name) as active:
        if active is None:
            return None
        mlflow, ids = active
        mlflow.set_tags({"vipml.kind": "uplift-evaluation"})
        mlflow.log_params({**params, "splits": int(per_split["seed"].nunique())})
        mlflow.log_metrics(
            {
                f"{name}.{key}": float(value)
                for name, row in summary.iterrows()
                for key, value in row.items()
                if isinstance(value, int | float) and pd.notna(value)
            }
        )
        mlflow.log_text(per_split.to_csv(index=False), "per_split.csv")
        mlflow.log_text(summary.to_csv(), "summary.csv")
        return ids


@_on_the_side
def log_monitoring(result: Any, bundle: Any, out: Path, config: Config) -> dict[str, str] | None:
    """Log a monitoring run (a past list against what happened) beside the model's runs."""
    task = bundle.info.get("task", "vip")
    with _run(config, f"vipml-{task}", f"monitor-{bundle.version}") as active:
        if active is None:
            return None
        mlflow, ids = active
        s = result.summary
        mlflow.set_tags(
            {
                "vipml.kind": "monitoring",
                "vipml.bundle": bundle.version,
                "vipml.retrain": str(bool(s["retrain"])).lower(),
                "vipml.partial": str(bool(s["partial"])).lower(),
            }
        )
        mlflow.log_params(
            {
                "cutoff": s["cutoff"],
                "horizon_days": s["horizon_days"],
                "observed_days": s["observed_days"],
                "model_version": bundle.version,
                "targets": str(s["targets"])[:500],
            }
        )
        metrics = {
            f"{scorer}_{name}": float(value)
            for scorer, row in result.metrics.iterrows()
            for name, value in row.items()
            if name
            in ("roc_auc", "pr_auc", "lift_10", "capture_10", "brier", "ece", "lift_quality")
            and value == value
        }
        metrics["retrain"] = float(bool(s["retrain"]))
        metrics["features_drifted"] = float(len(s["drifted_features"]))
        metrics.update({f"psi_{k}": float(v) for k, v in s.get("spend_drift", {}).items()})
        for k in ("total_error", "spearman", "gini", "interval_coverage"):
            v = s.get("value", {}).get(k)
            if v is not None and v == v:
                metrics[f"spend_{k}"] = float(v)
        mlflow.log_metrics(metrics)
        for path in sorted(Path(out).glob("*")):
            if path.is_file():
                mlflow.log_artifact(str(path), artifact_path="monitor")
        return ids
