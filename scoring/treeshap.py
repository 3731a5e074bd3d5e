"""Exact TreeSHAP values (LightGBM's ``pred_contrib=True``) over the booster's own trees, compiled.

LightGBM computes path-dependent TreeSHAP (Lundberg et al. 2018, Algorithm 2) by a recursion over every
node of every tree, per row: ``O(leaves · depth²)`` floating-point work with divisions, plus a path
buffer allocated per tree and a sparse → dense copy of the row. Its result for one leaf only depends on
the row through which of the leaf's distinct path features the row *agrees with* (for a feature split
on several times along the path: every one of those splits sends the row down the path), and a whole
tree's result only on the decisions of its internal nodes. So, once per model (the idea of "Fast
TreeSHAP v2", Yang 2021):

- for every leaf with ``d ≤ 8`` distinct path features and each of its ``2^d`` agreement masks, the
  leaf's ``d`` contributions are computed with LightGBM's own formulas (``ExtendPath`` from the dummy
  root element, then ``UnwoundPathSum`` per element; covers = the model text's ``internal_count`` /
  ``leaf_count``), times ``(one − zero fraction) · leaf value``;
- for every tree with ``m ≤ 8`` internal nodes (production: 6) and each of the ``2^m`` combinations of
  its decisions, the sum of its leaves' entries per distinct feature of the tree.

A row then costs one routing decision per internal node (LightGBM's ``NumericalDecision`` /
``CategoricalDecision``, as :mod:`scoring.forest` routes: NaN, zero and missing-type rules, categorical
bitsets, kZeroThreshold), and per tree one table row (``k`` additions); a larger tree is summed leaf by
leaf from the leaf tables, and a leaf deeper than the tables by the formulas themselves, per row.

Output: LightGBM's layout, ``(n, n_features + 1)`` float64 in log-odds, the last column the expected
value (sum over trees of the count-weighted mean leaf value). Mathematically identical to
``pred_contrib``; only the order of float rounding differs (~1e-15 on the fixtures).
:func:`compile_treeshap` builds it and verifies it against ``booster.predict(pred_contrib=True)`` on
probe rows to 1e-9; otherwise it returns None with the reason and callers keep LightGBM's
``pred_contrib`` (built once per model by :class:`scoring.prepared.PreparedModel`). Pure: numpy,
numba, lightgbm.
"""

from __future__ import annotations

from typing import Any

import lightgbm
import numpy as np
from numba import njit

from scoring.exceptions import ScoringError
from scoring.forest import K_ZERO_THRESHOLD, probe_rows
from scoring.forest_plan import NAN_LEFT, NAN_RIGHT, ZERO_LEFT, parse_model_text
from scoring.treeshap_plan import CATEGORICAL, MAX_LEAF_TABLE_DEPTH, MAX_TREE_TABLE_NODES, build

BLOCK_ROWS = 128  # rows per block: a tree's table is reused across the block (measured: 8, 32, 512 slower)
TOLERANCE = 1e-9  # verification against pred_contrib (absolute, log-odds)
_INT_LIMIT = 2147483648.0


@njit(nogil=True, cache=True)
def _leaf_shap(  # pragma: no cover - compiled; covered through TreeShap
    z: np.ndarray, o: np.ndarray, d: int, pw: np.ndarray, out: np.ndarray
) -> None:
    """out[i] = UnwoundPathSum(i) · (o_i − z_i) for a leaf's d distinct path features (LightGBM's
    ``ExtendPath`` from the dummy root element, then ``UnwoundPathSum`` for each element)."""
    pw[0] = 1.0
    for depth in range(1, d + 1):
        zf, of = z[depth - 1], o[depth - 1]
        pw[depth] = 0.0
        for i in range(depth - 1, -1, -1):
            pw[i + 1] += of * pw[i] * (i + 1) / (depth + 1)
            pw[i] = zf * pw[i] * (depth - i) / (depth + 1)
    for e in range(d):
        zf, of = z[e], o[e]
        next_one = pw[d]
        total = 0.0
        for i in range(d - 1, -1, -1):
            if of != 0.0:
                tmp = next_one * (d + 1) / ((i + 1) * of)
                total += tmp
                next_one = pw[i] - tmp * zf * ((d - i) / (d + 1))
            elif zf != 0.0:
                total += (pw[i] / zf) / ((d - i) / (d + 1))
        out[e] = total * (of - zf)


