"""The MLflow pyfunc model of a vipml bundle, logged as code (no pickle).

MLflow's "models from code" logs this file; loading runs it, and ``set_model`` hands MLflow the
model. The bundle folder travels as the artifact ``bundle``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class BundleModel(PythonModel):
    """Calibrated probabilities from a vipml bundle, for a frame of feature columns."""

    def load_context(self, context: Any) -> None:
        from vipml.bundle import load_bundle

        self.bundle = load_bundle(context.artifacts["bundle"])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        for name in self.bundle.spec.categorical:
            if name in frame:
                frame[name] = frame[name].astype("str")
        return pd.DataFrame({"score": self.bundle.predict(frame)}, index=frame.index)


mlflow.models.set_model(BundleModel())
