"""Fast, exactly additive reasons: path attribution (Saabas) precomputed from the trees.

LightGBM's ``pred_contrib`` (TreeSHAP) costs milliseconds per row on a production-size model. Here, once
per booster, :class:`PathExplainer` walks ``booster.dump_model()`` and records for every leaf of every
tree the (feature, Δvalue) pairs of its decision path, where Δ = value(child) − value(parent) and a
node's value is LightGBM's ``internal_value`` (``leaf_value`` for a leaf). These form one sparse matrix
``D`` (all leaves × features). For a row, LightGBM's own router gives the leaf of each tree
(``predict(pred_leaf=True)``: categorical splits and missing-value default directions are handled
there), and the contributions are ``indicator(leaves) @ D`` — one sparse product for the whole batch.

Exactly additive: for each tree the path deltas telescope to ``leaf_value − root_value``, so
``expected_value + contributions.sum(axis=1) == raw score`` (log-odds), to float rounding.
Contributions are in log-odds units; positive pushes towards default.

Built once per model by :class:`scoring.prepared.PreparedModel`.

Leaves → probability: the leaf indices also give the probability, computed exactly as LightGBM does
(leaf values parsed from the model text, summed in tree order in float64, then ``1 / (1 + exp(-σ·raw))``
with the C library's ``exp``), so when reasons are wanted one routing pass (``pred_leaf``) serves both
the score and the reasons. The explainer verifies this bit for bit against ``booster.predict`` on probe
rows when it is built; if anything differs, ``exact_probabilities`` is False and scoring falls back to
``booster.predict`` (a second routing pass on the explained rows).

Only binary (one tree per iteration), non-linear-tree models are supported (what training produces).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightgbm
import numpy as np
import scipy.sparse as sp
from numba import njit

from scoring.exceptions import ScoringError
from scoring.forest import probe_rows


class PathExplainer:
    """Precomputed per-leaf path attributions of one booster (see module docstring)."""

    def __init__(self, booster: lightgbm.Booster, dump: dict[str, Any] | None = None) -> None:
        """``dump``: the booster's ``dump_model()`` if already made (it is the slow part of preparing)."""
        dump = dump if dump is not None else booster.dump_model()
        if dump.get("num_tree_per_iteration", 1) != 1:
            raise ScoringError("reasons: only binary models (one tree per iteration) are supported")
        self.n_features: int = int(dump["max_feature_idx"]) + 1
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        offsets: list[int] = []
        expected = 0.0
        base = 0
        for info in dump["tree_info"]:
            root = info["tree_structure"]
            offsets.append(base)
            if "leaf_value" in root:  # single-leaf tree: constant, no split, no contribution
                expected += float(root["leaf_value"])
            else:
                if "leaf_coeff" in root:
                    raise ScoringError("reasons: linear-tree models are not supported")
                expected += float(root["internal_value"])
                _walk(root, base, rows, cols, vals)
            base += int(info["num_leaves"])
        self.expected_value: float = expected
        self.n_trees: int = len(offsets)
        self.n_leaves: int = base
        self.offsets = np.asarray(offsets, dtype=np.int64)
        # Duplicate (leaf, feature) entries — a feature split on twice along a path — are summed.
        self.deltas = sp.csr_matrix(
            (np.asarray(vals, dtype=np.float64), (np.asarray(rows), np.asarray(cols))),
            shape=(max(base, 1), self.n_features),
        )
        self.deltas.sum_duplicates()
        self._indptr = self.deltas.indptr.astype(np.int64)
        self._indices = self.deltas.indices.astype(np.int64)
        self.leaf_values, self.sigmoid = _leaf_values_and_sigmoid(booster, base)
        self.exact_probabilities = self.sigmoid is not None and self._verify_probabilities(booster, dump)

    # --- routing and probabilities -------------------------------------------------------------------
    def leaves(self, booster: lightgbm.Booster, matrix: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """Leaf index of every row in every tree (n, T), by LightGBM's own routing."""
        if matrix.shape[0] == 0:
            return np.zeros((0, self.n_trees), dtype=np.int64)
        out = booster.predict(matrix, pred_leaf=True, num_threads=num_threads)
        return np.asarray(out).reshape(matrix.shape[0], self.n_trees)

    def probabilities_from_leaves(self, leaves: np.ndarray) -> np.ndarray:
        """Probability of default of rows given their leaves — bit-identical to ``booster.predict``
        when ``exact_probabilities`` (checked at construction)."""
        if self.sigmoid is None:
            raise ScoringError("reasons: this model's objective has no exact leaves → probability path")
        if leaves.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        per_row = self.leaf_values[np.asarray(leaves, dtype=np.int64) + self.offsets]  # (n, T)
        # accumulate is strictly sequential in tree order, as LightGBM's sum (np.sum may reorder: inexact)
        raw = np.add.accumulate(per_row, axis=1)[:, -1]
        minus_sigma = -self.sigmoid
        exp = math.exp
        return np.array([1.0 / (1.0 + exp(minus_sigma * x)) for x in raw.tolist()], dtype=np.float64)

    def _verify_probabilities(self, booster: lightgbm.Booster, dump: dict[str, Any]) -> bool:
        probe = probe_rows(booster, 256, dump=dump)
        try:
            fast = self.probabilities_from_leaves(self.leaves(booster, probe, num_threads=1))
        except (ScoringError, ValueError, IndexError):
            return False
        expected = np.asarray(booster.predict(probe, num_threads=1), dtype=np.float64)
        return bool(fast.tobytes() == expected.tobytes())

    def contributions_from_leaves(self, leaves: np.ndarray) -> np.ndarray:
        """Contributions (n, n_features) float64 of rows given their leaf index in every tree (n, T)."""
        leaves = np.asarray(leaves, dtype=np.int64)
        if leaves.ndim != 2 or leaves.shape[1] != self.n_trees:
            raise ScoringError(
                f"reasons: expected leaf indices of shape (n, {self.n_trees}), got {leaves.shape}"
            )
        n, t = leaves.shape
        if n == 0:
            return np.zeros((0, self.n_features))
        global_leaves = (leaves + self.offsets).ravel()
        indicator = sp.csr_matrix(
            (np.ones(n * t), global_leaves, np.arange(0, n * t + 1, t, dtype=np.int64)),
            shape=(n, self.deltas.shape[0]),
        )
        return np.asarray((indicator @ self.deltas).toarray())

    def top_from_leaves(
        self, leaves: np.ndarray, rows: np.ndarray, refused: np.ndarray, k: int
    ) -> list[list[tuple[int, float]]]:
        """:func:`top_reasons` of ``contributions_from_leaves(leaves[rows])`` for rows ``rows`` (refused
        flags ``refused``, one per row in ``rows``), in one compiled pass: the same contributions (summed
        in the same tree order) and the same picks; among exactly equal contributions the lower feature
        index comes first."""
        leaves = np.asarray(leaves)
        if leaves.ndim != 2 or leaves.shape[1] != self.n_trees:
            raise ScoringError(
                f"reasons: expected leaf indices of shape (n, {self.n_trees}), got {leaves.shape}"
            )
        m = len(rows)
        k = min(k, self.n_features)
        if m == 0 or k <= 0:
            return [[] for _ in range(m)]
        idx = np.empty((m, k), dtype=np.int64)
        val = np.empty((m, k), dtype=np.float64)
        count = np.empty(m, dtype=np.int64)
        _top_kernel(
            leaves, np.asarray(rows, dtype=np.int64), np.asarray(refused, dtype=np.bool_), self.offsets,
            self._indptr, self._indices, self.deltas.data, self.n_features, idx, val, count,
        )  # fmt: skip
        return [
            list(zip(i[:c], v[:c], strict=True))
            for i, v, c in zip(idx.tolist(), val.tolist(), count.tolist(), strict=True)
        ]

    def contributions_of_rows(self, leaves: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """:meth:`contributions_from_leaves` of ``leaves[rows]`` in one compiled pass (the same sums, in
        the same tree order as :meth:`top_from_leaves`): the reason codes' input on the hot path."""
        leaves = np.asarray(leaves)
        if leaves.ndim != 2 or leaves.shape[1] != self.n_trees:
            raise ScoringError(
                f"reasons: expected leaf indices of shape (n, {self.n_trees}), got {leaves.shape}"
            )
        out = np.zeros((len(rows), self.n_features), dtype=np.float64)
        if len(rows):
            _contrib_kernel(
                leaves, np.asarray(rows, dtype=np.int64), self.offsets, self._indptr, self._indices,
                self.deltas.data, out,
            )  # fmt: skip
        return out

    def contributions(
        self, booster: lightgbm.Booster, matrix: np.ndarray, num_threads: int = 0
    ) -> np.ndarray:
        """Contributions of each row of a float32 model matrix (routing by LightGBM itself)."""
        return self.contributions_from_leaves(self.leaves(booster, matrix, num_threads))


@njit(nogil=True, cache=True)
def _top_kernel(  # pragma: no cover - compiled; covered through PathExplainer.top_from_leaves
    leaves: np.ndarray,  # (n, T) leaf index of each row in each tree
    rows: np.ndarray,  # (m,) the rows to explain
    refused: np.ndarray,  # (m,) bool
    offsets: np.ndarray,  # (T,) first global leaf of each tree
    indptr: np.ndarray,  # CSR of the per-leaf path deltas (global leaf × feature)
    indices: np.ndarray,
    data: np.ndarray,
    n_features: int,
    idx_out: np.ndarray,  # (m, k) feature indices, most decisive first
    val_out: np.ndarray,  # (m, k) their contributions
    count_out: np.ndarray,  # (m,) how many of the k are filled (zero contributions are skipped)
) -> None:
    k = idx_out.shape[1]
    contrib = np.zeros(n_features, dtype=np.float64)
    taken = np.zeros(n_features, dtype=np.bool_)
    for j in range(rows.shape[0]):
        i = rows[j]
        contrib[:] = 0.0
        for t in range(offsets.shape[0]):
            g = offsets[t] + leaves[i, t]
            for p in range(indptr[g], indptr[g + 1]):
                contrib[indices[p]] += data[p]
        sign = 1.0 if refused[j] else -1.0
        taken[:] = False
        filled = 0
        for _ in range(k):
            best = -1
            best_value = 0.0
            for f in range(n_features):
                if not taken[f]:
                    v = sign * contrib[f]
                    if best < 0 or v > best_value:
                        best = f
                        best_value = v
            taken[best] = True
            if contrib[best] != 0.0:
                idx_out[j, filled] = best
                val_out[j, filled] = contrib[best]
                filled += 1
        count_out[j] = filled


@njit(nogil=True, cache=True)
def _contrib_kernel(  # pragma: no cover - compiled; covered through PathExplainer.contributions_of_rows
    leaves: np.ndarray,  # (n, T) leaf index of each row in each tree
    rows: np.ndarray,  # (m,) the rows wanted
    offsets: np.ndarray,  # (T,) first global leaf of each tree
    indptr: np.ndarray,  # CSR of the per-leaf path deltas (global leaf × feature)
    indices: np.ndarray,
    data: np.ndarray,
    out: np.ndarray,  # (m, F) zeros in, contributions out
) -> None:
    for j in range(rows.shape[0]):
        i = rows[j]
        for t in range(offsets.shape[0]):
            g = offsets[t] + leaves[i, t]
            for p in range(indptr[g], indptr[g + 1]):
                out[j, indices[p]] += data[p]


def _walk(root: dict[str, Any], base: int, rows: list[int], cols: list[int], vals: list[float]) -> None:
    stack: list[tuple[dict[str, Any], dict[int, float]]] = [(root, {})]
    while stack:
        node, acc = stack.pop()
        if "leaf_index" in node:
            leaf = base + int(node["leaf_index"])
            for feature, delta in acc.items():
                rows.append(leaf)
                cols.append(feature)
                vals.append(delta)
            continue
        value = float(node["internal_value"])
        feature = int(node["split_feature"])
        for child in (node["left_child"], node["right_child"]):
            child_value = float(child["leaf_value"] if "leaf_index" in child else child["internal_value"])
            path = dict(acc)
            path[feature] = path.get(feature, 0.0) + (child_value - value)
            stack.append((child, path))


def _leaf_values_and_sigmoid(booster: lightgbm.Booster, n_leaves: int) -> tuple[np.ndarray, float | None]:
    """Exact leaf values (the model text's %.17g numbers, in tree order) and the binary sigmoid."""
    values: list[float] = []
    sigmoid: float | None = None
    for line in booster.model_to_string().splitlines():
        if line.startswith("leaf_value="):
            values.extend(float(v) for v in line[len("leaf_value=") :].split())
        elif line.startswith("objective=") and sigmoid is None:
            parts = line[len("objective=") :].split()
            if parts and parts[0] == "binary":
                sig = [p for p in parts[1:] if p.startswith("sigmoid:")]
                sigmoid = float(sig[0].split(":", 1)[1]) if sig else 1.0
    if len(values) != n_leaves:  # not the trees dump_model described: no exact path
        return np.zeros(max(n_leaves, 1)), None
    return np.asarray(values, dtype=np.float64), sigmoid


def top_reasons(contrib: np.ndarray, refused: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Per row, up to ``k`` (feature index, contribution) pairs, most decisive first.

    A refused row lists the largest positive contributions (what pushed it towards default), an accepted
    row the most negative ones (what pulled it away). Features with a zero contribution are skipped.
    """
    n, f = contrib.shape
    if n == 0 or k <= 0:
        return [[] for _ in range(n)]
    k = min(k, f)
    signed = np.where(np.asarray(refused)[:, None], contrib, -contrib)
    part = np.argpartition(-signed, k - 1, axis=1)[:, :k] if k < f else np.tile(np.arange(f), (n, 1))
    picked = np.take_along_axis(signed, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(contrib, idx, axis=1)
    out: list[list[tuple[int, float]]] = []
    for row_idx, row_val in zip(idx.tolist(), vals.tolist(), strict=True):
        out.append([(j, v) for j, v in zip(row_idx, row_val, strict=True) if v != 0.0])
    return out


def reasons_by_pred_contrib(booster: lightgbm.Booster, matrix: np.ndarray) -> np.ndarray:
    """TreeSHAP contributions (n, F) via LightGBM's ``pred_contrib`` — the slow reference (bench, tests)."""
    out = np.asarray(booster.predict(matrix, pred_contrib=True))
    return out[:, :-1]


__all__: Sequence[str] = (
    "PathExplainer",
    "reasons_by_pred_contrib",
    "top_reasons",
)
