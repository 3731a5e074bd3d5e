"""One replay batch, pure: the replay decisions and report rows of a rescored batch.

The rescoring itself is the decision use case (:func:`scoring.decide.decide`). No I/O: the runner
(:mod:`replay.runner`) reads, fetches, decides, publishes and checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from feature_loader.feature_schema import FeatureKind
from kafka_io.records import Record
from replay.baseline import Baseline
from replay.reader import Message
from schemas.events import LoanApplication
from scoring.decision import StageTimings, decision_bytes
from scoring.fairness import FAMILIES, group_labels, segments_for
from scoring.features import CachedFeatures
from scoring.prepared import PreparedModel
from scoring.results import BatchScore


@dataclass(frozen=True)
class Prepared:
    """A batch parsed and enriched, waiting to be rescored."""

    apps: list[LoanApplication]
    kept: list[Message]  # the record of each application
    cached: CachedFeatures | None  # None when no record of the batch was a valid application
    consumed_at: float
    features_s: float
    invalid: dict[str, int]  # counted when the batch is processed (so a checkpoint never counts ahead)


def segment_columns(
    model: PreparedModel, score: BatchScore, apps: list[LoanApplication]
) -> tuple[list[Any], list[Any]]:
    """(contract type, income) of each row: the scored vector's values (event value, else the cached
    one) when the model has the field, else the event's."""
    schema = model.schema
    out: list[list[Any]] = []
    for name in ("NAME_CONTRACT_TYPE", "AMT_INCOME_TOTAL"):
        j = schema.index.get(name)
        if j is None:
            out.append([a.scoring_fields().get(name) for a in apps])
            continue
        col = score.matrix[:, j].astype(np.float64)
        f = schema.fields[j]
        if f.kind is FeatureKind.CATEGORICAL:
            levels = f.categories or ()
            out.append(
                [None if v != v or not 0 <= int(v) < len(levels) else levels[int(v)] for v in col.tolist()]
            )
        else:
            out.append([None if v != v else v for v in col.tolist()])
    return out[0], out[1]


def replay_outputs(
    model: PreparedModel,
    apps: list[LoanApplication],
    kept: list[Message],
    score: BatchScore,
    baseline: Baseline,
    timings: StageTimings,
) -> tuple[list[Record], dict[str, list[Any]]]:
    """The replay decision records (marked is_replay, with the live decision joined by application id)
    and the report rows' columns (:data:`replay.checkpoint.ROW_SCHEMA`)."""
    records: list[Record] = []
    old_prob: list[float | None] = []
    old_refused: list[bool | None] = []
    old_model: list[str | None] = []
    old_decision: list[str | None] = []
    old_rules: list[str | None] = []
    for app, res in zip(apps, score.results, strict=True):
        live = baseline.get(app.key)
        extra: dict[str, Any] = {}
        if live is None:
            old_prob.append(None)
            old_refused.append(None)
            old_model.append(None)
            old_decision.append(None)
            old_rules.append(None)
        else:
            old_prob.append(live.probability)
            old_refused.append(live.refused)
            old_model.append(live.model_version)
            old_decision.append(live.decision)
            old_rules.append(live.rules)
            extra = {
                "baseline_model_version": live.model_version,
                "baseline_decision": live.decision,
                "baseline_probability": live.probability,
            }
        records.append((app.key.encode(), decision_bytes(app, res, timings, is_replay=True, **extra)))
    contract, income = segment_columns(model, score, apps)
    columns: dict[str, list[Any]] = {
        "application_id": [a.key for a in apps],
        "sk_id_curr": [a.sk_id_curr for a in apps],
        "partition": [m.partition for m in kept],
        "offset": [m.offset for m in kept],
        "contract_type": contract,
        "income": income,
        "prob_new": [r.probability for r in score.results],
        "refused_new": [r.decision != "ACCORD" for r in score.results],
        "prob_old": old_prob,
        "refused_old": old_refused,
        "baseline_model": old_model,
        "decision_new": [r.decision for r in score.results],
        "rules_new": [",".join(h.code for h in r.rules) for r in score.results],
        "decision_old": old_decision,
        "rules_old": old_rules,
        **fairness_groups(model, score),
    }
    return records, columns


def fairness_groups(model: PreparedModel, score: BatchScore) -> dict[str, list[str | None]]:
    """Each row's group in every fairness family, read from the scored vectors as the live metric reads
    them (:mod:`scoring.fairness`); None throughout for a family the model's schema lacks."""
    by_name = {s.name: s for s in segments_for(model.schema)}
    n = len(score.results)
    out: dict[str, list[str | None]] = {}
    for family, _ in FAMILIES:
        segment = by_name.get(family)
        out[f"group_{family}"] = [None] * n if segment is None else list(group_labels(segment, score.matrix))
    return out
