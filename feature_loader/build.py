"""The feature build: raw Home Credit tables → one float32 feature row per SK_ID_CURR.

Steps: read the application tables (required) and encode them with the fixed vocabularies of the
committed contract, aggregate each related table family per client with polars' streaming engine (an
absent optional table gives NaN features and a warning), join everything on SK_ID_CURR, fill the
derived columns with the same :func:`feature_loader.derived.apply_derived` the online scorer uses,
and write to ``out_dir``:

* ``features.parquet``: SK_ID_CURR Int64, TARGET Int8 (null for application_test rows), IS_TRAIN
  Boolean, then every schema feature in schema order as Float32 (NaN = missing), sorted by SK_ID_CURR;
* ``feature_schema.json``: the :class:`FeatureSchema` (its version is the hash of the fields);
* ``build_info.json``: schema version, row counts, inputs and their fingerprint, seconds per stage,
  warnings.

The schema depends on the code alone, never on the rows: any subset of clients, or new ones, gives the
same version. A build can be **pinned** to a model's schema (``pinned=``): the output then has exactly
that schema's features, order and vocabularies (a level it lacks is missing), provided this code
computes each of its features with the same kind and source (else :class:`FeatureContractError`).

A client without rows in a related table gets NaN for that table's features (counts included).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import polars as pl

from feature_loader import (
    aggregates_bureau,
    aggregates_credit_card,
    aggregates_installments,
    aggregates_pos_cash,
    aggregates_previous,
    application,
)
from feature_loader.aggregates_common import ClientAggregates
from feature_loader.derived import DERIVED, DERIVED_BY_NAME, apply_derived
from feature_loader.exceptions import FeatureContractError, MissingFileError, RawDataError
from feature_loader.feature_schema import FeatureField, FeatureSchema, FeatureSource
from feature_loader.raw_tables import RAW_TABLES, find_file

log = logging.getLogger(__name__)

FEATURES_FILE = "features.parquet"
SCHEMA_FILE = "feature_schema.json"
BUILD_INFO_FILE = "build_info.json"
ID_COLUMNS = ("SK_ID_CURR", "TARGET", "IS_TRAIN")

FAMILIES: tuple[ClientAggregates, ...] = (
    aggregates_bureau.AGGREGATES,
    aggregates_previous.AGGREGATES,
    aggregates_pos_cash.AGGREGATES,
    aggregates_installments.AGGREGATES,
    aggregates_credit_card.AGGREGATES,
)

# (stage name, steps done so far, total steps)
Progress = Callable[[str, int, int], None]


@dataclass
class BuildResult:
    out_dir: Path
    schema: FeatureSchema
    rows: int
    train_rows: int
    test_rows: int
    seconds: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    pinned: bool = False  # built with a given (model's) schema rather than this code's


def feature_schema() -> FeatureSchema:
    """The schema of this code: application features (event fields, fixed vocabularies), then each
    table family's aggregates, then derived ones."""
    fields: list[FeatureField] = application.fields()
    for family in FAMILIES:
        fields += [FeatureField(name=name, source=FeatureSource.CACHED) for name in family.features]
    fields += [d.field() for d in DERIVED]
    return FeatureSchema(fields=tuple(fields))


def pinned_schema(pinned: FeatureSchema) -> FeatureSchema:
    """``pinned`` if this code computes every one of its features with the same kind and source, else
    :class:`FeatureContractError` naming the first feature it cannot build."""
    own = feature_schema()
    where = f"pinned feature schema {pinned.version}"
    for f in pinned.fields:
        if f.name not in own.index:
            raise FeatureContractError(f"{where}: feature {f.name!r} is not computed by this build")
        mine = own.field(f.name)
        if (mine.kind, mine.source) != (f.kind, f.source):
            raise FeatureContractError(
                f"{where}: feature {f.name!r} is {f.kind.value}/{f.source.value} there but "
                f"{mine.kind.value}/{mine.source.value} in this build"
            )
        if f.source is FeatureSource.DERIVED:
            lacking = [n for n in DERIVED_BY_NAME[f.name].inputs if n not in pinned.index]
            if lacking:
                raise FeatureContractError(f"{where}: derived feature {f.name!r} needs {lacking[0]!r}")
    return pinned


