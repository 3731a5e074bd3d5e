"""LightGBM model text → the flat arrays of :mod:`scoring.forest`'s kernel (pure: numpy only).

:func:`parse_model_text` reads the text format (``%.17g`` doubles, so thresholds and leaf values are
exact); :func:`plan` turns the trees into QuickScorer's node list: for each internal node, the bit set of
leaves that stay possible when a row goes right (all but the left subtree's, leaves numbered left to
right), its kind of numerical rule or its categorical bitset, and per tree a de Bruijn-indexed
rank → leaf table.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from scoring.exceptions import ScoringError

MAX_LEAVES = 64  # leaves of a tree are bits of one uint64; larger trees: LightGBM's own predict
DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)  # (x & -x) * this >> 58: a distinct index for each bit of x
DE_BRUIJN_POSITION = np.zeros(64, dtype=np.int64)
for _bit in range(64):
    DE_BRUIJN_POSITION[((1 << _bit) * 0x03F79D71B4CB0A89 & 0xFFFFFFFFFFFFFFFF) >> 58] = _bit
# numerical node kinds
NAN_RIGHT, NAN_LEFT, ZERO_RIGHT, ZERO_LEFT = 0, 1, 2, 3


@dataclass(frozen=True)
class Trees:
    node_start: np.ndarray
    leaf_start: np.ndarray
    cat_start: np.ndarray
    n_leaves: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    decision: np.ndarray
    left: np.ndarray
    right: np.ndarray
    cat_bound: np.ndarray
    cat_bits: np.ndarray
    leaf_value: np.ndarray
    n_features: int
    sigmoid: float
    # training rows through each internal node / leaf (TreeSHAP's covers); empty when the text lacks them
    internal_count: np.ndarray
    leaf_count: np.ndarray


def numerical_kind(decision_type: int, threshold: float) -> int:
    """How a numerical node treats NaN and zero (LightGBM's ``NumericalDecision``, see forest.py)."""
    missing, default_left = (decision_type >> 2) & 3, bool(decision_type & 2)
    if missing == 1:
        return ZERO_LEFT if default_left else ZERO_RIGHT
    # missing None: a NaN is read as 0.0; missing NaN: a NaN takes the default side
    nan_left = (threshold >= 0.0) if missing == 0 else default_left
    return NAN_LEFT if nan_left else NAN_RIGHT


def subset(t: Trees, keep: np.ndarray) -> Trees:
    """The trees ``keep`` (indices, in order) of ``t``: the per-tree starts are picked, the flat node,
    leaf and bitset arrays shared (starts are offsets into them)."""
    return replace(
        t,
        node_start=t.node_start[keep],
        leaf_start=t.leaf_start[keep],
        cat_start=t.cat_start[keep],
        n_leaves=t.n_leaves[keep],
    )


def plan(t: Trees) -> tuple[np.ndarray, ...]:
    """The kernel's arrays: numerical nodes (tree, cut mask, feature, threshold, kind), categorical nodes
    (tree, cut mask, feature, first bitset word, words), the bitsets, per tree its rank → leaf table
    (indexed by de Bruijn position), and its leaf values."""
    num: list[tuple[int, int, int, float, int]] = []
    cat: list[tuple[int, int, int, int, int]] = []
    rank_first: list[int] = []
    rank_leaf: list[int] = []
    full = (1 << 64) - 1
    for tree in range(t.node_start.shape[0]):
        leaves = int(t.n_leaves[tree])
        if leaves > MAX_LEAVES:
            raise ScoringError(f"forest: tree {tree} has {leaves} leaves, more than {MAX_LEAVES}")
        first = int(t.node_start[tree])
        order, subtree = _leaf_order(t.left[first : first + leaves - 1], t.right[first : first + leaves - 1])
        for k in range(leaves - 1):
            g = first + k
            cut = full & ~sum(1 << order[leaf] for leaf in subtree[k])
            dt, feature, threshold = int(t.decision[g]), int(t.feature[g]), float(t.threshold[g])
            if dt & 1:
                c = int(t.cat_start[tree]) + int(threshold)
                lo, hi = int(t.cat_bound[c]), int(t.cat_bound[c + 1])
                cat.append((tree, cut, feature, lo, hi - lo))
                continue
            num.append((tree, cut, feature, threshold, numerical_kind(dt, threshold)))
        rank_first.append(len(rank_leaf))
        by_rank = {rank: leaf for leaf, rank in order.items()} if leaves > 1 else {0: 0}
        # slot = de Bruijn position of bit `rank`; a single-leaf tree keeps every bit: lowest is bit 0
        table = [0] * 64
        for slot in range(64):
            table[slot] = by_rank.get(int(DE_BRUIJN_POSITION[slot]), 0)
        rank_leaf.extend(table)
    ints = np.int64
    nc = list(zip(*num, strict=True)) if num else [(), (), (), (), ()]
    cc = list(zip(*cat, strict=True)) if cat else [(), (), (), (), ()]
    return (
        np.asarray(nc[0], dtype=ints),
        np.asarray(nc[1], dtype=np.uint64),
        np.asarray(nc[2], dtype=ints),
        np.asarray(nc[3], dtype=np.float64),
        np.asarray(nc[4], dtype=np.int8),
        np.asarray(cc[0], dtype=ints),
        np.asarray(cc[1], dtype=np.uint64),
        np.asarray(cc[2], dtype=ints),
        np.asarray(cc[3], dtype=ints),
        np.asarray(cc[4], dtype=ints),
        t.cat_bits,
        np.asarray(rank_first, dtype=ints),
        np.asarray(rank_leaf, dtype=np.int32),
        t.leaf_start,
        t.leaf_value,
    )


def _leaf_order(left: np.ndarray, right: np.ndarray) -> tuple[dict[int, int], list[list[int]]]:
    """Left-to-right rank of each leaf, and the leaves of each internal node's left subtree."""
    order: dict[int, int] = {}
    below: dict[int, list[int]] = {}

    def leaves_of(child: int) -> list[int]:
        if child < 0:
            order[~child] = len(order)
            return [~child]
        left_leaves = leaves_of(int(left[child]))
        below[child] = left_leaves
        return left_leaves + leaves_of(int(right[child]))

    if len(left):
        leaves_of(0)
    return order, [below[k] for k in range(len(left))]


def parse_model_text(text: str) -> Trees:
    """Flat tree arrays from LightGBM's model text (binary objective, one tree per iteration)."""
    header, _, body = text.partition("\nTree=")
    head = _key_values(header.splitlines())
    objective = head.get("objective", "").split()
    if not objective or objective[0] != "binary":
        raise ScoringError(f"forest: only the binary objective is compiled, not {objective[:1]}")
    if head.get("num_tree_per_iteration", "1") != "1":
        raise ScoringError("forest: only one tree per iteration is supported")
    sigmoid = next((float(p.split(":", 1)[1]) for p in objective[1:] if p.startswith("sigmoid:")), 1.0)
    n_features = int(head["max_feature_idx"]) + 1
    blocks = ("Tree=" + body).split("\nTree=") if body else []
    node_start, leaf_start, cat_start, n_leaves = [], [], [], []
    feature: list[int] = []
    threshold: list[float] = []
    decision: list[int] = []
    left: list[int] = []
    right: list[int] = []
    cat_bound: list[int] = []
    cat_bits: list[int] = []
    leaf_value: list[float] = []
    counts: tuple[list[int], list[int]] = ([], [])
    for block in blocks:
        if block.startswith("end of trees") or not block.strip():
            break
        kv = _key_values(block.splitlines())
        if kv.get("is_linear", "0") != "0":
            raise ScoringError("forest: linear trees are not supported")
        leaves = int(kv["num_leaves"])
        node_start.append(len(feature))
        leaf_start.append(len(leaf_value))
        cat_start.append(len(cat_bound))
        n_leaves.append(leaves)
        values = [float(v) for v in kv["leaf_value"].split()]
        if len(values) != leaves:
            raise ScoringError(
                f"forest: tree {len(n_leaves) - 1} has {len(values)} leaf values, not {leaves}"
            )
        leaf_value.extend(values)
        _counts(kv, leaves, counts)
        if leaves > 1:
            feature.extend(int(v) for v in kv["split_feature"].split())
            threshold.extend(float(v) for v in kv["threshold"].split())
            decision.extend(int(v) for v in kv["decision_type"].split())
            left.extend(int(v) for v in kv["left_child"].split())
            right.extend(int(v) for v in kv["right_child"].split())
            if int(kv.get("num_cat", "0")) > 0:
                words = len(cat_bits)
                cat_bound.extend(int(v) + words for v in kv["cat_boundaries"].split())
                cat_bits.extend(int(v) for v in kv["cat_threshold"].split())
        if len(feature) != len(threshold) or len(left) != len(feature) or len(right) != len(feature):
            raise ScoringError(f"forest: tree {len(n_leaves) - 1} has inconsistent split arrays")
    if any(f < 0 or f >= n_features for f in feature):
        raise ScoringError("forest: a split refers to a feature outside the model's features")
    return Trees(
        node_start=np.asarray(node_start, dtype=np.int64),
        leaf_start=np.asarray(leaf_start, dtype=np.int64),
        cat_start=np.asarray(cat_start, dtype=np.int64),
        n_leaves=np.asarray(n_leaves, dtype=np.int32),
        feature=np.asarray(feature, dtype=np.int32),
        threshold=np.asarray(threshold, dtype=np.float64),
        decision=np.asarray(decision, dtype=np.int8),
        left=np.asarray(left, dtype=np.int32),
        right=np.asarray(right, dtype=np.int32),
        cat_bound=np.asarray(cat_bound or [0], dtype=np.int32),
        cat_bits=np.asarray(cat_bits or [0], dtype=np.uint32),
        leaf_value=np.asarray(leaf_value or [0.0], dtype=np.float64),
        n_features=n_features,
        sigmoid=sigmoid,
        internal_count=np.asarray(counts[0] if len(counts[1]) == len(leaf_value) else [], dtype=np.float64),
        leaf_count=np.asarray(counts[1] if len(counts[1]) == len(leaf_value) else [], dtype=np.float64),
    )


def _counts(kv: dict[str, str], leaves: int, out: tuple[list[int], list[int]]) -> None:
    """Append a tree's internal and leaf counts (nothing when the text lacks or garbles them)."""
    internal = kv.get("internal_count", "").split() if leaves > 1 else []
    leaf = kv.get("leaf_count", "").split() if leaves > 1 else ["0"]
    if len(internal) == leaves - 1 and len(leaf) == leaves:
        out[0].extend(int(float(v)) for v in internal)
        out[1].extend(int(float(v)) for v in leaf)


def _key_values(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key not in out:
            out[key] = value
    return out