@njit(nogil=True, cache=True)
def _fill_leaf_tables(  # pragma: no cover - compiled; covered through TreeShap
    leaves: tuple,
    table: np.ndarray,  # type: ignore[type-arg]
) -> None:
    """For each tabled leaf and agreement mask: its d contributions, times the leaf value."""
    u_start, u_z, table_at, leaf_value = leaves[4], leaves[6], leaves[7], leaves[8]
    pw = np.empty(64, dtype=np.float64)
    o = np.empty(64, dtype=np.float64)
    out = np.empty(64, dtype=np.float64)
    for leaf in range(table_at.shape[0]):
        at = table_at[leaf]
        if at < 0:
            continue
        u0 = u_start[leaf]
        d = u_start[leaf + 1] - u0
        for mask in range(1 << d):
            for e in range(d):
                o[e] = 1.0 if (mask >> e) & 1 else 0.0
            _leaf_shap(u_z[u0 : u0 + d], o, d, pw, out)
            for e in range(d):
                table[at + mask * d + e] = out[e] * leaf_value[leaf]


@njit(nogil=True, cache=True)
def _leaf_mask(leaves: tuple, leaf: int, left: np.ndarray, g0: int, dv: int) -> int:  # type: ignore[type-arg]  # pragma: no cover
    """Bit e set when the row agrees with every split of the leaf's e-th distinct path feature. The
    decisions come from ``left`` (per global node) or, when ``left`` is empty, from the bits of ``dv``
    (bit j = the tree's j-th internal node sends the row left; ``g0`` = the tree's first node)."""
    p_start, p_node, p_left, p_pos, u_start = leaves[0], leaves[1], leaves[2], leaves[3], leaves[4]
    clear = 0
    for p in range(p_start[leaf], p_start[leaf + 1]):
        goes = left[p_node[p]] if left.shape[0] else ((dv >> (p_node[p] - g0)) & 1) != 0
        clear |= np.int64(goes != p_left[p]) << p_pos[p]
    return ((1 << (u_start[leaf + 1] - u_start[leaf])) - 1) & ~clear


@njit(nogil=True, cache=True)
def _fill_tree_tables(  # pragma: no cover - compiled; covered through TreeShap
    leaves: tuple,
    trees: tuple,
    leaf_table: np.ndarray,
    table: np.ndarray,  # type: ignore[type-arg]
) -> None:
    """For each tabled tree and each combination of its nodes' decisions: the tree's contribution to each
    of its distinct features (the sum of its leaves' table entries for the masks those decisions give)."""
    u_start, leaf_at = leaves[4], leaves[7]
    node0, n_nodes, leaf_bound, f_start, _, tree_at, u_slot = trees
    no_left = np.empty(0, dtype=np.bool_)
    for t in range(tree_at.shape[0]):
        at = tree_at[t]
        if at < 0:
            continue
        k = f_start[t + 1] - f_start[t]
        for dv in range(1 << n_nodes[t]):
            base = at + dv * k
            for leaf in range(leaf_bound[t], leaf_bound[t + 1]):
                u0 = u_start[leaf]
                d = u_start[leaf + 1] - u0
                lb = leaf_at[leaf] + _leaf_mask(leaves, leaf, no_left, node0[t], dv) * d
                for e in range(d):
                    table[base + u_slot[u0 + e]] += leaf_table[lb + e]


