"""Live drift: streaming histograms over the model card's reference bins, and the PSI.

Pure module (numpy only): the stream worker's adapter (:mod:`stream_app.drift_observer`) feeds it
batches and exports the result as ``credit_scorer_psi{feature}``.

Reference (from :class:`scoring.model_card.ModelCard`, ``card.reference``)::

    {"score":    {"edges": [...], "proportions": [...], "missing": 0.0},
     "features": {"<name>": {"edges": [...], "proportions": [...], "missing": <share NaN>}, ...}}

Bins are ``(-inf, e0], (e0, e1], …, (e_last, +inf)``; a value ``x`` falls in bin
``np.searchsorted(edges, x, side="left")`` (the first edge ``>= x``), which is exactly that
right-closed convention. NaN (missing) values are counted in one extra bin, whose expected share is
``missing``; the other expected shares are ``(1 - missing) * proportions``.

Window: **exponential decay by events**. Before a batch of ``n`` values is folded in, the existing
counts are multiplied by ``0.5 ** (n / half_life_events)``, so an event's weight halves every
``half_life_events`` later events whatever the batch sizes, memory is constant (one float per bin) and
there is no cliff when an old batch leaves a window. The total weight (the effective sample size)
tends to ``half_life_events / ln 2``. A PSI is reported only once ``min_events`` events have been
observed: on a handful of events the PSI is large by sampling noise alone. :class:`DriftMonitor`
keeps all its histograms in one array and folds a batch into all of them with one ``bincount``.

PSI = Σ (a − e) · ln(a / e) over the bins (missing included), with both shares floored at
:data:`PSI_EPSILON` so an empty bin stays finite. Each term is ≥ 0 and the sum is symmetric in
(a, e). Usual reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift
(:data:`PSI_WARN`, :data:`PSI_ALERT`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from scoring.exceptions import DriftReferenceError

SCORE = "score"
PSI_EPSILON = 1e-4
PSI_WARN = 0.1
PSI_ALERT = 0.25
DEFAULT_HALF_LIFE_EVENTS = 5000.0
DEFAULT_MIN_EVENTS = 500.0

FloatArray = npt.NDArray[np.float64]


def psi(actual: npt.ArrayLike, expected: npt.ArrayLike, epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two share vectors over the same bins (floored at ``epsilon``)."""
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    if a.shape != e.shape:
        raise ValueError(f"PSI needs shares over the same bins, got shapes {a.shape} and {e.shape}")
    return float(np.sum((a - e) * np.log(a / e)))


