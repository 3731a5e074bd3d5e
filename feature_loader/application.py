"""Application features: the columns of the application form, as the event carries them.

application_train ∪ application_test, one row per SK_ID_CURR. Every application feature is an
``event`` field of the schema: at scoring time the event's value is used (the cached vector holds the
client's last known application, the default of a field the event does not carry). So the offline
values are the raw columns exactly as an event carries them, never cleaned here:

* a categorical is the index of its level in the **fixed vocabulary of the committed contract**
  (:data:`schemas.application_form.LEVELS`), never the levels of the rows at hand, so any subset of
  clients gives the same schema and the same indices; a text outside the vocabulary (the source's
  'XNA' placeholder, a new level) is missing (NaN), as :meth:`FeatureField.encode` does online;
* numbers are kept as they are, codes included (``DAYS_EMPLOYED`` 365243): what they mean is
  computed by :mod:`feature_loader.derived` (``DAYS_EMPLOYED_ANOM``, ratios that skip the code),
  online and offline alike.

Near-duplicate columns are left out of the model (they stay in the event): the building *_MODE /
*_MEDI numbers repeat *_AVG and FLAG_MOBIL is constant.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feature_loader.exceptions import RawDataError
from feature_loader.feature_schema import FeatureField, FeatureKind, FeatureSource
from feature_loader.raw_tables import APPLICATION_TEST, APPLICATION_TRAIN, BUILDING_COLUMNS, scan_table
from schemas.application_form import FORM_COLUMNS, LEVELS

_DUPLICATES = frozenset(
    {f"{b}_{stat}" for b in BUILDING_COLUMNS for stat in ("MODE", "MEDI")} | {"FLAG_MOBIL"}
)
# The application features of the schema, in the contract's (file) order.
FEATURES: tuple[str, ...] = tuple(c.name for c in FORM_COLUMNS if c.name not in _DUPLICATES)
CATEGORICAL: tuple[str, ...] = tuple(n for n in FEATURES if n in LEVELS)


def load(raw_dir: Path) -> pl.DataFrame:
    """application_train ∪ application_test (text, not yet encoded), one row per client.

    Columns: SK_ID_CURR, TARGET (Int8, null for test rows), IS_TRAIN, then :data:`FEATURES`.
    """
    train = scan_table(raw_dir, APPLICATION_TRAIN, ("SK_ID_CURR", "TARGET", *FEATURES))
    test = scan_table(raw_dir, APPLICATION_TEST, ("SK_ID_CURR", *FEATURES))
    assert train is not None and test is not None  # required tables: scan_table raised otherwise
    (train_lf, train_path), (test_lf, test_path) = train, test
    frames = []
    for lf, path, is_train in ((train_lf, train_path, True), (test_lf, test_path, False)):
        target = pl.col("TARGET") if is_train else pl.lit(None, dtype=pl.Float64).alias("TARGET")
        lf = lf.select("SK_ID_CURR", target, pl.lit(is_train).alias("IS_TRAIN"), *FEATURES)
        try:
            frames.append(lf.collect())
        except pl.exceptions.PolarsError as exc:
            raise RawDataError(f"{path}: unreadable value ({str(exc).splitlines()[0]})") from None
    _check_target(frames[0], train_path)
    df = pl.concat(frames, how="vertical")
    _check_unique_ids(df, train_path, test_path)
    return df.with_columns(pl.col("TARGET").cast(pl.Int8))


def _check_target(train: pl.DataFrame, path: Path) -> None:
    bad = train.filter(pl.col("TARGET").is_null() | ~pl.col("TARGET").is_in([0.0, 1.0]))
    if bad.height:
        row = bad.row(0, named=True)
        raise RawDataError(
            f"{path}: TARGET must be 0 or 1, got {row['TARGET']!r} for SK_ID_CURR {row['SK_ID_CURR']}"
        )


def _check_unique_ids(df: pl.DataFrame, train_path: Path, test_path: Path) -> None:
    if df["SK_ID_CURR"].null_count():
        raise RawDataError(f"{train_path} / {test_path}: SK_ID_CURR is empty in some rows")
    dupes = df.group_by("SK_ID_CURR").len().filter(pl.col("len") > 1)
    if dupes.height:
        first = int(dupes["SK_ID_CURR"].min())  # type: ignore[arg-type]
        raise RawDataError(f"{train_path} / {test_path}: SK_ID_CURR {first} appears more than once")


def contract_categories() -> dict[str, tuple[str, ...]]:
    """The fixed vocabulary of every categorical application feature (from the committed contract)."""
    return {name: LEVELS[name] for name in CATEGORICAL}


def fields(categories: dict[str, tuple[str, ...]] | None = None) -> list[FeatureField]:
    """The application features of the schema, in order: every one an ``event`` field."""
    categories = contract_categories() | (categories or {})
    out = []
    for name in FEATURES:
        if name in categories:
            out.append(
                FeatureField(
                    name=name,
                    kind=FeatureKind.CATEGORICAL,
                    source=FeatureSource.EVENT,
                    categories=categories[name],
                )
            )
        else:
            out.append(FeatureField(name=name, source=FeatureSource.EVENT))
    return out


def encode(df: pl.DataFrame, categories: dict[str, tuple[str, ...]] | None = None) -> pl.DataFrame:
    """Categoricals → level index (Float32, a text outside the vocabulary or missing → NaN); numerics →
    Float32 (null → NaN)."""
    categories = contract_categories() | (categories or {})
    exprs = []
    for name in FEATURES:
        col = pl.col(name)
        if name in categories:
            levels = categories[name]
            col = col.replace_strict(levels, list(range(len(levels))), default=None, return_dtype=pl.Float32)
        exprs.append(col.cast(pl.Float32).fill_null(float("nan")).alias(name))
    return df.select("SK_ID_CURR", "TARGET", "IS_TRAIN", *exprs)