@njit(nogil=True, cache=True)
def _decisions(  # pragma: no cover - compiled; covered through TreeShap
    x: np.ndarray,
    r0: int,
    m: int,
    nodes: tuple,
    cat_bits: np.ndarray,
    value: np.ndarray,
    left: np.ndarray,  # type: ignore[type-arg]
) -> None:
    """left[g, r]: LightGBM's routing decision of internal node g for row r0 + r (see scoring.forest),
    node by node over the block (one kind of rule per pass: vectorisable, no mispredicted branch)."""
    feature, threshold, kind, cat_lo, cat_words = nodes
    for r in range(m):  # the block, transposed, with LightGBM's tiny → 0
        for f in range(x.shape[1]):
            v = float(x[r0 + r, f])
            value[f, r] = 0.0 if abs(v) <= K_ZERO_THRESHOLD else v
    for g in range(feature.shape[0]):
        vv, lg, th, k = value[feature[g]], left[g], threshold[g], kind[g]
        if k == NAN_RIGHT:
            for r in range(m):
                lg[r] = vv[r] <= th
        elif k == NAN_LEFT:
            for r in range(m):
                lg[r] = not (vv[r] > th)
        elif k == CATEGORICAL:
            for r in range(m):
                v = vv[r]
                valid = (v == v) and (v > -1.0) and (v < _INT_LIMIT)
                iv = np.int64(v) if valid else 0
                word = iv >> 5
                inside = word < cat_words[g]
                bits = cat_bits[cat_lo[g] + (word if inside else 0)]
                lg[r] = valid and inside and ((bits >> np.uint32(iv & 31)) & np.uint32(1)) != 0
        else:  # missing type Zero: NaN and zero take the default side
            default_left = k == ZERO_LEFT
            for r in range(m):
                v = vv[r]
                lg[r] = default_left if (v != v or v == 0.0) else v <= th


@njit(nogil=True, cache=True)
def _leaf_by_leaf(  # pragma: no cover - compiled; covered through TreeShap
    t: int,
    left: np.ndarray,
    leaves: tuple,
    trees: tuple,
    leaf_table: np.ndarray,
    phi: np.ndarray,
    scratch: np.ndarray,  # type: ignore[type-arg]
) -> None:
    """One row's contributions from an untabled tree: leaf tables, or the formulas for deeper leaves."""
    u_start, u_feat, u_z, leaf_at, leaf_value = leaves[4], leaves[5], leaves[6], leaves[7], leaves[8]
    leaf_bound = trees[2]
    pw, o, w = scratch[0], scratch[1], scratch[2]
    for leaf in range(leaf_bound[t], leaf_bound[t + 1]):
        u0 = u_start[leaf]
        d = u_start[leaf + 1] - u0
        if d == 0:
            continue
        mask = _leaf_mask(leaves, leaf, left, 0, 0)
        if leaf_at[leaf] >= 0:
            base = leaf_at[leaf] + mask * d
            for e in range(d):
                phi[u_feat[u0 + e]] += leaf_table[base + e]
            continue
        for e in range(d):
            o[e] = 1.0 if (mask >> e) & 1 else 0.0
        _leaf_shap(u_z[u0 : u0 + d], o, d, pw, w)
        for e in range(d):
            phi[u_feat[u0 + e]] += w[e] * leaf_value[leaf]


@njit(nogil=True, cache=True)
def _shap_rows(  # pragma: no cover - compiled; covered through TreeShap
    x: np.ndarray,  # (n, F) float32
    plan: tuple,  # type: ignore[type-arg]  # nodes, cat_bits, leaves, trees (ShapPlan's), then the tables
    expected: float,
    out: np.ndarray,  # (n, F + 1) float64, zeroed
) -> None:
    """Blocks of rows, tree by tree within a block: a tree's table stays in cache for the whole block."""
    nodes, cat_bits, leaves, trees, leaf_table, tree_table = plan
    node0, n_nodes, _, f_start, t_feat, tree_at, _ = trees
    n, n_features = x.shape
    block = min(BLOCK_ROWS, max(n, 1))
    value = np.empty((n_features, block), dtype=np.float64)
    left = np.zeros((max(nodes[0].shape[0], 1), block), dtype=np.bool_)
    scratch = np.empty((3, 64), dtype=np.float64)
    for r0 in range(0, n, block):
        m = min(block, n - r0)
        _decisions(x, r0, m, nodes, cat_bits, value, left)
        for t in range(tree_at.shape[0]):
            at = tree_at[t]
            if at < 0:
                for r in range(m):
                    _leaf_by_leaf(t, left[:, r], leaves, trees, leaf_table, out[r0 + r], scratch)
                continue
            g0, f0, k = node0[t], f_start[t], f_start[t + 1] - f_start[t]
            for r in range(m):  # the tree's table: its row for the decisions of its nodes
                dv = np.int64(0)
                for j in range(n_nodes[t]):
                    dv |= np.int64(left[g0 + j, r]) << j
                base = at + dv * k
                phi = out[r0 + r]
                for e in range(k):  # same k for every tabled tree (padded)
                    phi[t_feat[f0 + e]] += tree_table[base + e]
        for r in range(m):
            out[r0 + r, n_features] = expected  # also overwrites the padding's zeros


