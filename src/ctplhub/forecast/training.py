"""Train and evaluate the lapse model on the synthetic history (docs/forecast.md).

A logistic regression over ``domain.lapse_risk.FEATURE_NAMES``: its coefficients are the
whole model, so it is stored as JSON (no pickle) and scored without scikit-learn. The
held-out split is by vehicle (a fixed hash of its index), so no vehicle is both learnt
from and judged on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from ctplhub.domain.lapse_risk import FEATURE_NAMES, LapseModel, top_decile_threshold
from ctplhub.services.risk_history import SyntheticVehicle

HELD_OUT_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class Evaluation:
    """ROC AUC of the model and of the true risk (the ceiling) on the same vehicles."""

    vehicles: int
    lapsed: int
    model_auc: float
    ceiling_auc: float

    @property
    def gap(self) -> float:
        return self.ceiling_auc - self.model_auc


def split(
    vehicles: Iterable[SyntheticVehicle], held_out: float = HELD_OUT_SHARE
) -> tuple[list[SyntheticVehicle], list[SyntheticVehicle]]:
    """(training, held-out) by a fixed hash of the vehicle index: reproducible, and the
    same vehicle lands on the same side whatever the fleet's size."""
    train: list[SyntheticVehicle] = []
    test: list[SyntheticVehicle] = []
    for vehicle in vehicles:
        bucket = (vehicle.index * 2_654_435_761) % 1000
        (test if bucket < held_out * 1000 else train).append(vehicle)
    return train, test


def _matrix(vehicles: Sequence[SyntheticVehicle]) -> np.ndarray:
    return np.array([v.features.encoded() for v in vehicles], dtype=float)


def train(vehicles: Sequence[SyntheticVehicle]) -> LapseModel:
    """A logistic regression fitted to the vehicles' outcomes; its top-decile score is
    the tenth-riskiest point of the training vehicles' own scores."""
    labels = [v.lapsed for v in vehicles]
    if len(set(labels)) < 2:
        raise ValueError("training needs both lapsed and renewed vehicles")
    fitted = LogisticRegression(C=1.0, max_iter=2000).fit(_matrix(vehicles), labels)
    model = LapseModel(
        intercept=float(fitted.intercept_[0]),
        weights=tuple(float(w) for w in fitted.coef_[0]),
        about={"trained_on": len(vehicles), "lapsed": sum(labels)},
    )
    threshold = top_decile_threshold(model.risk(v.features) for v in vehicles)
    return LapseModel(model.intercept, model.weights, threshold, model.about)


def evaluate(model: LapseModel, vehicles: Sequence[SyntheticVehicle]) -> Evaluation:
    labels = [v.lapsed for v in vehicles]
    if len(set(labels)) < 2:
        raise ValueError("evaluation needs both lapsed and renewed vehicles")
    scores = [model.risk(v.features) for v in vehicles]
    truth = [v.true_risk for v in vehicles]
    return Evaluation(
        vehicles=len(vehicles),
        lapsed=sum(labels),
        model_auc=float(roc_auc_score(labels, scores)),
        ceiling_auc=float(roc_auc_score(labels, truth)),
    )


def describe(model: LapseModel) -> dict[str, float]:
    """The weights by feature name, for people reading the model file or the CLI."""
    return dict(zip(FEATURE_NAMES, model.weights, strict=True))
