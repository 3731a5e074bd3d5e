"""LightGBM trees → the flat arrays of :mod:`scoring.treeshap`'s kernels (pure: numpy only).

Per internal node: feature, threshold, routing kind (:mod:`scoring.forest_plan`'s numerical kinds or
categorical, with its bitset). Per leaf: its path (node, goes left, position of the node's feature among
the path's distinct features), the distinct features and each one's zero fraction (the product of the
cover ratios ``count(child) / count(node)`` of the path's splits on it, as LightGBM's recursion
accumulates them), and where its table starts. Per tree: its nodes, leaves, distinct features and where
its table starts. Which leaves and trees get a table is decided here, within a memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring.exceptions import ScoringError
from scoring.forest_plan import Trees, numerical_kind

CATEGORICAL = 4  # node kind next to forest_plan's numerical kinds
MAX_LEAF_TABLE_DEPTH = 8  # a leaf with more distinct path features is computed per row (2^d · d table)
MAX_TREE_TABLE_NODES = 8  # a tree with more internal nodes is summed leaf by leaf (2^m · k table)
MAX_TABLE_ENTRIES = 4_000_000  # per table kind: 32 MB of float64 per model at most
MAX_DISTINCT = 60  # masks are int64 bit sets

Path = list[tuple[int, bool, int]]  # (global node, goes left, distinct-feature position)


@dataclass(frozen=True)
class ShapPlan:
    nodes: tuple[np.ndarray, ...]  # feature, threshold, kind, cat_lo, cat_words (per internal node)
    cat_bits: np.ndarray
    # per leaf: p_start, p_node, p_left, p_pos (its path), u_start, u_feat, u_z (its distinct features,
    # their zero fractions), leaf table offset (-1: none), leaf value
    leaves: tuple[np.ndarray, ...]
    # per tree: first node, internal nodes, leaf bounds, distinct-feature bounds, distinct features, tree
    # table offset (-1: none); then per leaf feature (u index) its slot among its tree's features
    trees: tuple[np.ndarray, ...]
    leaf_entries: int
    tree_entries: int
    expected_value: float


def build(
    t: Trees, max_leaf_depth: int = MAX_LEAF_TABLE_DEPTH, max_tree_nodes: int = MAX_TREE_TABLE_NODES
) -> ShapPlan:
    """The kernels' arrays for ``t`` (tables sized, not yet filled)."""
    if t.leaf_count.shape[0] != t.leaf_value.shape[0] or t.internal_count.shape[0] != t.feature.shape[0]:
        raise ScoringError("treeshap: the model text has no internal_count / leaf_count (covers)")
    nodes, cat_bits = _node_arrays(t)
    paths = _leaf_paths(t)
    if any(len(features) > MAX_DISTINCT for _, features, _ in paths):
        raise ScoringError(f"treeshap: a leaf has more than {MAX_DISTINCT} distinct path features")
    leaves, leaf_entries = _leaf_arrays(t, paths, max_leaf_depth)
    trees, tree_entries = _tree_arrays(t, paths, leaves[7], max_tree_nodes)
    return ShapPlan(nodes, cat_bits, leaves, trees, leaf_entries, tree_entries, _expected_value(t))


def _expected_value(t: Trees) -> float:
    """Σ over trees of LightGBM's ``Tree::ExpectedValue`` (count-weighted mean leaf value), tree order."""
    total = 0.0
    for tree in range(t.node_start.shape[0]):
        lo, n = int(t.leaf_start[tree]), int(t.n_leaves[tree])
        if n == 1:
            total += float(t.leaf_value[lo])
            continue
        root = float(t.internal_count[t.node_start[tree]])
        value = 0.0
        for leaf in range(lo, lo + n):
            value += (float(t.leaf_count[leaf]) / root) * float(t.leaf_value[leaf])
        total += value
    return total


