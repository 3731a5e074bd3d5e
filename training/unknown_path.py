"""Clients unknown to the cache: their matrix as the scorer assembles it, and how well they are decided.

An unknown client is scored on its application alone (:mod:`scoring.vector`: a NaN vector, the event's
fields written over it, derived features recomputed), flagged ``features_found=false``. Offline, the
same vector is a feature-table row with every ``cached`` column (the client's history) set to NaN and the
derived columns recomputed by the same :func:`feature_loader.derived.apply_derived`.

The measure goes into the model card (:class:`scoring.model_card.UnknownClientPath`) for the policy to
read: the path is **weak** when it ranks clearly worse than for known clients (AUC lower by more than
:data:`WEAK_AUC_GAP`) or when deciding those clients at the threshold costs more than approving them all.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from feature_loader.derived import apply_derived
from feature_loader.feature_schema import FeatureSchema
from scoring.model_card import UnknownClientPath
from training.evaluation import roc_auc
from training.threshold import cost_at

WEAK_AUC_GAP = 0.02


def unknown_matrix(x: npt.NDArray[np.float32], schema: FeatureSchema) -> npt.NDArray[np.float32]:
    """The rows of ``x`` as for clients the cache does not know (module docstring); ``x`` is kept."""
    out = np.array(x, dtype=np.float32, order="C", copy=True)
    cached = [schema.index[f.name] for f in schema.cached_fields]
    out[:, cached] = np.nan
    if schema.derived_fields:
        apply_derived(out, schema)
    return out


def measure_unknown_path(
    y: npt.ArrayLike,
    p_unknown: npt.ArrayLike,
    p_known: npt.ArrayLike,
    threshold: float,
    fn_cost: float,
    fp_cost: float,
) -> UnknownClientPath:
    """Compare the same held-out clients decided with (``p_known``) and without (``p_unknown``) their
    cached history, on the served (calibrated) probabilities."""
    yy = np.asarray(y).astype(np.int8).ravel()
    auc, known_auc = roc_auc(yy, p_unknown), roc_auc(yy, p_known)
    cost = cost_at(yy, p_unknown, threshold, fn_cost, fp_cost)
    accept_all = float(fn_cost * int(yy.sum()))
    gap = known_auc - auc
    weak = gap > WEAK_AUC_GAP or cost > accept_all
    verdict = (
        "weak: decide these clients otherwise (e.g. REFER)" if weak else "not weak: the model decides them"
    )
    why = (
        f"{verdict}. Held-out clients scored on their application alone: AUC {auc:.4f} vs {known_auc:.4f} "
        f"with their cached history (gap {gap:+.4f}, weak above {WEAK_AUC_GAP}); cost at the threshold "
        f"{cost:,.0f} vs {accept_all:,.0f} approving them all ({fn_cost:g}·FN + {fp_cost:g}·FP)."
    )
    return UnknownClientPath(
        auc=auc, known_auc=known_auc, cost_at_threshold=cost, cost_accept_all=accept_all, weak=weak, why=why
    )
