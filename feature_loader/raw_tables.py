"""Spec of the eight raw Home Credit files and their checked, lazy reading.

Each :class:`RawTable` lists the columns of the original file with their original dtype (``Int64``,
``Float64`` or ``String``). Only ``application_train`` and ``application_test`` are required; the six
related tables are optional (an absent one gives NaN features and a warning in the build).

:func:`scan_table` finds ``<name>.csv`` or ``<name>.csv.gz`` in a folder, checks the header for the
columns the caller needs (:class:`MissingColumnError` naming file and column) and returns a polars
``LazyFrame`` of just those columns. Keys are read as ``Int64``, text as ``String`` and every other
number as ``Float64`` (lenient: an integer column written as ``3.0`` still reads).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from feature_loader.exceptions import MissingColumnError, MissingFileError, RawDataError

I, F, S = pl.Int64, pl.Float64, pl.String  # noqa: E741 (short names keep the column tables readable)
KEYS = frozenset({"SK_ID_CURR", "SK_ID_PREV", "SK_ID_BUREAU"})
SUFFIXES = (".csv", ".csv.gz")

BUILDING_COLUMNS = (
    "APARTMENTS",
    "BASEMENTAREA",
    "YEARS_BEGINEXPLUATATION",
    "YEARS_BUILD",
    "COMMONAREA",
    "ELEVATORS",
    "ENTRANCES",
    "FLOORSMAX",
    "FLOORSMIN",
    "LANDAREA",
    "LIVINGAPARTMENTS",
    "LIVINGAREA",
    "NONLIVINGAPARTMENTS",
    "NONLIVINGAREA",
)


def _application_columns(with_target: bool) -> dict[str, type[pl.DataType]]:
    cols: dict[str, type[pl.DataType]] = {"SK_ID_CURR": I}
    if with_target:
        cols["TARGET"] = I
    cols |= {
        "NAME_CONTRACT_TYPE": S, "CODE_GENDER": S, "FLAG_OWN_CAR": S, "FLAG_OWN_REALTY": S,
        "CNT_CHILDREN": I, "AMT_INCOME_TOTAL": F, "AMT_CREDIT": F, "AMT_ANNUITY": F,
        "AMT_GOODS_PRICE": F, "NAME_TYPE_SUITE": S, "NAME_INCOME_TYPE": S, "NAME_EDUCATION_TYPE": S,
        "NAME_FAMILY_STATUS": S, "NAME_HOUSING_TYPE": S, "REGION_POPULATION_RELATIVE": F,
        "DAYS_BIRTH": I, "DAYS_EMPLOYED": I, "DAYS_REGISTRATION": F, "DAYS_ID_PUBLISH": I,
        "OWN_CAR_AGE": F, "FLAG_MOBIL": I, "FLAG_EMP_PHONE": I, "FLAG_WORK_PHONE": I,
        "FLAG_CONT_MOBILE": I, "FLAG_PHONE": I, "FLAG_EMAIL": I, "OCCUPATION_TYPE": S,
        "CNT_FAM_MEMBERS": F, "REGION_RATING_CLIENT": I, "REGION_RATING_CLIENT_W_CITY": I,
        "WEEKDAY_APPR_PROCESS_START": S, "HOUR_APPR_PROCESS_START": I,
        "REG_REGION_NOT_LIVE_REGION": I, "REG_REGION_NOT_WORK_REGION": I,
        "LIVE_REGION_NOT_WORK_REGION": I, "REG_CITY_NOT_LIVE_CITY": I, "REG_CITY_NOT_WORK_CITY": I,
        "LIVE_CITY_NOT_WORK_CITY": I, "ORGANIZATION_TYPE": S,
        "EXT_SOURCE_1": F, "EXT_SOURCE_2": F, "EXT_SOURCE_3": F,
    }  # fmt: skip
    for stat in ("AVG", "MODE", "MEDI"):
        cols |= {f"{b}_{stat}": F for b in BUILDING_COLUMNS}
    cols |= {
        "FONDKAPREMONT_MODE": S, "HOUSETYPE_MODE": S, "TOTALAREA_MODE": F, "WALLSMATERIAL_MODE": S,
        "EMERGENCYSTATE_MODE": S, "OBS_30_CNT_SOCIAL_CIRCLE": F, "DEF_30_CNT_SOCIAL_CIRCLE": F,
        "OBS_60_CNT_SOCIAL_CIRCLE": F, "DEF_60_CNT_SOCIAL_CIRCLE": F, "DAYS_LAST_PHONE_CHANGE": F,
    }  # fmt: skip
    cols |= {f"FLAG_DOCUMENT_{i}": I for i in range(2, 22)}
    cols |= {f"AMT_REQ_CREDIT_BUREAU_{p}": F for p in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")}
    return cols


@dataclass(frozen=True)
class RawTable:
    """One raw file: its base name, whether the build needs it, and its columns with original dtypes."""

    name: str
    required: bool
    columns: dict[str, type[pl.DataType]]

    def read_dtype(self, column: str) -> type[pl.DataType]:
        """The dtype a column is read as: keys Int64, text String, every other number Float64."""
        if column in KEYS:
            return pl.Int64
        return pl.String if self.columns.get(column) is pl.String else pl.Float64


APPLICATION_TRAIN = RawTable("application_train", True, _application_columns(with_target=True))
APPLICATION_TEST = RawTable("application_test", True, _application_columns(with_target=False))
BUREAU = RawTable(
    "bureau",
    False,
    {
        "SK_ID_CURR": I, "SK_ID_BUREAU": I, "CREDIT_ACTIVE": S, "CREDIT_CURRENCY": S,
        "DAYS_CREDIT": I, "CREDIT_DAY_OVERDUE": I, "DAYS_CREDIT_ENDDATE": F, "DAYS_ENDDATE_FACT": F,
        "AMT_CREDIT_MAX_OVERDUE": F, "CNT_CREDIT_PROLONG": I, "AMT_CREDIT_SUM": F,
        "AMT_CREDIT_SUM_DEBT": F, "AMT_CREDIT_SUM_LIMIT": F, "AMT_CREDIT_SUM_OVERDUE": F,
        "CREDIT_TYPE": S, "DAYS_CREDIT_UPDATE": I, "AMT_ANNUITY": F,
    },
)  # fmt: skip
BUREAU_BALANCE = RawTable("bureau_balance", False, {"SK_ID_BUREAU": I, "MONTHS_BALANCE": I, "STATUS": S})
PREVIOUS_APPLICATION = RawTable(
    "previous_application",
    False,
    {
        "SK_ID_PREV": I, "SK_ID_CURR": I, "NAME_CONTRACT_TYPE": S, "AMT_ANNUITY": F,
        "AMT_APPLICATION": F, "AMT_CREDIT": F, "AMT_DOWN_PAYMENT": F, "AMT_GOODS_PRICE": F,
        "WEEKDAY_APPR_PROCESS_START": S, "HOUR_APPR_PROCESS_START": I, "FLAG_LAST_APPL_PER_CONTRACT": S,
        "NFLAG_LAST_APPL_IN_DAY": I, "RATE_DOWN_PAYMENT": F, "RATE_INTEREST_PRIMARY": F,
        "RATE_INTEREST_PRIVILEGED": F, "NAME_CASH_LOAN_PURPOSE": S, "NAME_CONTRACT_STATUS": S,
        "DAYS_DECISION": I, "NAME_PAYMENT_TYPE": S, "CODE_REJECT_REASON": S, "NAME_TYPE_SUITE": S,
        "NAME_CLIENT_TYPE": S, "NAME_GOODS_CATEGORY": S, "NAME_PORTFOLIO": S, "NAME_PRODUCT_TYPE": S,
        "CHANNEL_TYPE": S, "SELLERPLACE_AREA": I, "NAME_SELLER_INDUSTRY": S, "CNT_PAYMENT": F,
        "NAME_YIELD_GROUP": S, "PRODUCT_COMBINATION": S, "DAYS_FIRST_DRAWING": F, "DAYS_FIRST_DUE": F,
        "DAYS_LAST_DUE_1ST_VERSION": F, "DAYS_LAST_DUE": F, "DAYS_TERMINATION": F,
        "NFLAG_INSURED_ON_APPROVAL": F,
    },
)  # fmt: skip
POS_CASH_BALANCE = RawTable(
    "POS_CASH_balance",
    False,
    {
        "SK_ID_PREV": I, "SK_ID_CURR": I, "MONTHS_BALANCE": I, "CNT_INSTALMENT": F,
        "CNT_INSTALMENT_FUTURE": F, "NAME_CONTRACT_STATUS": S, "SK_DPD": I, "SK_DPD_DEF": I,
    },
)  # fmt: skip
INSTALLMENTS_PAYMENTS = RawTable(
    "installments_payments",
    False,
    {
        "SK_ID_PREV": I, "SK_ID_CURR": I, "NUM_INSTALMENT_VERSION": F, "NUM_INSTALMENT_NUMBER": I,
        "DAYS_INSTALMENT": F, "DAYS_ENTRY_PAYMENT": F, "AMT_INSTALMENT": F, "AMT_PAYMENT": F,
    },
)  # fmt: skip
CREDIT_CARD_BALANCE = RawTable(
    "credit_card_balance",
    False,
    {
        "SK_ID_PREV": I, "SK_ID_CURR": I, "MONTHS_BALANCE": I, "AMT_BALANCE": F,
        "AMT_CREDIT_LIMIT_ACTUAL": I, "AMT_DRAWINGS_ATM_CURRENT": F, "AMT_DRAWINGS_CURRENT": F,
        "AMT_DRAWINGS_OTHER_CURRENT": F, "AMT_DRAWINGS_POS_CURRENT": F, "AMT_INST_MIN_REGULARITY": F,
        "AMT_PAYMENT_CURRENT": F, "AMT_PAYMENT_TOTAL_CURRENT": F, "AMT_RECEIVABLE_PRINCIPAL": F,
        "AMT_RECIVABLE": F, "AMT_TOTAL_RECEIVABLE": F, "CNT_DRAWINGS_ATM_CURRENT": F,
        "CNT_DRAWINGS_CURRENT": I, "CNT_DRAWINGS_OTHER_CURRENT": F, "CNT_DRAWINGS_POS_CURRENT": F,
        "CNT_INSTALMENT_MATURE_CUM": F, "NAME_CONTRACT_STATUS": S, "SK_DPD": I, "SK_DPD_DEF": I,
    },
)  # fmt: skip

RAW_TABLES: tuple[RawTable, ...] = (
    APPLICATION_TRAIN,
    APPLICATION_TEST,
    BUREAU,
    BUREAU_BALANCE,
    PREVIOUS_APPLICATION,
    POS_CASH_BALANCE,
    INSTALLMENTS_PAYMENTS,
    CREDIT_CARD_BALANCE,
)


def find_file(raw_dir: Path, table: RawTable) -> Path | None:
    """``<name>.csv`` or ``<name>.csv.gz`` in ``raw_dir`` (plain CSV preferred), or None."""
    for suffix in SUFFIXES:
        path = raw_dir / f"{table.name}{suffix}"
        if path.is_file():
            return path
    return None


def require_file(raw_dir: Path, table: RawTable) -> Path:
    path = find_file(raw_dir, table)
    if path is None:
        raise MissingFileError(
            f"{raw_dir / (table.name + '.csv')}: required file not found (also tried .csv.gz)"
        )
    return path


def read_header(path: Path) -> list[str]:
    """Column names of a CSV(.gz) file (reads the first line only)."""
    try:
        return pl.read_csv(path, n_rows=0, infer_schema=False).columns
    except (pl.exceptions.PolarsError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RawDataError(f"{path}: not a readable CSV file ({reason})") from None


def check_columns(path: Path, header: Iterable[str], needed: Sequence[str]) -> None:
    present = set(header)
    missing = [c for c in needed if c not in present]
    if missing:
        more = f" (and {len(missing) - 1} more: {', '.join(missing[1:6])})" if len(missing) > 1 else ""
        raise MissingColumnError(f"{path}: required column {missing[0]} is missing{more}")


def scan_table(
    raw_dir: Path, table: RawTable, columns: Sequence[str] | None = None
) -> tuple[pl.LazyFrame, Path] | None:
    """Lazy frame of ``columns`` (default: every spec column) of a table, or None if the file is absent.

    Raises :class:`MissingFileError` for an absent required table and :class:`MissingColumnError`
    when the header lacks a needed column. Values are parsed lazily: a bad number surfaces as a polars
    error when the frame is collected (the build wraps it into a ``RawDataError`` naming the file).
    """
    path = require_file(raw_dir, table) if table.required else find_file(raw_dir, table)
    if path is None:
        return None
    needed = list(columns) if columns is not None else list(table.columns)
    check_columns(path, read_header(path), needed)
    lf = pl.scan_csv(
        path,
        infer_schema=False,
        schema_overrides={c: table.read_dtype(c) for c in needed},
        null_values=[""],
    ).select(needed)
    return lf, path
