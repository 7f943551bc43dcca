"""The model-quality numbers, defined once for training (MLflow), the gate, serving and monitoring.

Undefined values are NaN, never a made-up 0: precision without a positive prediction, recall
without a positive label, ranking metrics with one class only. MLflow stores NaN, charts show a
gap, and comparisons treat NaN as "not better".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

DEFAULT_THRESHOLD = 0.5
# Monitoring judges a model's answers at this threshold on the logged probability, as training and
# the gate do, not at the cut-off the campaign serves: 10's profit cut-off (~0.05) calls half the
# customers, so its 0/1 answers are "wrong" half the time by design and an accuracy alert would fire
# for every champion. The served decisions are judged by the campaign's economics instead.
QUALITY_THRESHOLD = DEFAULT_THRESHOLD
METRIC_NAMES = ("accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss")
DEFAULT_METRIC = "test_roc_auc"
SPLITS = ("train", "test")
# Every metric key a training run logs: per split, plus the early-stopping validation AUC.
RUN_METRIC_KEYS = tuple(f"{part}_{m}" for part in SPLITS for m in METRIC_NAMES) + ("val_roc_auc",)


def higher_is_better(metric: str) -> bool:
    """Losses are minimised, every other metric maximised."""
    return not metric.endswith("log_loss")


def classification_metrics(
    labels: Sequence[int] | np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    predictions: Sequence[int] | np.ndarray | None = None,
) -> dict[str, float]:
    """Threshold metrics at `threshold` (or of the given `predictions`), ranking metrics and log loss."""
    from sklearn import metrics

    y = np.asarray(labels, dtype=int)
    if len(y) == 0:
        return dict.fromkeys(METRIC_NAMES, math.nan)
    p = np.asarray(probabilities, dtype=np.float64)
    pred = (p >= threshold).astype(int) if predictions is None else np.asarray(predictions, dtype=int)
    both = len(np.unique(y)) == 2
    return {
        "accuracy": float(metrics.accuracy_score(y, pred)),
        "precision": float(metrics.precision_score(y, pred, zero_division=np.nan)),
        "recall": float(metrics.recall_score(y, pred, zero_division=np.nan)),
        "f1": float(metrics.f1_score(y, pred, zero_division=np.nan)),
        "roc_auc": float(metrics.roc_auc_score(y, p)) if both else math.nan,
        "pr_auc": float(metrics.average_precision_score(y, p)) if both else math.nan,
        "log_loss": float(metrics.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1])),
    }


def confusion_rates(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Accuracy, precision, recall and F1 from confusion counts, with `classification_metrics`' NaN rule.

    For aggregates a database has already counted (monitoring's SQL buckets): the same numbers
    sklearn gives on the rows, without transferring them.
    """
    n = tp + fp + fn + tn
    return {
        "accuracy": (tp + tn) / n if n else math.nan,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan,
    }
