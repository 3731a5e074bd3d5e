"""Cleaned application columns: application_train ∪ application_test, one row per SK_ID_CURR.

Cleaning: every text 'XNA' → null (CODE_GENDER, ORGANIZATION_TYPE, …), DAYS_EMPLOYED = 365243
(pensioners / unemployed) → null plus the flag DAYS_EMPLOYED_ANOM, DOCUMENT_COUNT = number of documents
provided. Near-duplicate columns are left out (the building *_MODE / *_MEDI numbers repeat *_AVG,
FLAG_MOBIL is constant, most FLAG_DOCUMENT_* are almost always 0).

Categorical columns are encoded as the index of their level in the sorted list of levels seen in the
data (deterministic), unknown/missing → NaN, as ``FeatureField.encode`` does online.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from feature_loader.aggregates_common import DAYS_ANOMALY
from feature_loader.exceptions import RawDataError
from feature_loader.feature_schema import FeatureField, FeatureKind, FeatureSource
from feature_loader.raw_tables import APPLICATION_TEST, APPLICATION_TRAIN, BUILDING_COLUMNS, scan_table

# Arrive with every application event (the cache also keeps the client's last value as default).
EVENT_NUMERIC = (
    "AMT_INCOME_TOTAL",
    "AMT_CREDIT",
    "AMT_ANNUITY",
    "AMT_GOODS_PRICE",
    "HOUR_APPR_PROCESS_START",
)
EVENT_CATEGORICAL = ("NAME_CONTRACT_TYPE", "NAME_TYPE_SUITE", "WEEKDAY_APPR_PROCESS_START")
EVENT_FEATURES = (
    "NAME_CONTRACT_TYPE", "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE",
    "NAME_TYPE_SUITE", "WEEKDAY_APPR_PROCESS_START", "HOUR_APPR_PROCESS_START",
)  # fmt: skip

CACHED_CATEGORICAL = (
    "CODE_GENDER", "FLAG_OWN_CAR", "FLAG_OWN_REALTY", "NAME_INCOME_TYPE", "NAME_EDUCATION_TYPE",
    "NAME_FAMILY_STATUS", "NAME_HOUSING_TYPE", "OCCUPATION_TYPE", "ORGANIZATION_TYPE",
    "FONDKAPREMONT_MODE", "HOUSETYPE_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE",
)  # fmt: skip
_DOCUMENTS = tuple(f"FLAG_DOCUMENT_{i}" for i in range(2, 22))
_REQ = tuple(f"AMT_REQ_CREDIT_BUREAU_{p}" for p in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR"))
CACHED_NUMERIC = (
    "CNT_CHILDREN", "REGION_POPULATION_RELATIVE", "DAYS_BIRTH", "DAYS_EMPLOYED", "DAYS_EMPLOYED_ANOM",
    "DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "OWN_CAR_AGE", "FLAG_EMP_PHONE", "FLAG_WORK_PHONE",
    "FLAG_CONT_MOBILE", "FLAG_PHONE", "FLAG_EMAIL", "CNT_FAM_MEMBERS", "REGION_RATING_CLIENT",
    "REGION_RATING_CLIENT_W_CITY", "REG_REGION_NOT_LIVE_REGION", "REG_REGION_NOT_WORK_REGION",
    "LIVE_REGION_NOT_WORK_REGION", "REG_CITY_NOT_LIVE_CITY", "REG_CITY_NOT_WORK_CITY",
    "LIVE_CITY_NOT_WORK_CITY", "EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3",
    *(f"{b}_AVG" for b in BUILDING_COLUMNS), "TOTALAREA_MODE",
    "OBS_30_CNT_SOCIAL_CIRCLE", "DEF_30_CNT_SOCIAL_CIRCLE", "OBS_60_CNT_SOCIAL_CIRCLE",
    "DEF_60_CNT_SOCIAL_CIRCLE", "DAYS_LAST_PHONE_CHANGE", "FLAG_DOCUMENT_3", "FLAG_DOCUMENT_6",
    "FLAG_DOCUMENT_8", "DOCUMENT_COUNT", *_REQ,
)  # fmt: skip
CATEGORICAL = EVENT_CATEGORICAL + CACHED_CATEGORICAL
# Columns computed here rather than read.
_COMPUTED = frozenset({"DAYS_EMPLOYED_ANOM", "DOCUMENT_COUNT"})
READ_COLUMNS = (
    "SK_ID_CURR",
    *EVENT_FEATURES,
    *CACHED_CATEGORICAL,
    *(c for c in CACHED_NUMERIC if c not in _COMPUTED and c not in _DOCUMENTS),
    *_DOCUMENTS,
)
FEATURES = EVENT_FEATURES + CACHED_CATEGORICAL + CACHED_NUMERIC
# A categorical column with no level at all in the data still needs one (FeatureField requires it).
PLACEHOLDER_LEVEL = "<none>"


def load(raw_dir: Path) -> pl.DataFrame:
    """application_train ∪ application_test, cleaned (text, not yet encoded), one row per client.

    Columns: SK_ID_CURR, TARGET (Int8, null for test rows), IS_TRAIN, then :data:`FEATURES`.
    """
    train = scan_table(raw_dir, APPLICATION_TRAIN, ("TARGET", *READ_COLUMNS))
    test = scan_table(raw_dir, APPLICATION_TEST, READ_COLUMNS)
    assert train is not None and test is not None  # required tables: scan_table raised otherwise
    (train_lf, train_path), (test_lf, test_path) = train, test
    frames = []
    for lf, path, is_train in ((train_lf, train_path, True), (test_lf, test_path, False)):
        target = pl.col("TARGET") if is_train else pl.lit(None, dtype=pl.Float64).alias("TARGET")
        lf = lf.select("SK_ID_CURR", target, pl.lit(is_train).alias("IS_TRAIN"), *READ_COLUMNS[1:])
        try:
            frames.append(lf.collect())
        except pl.exceptions.PolarsError as exc:
            raise RawDataError(f"{path}: unreadable value ({str(exc).splitlines()[0]})") from None
    _check_target(frames[0], train_path)
    df = pl.concat(frames, how="vertical")
    _check_unique_ids(df, train_path, test_path)
    return df.select(
        "SK_ID_CURR",
        pl.col("TARGET").cast(pl.Int8),
        "IS_TRAIN",
        *_clean_exprs(),
    ).select("SK_ID_CURR", "TARGET", "IS_TRAIN", *FEATURES)


def _clean_exprs() -> list[pl.Expr]:
    text = [pl.when(pl.col(c) == "XNA").then(None).otherwise(pl.col(c)).alias(c) for c in CATEGORICAL]
    employed = pl.col("DAYS_EMPLOYED")
    numeric = [
        pl.col(c).cast(pl.Float64)
        for c in CACHED_NUMERIC + EVENT_NUMERIC
        if c not in _COMPUTED and c != "DAYS_EMPLOYED"
    ]
    return [
        *text,
        *numeric,
        pl.when(employed == DAYS_ANOMALY).then(None).otherwise(employed).alias("DAYS_EMPLOYED"),
        (employed == DAYS_ANOMALY).cast(pl.Float64).alias("DAYS_EMPLOYED_ANOM"),
        pl.sum_horizontal(*_DOCUMENTS).alias("DOCUMENT_COUNT"),
    ]


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


def learn_categories(df: pl.DataFrame) -> dict[str, tuple[str, ...]]:
    """Sorted distinct non-null levels of every categorical column (deterministic)."""
    cats = {}
    for name in CATEGORICAL:
        levels = tuple(sorted(df[name].drop_nulls().unique().to_list()))
        cats[name] = levels or (PLACEHOLDER_LEVEL,)
    return cats


def fields(categories: dict[str, tuple[str, ...]]) -> list[FeatureField]:
    """The application features of the schema, in order, with their kind and source."""
    out = []
    for name in FEATURES:
        source = FeatureSource.EVENT if name in EVENT_FEATURES else FeatureSource.CACHED
        if name in CATEGORICAL:
            out.append(
                FeatureField(
                    name=name, kind=FeatureKind.CATEGORICAL, source=source, categories=categories[name]
                )
            )
        else:
            out.append(FeatureField(name=name, source=source))
    return out


def encode(df: pl.DataFrame, categories: dict[str, tuple[str, ...]]) -> pl.DataFrame:
    """Categoricals → level index (Float32, unknown/missing → NaN); numerics → Float32 (null → NaN)."""
    exprs = []
    for name in FEATURES:
        col = pl.col(name)
        if name in CATEGORICAL:
            levels = categories[name]
            col = col.replace_strict(levels, list(range(len(levels))), default=None, return_dtype=pl.Float32)
        exprs.append(col.cast(pl.Float32).fill_null(float("nan")).alias(name))
    return df.select("SK_ID_CURR", "TARGET", "IS_TRAIN", *exprs)
