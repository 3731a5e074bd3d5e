"""Read a feature build's output directory into float32 arrays for training.

The directory holds ``features.parquet`` (SK_ID_CURR, TARGET, IS_TRAIN, then every schema feature as
Float32), ``feature_schema.json`` and ``build_info.json`` (optional here). Every problem is a
:class:`FeatureTableError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from feature_loader.feature_schema import FeatureSchema
from training.exceptions import FeatureTableError

FEATURES_FILE = "features.parquet"
SCHEMA_FILE = "feature_schema.json"
BUILD_INFO_FILE = "build_info.json"
ID_COL, TARGET_COL, IS_TRAIN_COL = "SK_ID_CURR", "TARGET", "IS_TRAIN"
# LightGBM refuses feature names with JSON special characters.
_BAD_NAME = re.compile(r'[",:\[\]{}]')


@dataclass(frozen=True)
class LabelledTable:
    """The labelled rows of a feature table, features in schema order as float32."""

    ids: npt.NDArray[np.int64]
    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.int8]
    schema: FeatureSchema
    fingerprint: str
    source: Path

    @property
    def positives(self) -> int:
        return int(self.y.sum())


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def load_schema(features_dir: Path) -> FeatureSchema:
    path = features_dir / SCHEMA_FILE
    if not path.is_file():
        raise FeatureTableError(f"{path}: file not found (run `credit-scorer features build` first)")
    try:
        schema = FeatureSchema.load(path)
    except (ValueError, orjson.JSONDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FeatureTableError(f"{path}: invalid feature schema: {first}") from exc
    bad = [n for n in schema.names if _BAD_NAME.search(n)]
    if bad:
        raise FeatureTableError(f"{path}: feature name {bad[0]!r} has a character LightGBM refuses")
    return schema


def load_labelled(features_dir: Path) -> LabelledTable:
    """The IS_TRAIN rows with a TARGET, sorted by SK_ID_CURR."""
    import polars as pl

    features_dir = Path(features_dir)
    if not features_dir.is_dir():
        raise FeatureTableError(f"{features_dir}: feature directory not found")
    schema = load_schema(features_dir)
    path = features_dir / FEATURES_FILE
    if not path.is_file():
        raise FeatureTableError(f"{path}: file not found (run `credit-scorer features build` first)")
    try:
        columns = pl.read_parquet_schema(path)
    except Exception as exc:  # polars raises several error types for a corrupt file
        raise FeatureTableError(f"{path}: not a readable parquet file ({type(exc).__name__})") from exc
    for col in (ID_COL, TARGET_COL, *schema.names):
        if col not in columns:
            raise FeatureTableError(f"{path}: missing column {col!r}")
    wanted = [ID_COL, TARGET_COL, *([IS_TRAIN_COL] if IS_TRAIN_COL in columns else []), *schema.names]
    try:
        frame = pl.read_parquet(path, columns=wanted)
    except Exception as exc:
        raise FeatureTableError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from exc

    labelled = frame.filter(pl.col(TARGET_COL).is_not_null())
    if IS_TRAIN_COL in frame.columns:
        labelled = labelled.filter(pl.col(IS_TRAIN_COL).fill_null(False))
    if labelled.height == 0:
        raise FeatureTableError(f"{path}: no labelled rows (IS_TRAIN with a non-null {TARGET_COL})")
    labelled = labelled.sort(ID_COL)
    y = labelled[TARGET_COL].cast(pl.Int64).to_numpy()
    bad_target = np.flatnonzero((y != 0) & (y != 1))
    if bad_target.size:
        row_id = labelled[ID_COL][int(bad_target[0])]
        raise FeatureTableError(
            f"{path}: column {TARGET_COL!r} must be 0/1, got {y[bad_target[0]]} for {ID_COL}={row_id}"
        )
    if np.unique(y).size < 2:
        raise FeatureTableError(f"{path}: column {TARGET_COL!r} has a single class ({int(y[0])})")
    ids = labelled[ID_COL].cast(pl.Int64).to_numpy()
    if np.unique(ids).size != ids.size:
        raise FeatureTableError(f"{path}: column {ID_COL!r} has duplicate ids")
    try:
        feats = labelled.select(pl.col(n).cast(pl.Float32) for n in schema.names)
    except Exception as exc:
        raise FeatureTableError(f"{path}: a feature column is not numeric ({exc})") from exc
    x = np.ascontiguousarray(feats.to_numpy(), dtype=np.float32)
    return LabelledTable(
        ids=ids.astype(np.int64),
        x=x,
        y=y.astype(np.int8),
        schema=schema,
        fingerprint=file_sha256(path),
        source=features_dir,
    )