def build_features(
    raw_dir: Path, out_dir: Path, progress: Progress | None = None, pinned: FeatureSchema | None = None
) -> BuildResult:
    """Run the whole build (with ``pinned``'s schema if given); raises MissingFileError /
    MissingColumnError / RawDataError on bad input, FeatureContractError for an unbuildable pin."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    if not raw_dir.is_dir():
        raise MissingFileError(f"{raw_dir}: raw data folder not found")
    total = len(FAMILIES) + 3
    step = 0
    seconds: dict[str, float] = {}
    warnings: list[str] = []

    def warn(message: str) -> None:
        log.warning(message)
        warnings.append(message)

    def tick(stage: str, started: float) -> None:
        nonlocal step
        seconds[stage] = round(time.perf_counter() - started, 3)
        step += 1
        if progress is not None:
            progress(stage, step, total)

    t_all = t = time.perf_counter()
    schema = feature_schema() if pinned is None else pinned_schema(pinned)
    apps = application.load(raw_dir)
    frame = application.encode(apps, {f.name: f.categories for f in schema.fields if f.categories})
    del apps
    tick("application", t)

    for family in FAMILIES:
        t = time.perf_counter()
        frame = frame.join(_collect_family(family, raw_dir, warn), on="SK_ID_CURR", how="left")
        tick(family.family, t)

    t = time.perf_counter()
    frame = frame.sort("SK_ID_CURR")
    matrix = _feature_matrix(frame, schema)
    apply_derived(matrix, schema)
    out = pl.DataFrame(
        [frame.get_column(c) for c in ID_COLUMNS]
        + [pl.Series(name, matrix[:, i]) for i, name in enumerate(schema.names)]
    )
    del frame, matrix
    tick("derived", t)

    t = time.perf_counter()
    train_rows = int(out["IS_TRAIN"].sum())
    _write_outputs(out, schema, out_dir)
    seconds["write"] = round(time.perf_counter() - t, 3)
    seconds["total"] = round(time.perf_counter() - t_all, 3)
    result = BuildResult(
        out_dir=out_dir,
        schema=schema,
        rows=out.height,
        train_rows=train_rows,
        test_rows=out.height - train_rows,
        seconds=seconds,
        warnings=warnings,
        pinned=pinned is not None,
    )
    _write_build_info(result, raw_dir)
    if progress is not None:
        progress("write", total, total)
    return result


def _collect_family(family: ClientAggregates, raw_dir: Path, warn: Callable[[str], None]) -> pl.DataFrame:
    """SK_ID_CURR + the family's features as Float32 (all-NaN columns for absent tables)."""
    try:
        lf = family.build(raw_dir, warn)
        if lf is None:
            return pl.DataFrame(
                {"SK_ID_CURR": pl.Series([], dtype=pl.Int64)}
                | {n: pl.Series([], dtype=pl.Float32) for n in family.features}
            )
        present = lf.collect_schema()
        return lf.select(
            "SK_ID_CURR",
            *(
                pl.col(n).cast(pl.Float32) if n in present else pl.lit(None, pl.Float32).alias(n)
                for n in family.features
            ),
        ).collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        where = find_file(raw_dir, next(t for t in RAW_TABLES if t.name == family.family))
        raise RawDataError(f"{where}: unreadable value ({str(exc).splitlines()[0]})") from None


def _feature_matrix(frame: pl.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """Float32 (n, len(schema)) matrix, column-major, derived columns NaN (filled by apply_derived)."""
    matrix = np.full((frame.height, len(schema)), np.nan, dtype=np.float32, order="F")
    for i, f in enumerate(schema.fields):
        if f.source is not FeatureSource.DERIVED:
            matrix[:, i] = frame.get_column(f.name).fill_null(float("nan")).to_numpy()
    return matrix


def _write_outputs(out: pl.DataFrame, schema: FeatureSchema, out_dir: Path) -> None:
    """Write next to the targets then rename, so readers never see a half-written file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp_parquet = out_dir / f".{FEATURES_FILE}.tmp"
    out.write_parquet(tmp_parquet, compression="zstd", compression_level=1, statistics=False)
    tmp_schema = out_dir / f".{SCHEMA_FILE}.tmp"
    tmp_schema.write_bytes(schema.to_json_bytes())
    os.replace(tmp_parquet, out_dir / FEATURES_FILE)
    os.replace(tmp_schema, out_dir / SCHEMA_FILE)


def input_fingerprint(raw_dir: Path) -> dict[str, object]:
    """Per input file: name, size, and sha256 of its first and last MiB; plus one hash of all that.

    Cheap on multi-GB inputs; any change of size, header or tail changes it.
    """
    files: dict[str, dict[str, object]] = {}
    digest = hashlib.sha256()
    for table in RAW_TABLES:
        path = find_file(raw_dir, table)
        if path is None:
            files[table.name] = {"present": False}
            digest.update(f"{table.name}:absent;".encode())
            continue
        size = path.stat().st_size
        h = hashlib.sha256()
        with path.open("rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 1 << 20:
                fh.seek(max(size - (1 << 20), 1 << 20))
                h.update(fh.read())
        files[table.name] = {
            "present": True,
            "file": path.name,
            "bytes": size,
            "head_tail_sha256": h.hexdigest(),
        }
        digest.update(f"{path.name}:{size}:{h.hexdigest()};".encode())
    return {
        "method": "sha256 of name, size, first and last MiB",
        "sha256": digest.hexdigest(),
        "files": files,
    }


def _write_build_info(result: BuildResult, raw_dir: Path) -> None:
    schema = result.schema
    info = {
        "schema_version": schema.version,
        "schema_pinned": result.pinned,
        "features": len(schema),
        "features_by_source": {s.value: len(schema.by_source(s)) for s in FeatureSource},
        "rows": result.rows,
        "train_rows": result.train_rows,
        "test_rows": result.test_rows,
        "raw_dir": str(raw_dir.resolve()),
        "input_fingerprint": input_fingerprint(raw_dir),
        "seconds": result.seconds,
        "warnings": result.warnings,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "polars_version": pl.__version__,
    }
    path = result.out_dir / BUILD_INFO_FILE
    path.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2))
