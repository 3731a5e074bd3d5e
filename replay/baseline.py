"""The decisions actually published live (decisions topic), keyed by application id, for the join.

Records are read with the replay's own group-less reader up to the log end (or up to the ends stored in
a checkpoint). A replay worker that rescores some partitions of the applications topic reads only the
same partitions of the decisions topic when both topics have the same partitions (a keyed producer and
the live worker put an application and its decision on the same partition number), and reads the
other partitions only when an application is missing from them (:func:`complete_baseline`), so the
join never depends on that layout. Only the fields the comparison needs are decoded (orjson, no
model validation: hundreds of thousands of records); a record that is not a decision is counted and
skipped, never fatal. Live delivery is at-least-once: a key seen twice keeps its last decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from credit_scorer.settings import KafkaSettings
from replay.reader import ReadRange, TopicReader


@dataclass(frozen=True, slots=True)
class LiveDecision:
    refused: bool  # not approved automatically: REFUS or REFER
    probability: float
    model_version: str
    decision: str  # ACCORD, REFUS or REFER
    rules: str = ""  # the policy rules that fired, codes joined by ","


@dataclass
class Baseline:
    decisions: dict[str, LiveDecision] = field(default_factory=dict)
    records: int = 0
    unreadable: int = 0
    ends: dict[int, int] = field(default_factory=dict)
    partitions: set[int] = field(default_factory=set)  # decisions-topic partitions read so far
    complete: bool = True  # every partition read

    def get(self, application_id: str) -> LiveDecision | None:
        return self.decisions.get(application_id)


def parse_live_decision(raw: bytes | None) -> tuple[str, LiveDecision] | None:
    """(application id, decision) of a live Decision record; None for anything else."""
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or doc.get("is_replay") or doc.get("review"):
            return None  # a replay's record, or a reviewer's verdict (not the model's decision)
        label = doc["decision"]
        prob = doc["probability_default"]
        app_id = doc["application_id"]
        version = doc["model_version"]
        rules = ",".join(str(r["code"]) for r in doc.get("rules") or ())
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if label not in _LABELS or not isinstance(prob, int | float) or not isinstance(app_id, str):
        return None
    return app_id, LiveDecision(label != "ACCORD", float(prob), str(version), label, rules)


_LABELS = frozenset({"ACCORD", "REFUS", "REFER"})


async def read_baseline(
    kafka: KafkaSettings,
    topic: str,
    ends: Mapping[int, int] | None = None,
    aligned: Sequence[int] | None = None,
    source_partitions: Sequence[int] | None = None,
) -> Baseline:
    """Every live decision of ``topic`` up to the log end (or ``ends``). With ``aligned`` (the
    applications-topic partitions being rescored, out of ``source_partitions``): only those partitions
    when the decisions topic has the same partitions as the applications topic (``complete`` False)."""
    out = Baseline()
    await _read_into(out, kafka, topic, ends, aligned, source_partitions)
    return out


async def complete_baseline(
    baseline: Baseline, kafka: KafkaSettings, topic: str, ends: Mapping[int, int] | None = None
) -> None:
    """Read the partitions ``baseline`` has not read yet (a decision already read wins)."""
    if not baseline.complete:
        await _read_into(baseline, kafka, topic, ends, None, None)


async def _read_into(
    out: Baseline,
    kafka: KafkaSettings,
    topic: str,
    ends: Mapping[int, int] | None,
    aligned: Sequence[int] | None,
    source_partitions: Sequence[int] | None,
) -> None:
    reader = TopicReader(kafka, topic, batch_size=20_000)
    await reader.start()
    try:
        parts = await reader.partitions()
        wanted = set(parts) - out.partitions
        if aligned is not None and source_partitions is not None and sorted(source_partitions) == parts:
            wanted &= set(aligned)
        if wanted:
            await reader.plan(ReadRange(), ends=ends, only=wanted)
            first = not out.partitions
            decisions = out.decisions
            async for batch in reader.read(ReadRange()):
                for m in batch.messages:
                    out.records += 1
                    parsed = parse_live_decision(m.value)
                    if parsed is None:
                        out.unreadable += 1
                    elif first:
                        decisions[parsed[0]] = parsed[1]
                    else:
                        decisions.setdefault(parsed[0], parsed[1])
            out.ends.update({p: int(e or 0) for p, e in reader.ends.items()})
        out.partitions |= wanted
        out.complete = out.partitions >= set(parts)
    finally:
        await reader.stop()
