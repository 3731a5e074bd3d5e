"""Rescoring rows that differ from already-scored rows only in a few features (counter-offer candidates).

A counter-offer candidate (:mod:`scoring.counter_offer`) is its application's assembled row with the
credit amount, the annuity and what derives from them changed. :class:`PartialForest` scores such rows
bit-identically to :meth:`scoring.forest.CompiledForest.score`, doing only the work the change needs:

- a tree that splits on none of the changed features keeps the leaf the application's own row reached
  (given: the scoring pass found every row's leaves);
- in a tree that does split on one, QuickScorer's bit set of possible leaves (see :mod:`scoring.forest`)
  is the AND of one mask per node, whatever the order: the nodes on unchanged features are evaluated
  once per application (on one of its candidates: they hold the application's values there), the nodes
  on changed features once per candidate, on the changed columns only;
- the raw score is summed over every tree in tree order from 0.0, then the sigmoid, as the full kernel.

The node rules are :func:`scoring.forest._route`'s, expression for expression. :func:`verify_partial`
checks the result against the full forest bit for bit on probe rows (several candidates per row);
:class:`scoring.prepared.PreparedModel` keeps a partial forest only when it passes. Pure: numpy, numba.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from scoring.forest import _INT_LIMIT, K_ZERO_THRESHOLD, CompiledForest
from scoring.forest_plan import DE_BRUIJN, NAN_LEFT, NAN_RIGHT, ZERO_LEFT, Trees, subset
from scoring.forest_plan import plan as build_plan


@njit(nogil=True, cache=True)
def _apply(  # pragma: no cover - compiled; covered through PartialForest
    x: np.ndarray,  # (C,) float32: one row's columns the nodes read
    nodes: tuple,  # type: ignore[type-arg]  # numerical (tree, cut, column, threshold, kind), categorical (tree, cut, column, first word, words), bitsets
    alive: np.ndarray,  # (R,) uint64: the row's possible leaves per tree, ANDed in place
) -> None:
    ntree, nmask, nfeat, nthr, nkind, ctree, cmask, cfeat, clo, cn, cat_bits = nodes
    zero = np.uint64(0)
    for g in range(nfeat.shape[0]):
        v = np.float64(x[nfeat[g]])
        nan = v != v
        vv = 0.0 if abs(v) <= K_ZERO_THRESHOLD else v
        th = nthr[g]
        kind = nkind[g]
        if kind == NAN_RIGHT:
            go = vv <= th
        elif kind == NAN_LEFT:
            go = not (vv > th)
        else:
            go = (kind == ZERO_LEFT) if (nan or vv == 0.0) else vv <= th
        alive[ntree[g]] &= nmask[g] | (zero - np.uint64(go))
    for g in range(cfeat.shape[0]):
        w = np.float64(x[cfeat[g]])
        u = 0.0 if abs(w) <= K_ZERO_THRESHOLD else w
        valid = (u == u) & (u > -1.0) & (u < _INT_LIMIT)
        iv = np.int64(u) if valid else 0
        word = iv >> 5
        inside = word < cn[g]
        member = (cat_bits[clo[g] + (word if inside else 0)] >> np.uint32(iv & 31)) & np.uint32(1)
        alive[ctree[g]] &= cmask[g] | (zero - np.uint64(valid & inside & (member != 0)))


@njit(nogil=True, cache=True)
def _fixed_alive(x: np.ndarray, nodes: tuple, alive: np.ndarray) -> None:  # type: ignore[type-arg]  # pragma: no cover
    """Each row's possible leaves through ``nodes`` (alive: (n, R), all ones on entry)."""
    for r in range(x.shape[0]):
        _apply(x[r], nodes, alive[r])


@njit(nogil=True, cache=True)
def _rescore(  # pragma: no cover - compiled; covered through PartialForest
    x: np.ndarray,  # (n, C) float32: the changed columns of each row
    nodes: tuple,  # type: ignore[type-arg]  # the nodes on changed columns (columns of x)
    fixed: np.ndarray,  # (u, R) possible leaves through the other nodes, per source
    kept: np.ndarray,  # (u, T) leaf value of each source in each tree (used where not re-routed)
    back: np.ndarray,  # (n,) each row's source among fixed's and kept's
    slot: np.ndarray,  # (T,) position of each tree among the re-routed ones, -1 when not re-routed
    rfirst: np.ndarray,  # (R,) each re-routed tree's first entry in rank_value
    rank_value: np.ndarray,  # leaf value by de Bruijn position of the exit leaf's rank
    minus_sigma: float,
    prob_out: np.ndarray,
) -> None:
    zero = np.uint64(0)
    alive = np.empty(fixed.shape[1], dtype=np.uint64)
    for r in range(x.shape[0]):
        u = back[r]
        alive[:] = fixed[u]
        _apply(x[r], nodes, alive)
        raw = 0.0  # as _route: exit leaf = leftmost alive; its value summed in tree order from 0.0
        values = kept[u]
        for t in range(slot.shape[0]):
            s = slot[t]
            if s >= 0:
                a = alive[s]
                raw += rank_value[rfirst[s] + np.int64(((a & (zero - a)) * DE_BRUIJN) >> np.uint64(58))]
            else:
                raw += values[t]
        prob_out[r] = 1.0 / (1.0 + math.exp(minus_sigma * raw))


