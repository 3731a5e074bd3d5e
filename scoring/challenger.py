"""Champion/challenger: a second model decides the champion's batch in the shadow, on the same vectors.

:func:`shadow_decide` takes what :func:`scoring.decide.decide` returned for the champion (of its
:class:`~scoring.decide.Decided`: the score, holding the assembled matrix of the scored rows, and
their cached features)
and a challenger :class:`~scoring.prepared.PreparedModel`, and decides the same rows with the
challenger: the same assembled matrix (never assembled again — the challenger sees exactly the vectors
the champion saw), the same policy (the challenger is prepared with the policy file the process
serves: knock-outs and REFER rules bound to its features, its own threshold and calibration), the same
decision options (reason codes, counter-offers). The result is a :class:`Shadow`: the challenger's
:class:`~scoring.results.BatchScore`, row for row with the champion's, and how often each pair of
outcomes (champion, challenger) occurred — the agreement the metrics export.

A challenger is only comparable on the same vectors when it reads the same feature schema:
:func:`check_challenger` refuses another one (:class:`SchemaMismatchError`), the champion goes on.
Pure: numpy and the scoring core only.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from scoring.decide import DEFAULT_OPTIONS, DecideOptions, score_assembled
from scoring.exceptions import SchemaMismatchError
from scoring.features import CachedFeatures
from scoring.policy import LABELS
from scoring.prepared import PreparedModel
from scoring.results import BatchScore

# (champion decision, challenger decision): bounded, 3 × 3 pairs
AGREEMENT_PAIRS: tuple[tuple[str, str], ...] = tuple((a, b) for a in LABELS for b in LABELS)


@dataclass(frozen=True, slots=True)
class Shadow:
    """The challenger's decisions of a batch the champion decided."""

    score: BatchScore  # row i decides the same application as the champion's row i
    pairs: dict[tuple[str, str], int]  # (champion, challenger) decision → rows

    @property
    def agreed(self) -> int:
        return sum(n for (a, b), n in self.pairs.items() if a == b)

    @property
    def agreement(self) -> float:
        """Share of rows both models decided alike (1.0 for an empty batch: nothing disagreed)."""
        total = sum(self.pairs.values())
        return self.agreed / total if total else 1.0


def check_challenger(champion: PreparedModel, challenger: PreparedModel) -> None:
    """Raise :class:`SchemaMismatchError` unless the challenger reads the champion's feature schema
    (the version is the schema's hash: same version, same columns in the same order)."""
    if challenger.feature_version != champion.feature_version:
        raise SchemaMismatchError(
            f"challenger {challenger.model_version} needs feature schema {challenger.feature_version}, "
            f"the champion {champion.model_version} and the live cache serve {champion.feature_version}: "
            "not scored in the shadow"
        )


def shadow_decide(
    challenger: PreparedModel,
    champion: BatchScore,
    features: CachedFeatures,
    *,
    options: DecideOptions = DEFAULT_OPTIONS,
    now: float | None = None,
) -> Shadow:
    """The challenger's decisions of the rows the champion scored (``champion``: its BatchScore, e.g.
    ``Decided.score``; ``features``: their cached features, ``Decided.features``), on the champion's
    assembled matrix (SchemaMismatchError when the challenger needs other features than the batch's)."""
    challenger.check_features(features)
    matrix = champion.matrix
    if matrix.shape[1] != len(challenger.schema):  # the version check makes this impossible; be loud
        raise SchemaMismatchError(
            f"challenger {challenger.model_version} expects {len(challenger.schema)} columns, "
            f"the champion's matrix has {matrix.shape[1]}"
        )
    sk_ids = [r.sk_id_curr for r in champion.results]
    shadow = score_assembled(challenger, sk_ids, matrix, features, options, now)
    outcomes = zip((r.decision for r in champion.results), (r.decision for r in shadow.results), strict=True)
    return Shadow(shadow, dict(Counter(outcomes)))
