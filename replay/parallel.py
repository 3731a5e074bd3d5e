"""Replay with several worker processes, each rescoring some partitions of the applications topic.

One process is bound to one core by the GIL (parse, encode and the Kafka client are Python), so the
replay splits the applications topic's partitions among ``workers`` processes (round robin, forked
where possible), each running a :class:`replay.runner.Replayer` on its partitions from the checkpoint's
offsets.

The parent alone writes the output folder. At each of its checkpoints a worker sends the parent (over a
pipe) its rows since the last one, next offsets, pinned ends and counts; the parent writes the rows as a
new part and merges the rest into the checkpoint, replaced atomically. So the checkpoint lists exactly
the rows before its offsets, in the same format as a single-process run's, and any number of workers
(one included) resumes it.

Stopping: the workers ignore SIGINT/SIGTERM (a terminal's Ctrl-C reaches the whole process group); the
parent forwards its ``stop`` event, each worker finishes its batch in hand, checkpoints and returns. A
worker that fails stops the others; the checkpoint is written and the worker's error re-raised. A worker
whose parent disappears stops (end of file on its pipe).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import pickle
import signal
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

from credit_scorer.settings import Settings
from replay.checkpoint import Checkpoint, RowBuffer
from replay.exceptions import ReplayError
from replay.reader import ReadBatch, TopicReader
from replay.runner import STAGES, Replayer, ReplayOptions, ReplayResult
from scoring.prepared import PreparedModel

_SIGNALS = {signal.SIGINT, signal.SIGTERM}
JOIN_TIMEOUT_S = 30.0
DRAIN_AT_ONCE = 16


def default_workers() -> int:
    """Two per core: a worker's pipeline waits on the broker and Redis ~40 % of its time, so one per core
    leaves the cores idle (measured on 2 cores, 200k applications over 4 partitions: 2 workers 22.4k/s
    at 65 % CPU use, 4 workers 30.2k/s)."""
    return 2 * (os.cpu_count() or 1)


def shards(partitions: list[int], workers: int) -> list[list[int]]:
    """Partitions dealt round robin to at most ``workers`` non-empty shards."""
    n = max(1, min(workers, len(partitions)))
    return [sorted(partitions)[i::n] for i in range(n)]


def _restricted(checkpoint: Checkpoint, partitions: list[int]) -> Checkpoint:
    """The checkpoint as one worker starts from: its partitions' offsets, every decision end."""

    def only(offsets: dict[int, int]) -> dict[int, int]:
        return {p: o for p, o in offsets.items() if p in partitions}

    return Checkpoint(
        params=checkpoint.params,
        starts=only(checkpoint.starts),
        ends=only(checkpoint.ends),
        decision_ends=dict(checkpoint.decision_ends),
        next_offsets=only(checkpoint.next_offsets),
    )


class ParallelReplayer(Replayer):
    """:class:`Replayer` whose run is split over ``options.workers`` processes (0 = two per core, at
    most one per partition; one worker runs in this process). See the module docstring."""

    async def execute(self, checkpoint: Checkpoint, started: float) -> ReplayResult:
        kafka = self.settings.kafka
        reader = TopicReader(kafka, kafka.applications_topic)
        await reader.start()
        try:
            parts = await reader.partitions()
        finally:
            await reader.stop()
        groups = shards(parts, self.options.workers or default_workers())
        if len(groups) == 1:
            return await super().execute(checkpoint, started)
        return await _Pool(self, checkpoint, groups).run(started)


