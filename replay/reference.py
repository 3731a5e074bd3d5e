"""What the rescored decisions are compared with: the live decisions, or another model version's.

* :class:`LiveReference` — the decisions actually published live (decisions topic, :mod:`replay.baseline`),
  read while the first batches are parsed, fetched and scored; the rest of the topic is read only when
  an application is missing from what was read (a run over some partitions).
* :class:`VersionReference` — another model (``replay run --against-version``) deciding the same
  batch: the same parsed applications and the same cached features (one MGET per batch), so the same
  assembled vectors, each model deciding once per batch under the same policy. It reads no topic.

Both hand the runner a :class:`replay.baseline.Baseline` holding, by application id, the decision to
compare with; the time spent is the runner's ``baseline`` stage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Protocol

from credit_scorer.settings import KafkaSettings
from replay.baseline import Baseline, LiveDecision, complete_baseline, read_baseline
from replay.checkpoint import Checkpoint
from replay.rescore import Prepared
from schemas.events import LoanApplication
from scoring.decide import DecideOptions, decide
from scoring.prepared import PreparedModel


class Reference(Protocol):
    def start(self, checkpoint: Checkpoint, partitions: list[int], source_partitions: list[int]) -> None:
        """Begin (called once the applications topic's partitions are planned)."""

    async def for_batch(self, apps: Sequence[LoanApplication], prepared: Prepared) -> Baseline:
        """The decisions to compare ``apps`` (the batch's scored applications) with."""

    async def finish(self) -> None:
        """Wait for the work begun in :meth:`start` (its log ends go into the checkpoint)."""

    async def close(self) -> None:
        """Cancel what is still running (any exit path)."""


class LiveReference:
    """The live decisions of the decisions topic (see the module docstring)."""

    def __init__(self, kafka: KafkaSettings, stage_seconds: dict[str, float], aligned: bool) -> None:
        self.kafka = kafka
        self.stage_seconds = stage_seconds
        self.aligned = aligned  # a run over some partitions: read the same decision partitions first
        self._task: asyncio.Task[Baseline] | None = None
        self._checkpoint = Checkpoint(params={})

    def start(self, checkpoint: Checkpoint, partitions: list[int], source_partitions: list[int]) -> None:
        self._checkpoint = checkpoint
        self._task = asyncio.create_task(self._read(partitions, source_partitions))

    async def _read(self, partitions: list[int], source_partitions: list[int]) -> Baseline:
        t0 = time.perf_counter()
        checkpoint = self._checkpoint
        baseline = await read_baseline(
            self.kafka,
            self.kafka.decisions_topic,
            checkpoint.decision_ends or None,
            partitions if self.aligned else None,
            source_partitions,
        )
        checkpoint.decision_ends.update(baseline.ends)
        self.stage_seconds["baseline"] += time.perf_counter() - t0
        return baseline

    async def for_batch(self, apps: Sequence[LoanApplication], prepared: Prepared) -> Baseline:
        assert self._task is not None
        baseline = await self._task  # done after the first batches: returns at once
        if baseline.complete or all(a.key in baseline.decisions for a in apps):
            return baseline
        t0 = time.perf_counter()
        checkpoint = self._checkpoint
        await complete_baseline(
            baseline, self.kafka, self.kafka.decisions_topic, checkpoint.decision_ends or None
        )
        checkpoint.decision_ends.update(baseline.ends)
        self.stage_seconds["baseline"] += time.perf_counter() - t0
        return baseline

    async def finish(self) -> None:
        if self._task is not None:
            await self._task

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class VersionReference:
    """Another model deciding the same batches (see the module docstring)."""

    def __init__(self, model: PreparedModel, stage_seconds: dict[str, float], num_threads: int) -> None:
        self.model = model
        self.stage_seconds = stage_seconds
        self.options = DecideOptions("none", num_threads=num_threads)  # its decisions, not its reasons

    def start(self, checkpoint: Checkpoint, partitions: list[int], source_partitions: list[int]) -> None:
        return None

    async def for_batch(self, apps: Sequence[LoanApplication], prepared: Prepared) -> Baseline:
        assert prepared.cached is not None
        t0 = time.perf_counter()
        decided = await asyncio.to_thread(
            decide, self.model, prepared.apps, prepared.cached, options=self.options
        )
        out = Baseline()
        version = self.model.model_version
        for app, r in zip(decided.pick(prepared.apps), decided.results, strict=True):
            rules = ",".join(h.code for h in r.rules)
            out.decisions[app.key] = LiveDecision(
                r.decision != "ACCORD", r.probability, version, r.decision, rules
            )
        self.stage_seconds["baseline"] += time.perf_counter() - t0
        return out

    async def finish(self) -> None:
        return None

    async def close(self) -> None:
        return None
