"""The best run's evaluation figures: confusion matrix, ROC and precision-recall on the test split.

Figures are built with `matplotlib.figure.Figure` (rendered by the Agg canvas), so no GUI backend
or pyplot global state is involved; matplotlib is imported only when a grid logs them.
"""

from __future__ import annotations

import numpy as np

from lib.metrics import DEFAULT_THRESHOLD

FIGURES = ("figures/confusion_matrix.png", "figures/roc_curve.png", "figures/precision_recall_curve.png")


def log_figures(run_id: str, y_test: np.ndarray, proba: np.ndarray) -> None:
    """Log the three FIGURES to `run_id` and tag it `grid_best`."""
    import mlflow
    from matplotlib.figure import Figure
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    pred = (proba >= DEFAULT_THRESHOLD).astype(int)
    with mlflow.start_run(run_id=run_id):
        for path in FIGURES:
            fig = Figure(figsize=(5, 4.5), dpi=100)
            ax = fig.add_subplot()
            if "confusion" in path:
                ConfusionMatrixDisplay.from_predictions(
                    y_test, pred, display_labels=["no", "yes"], ax=ax, colorbar=False
                )
                ax.set_title(f"Test confusion matrix (threshold {DEFAULT_THRESHOLD})")
            elif "roc" in path:
                RocCurveDisplay.from_predictions(y_test, proba, ax=ax, name="XGBoost", plot_chance_level=True)
                ax.set_title("Test ROC curve")
            else:
                PrecisionRecallDisplay.from_predictions(y_test, proba, ax=ax, name="XGBoost", plot_chance_level=True)
                ax.set_title("Test precision-recall curve")
            fig.tight_layout()
            mlflow.log_figure(fig, path)
        mlflow.set_tag("grid_best", "true")
