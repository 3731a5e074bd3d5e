"""PNG plots of a trained model (matplotlib, Agg backend): ROC, cost vs threshold, feature importance,
reliability diagram (served probability of default vs observed default rate)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from training.calibrate import expected_calibration_error, reliability
from training.evaluation import roc_auc, roc_curve
from training.threshold import cost_curve

PLOT_FILES = ("roc.png", "cost_vs_threshold.png", "feature_importance.png", "reliability.png")


def write_plots(
    out_dir: Path,
    *,
    y_holdout: npt.NDArray[np.int8],
    p_holdout: npt.NDArray[np.float64],
    y_oof: npt.NDArray[np.int8],
    p_oof: npt.NDArray[np.float64],
    threshold: float,
    gains: npt.ArrayLike,
    feature_names: Sequence[str],
    fn_cost: float = 10.0,
    fp_cost: float = 1.0,
    top: int = 25,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / name for name in PLOT_FILES]

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, y, p in (("held-out", y_holdout, p_holdout), ("out-of-fold", y_oof, p_oof)):
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{label} (AUC {roc_auc(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    grid = np.linspace(0.0, 1.0, 201)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for label, y, p in (("held-out", y_holdout, p_holdout), ("out-of-fold", y_oof, p_oof)):
        ax.plot(grid, cost_curve(y, p, grid, fn_cost, fp_cost) / len(y), label=label)
    ax.axvline(threshold, color="red", ls="--", label=f"chosen threshold {threshold:.3f}")
    ax.set(
        xlabel="threshold (REFUS when P(default) ≥ threshold)",
        ylabel=f"cost per applicant ({fn_cost:g}·FN + {fp_cost:g}·FP)",
        title="Business cost vs threshold",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[1], dpi=100)
    plt.close(fig)

    g = np.asarray(gains, dtype=np.float64)
    order = np.argsort(-g)[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(order) + 1.2))
    ax.barh([feature_names[i] for i in order], g[order] / max(g.sum(), 1e-12))
    ax.set(xlabel="share of total gain", title=f"Feature importance (gain), top {len(order)}")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(paths[2], dpi=100)
    plt.close(fig)

    write_reliability(paths[3], [("held-out", y_holdout, p_holdout), ("out-of-fold", y_oof, p_oof)])
    return paths


def write_reliability(
    path: Path, curves: Sequence[tuple[str, npt.NDArray[np.int8], npt.NDArray[np.float64]]], bins: int = 10
) -> Path:
    """Reliability diagram: per equal-count bin, mean predicted vs observed default rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = 0.0
    for label, y, p in curves:
        mean_p, observed, _ = reliability(y, p, bins)
        top = max(top, float(mean_p.max()), float(observed.max()))
        ece = expected_calibration_error(y, p, bins)
        ax.plot(mean_p, observed, "o-", label=f"{label} (ECE {ece:.3f})")
    top = min(1.0, top * 1.1 + 0.01)
    ax.plot([0, top], [0, top], "k--", lw=0.8, label="perfectly calibrated")
    ax.set(
        xlim=(0, top),
        ylim=(0, top),
        xlabel="mean predicted P(default) (bin)",
        ylabel="observed default rate (bin)",
        title=f"Reliability ({bins} equal-count bins)",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
