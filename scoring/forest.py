"""A compiled router for the booster's trees: LightGBM's own decision rules, as one numba kernel.

LightGBM's ``predict`` on a numpy matrix costs ~21 µs per row on the production model (506 trees ×
7 leaves, 278 features) single-threaded: per-row overhead (row → sparse pairs → dense buffer) and a
branchy tree walk whose mispredictions dominate. This module parses ``model_to_string()`` once (split
feature, threshold as the text's exact ``%.17g`` double, decision type, children, categorical bitsets,
leaf values) into a branch-free plan and scores blocks of rows in one ``@njit(nogil=True)`` kernel:

- every internal node's condition is evaluated for the whole block (the block is transposed so that the
  pass over the rows is contiguous and vectorised), with no data-dependent branch;
- QuickScorer (Lucchese et al., SIGIR 2015): number a tree's leaves left to right and keep, per row, a
  bit set of the leaves still possible; a node whose condition sends the row right removes the leaves of
  its left subtree. After all nodes, the exit leaf of LightGBM's walk is the lowest bit left (nodes off
  the path only remove leaves left of it). Trees of up to 64 leaves (one uint64); larger ones fall back.

The conditions are LightGBM's own (``include/LightGBM/tree.h``), exactly:

- the input float32 is widened to double; ``|v| <= kZeroThreshold`` (1e-35f) counts as 0, as LightGBM's
  dense-row reader drops such values;
- numerical split: NaN becomes 0 unless the node's missing type is NaN; missing type Zero and a zero
  value, or missing type NaN and a NaN, go to the default side; otherwise ``v <= threshold`` goes left
  (so per node: "NaN right" ``v <= t``, "NaN left" ``not v > t``, or the Zero rule);
- categorical split: NaN, or a value whose C ``int`` cast is negative (≤ -1, or ≥ 2³¹) goes right; else
  left iff ``int(v)`` (truncated towards 0) is in the node's bitset;
- raw score = leaf values summed in tree order in float64 from 0.0; probability =
  ``1 / (1 + exp(-σ·raw))``.

It returns the leaf of each tree as well, so one pass feeds both the probability and the reasons
(:mod:`scoring.reasons`). :func:`compile_forest` builds it and **verifies** it against
``booster.predict`` and ``predict(pred_leaf=True)`` bit for bit on probe rows spanning each feature's
range, NaN, zeros and unseen levels; if anything differs (or the model is not a binary, non-linear
GBDT), it returns None with the reason and scoring keeps LightGBM's own predict
(:class:`scoring.prepared.PreparedModel` does this once per model). Pure: numpy, numba, lightgbm.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import lightgbm
import numpy as np
from numba import njit

from scoring.exceptions import ScoringError
from scoring.forest_plan import DE_BRUIJN, NAN_LEFT, NAN_RIGHT, ZERO_LEFT, Trees, parse_model_text
from scoring.forest_plan import plan as build_plan

BLOCK_ROWS = 64  # rows scored together (production model: 16 rows 1.5x slower per row, 256 no faster)
K_ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float), as a double
MIN_ROWS_PER_THREAD = 2048  # below this, one thread: splitting costs more than it saves
_INT_LIMIT = 2147483648.0  # static_cast<int> of a larger double is out of range (x86: INT_MIN → right)


@njit(nogil=True, cache=True)
def _route(  # pragma: no cover - compiled; covered through CompiledForest
    x: np.ndarray,  # (n, F) float32
    plan: tuple,  # type: ignore[type-arg]  # forest_plan.plan's arrays, in its order
    minus_sigma: float,
    leaves_out: np.ndarray,  # (n, T) int32
    prob_out: np.ndarray,  # (n,) float64
    start: int,
    stop: int,
    block: int,
) -> None:
    (
        ntree,
        nmask,
        nfeat,
        nthr,
        nkind,
        ctree,
        cmask,
        cfeat,
        clo,
        cn,
        cat_bits,
        rfirst,
        rank_leaf,
        lfirst,
        lvalue,
    ) = plan
    n_trees = rfirst.shape[0]
    n_features = x.shape[1]
    everything = np.uint64(0xFFFFFFFFFFFFFFFF)
    zero = np.uint64(0)
    # bit j of alive[t, r]: the j-th leaf (left to right) of tree t can still be row r's exit leaf
    alive = np.empty((n_trees, block), dtype=np.uint64)
    value = np.empty((n_features, block), dtype=np.float64)  # the block, transposed, tiny → 0
    is_nan = np.empty((n_features, block), dtype=np.bool_)
    raw = np.empty(block, dtype=np.float64)
    for b0 in range(start, stop, block):
        m = min(block, stop - b0)
        for r in range(m):
            for f in range(n_features):
                v = np.float64(x[b0 + r, f])
                value[f, r] = 0.0 if abs(v) <= K_ZERO_THRESHOLD else v
                is_nan[f, r] = v != v
        alive[:, :] = everything
        for g in range(nfeat.shape[0]):  # numerical nodes: one vectorisable pass over the block each
            vv = value[nfeat[g]]
            aa = alive[ntree[g]]
            th = nthr[g]
            cut = nmask[g]  # all leaves but the left subtree's: what stays alive when the row goes right
            kind = nkind[g]
            if kind == NAN_RIGHT:
                for r in range(m):
                    aa[r] &= cut | (zero - np.uint64(vv[r] <= th))
            elif kind == NAN_LEFT:
                for r in range(m):
                    aa[r] &= cut | (zero - np.uint64(not (vv[r] > th)))
            else:  # missing type Zero: NaN and zero take the default side
                nn = is_nan[nfeat[g]]
                default_left = kind == ZERO_LEFT
                for r in range(m):
                    go = default_left if (nn[r] or vv[r] == 0.0) else vv[r] <= th
                    aa[r] &= cut | (zero - np.uint64(go))
        for g in range(cfeat.shape[0]):  # categorical nodes: bitset membership of int(v)
            vv = value[cfeat[g]]
            aa = alive[ctree[g]]
            lo = clo[g]
            words = cn[g]
            cut = cmask[g]
            for r in range(m):
                v = vv[r]
                valid = (v == v) & (v > -1.0) & (v < _INT_LIMIT)
                iv = np.int64(v) if valid else 0
                word = iv >> 5
                inside = word < words
                member = (cat_bits[lo + (word if inside else 0)] >> np.uint32(iv & 31)) & np.uint32(1)
                aa[r] &= cut | (zero - np.uint64(valid & inside & (member != 0)))
        for r in range(m):
            raw[r] = 0.0
        for t in range(n_trees):  # exit leaf = leftmost alive leaf; raw summed in tree order (exact)
            rf = rfirst[t]
            lf = lfirst[t]
            aa = alive[t]
            for r in range(m):
                a = aa[r]
                lowest = a & (zero - a)
                leaf = rank_leaf[rf + np.int64((lowest * DE_BRUIJN) >> np.uint64(58))]
                leaves_out[b0 + r, t] = leaf
                raw[r] += lvalue[lf + leaf]
        for r in range(m):
            prob_out[b0 + r] = 1.0 / (1.0 + math.exp(minus_sigma * raw[r]))


class CompiledForest:
    """Scores float32 model matrices through the booster's trees (see module docstring)."""

    def __init__(self, source: lightgbm.Booster | Trees) -> None:
        """From a booster, or from parsed trees (e.g. a subset of a booster's trees)."""
        trees = (
            source
            if isinstance(source, Trees)
            else parse_model_text(source.model_to_string(num_iteration=-1))
        )
        self.trees = trees
        self.n_trees = int(trees.node_start.shape[0])
        self.n_features = trees.n_features
        self._minus_sigma = -trees.sigmoid
        self._plan = build_plan(trees)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def score(self, matrix: np.ndarray, num_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n,) float64, leaves (n, T) int32) of a (n, F) float32 matrix.

        Releases the GIL. ``num_threads`` > 1 splits large batches over that many threads (0 = one
        per core, as LightGBM's)."""
        x = np.ascontiguousarray(matrix, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ScoringError(f"forest: expected (n, {self.n_features}) rows, got shape {x.shape}")
        n = x.shape[0]
        leaves = np.empty((n, self.n_trees), dtype=np.int32)
        prob = np.empty(n, dtype=np.float64)
        threads = (os.cpu_count() or 1) if num_threads <= 0 else num_threads
        threads = max(1, min(threads, n // MIN_ROWS_PER_THREAD))
        if threads == 1:
            self._run(x, leaves, prob, 0, n)
        else:
            bounds = np.linspace(0, n, threads + 1).astype(int).tolist()
            pool = self._executor(threads)
            futures = [
                pool.submit(self._run, x, leaves, prob, lo, hi) for lo, hi in itertools.pairwise(bounds)
            ]
            for f in futures:
                f.result()
        return prob, leaves

    def _run(self, x: np.ndarray, leaves: np.ndarray, prob: np.ndarray, start: int, stop: int) -> None:
        _route(
            x, self._plan, self._minus_sigma, leaves, prob, start, stop, min(BLOCK_ROWS, max(1, stop - start))
        )

    def _executor(self, threads: int) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None or self._pool._max_workers < threads:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)  # idle between calls: its threads just exit
                self._pool = ThreadPoolExecutor(threads, thread_name_prefix="forest")
            return self._pool


def verify(forest: CompiledForest, booster: lightgbm.Booster, probe: np.ndarray) -> str | None:
    """None when the forest reproduces ``booster.predict`` and its ``pred_leaf`` bit for bit on
    ``probe``; else what differs."""
    prob, leaves = forest.score(probe)
    expected_prob = np.asarray(booster.predict(probe, num_threads=1), dtype=np.float64)
    expected_leaves = np.asarray(booster.predict(probe, pred_leaf=True, num_threads=1)).reshape(leaves.shape)
    if not np.array_equal(leaves, expected_leaves):
        rows = np.flatnonzero((leaves != expected_leaves).any(axis=1))
        return f"leaves differ from LightGBM's on {rows.size} of {len(probe)} probe rows"
    if prob.tobytes() != expected_prob.tobytes():
        rows = np.flatnonzero(prob != expected_prob)
        return f"probabilities differ from LightGBM's on {rows.size} of {len(probe)} probe rows"
    return None


def probe_rows(
    booster: lightgbm.Booster, n: int = 512, seed: int = 0, dump: dict[str, Any] | None = None
) -> np.ndarray:
    """Rows spanning each feature's training range, with NaN, exact zeros, tiny values, negatives,
    seen and unseen categorical levels — what a router must get right. ``dump``: the booster's
    ``dump_model()`` when the caller has it already."""
    rng = np.random.default_rng(seed)
    infos = (dump if dump is not None else booster.dump_model(num_iteration=-1)).get("feature_infos", {})
    n_features = booster.num_feature()
    rows = rng.normal(0.0, 1.0, size=(n, n_features))
    for j, info in enumerate(list(infos.values())[:n_features]):
        text = str(info)
        try:
            if text.startswith("[") and ":" in text:
                lo, hi = (float(v) for v in text.strip("[]").split(":"))
                rows[:, j] = rng.uniform(lo, hi, n)
            elif ":" in text or text.lstrip("-").isdigit():
                levels = [float(v) for v in text.split(":")]
                rows[:, j] = rng.choice([*levels, -1.0, -0.5, -1.5, 1e6, 3e9, -3e9, 0.5, 2.999], n)
        except ValueError:
            continue
    special = rng.random(rows.shape)
    rows[special < 0.15] = np.nan
    rows[(special >= 0.15) & (special < 0.20)] = 0.0
    rows[(special >= 0.20) & (special < 0.22)] = 1e-36
    rows[(special >= 0.22) & (special < 0.23)] = -0.0
    return rows.astype(np.float32)


def compile_forest(
    booster: lightgbm.Booster, dump: dict[str, Any] | None = None
) -> tuple[CompiledForest | None, str | None]:
    """(the booster's compiled forest, None) once it reproduces LightGBM bit for bit on probe rows, else
    (None, why): then the caller keeps ``booster.predict``. Built once per model by
    :class:`scoring.prepared.PreparedModel`. ``dump``: the booster's ``dump_model()`` if already made."""
    try:
        forest = CompiledForest(booster)
        problem = verify(forest, booster, probe_rows(booster, dump=dump))
    except (ScoringError, KeyError, ValueError) as exc:
        return None, str(exc)
    return (None, problem) if problem is not None else (forest, None)
