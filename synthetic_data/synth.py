"""Synthetic Home Credit data at any scale: the eight raw files, streamed in chunks of clients.

``synthesize(out_dir, scale, seed, compress)`` writes ``application_train``, ``application_test``,
``bureau``, ``bureau_balance``, ``previous_application``, ``POS_CASH_balance``,
``installments_payments`` and ``credit_card_balance`` (``.csv.gz`` when compressed, ``.csv``
otherwise) with the real files' column names and order, marginals learned from the real sample
(``profile.json``), consistent keys and a learnable TARGET (see ``application`` and
``history``).

Streaming: clients are generated in fixed chunks of :data:`CHUNK_CLIENTS` (numpy, vectorised), each
chunk's frames are appended to the files by one writer thread while the next chunk is generated, so
memory stays bounded at any scale. Deterministic: chunk ``k`` uses ``SeedSequence([seed, k])`` and gzip
headers carry no name or time, so the same (seed, scale) gives the same bytes (with the same numpy /
polars versions and profile). Files are written as ``*.part`` and renamed when complete.

gzip is much slower than the generation itself: keep ``compress=False`` for large scales (the CLI's
default is uncompressed from scale 0.5 up).
"""

from __future__ import annotations

import gzip
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import polars as pl

from synthetic_data.application import make_application
from synthetic_data.exceptions import SynthError
from synthetic_data.history import make_history
from synthetic_data.profile import load_profile
from synthetic_data.spec import (
    CHUNK_CLIENTS,
    FULL_TEST,
    FULL_TRAIN,
    ID_BUREAU_START,
    ID_CURR_START,
    ID_PREV_START,
    MAX_SCALE,
    TABLES,
)

ProgressCallback = Callable[[int, int], None]
"""Called after each chunk with (clients done, clients total)."""

_GZIP_LEVEL = 6


@dataclass(frozen=True)
class FileSummary:
    table: str
    path: Path
    rows: int
    bytes: int
    seconds: float  # spent formatting and writing this file (the writer thread overlaps generation)


@dataclass(frozen=True)
class SynthSummary:
    out_dir: Path
    scale: float
    seed: int
    compress: bool
    n_train: int
    n_test: int
    files: tuple[FileSummary, ...]
    seconds: float

    def rows(self, table: str) -> int:
        return next(f.rows for f in self.files if f.table == table)

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)


def file_name(table: str, compress: bool) -> str:
    return f"{table}.csv.gz" if compress else f"{table}.csv"


def client_counts(scale: float) -> tuple[int, int]:
    """(train, test) applicants at ``scale``; raises SynthError for an unusable scale."""
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale):
        raise SynthError(f"scale: expected a finite number, got {scale!r}")
    if not 0 < scale <= MAX_SCALE:
        raise SynthError(f"scale: must be in (0, {MAX_SCALE:g}] (1.0 = full size), got {scale:g}")
    n_train, n_test = round(FULL_TRAIN * scale), round(FULL_TEST * scale)
    if n_train < 1 or n_test < 1:
        raise SynthError(f"scale: {scale:g} gives no test applicant; use at least {1 / FULL_TEST:.2g}")
    return n_train, n_test


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise SynthError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def _prepare_out_dir(out_dir: Path) -> Path:
    if out_dir.exists() and not out_dir.is_dir():
        raise SynthError(f"{out_dir}: output path exists and is not a folder")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise SynthError(f"{out_dir}: output folder is not writable")
    return out_dir


class _Sink:
    """One output file: CSV chunks appended to ``<name>.part`` (optionally gzip), renamed on close."""

    def __init__(self, path: Path, compress: bool) -> None:
        self.path, self.part = path, path.with_name(path.name + ".part")
        self.rows = 0
        self.seconds = 0.0
        self._header = True
        self._raw: IO[bytes] = open(self.part, "wb")  # noqa: SIM115 - closed in close()/abort()
        self._out: IO[bytes] = self._raw
        if compress:
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=_GZIP_LEVEL, mtime=0)
            self._out = cast(IO[bytes], gz)

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0 and not self._header:
            return
        started = time.perf_counter()
        frame.write_csv(self._out, include_header=self._header)
        self.seconds += time.perf_counter() - started
        self._header = False
        self.rows += frame.height

    def close(self) -> int:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
        self.part.replace(self.path)
        return self.path.stat().st_size

    def abort(self) -> None:
        try:
            if self._out is not self._raw:
                self._out.close()
            self._raw.close()
        finally:
            self.part.unlink(missing_ok=True)


def _chunk_frames(
    profile: dict[str, Any], seed: int, chunk: int, lo: int, hi: int, n_train: int, ids_next: tuple[int, int]
) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk]))
    idx = np.arange(lo, hi, dtype=np.int64)
    ids = ID_CURR_START + idx
    z = rng.standard_normal(idx.shape[0])
    train = idx < n_train
    frames = {
        "application_train": make_application(profile, ids[train], z[train], rng, with_target=True),
        "application_test": make_application(profile, ids[~train], z[~train], rng, with_target=False),
    }
    history = make_history(profile, ids, z, rng, *ids_next)
    frames.update(history.frames)
    return frames


def synthesize(
    out_dir: Path,
    scale: float = 1.0,
    seed: int = 0,
    compress: bool = False,
    progress: ProgressCallback | None = None,
    profile_path: Path | None = None,
) -> SynthSummary:
    """Write the eight synthetic Home Credit files into ``out_dir``; see the module docstring."""
    started = time.perf_counter()
    n_train, n_test = client_counts(scale)
    seed = _check_seed(seed)
    out_dir = _prepare_out_dir(Path(out_dir))
    profile = load_profile(profile_path)
    total = n_train + n_test
    sinks: dict[str, _Sink] = {}
    try:
        for t in TABLES:
            try:
                sinks[t] = _Sink(out_dir / file_name(t, compress), compress)
            except OSError as exc:
                raise SynthError(
                    f"{out_dir / file_name(t, compress)}: cannot write ({exc.strerror or exc})"
                ) from exc
        next_bureau, next_prev = ID_BUREAU_START, ID_PREV_START
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth-writer") as writer:
            pending: Future[None] | None = None
            for chunk, lo in enumerate(range(0, total, CHUNK_CLIENTS)):
                hi = min(lo + CHUNK_CLIENTS, total)
                frames = _chunk_frames(profile, seed, chunk, lo, hi, n_train, (next_bureau, next_prev))
                next_bureau += frames["bureau"].height
                next_prev += frames["previous_application"].height
                if pending is not None:
                    pending.result()
                pending = writer.submit(_write_all, sinks, frames)
                if progress is not None:
                    progress(hi, total)
            if pending is not None:
                pending.result()
        files = tuple(FileSummary(t, s.path, s.rows, s.close(), s.seconds) for t, s in sinks.items())
    except BaseException:
        for s in sinks.values():
            if s.part.exists():
                s.abort()
        raise
    return SynthSummary(
        out_dir=out_dir,
        scale=float(scale),
        seed=seed,
        compress=compress,
        n_train=n_train,
        n_test=n_test,
        files=files,
        seconds=time.perf_counter() - started,
    )


def _write_all(sinks: dict[str, _Sink], frames: dict[str, pl.DataFrame]) -> None:
    for table, frame in frames.items():
        sinks[table].write(frame)