def _node_arrays(t: Trees) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Per internal node (global index): feature, threshold, kind, first bitset word, bitset words."""
    n = t.feature.shape[0]
    kind = np.empty(n, dtype=np.int8)
    cat_lo = np.zeros(n, dtype=np.int64)
    cat_words = np.zeros(n, dtype=np.int64)
    tree_of = np.repeat(np.arange(t.node_start.shape[0]), np.maximum(t.n_leaves.astype(np.int64) - 1, 0))
    for g in range(n):
        dt, threshold = int(t.decision[g]), float(t.threshold[g])
        if dt & 1:
            c = int(t.cat_start[tree_of[g]]) + int(threshold)
            lo, hi = int(t.cat_bound[c]), int(t.cat_bound[c + 1])
            kind[g], cat_lo[g], cat_words[g] = CATEGORICAL, lo, hi - lo
        else:
            kind[g] = numerical_kind(dt, threshold)
    nodes = (t.feature.astype(np.int64), t.threshold.astype(np.float64), kind, cat_lo, cat_words)
    return nodes, t.cat_bits.astype(np.uint32)


def _leaf_paths(t: Trees) -> list[tuple[Path, list[int], list[float]]]:
    """Per global leaf: its path, its distinct path features in order of first split, and each one's
    zero fraction."""
    out: list[tuple[Path, list[int], list[float]]] = []
    # plain lists: element reads of numpy arrays in these loops cost ~5x more (the same values)
    columns = (t.internal_count.tolist(), t.leaf_count.tolist(), t.feature.tolist())
    for tree in range(t.node_start.shape[0]):
        first, n = int(t.node_start[tree]), int(t.n_leaves[tree])
        found: dict[int, list[tuple[int, bool]]] = {}
        stack: list[tuple[int, list[tuple[int, bool]]]] = [(0, [])] if n > 1 else []
        while stack:
            node, path = stack.pop()
            for child, goes_left in ((int(t.left[first + node]), True), (int(t.right[first + node]), False)):
                step = [*path, (node, goes_left)]
                if child < 0:
                    found[~child] = step
                else:
                    stack.append((child, step))
        base = int(t.leaf_start[tree])
        for leaf in range(n):
            out.append(_distinct(columns, first, base + leaf, found.get(leaf, [])))
    return out


def _distinct(
    columns: tuple[list[Any], list[Any], list[Any]], first: int, leaf: int, path: list[tuple[int, bool]]
) -> tuple[Path, list[int], list[float]]:
    """One leaf's path steps (node, left?, position of its feature), distinct features and zero
    fractions; ``columns``: the trees' internal counts, leaf counts and split features as lists."""
    internal_count, leaf_count, split_feature = columns
    features: list[int] = []
    zeros: list[float] = []
    steps: Path = []
    for i, (node, goes_left) in enumerate(path):
        g = first + node
        count = internal_count[first + path[i + 1][0]] if i + 1 < len(path) else leaf_count[leaf]
        ratio = float(count) / float(internal_count[g])
        feature = int(split_feature[g])
        if feature in features:
            pos = features.index(feature)
            zeros[pos] = ratio * zeros[pos]  # LightGBM: hot/cold fraction × incoming zero fraction
        else:
            pos = len(features)
            features.append(feature)
            zeros.append(ratio)
        steps.append((g, goes_left, pos))
    return steps, features, zeros


def _leaf_arrays(
    t: Trees, paths: list[tuple[Path, list[int], list[float]]], max_depth: int
) -> tuple[tuple[np.ndarray, ...], int]:
    p_start, u_start, table_at = [0], [0], []
    p_node: list[int] = []
    p_left: list[bool] = []
    p_pos: list[int] = []
    u_feat: list[int] = []
    u_z: list[float] = []
    size = 0
    for steps, features, zeros in paths:
        p_node.extend(g for g, _, _ in steps)
        p_left.extend(left for _, left, _ in steps)
        p_pos.extend(pos for _, _, pos in steps)
        p_start.append(len(p_node))
        u_feat.extend(features)
        u_z.extend(zeros)
        u_start.append(len(u_feat))
        entries = (1 << len(features)) * len(features)
        fits = 0 < len(features) <= max_depth and size + entries <= MAX_TABLE_ENTRIES
        table_at.append(size if fits else -1)
        size += entries if fits else 0
    ints = np.int64
    leaves = (
        np.asarray(p_start, dtype=ints),
        np.asarray(p_node, dtype=ints),
        np.asarray(p_left, dtype=np.bool_),
        np.asarray(p_pos, dtype=ints),
        np.asarray(u_start, dtype=ints),
        np.asarray(u_feat, dtype=ints),
        np.asarray(u_z, dtype=np.float64),
        np.asarray(table_at, dtype=ints),
        np.asarray(t.leaf_value, dtype=np.float64),
    )
    return leaves, size


def _tree_arrays(
    t: Trees, paths: list[tuple[Path, list[int], list[float]]], leaf_at: np.ndarray, max_nodes: int
) -> tuple[tuple[np.ndarray, ...], int]:
    """Per tree arrays; sets each leaf feature's slot among its tree's distinct features (u_slot). A
    tabled tree's features are padded to the same count for all (padding: feature ``n_features``, the
    expected-value column, with zero entries) so the kernel's inner loop has one trip count."""
    n_trees = t.node_start.shape[0]
    per_tree: list[list[int]] = []
    u_slot: list[int] = []
    wanted: list[bool] = []
    for tree in range(n_trees):
        lo, n = int(t.leaf_start[tree]), int(t.n_leaves[tree])
        features: list[int] = []
        for leaf in range(lo, lo + n):
            for f in paths[leaf][1]:
                if f not in features:
                    features.append(f)
                u_slot.append(features.index(f))
        per_tree.append(features)
        wanted.append(1 < n <= max_nodes + 1 and bool((leaf_at[lo : lo + n] >= 0).all()))
    width = max((len(f) for f, w in zip(per_tree, wanted, strict=True) if w), default=0)
    f_start, t_feat, t_at = [0], [], []
    size = 0
    for tree, features in enumerate(per_tree):
        entries = (1 << (int(t.n_leaves[tree]) - 1)) * width
        fits = wanted[tree] and size + entries <= MAX_TABLE_ENTRIES
        t_feat.extend(features + [t.n_features] * (width - len(features)) if fits else features)
        f_start.append(len(t_feat))
        t_at.append(size if fits else -1)
        size += entries if fits else 0
    ints = np.int64
    trees = (
        t.node_start.astype(ints),
        np.maximum(t.n_leaves.astype(ints) - 1, 0),
        np.append(t.leaf_start.astype(ints), int(t.leaf_start[-1]) + int(t.n_leaves[-1]) if n_trees else 0),
        np.asarray(f_start, dtype=ints),
        np.asarray(t_feat, dtype=ints),
        np.asarray(t_at, dtype=ints),
        np.asarray(u_slot, dtype=ints),
    )
    return trees, size