def bin_counts(edges: FloatArray, values: npt.ArrayLike) -> FloatArray:
    """Counts of ``values`` in the bins of ``edges`` followed by the count of NaN (len(edges) + 2)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    nan = np.isnan(v)
    idx = np.searchsorted(edges, v[~nan], side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.float64)
    return np.append(counts, float(nan.sum()))


@dataclass(frozen=True)
class ReferenceBins:
    """One reference histogram: interior edges and the expected share of every bin (+ missing)."""

    name: str
    edges: FloatArray
    expected: FloatArray  # len(edges) + 2: the value bins, then the missing bin

    @classmethod
    def from_dict(cls, name: str, doc: Mapping[str, Any]) -> ReferenceBins:
        where = f"drift reference {name!r}"
        if not isinstance(doc, Mapping):
            raise DriftReferenceError(f"{where}: expected a mapping, got {type(doc).__name__}")
        for key in ("edges", "proportions"):
            if key not in doc:
                raise DriftReferenceError(f"{where}: missing field {key!r}")
        try:
            edges = np.asarray(doc["edges"], dtype=np.float64).ravel()
            props = np.asarray(doc["proportions"], dtype=np.float64).ravel()
            missing = float(doc.get("missing", 0.0))
        except (TypeError, ValueError) as exc:
            raise DriftReferenceError(f"{where}: non-numeric edges/proportions/missing ({exc})") from exc
        if not np.all(np.isfinite(edges)):
            raise DriftReferenceError(f"{where}: field 'edges' must be finite numbers")
        if np.any(np.diff(edges) <= 0):
            raise DriftReferenceError(f"{where}: field 'edges' must be strictly increasing")
        if len(props) != len(edges) + 1:
            raise DriftReferenceError(
                f"{where}: field 'proportions' has {len(props)} values, expected len(edges) + 1 = "
                f"{len(edges) + 1}"
            )
        if not np.all(np.isfinite(props)) or np.any(props < 0):
            raise DriftReferenceError(f"{where}: field 'proportions' must be finite and >= 0")
        total = float(props.sum())
        if total > 0 and not math.isclose(total, 1.0, abs_tol=1e-6):
            raise DriftReferenceError(f"{where}: field 'proportions' sums to {total:.6g}, not 1")
        if not 0.0 <= missing <= 1.0:
            raise DriftReferenceError(f"{where}: field 'missing' must be in [0, 1], got {missing}")
        if total == 0:  # no non-missing training value at all: everything expected in the missing bin
            missing = 1.0
        expected = np.append((1.0 - missing) * props, missing)
        return cls(name=name, edges=edges, expected=expected)


class StreamingHistogram:
    """Exponentially decayed counts of a stream over one reference's bins.

    ``counts`` may be a view into a larger buffer (:class:`DriftMonitor` keeps all its histograms in
    one array so a batch is folded into all of them with one ``bincount``).
    """

    def __init__(
        self,
        reference: ReferenceBins,
        half_life_events: float = DEFAULT_HALF_LIFE_EVENTS,
        counts: FloatArray | None = None,
    ) -> None:
        if not half_life_events > 0:
            raise ValueError(f"half_life_events must be > 0, got {half_life_events}")
        self.reference = reference
        self.half_life_events = float(half_life_events)
        size = len(reference.expected)
        if counts is None:
            counts = np.zeros(size, dtype=np.float64)
        elif counts.shape != (size,):
            raise ValueError(f"counts buffer of shape {counts.shape} for {size} bins")
        self.counts = counts
        self.seen = 0

    def observe(self, values: npt.ArrayLike) -> int:
        """Fold a batch of values in (NaN = missing); returns how many were folded."""
        batch = bin_counts(self.reference.edges, values)
        n = int(batch.sum())
        if n:
            self.counts *= 0.5 ** (n / self.half_life_events)
            self.counts += batch
            self.seen += n
        return n

    @property
    def weight(self) -> float:
        """Effective number of events in the window (total decayed weight)."""
        return float(self.counts.sum())

    def shares(self) -> FloatArray:
        total = self.counts.sum()
        return self.counts / total if total > 0 else np.zeros_like(self.counts)

    def psi(self) -> float:
        return psi(self.shares(), self.reference.expected)


class DriftMonitor:
    """Streaming histograms of the score and the model card's top features, and their PSI."""

    def __init__(
        self,
        references: Iterable[ReferenceBins],
        *,
        half_life_events: float = DEFAULT_HALF_LIFE_EVENTS,
        min_events: float = DEFAULT_MIN_EVENTS,
    ) -> None:
        if min_events < 0:
            raise ValueError(f"min_events must be >= 0, got {min_events}")
        self.min_events = float(min_events)
        self.half_life_events = float(half_life_events)
        refs = list(references)
        if not refs:
            raise DriftReferenceError("drift monitor needs at least one reference histogram")
        names = [r.name for r in refs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DriftReferenceError(f"drift reference(s) given twice: {dupes}")
        sizes = np.array([len(r.expected) for r in refs], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._missing_slot = (self._starts + sizes - 1).astype(np.int64)  # last bin of each = missing
        self._counts = np.zeros(int(sizes.sum()), dtype=np.float64)
        self._edges = [r.edges for r in refs]
        self.histograms: dict[str, StreamingHistogram] = {
            r.name: StreamingHistogram(r, half_life_events, self._counts[start : start + size])
            for r, start, size in zip(refs, self._starts.tolist(), sizes.tolist(), strict=True)
        }

    @classmethod
    def from_reference(
        cls,
        reference: Mapping[str, Any],
        *,
        half_life_events: float = DEFAULT_HALF_LIFE_EVENTS,
        min_events: float = DEFAULT_MIN_EVENTS,
    ) -> DriftMonitor:
        """Build from a model card's ``reference`` dict (module docstring); the score is named ``score``."""
        if not isinstance(reference, Mapping) or SCORE not in reference:
            raise DriftReferenceError("drift reference: missing field 'score'")
        features = reference.get("features", {})
        if not isinstance(features, Mapping):
            raise DriftReferenceError("drift reference: field 'features' must map names to histograms")
        if SCORE in features:
            raise DriftReferenceError(f"drift reference: a feature may not be named {SCORE!r}")
        refs = [ReferenceBins.from_dict(SCORE, reference[SCORE])]
        refs += [ReferenceBins.from_dict(str(name), doc) for name, doc in features.items()]
        return cls(refs, half_life_events=half_life_events, min_events=min_events)

    @property
    def names(self) -> tuple[str, ...]:
        """``score`` then the features, in reference order."""
        return tuple(self.histograms)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.histograms if n != SCORE)

    def observe(self, name: str, values: npt.ArrayLike) -> int:
        try:
            hist = self.histograms[name]
        except KeyError:
            raise KeyError(f"no drift reference for {name!r}; known: {list(self.histograms)}") from None
        return hist.observe(values)

    def observe_many(self, batch: Mapping[str, npt.ArrayLike]) -> None:
        for name, values in batch.items():
            self.observe(name, values)

    def observe_columns(self, columns: npt.ArrayLike) -> int:
        """Fold a batch of n events given as a (len(names), n) array: one row per histogram, in
        :attr:`names` order (the worker's per-batch path).

        Same result as :meth:`observe` on each row, with one ``bincount`` for all histograms.
        """
        values = np.asarray(columns, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != len(self._edges):
            raise ValueError(f"expected a ({len(self._edges)}, n) array, got shape {values.shape}")
        n = values.shape[1]
        if n == 0:
            return 0
        slots = np.empty(values.shape, dtype=np.int64)
        for j, edges in enumerate(self._edges):
            slots[j] = np.searchsorted(edges, values[j], side="left")
        slots += self._starts[:, None]
        np.copyto(slots, self._missing_slot[:, None], where=np.isnan(values))
        self._counts *= 0.5 ** (n / self.half_life_events)
        self._counts += np.bincount(slots.ravel(), minlength=self._counts.size)
        for hist in self.histograms.values():
            hist.seen += n
        return n

    def weight(self, name: str = SCORE) -> float:
        return self.histograms[name].weight

    def psi(self) -> dict[str, float]:
        """PSI of every histogram that has seen ``min_events`` events (others omitted)."""
        return {
            name: hist.psi()
            for name, hist in self.histograms.items()
            if hist.seen > 0 and hist.seen >= self.min_events
        }


def psi_band(value: float) -> str:
    """``stable`` (< 0.1), ``moderate`` (0.1–0.25) or ``significant`` (> 0.25)."""
    if value > PSI_ALERT:
        return "significant"
    return "moderate" if value >= PSI_WARN else "stable"
