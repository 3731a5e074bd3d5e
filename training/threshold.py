"""The business threshold: REFUS when P(default) >= threshold, chosen to minimise fn·FN + fp·FP.

Pure numpy. The exact optimum is found in O(n log n) by sweeping every distinct predicted probability
(each is a possible cut point); the returned threshold is the midpoint between the chosen cut score and
the next lower distinct score, so new scores between the two are treated like their neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_COSTS: dict[str, float] = {"fn": 10.0, "fp": 1.0}


@dataclass(frozen=True)
class Confusion:
    tn: int
    fp: int
    fn: int
    tp: int

    def cost(self, fn_cost: float, fp_cost: float) -> float:
        return fn_cost * self.fn + fp_cost * self.fp

    def as_dict(self) -> dict[str, int]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    cost: float
    confusion: Confusion


@dataclass(frozen=True)
class CostSweep:
    """Cost of every possible cut: predicting positive the scores >= ``cuts[i]`` (``cuts[0]`` = +inf)."""

    cuts: npt.NDArray[np.float64]  # descending; +inf first (nobody refused)
    tp: npt.NDArray[np.int64]
    fp: npt.NDArray[np.int64]
    positives: int
    negatives: int

    def costs(self, fn_cost: float, fp_cost: float) -> npt.NDArray[np.float64]:
        return fn_cost * (self.positives - self.tp) + fp_cost * self.fp


def _check(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float64]]:
    yy = np.asarray(y).astype(np.int8, copy=False).ravel()
    pp = np.asarray(p, dtype=np.float64).ravel()
    if yy.shape != pp.shape:
        raise ValueError(f"labels and scores differ in length: {yy.shape[0]} vs {pp.shape[0]}")
    if yy.size == 0:
        raise ValueError("no labelled rows to choose a threshold on")
    if np.isnan(pp).any():
        raise ValueError("scores contain NaN")
    if not np.isin(yy, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return yy, pp


def cost_sweep(y: npt.ArrayLike, p: npt.ArrayLike) -> CostSweep:
    yy, pp = _check(y, p)
    order = np.argsort(-pp, kind="stable")
    ps, ys = pp[order], yy[order]
    tp_cum = np.cumsum(ys, dtype=np.int64)
    last_of_run = np.flatnonzero(np.append(ps[1:] != ps[:-1], True))  # last index of each distinct score
    tp = np.concatenate(([0], tp_cum[last_of_run]))
    fp = np.concatenate(([0], last_of_run + 1 - tp_cum[last_of_run]))
    cuts = np.concatenate(([np.inf], ps[last_of_run]))
    positives = int(yy.sum())
    return CostSweep(
        cuts=cuts, tp=tp, fp=fp.astype(np.int64), positives=positives, negatives=yy.size - positives
    )


def choose_threshold(
    y: npt.ArrayLike, p: npt.ArrayLike, fn_cost: float = 10.0, fp_cost: float = 1.0
) -> ThresholdChoice:
    """The threshold minimising ``fn_cost·FN + fp_cost·FP`` on (y, p) (ties: the higher threshold)."""
    sweep = cost_sweep(y, p)
    costs = sweep.costs(fn_cost, fp_cost)
    i = int(np.argmin(costs))
    if i == 0:  # refuse nobody: any threshold above the highest score
        top = float(sweep.cuts[1]) if sweep.cuts.size > 1 else 0.0
        threshold = min(1.0, float(np.nextafter(top, np.inf)) if top >= 1.0 else (top + 1.0) / 2)
    else:
        lower = float(sweep.cuts[i + 1]) if i + 1 < sweep.cuts.size else 0.0
        threshold = (float(sweep.cuts[i]) + max(lower, 0.0)) / 2
    tp, fp = int(sweep.tp[i]), int(sweep.fp[i])
    confusion = Confusion(tn=sweep.negatives - fp, fp=fp, fn=sweep.positives - tp, tp=tp)
    return ThresholdChoice(threshold=threshold, cost=float(costs[i]), confusion=confusion)


def confusion_at(y: npt.ArrayLike, p: npt.ArrayLike, threshold: float) -> Confusion:
    """Counts when predicting positive (REFUS) for ``p >= threshold``."""
    yy, pp = _check(y, p)
    pred = pp >= threshold
    tp = int(np.sum(pred & (yy == 1)))
    fp = int(np.sum(pred & (yy == 0)))
    fn = int(np.sum(~pred & (yy == 1)))
    return Confusion(tn=int(yy.size - tp - fp - fn), fp=fp, fn=fn, tp=tp)


def cost_at(
    y: npt.ArrayLike, p: npt.ArrayLike, threshold: float, fn_cost: float = 10.0, fp_cost: float = 1.0
) -> float:
    return confusion_at(y, p, threshold).cost(fn_cost, fp_cost)


def cost_curve(
    y: npt.ArrayLike, p: npt.ArrayLike, thresholds: npt.ArrayLike, fn_cost: float = 10.0, fp_cost: float = 1.0
) -> npt.NDArray[np.float64]:
    """Cost at each of ``thresholds`` (for plots)."""
    sweep = cost_sweep(y, p)
    t = np.asarray(thresholds, dtype=np.float64)
    # number of distinct cut scores >= t  → index into the sweep (cuts are descending, cuts[0] = +inf)
    asc = sweep.cuts[1:][::-1]
    n_ge = asc.size - np.searchsorted(asc, t, side="left")
    return sweep.costs(fn_cost, fp_cost)[n_ge]