class PartialForest:
    """Scores rows that differ from already-routed rows only in ``features`` (see the module docstring):
    the probabilities are bit-identical to :meth:`CompiledForest.score` of the rows."""

    def __init__(self, forest: CompiledForest, features: set[int]) -> None:
        t = forest.trees
        self.routed = np.asarray(
            [k for k in range(forest.n_trees) if _splits_on(t, k, features)], dtype=np.int64
        )
        self._slot = np.full(forest.n_trees, -1, dtype=np.int64)
        self._slot[self.routed] = np.arange(self.routed.size)
        self._lfirst, self._lvalue = t.leaf_start, t.leaf_value
        self._minus_sigma = -t.sigmoid
        self.columns = np.asarray(sorted(features), dtype=np.int64)  # the changed columns
        p = build_plan(subset(t, self.routed)) if self.routed.size else build_plan(subset(t, np.arange(1)))
        self._rfirst = p[11]
        # the leaf value itself by the exit leaf's rank position (one lookup per re-routed tree)
        trees = np.repeat(self.routed if self.routed.size else np.zeros(1, np.int64), 64)
        self._rank_value = np.ascontiguousarray(t.leaf_value[t.leaf_start[trees] + p[12]])
        on_num, on_cat = np.isin(p[2], self.columns), np.isin(p[7], self.columns)
        narrow = np.searchsorted(self.columns, p[2][on_num]), np.searchsorted(self.columns, p[7][on_cat])
        # per application: the nodes on unchanged features (columns of the whole row)
        self._fixed = (*_take(p[:5], ~on_num), *_take(p[5:10], ~on_cat), p[10])
        # per candidate: the nodes on changed features (columns of the changed ones only)
        num, cat = _take(p[:5], on_num), _take(p[5:10], on_cat)
        self._changed = (
            num[0],
            num[1],
            narrow[0],
            num[3],
            num[4],
            cat[0],
            cat[1],
            narrow[1],
            cat[3],
            cat[4],
            p[10],
        )

    def score(self, matrix: np.ndarray, leaves: np.ndarray, source: np.ndarray) -> np.ndarray:
        """Probabilities of ``matrix``, whose row i equals, outside this forest's features, the row
        whose leaves are ``leaves[source[i]]`` (leaves: (m, T))."""
        n = matrix.shape[0]
        source = np.asarray(source, dtype=np.int64)
        prob = np.empty(n, dtype=np.float64)
        if n == 0:
            return prob
        x = np.asarray(matrix, dtype=np.float32)
        _, first, back = np.unique(source, return_index=True, return_inverse=True)
        fixed = np.full(
            (first.size, max(1, self.routed.size)), np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64
        )
        if self.routed.size:  # the unchanged features' nodes, on one row of each source
            _fixed_alive(np.ascontiguousarray(x[first]), self._fixed, fixed)
        kept = self._lvalue[self._lfirst[None, :] + np.asarray(leaves)[source[first]]]  # (u, T)
        _rescore(
            np.ascontiguousarray(x[:, self.columns]),
            self._changed,
            fixed,
            np.ascontiguousarray(kept, dtype=np.float64),
            back.reshape(-1).astype(np.int64),
            self._slot,
            self._rfirst,
            self._rank_value,
            self._minus_sigma,
            prob,
        )
        return prob


def _take(arrays: tuple[np.ndarray, ...], mask: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.ascontiguousarray(a[mask]) for a in arrays)


def _splits_on(t: Trees, tree: int, features: set[int]) -> bool:
    lo = int(t.node_start[tree])
    return bool(features.intersection(t.feature[lo : lo + int(t.n_leaves[tree]) - 1].tolist()))


def verify_partial(
    forest: CompiledForest, partial: PartialForest, probe: np.ndarray, features: list[int], per_row: int = 3
) -> str | None:
    """None when ``partial`` rescoring probe rows whose ``features`` were replaced (``per_row`` rows
    from each probe row, each with the features of another probe row) gives the full forest's
    probabilities bit for bit; else what differs."""
    _, leaves = forest.score(probe)
    n = len(probe)
    source = np.repeat(np.arange(n), per_row)
    changed = probe[source]
    donors = (source + 1 + np.tile(np.arange(per_row), n) * 7) % n
    changed[:, features] = probe[donors][:, features]
    expected_prob, _ = forest.score(changed)
    prob = partial.score(changed, leaves, source)
    if prob.tobytes() != expected_prob.tobytes():
        return "partial rescoring differs from the compiled forest on probe rows"
    return None
