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
(:mod:`scoring.reasons`). :func:`forest_for` builds it once per booster and **verifies** it against
``booster.predict`` and ``predict(pred_leaf=True)`` bit for bit on probe rows spanning each feature's
range, NaN, zeros and unseen levels; if anything differs (or the model is not a binary, non-linear
GBDT), it returns None and the service keeps LightGBM's own predict. Pure: numpy, numba, lightgbm.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm
import numpy as np
from numba import njit

from scoring.exceptions import ScoringError

K_ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float), as a double
MIN_ROWS_PER_THREAD = 2048  # below this, one thread: splitting costs more than it saves
_INT_LIMIT = 2147483648.0  # static_cast<int> of a larger double is out of range (x86: INT_MIN → right)
MAX_LEAVES = 64  # leaves of a tree are bits of one uint64; larger trees: LightGBM's own predict
_DE_BRUIJN = np.uint64(0x03F79D71B4CB0A89)  # (x & -x) * this >> 58: a distinct index for each bit of x
_DE_BRUIJN_POSITION = np.zeros(64, dtype=np.int64)
for _bit in range(64):
    _DE_BRUIJN_POSITION[((1 << _bit) * 0x03F79D71B4CB0A89 & 0xFFFFFFFFFFFFFFFF) >> 58] = _bit
BLOCK_ROWS = 64  # rows scored together (measured: 16 → 4.9, 64 → 3.2, 256 → 3.3 µs/row)
# numerical node kinds
_NAN_RIGHT, _NAN_LEFT, _ZERO_RIGHT, _ZERO_LEFT = 0, 1, 2, 3


@njit(nogil=True, cache=True)
def _route(  # pragma: no cover - compiled; covered through CompiledForest
    x: np.ndarray,  # (n, F) float32
    plan: tuple,  # type: ignore[type-arg]  # _plan's arrays, in its order
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
            if kind == _NAN_RIGHT:
                for r in range(m):
                    aa[r] &= cut | (zero - np.uint64(vv[r] <= th))
            elif kind == _NAN_LEFT:
                for r in range(m):
                    aa[r] &= cut | (zero - np.uint64(not (vv[r] > th)))
            else:  # missing type Zero: NaN and zero take the default side
                nn = is_nan[nfeat[g]]
                default_left = kind == _ZERO_LEFT
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
                leaf = rank_leaf[rf + np.int64((lowest * _DE_BRUIJN) >> np.uint64(58))]
                leaves_out[b0 + r, t] = leaf
                raw[r] += lvalue[lf + leaf]
        for r in range(m):
            prob_out[b0 + r] = 1.0 / (1.0 + math.exp(minus_sigma * raw[r]))


@dataclass(frozen=True)
class _Trees:
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


class CompiledForest:
    """Scores float32 model matrices through the booster's trees (see module docstring)."""

    def __init__(self, booster: lightgbm.Booster) -> None:
        trees = parse_model_text(booster.model_to_string(num_iteration=-1))
        self.n_trees = int(trees.node_start.shape[0])
        self.n_features = trees.n_features
        self._minus_sigma = -trees.sigmoid
        self._plan = _plan(trees)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def score(self, matrix: np.ndarray, num_threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (n,) float64, leaves (n, T) int32) of a (n, F) float32 matrix.

        Releases the GIL. ``num_threads`` > 1 splits large batches over that many threads (0 = 2)."""
        x = np.ascontiguousarray(matrix, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ScoringError(f"forest: expected (n, {self.n_features}) rows, got shape {x.shape}")
        n = x.shape[0]
        leaves = np.empty((n, self.n_trees), dtype=np.int32)
        prob = np.empty(n, dtype=np.float64)
        threads = 2 if num_threads <= 0 else num_threads
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
                self._pool = ThreadPoolExecutor(threads, thread_name_prefix="forest")
            return self._pool


def _plan(t: _Trees) -> tuple[np.ndarray, ...]:
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
            missing, default_left = (dt >> 2) & 3, bool(dt & 2)
            if missing == 1:
                kind = _ZERO_LEFT if default_left else _ZERO_RIGHT
            else:  # missing None: a NaN is read as 0.0; missing NaN: a NaN takes the default side
                nan_left = (threshold >= 0.0) if missing == 0 else default_left
                kind = _NAN_LEFT if nan_left else _NAN_RIGHT
            num.append((tree, cut, feature, threshold, kind))
        rank_first.append(len(rank_leaf))
        by_rank = {rank: leaf for leaf, rank in order.items()} if leaves > 1 else {0: 0}
        # slot = de Bruijn position of bit `rank`; a single-leaf tree keeps every bit: lowest is bit 0
        table = [0] * 64
        for slot in range(64):
            table[slot] = by_rank.get(int(_DE_BRUIJN_POSITION[slot]), 0)
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


def parse_model_text(text: str) -> _Trees:
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
    return _Trees(
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
    )


def _key_values(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key not in out:
            out[key] = value
    return out


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


def probe_rows(booster: lightgbm.Booster, n: int = 512, seed: int = 0) -> np.ndarray:
    """Rows spanning each feature's training range, with NaN, exact zeros, tiny values, negatives,
    seen and unseen categorical levels — what a router must get right."""
    rng = np.random.default_rng(seed)
    infos = booster.dump_model(num_iteration=-1).get("feature_infos", {})
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


_CACHE: weakref.WeakKeyDictionary[lightgbm.Booster, tuple[CompiledForest | None, str | None]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def forest_for(booster: lightgbm.Booster, extra_probe: np.ndarray | None = None) -> CompiledForest | None:
    """The booster's verified compiled forest (cached), or None when it cannot be compiled exactly —
    then :func:`fallback_reason` says why and callers keep ``booster.predict``."""
    with _LOCK:
        if booster not in _CACHE:
            _CACHE[booster] = _build(booster, extra_probe)
        return _CACHE[booster][0]


def _build(
    booster: lightgbm.Booster, extra_probe: np.ndarray | None
) -> tuple[CompiledForest | None, str | None]:
    try:
        forest = CompiledForest(booster)
        probe = probe_rows(booster)
        if extra_probe is not None and len(extra_probe):
            probe = np.vstack([probe, np.asarray(extra_probe, dtype=np.float32)])
        problem = verify(forest, booster, probe)
    except (ScoringError, KeyError, ValueError) as exc:
        return None, str(exc)
    return (None, problem) if problem is not None else (forest, None)


def fallback_reason(booster: lightgbm.Booster) -> str | None:
    """Why :func:`forest_for` returned None for this booster (None if it compiled or was not tried)."""
    with _LOCK:
        entry = _CACHE.get(booster)
    return None if entry is None else entry[1]