class _Pool:
    """The worker processes of one parallel run, and the checkpoint they feed."""

    def __init__(self, owner: ParallelReplayer, checkpoint: Checkpoint, groups: list[list[int]]) -> None:
        self.owner = owner
        self.checkpoint = checkpoint
        self.groups = groups
        self.base_counts = dict(checkpoint.counts)
        self.worker_counts: dict[int, dict[str, int]] = {}
        self.view = Checkpoint(params={}, starts=dict(checkpoint.starts), ends=dict(checkpoint.ends))
        self.view.next_offsets = dict(checkpoint.next_offsets)
        self.results: dict[int, dict[str, Any]] = {}
        self.error: BaseException | None = None

    async def run(self, started: float) -> ReplayResult:
        owner, checkpoint = self.owner, self.checkpoint
        # fork where there is fork: a worker starts at once with the parent's imports and its compiled
        # model (spawning re-imports numpy/numba/lightgbm/polars and recompiles: ~4 CPU-seconds each);
        # the worker's scoring is single-threaded, so no thread pool of the parent is needed in it
        fork = "fork" in multiprocessing.get_all_start_methods()
        ctx: Any = multiprocessing.get_context("fork" if fork else "spawn")
        gc.freeze()  # inherited objects stay out of the workers' collections (no copy-on-write storm)
        procs: list[Any] = []
        conns: list[Connection] = []
        options = replace(owner.options, num_threads=1)
        # the workers start with SIGINT/SIGTERM blocked (inherited), then ignore them
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            for i, group in enumerate(self.groups):
                mine, theirs = ctx.Pipe()
                models = (owner.model, owner.against)
                args = (theirs, owner.settings, models, options, group, _restricted(checkpoint, group))
                proc = ctx.Process(target=_worker_main, args=args, name=f"replay-{i}", daemon=True)
                proc.start()
                theirs.close()
                procs.append(proc)
                conns.append(mine)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            gc.unfreeze()
        try:
            await self._serve(procs, conns)
        finally:
            self._shutdown(procs, conns)
        checkpoint.complete = (
            self.error is None
            and len(self.results) == len(self.groups)
            and all(r["status"] == "complete" for r in self.results.values())
        )
        checkpoint.counts = self._counts()
        owner.store.save(checkpoint)
        if self.error is not None:
            raise self.error
        owner.counts = dict(checkpoint.counts)
        for r in self.results.values():
            for stage, s in r["stage_seconds"].items():
                owner.stage_seconds[stage] = owner.stage_seconds.get(stage, 0.0) + s
        status: Literal["complete", "interrupted"] = "complete" if checkpoint.complete else "interrupted"
        rescored = sum(int(r["rescored"]) for r in self.results.values())
        return owner._result(status, checkpoint, rescored, started)

    async def _serve(self, procs: list[Any], conns: list[Connection]) -> None:
        """Merge the workers' messages until every worker has ended; forward a stop."""
        live = set(range(len(procs)))
        stopping = False
        while live:
            if not stopping and (self.owner.stop.is_set() or self.error is not None):
                stopping = True
                for i in live:
                    _send(conns[i], "stop")
            waitables = [conns[i] for i in live] + [procs[i].sentinel for i in live]
            ready = await asyncio.to_thread(wait, waitables, 0.1)
            for i in sorted(live):
                if conns[i] not in ready and procs[i].sentinel not in ready:
                    continue
                ended = self._drain(i, conns[i])
                if ended or (not procs[i].is_alive() and not conns[i].poll()):
                    live.discard(i)
                    if i not in self.results and self.error is None:
                        code = procs[i].exitcode
                        self.error = ReplayError(f"replay worker {i} ended without a result (exit {code})")

    def _drain(self, i: int, conn: Connection) -> bool:
        """Handle the messages waiting on a worker's pipe (a few at a time, so a stop is forwarded
        promptly); True when it has ended (result or error)."""
        try:
            for _ in range(DRAIN_AT_ONCE):
                if not conn.poll():
                    break
                kind, payload = conn.recv()
                if kind == "save":
                    self._merge(i, payload)
                elif kind == "progress":
                    self._progress(payload)
                elif kind == "done":
                    self.results[i] = payload
                    return True
                elif kind == "error":
                    self.error = self.error or payload
                    return True
        except (EOFError, OSError):
            return True
        return False

    def _merge(self, i: int, doc: dict[str, Any]) -> None:
        c = self.checkpoint
        for p, o in doc["starts"].items():
            c.starts.setdefault(p, o)
        c.ends.update(doc["ends"])
        c.decision_ends.update(doc["decision_ends"])
        c.next_offsets.update(doc["next_offsets"])
        rows = RowBuffer()
        if doc["rows"] is not None:
            rows.extend(**doc["rows"])
        self.worker_counts[i] = doc["counts"]
        c.counts = self._counts()
        self.owner.store.save(c, rows)  # the rows as a new part, then the checkpoint listing it

    def _counts(self) -> dict[str, int]:
        out = dict(self.base_counts)
        for counts in self.worker_counts.values():
            for k, n in counts.items():
                out[k] = out.get(k, 0) + n
        return out

    def _progress(self, doc: dict[str, Any]) -> None:
        view = self.view
        for p, o in doc["starts"].items():
            view.starts.setdefault(p, o)
        view.ends.update(doc["ends"])
        view.next_offsets.update(doc["next_offsets"])
        if self.owner.progress is not None:
            self.owner.progress(*Replayer._consumed(view))

    def _shutdown(self, procs: list[Any], conns: list[Connection]) -> None:
        """Stop and reap every worker (on any exit path, cancellation included)."""
        for conn, proc in zip(conns, procs, strict=True):
            if proc.is_alive():
                _send(conn, "stop")
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in conns:
            conn.close()