class TreeShap:
    """Exact TreeSHAP of one booster (see module docstring). Built once per model; the tables' depth and
    size limits are parameters so tests can force every path."""

    def __init__(
        self,
        booster: lightgbm.Booster,
        max_leaf_depth: int = MAX_LEAF_TABLE_DEPTH,
        max_tree_nodes: int = MAX_TREE_TABLE_NODES,
    ) -> None:
        trees = parse_model_text(booster.model_to_string(num_iteration=-1))
        plan = build(trees, max_leaf_depth, max_tree_nodes)
        self.n_features = trees.n_features
        self.expected_value = plan.expected_value
        leaf_table = np.zeros(max(plan.leaf_entries, 1), dtype=np.float64)
        _fill_leaf_tables(plan.leaves, leaf_table)
        tree_table = np.zeros(max(plan.tree_entries, 1), dtype=np.float64)
        _fill_tree_tables(plan.leaves, plan.trees, leaf_table, tree_table)
        self.tabled_trees = int((plan.trees[5] >= 0).sum())
        self.tabled_leaves = int((plan.leaves[7] >= 0).sum())
        self._plan = (plan.nodes, plan.cat_bits, plan.leaves, plan.trees, leaf_table, tree_table)

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """(n, n_features + 1) float64: per-feature log-odds contributions, then the expected value —
        ``booster.predict(matrix, pred_contrib=True)``'s layout and values. Releases the GIL."""
        x = np.ascontiguousarray(matrix, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ScoringError(f"treeshap: expected (n, {self.n_features}) rows, got shape {x.shape}")
        out = np.zeros((x.shape[0], self.n_features + 1), dtype=np.float64)
        if x.shape[0]:
            _shap_rows(x, self._plan, self.expected_value, out)
        return out


def verify(shap: TreeShap, booster: lightgbm.Booster, probe: np.ndarray) -> str | None:
    """None when ``shap`` equals ``booster.predict(probe, pred_contrib=True)`` to 1e-9; else what differs."""
    got = shap.contributions(probe)
    expected = np.asarray(booster.predict(probe, pred_contrib=True, num_threads=1), dtype=np.float64)
    if expected.shape != got.shape:
        return f"contributions have shape {got.shape}, pred_contrib {expected.shape}"
    worst = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if not worst <= TOLERANCE:
        rows = int(np.any(np.abs(got - expected) > TOLERANCE, axis=1).sum())
        return f"contributions differ from pred_contrib by up to {worst:.3g} on {rows}/{len(probe)} rows"
    return None


def compile_treeshap(
    booster: lightgbm.Booster, n_probe: int = 256, dump: dict[str, Any] | None = None
) -> tuple[TreeShap | None, str | None]:
    """(the booster's exact TreeSHAP, None) once it matches ``pred_contrib`` on probe rows, else (None,
    why): callers then keep LightGBM's ``pred_contrib``. ``dump``: the booster's ``dump_model()`` if
    already made."""
    try:
        shap = TreeShap(booster)
        problem = verify(shap, booster, probe_rows(booster, n_probe, seed=1, dump=dump))
    except (ScoringError, KeyError, ValueError, IndexError) as exc:
        return None, str(exc)
    return (None, problem) if problem is not None else (shap, None)