def _send(conn: Connection, *message: Any) -> None:
    with contextlib.suppress(OSError, ValueError):  # the worker is gone: its sentinel tells
        conn.send(message)


# --- in the worker process -------------------------------------------------------------------------------
class _WorkerReplayer(Replayer):
    """A Replayer over some partitions that reports its checkpoints and progress to the parent."""

    def __init__(self, conn: Connection, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = conn

    def _save(self, checkpoint: Checkpoint, rows: RowBuffer) -> None:
        """Hand the rows and offsets to the parent, which writes the part and the checkpoint (a forked
        worker must not use polars: its thread pool is not fork-safe)."""
        columns = {name: list(values) for name, values in rows.columns.items()} if len(rows) else None
        rows.clear()
        self.conn.send(("save", {**_offsets(checkpoint), "rows": columns, "counts": dict(self.counts)}))

    def _advance(self, checkpoint: Checkpoint, batch: ReadBatch, reader: TopicReader) -> None:
        super()._advance(checkpoint, batch, reader)
        self.conn.send(("progress", _offsets(checkpoint)))


def _offsets(c: Checkpoint) -> dict[str, Any]:
    return {
        "starts": dict(c.starts),
        "ends": dict(c.ends),
        "decision_ends": dict(c.decision_ends),
        "next_offsets": dict(c.next_offsets),
    }


def _worker_main(
    conn: Connection,
    settings: Settings,
    models: tuple[PreparedModel, PreparedModel | None],
    options: ReplayOptions,
    partitions: list[int],
    checkpoint: Checkpoint,
) -> None:
    signal.set_wakeup_fd(-1)  # a forked worker must not wake the parent's event loop
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    try:
        result = asyncio.run(_work(conn, settings, models, options, partitions, checkpoint))
        conn.send(("done", result))
    except BaseException as exc:  # every failure goes to the parent, which re-raises it
        conn.send(("error", _portable(exc)))
    finally:
        conn.close()


async def _work(
    conn: Connection,
    settings: Settings,
    models: tuple[PreparedModel, PreparedModel | None],
    options: ReplayOptions,
    partitions: list[int],
    checkpoint: Checkpoint,
) -> dict[str, Any]:
    model, against = models  # the replay model, and the one it is compared with (None: live decisions)
    replayer = _WorkerReplayer(conn, settings, model, options, partitions=partitions, against=against)
    loop = asyncio.get_running_loop()

    def on_message() -> None:  # "stop", or end of file: the parent is gone
        try:
            conn.recv()
        except (EOFError, OSError):
            loop.remove_reader(conn.fileno())
        replayer.stop.set()

    loop.add_reader(conn.fileno(), on_message)
    try:
        result = await replayer.execute(checkpoint, time.perf_counter())
    finally:
        loop.remove_reader(conn.fileno())
    return {
        "status": result.status,
        "rescored": result.rescored,
        "stage_seconds": {k: result.stage_seconds.get(k, 0.0) for k in STAGES},
    }


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a ReplayError with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return ReplayError(f"{type(exc).__name__}: {exc}")
