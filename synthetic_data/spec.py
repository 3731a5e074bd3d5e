"""Constants of the synthetic Home Credit generator: tables, full-size counts, risk loadings.

Pure module. The statistical profile (marginals learned from the real sample) lives in
``profile.json``; what cannot be learned from the partial sample (per-client history counts of the
full original files, how strongly the latent risk drives each field) is set here, in one place.
"""

from __future__ import annotations

from typing import Final

# The eight raw tables in the order the generator writes them.
TABLES: Final = (
    "application_train",
    "application_test",
    "bureau",
    "bureau_balance",
    "previous_application",
    "POS_CASH_balance",
    "installments_payments",
    "credit_card_balance",
)

# Full-size counts of the original competition files (scale = 1.0).
FULL_TRAIN: Final = 307_511
FULL_TEST: Final = 48_744

# Clients generated together; fixed so the output only depends on (seed, scale), never on memory.
CHUNK_CLIENTS: Final = 16_384
MAX_SCALE: Final = 10.0

DAYS_EMPLOYED_PENSIONER: Final = 365243
ID_CURR_START: Final = 100_002
ID_BUREAU_START: Final = 5_000_000
ID_PREV_START: Final = 1_000_000

# Per-client history counts (full original files: ~86 % of clients have bureau records, ~4.8 per client;
# ~95 % have previous applications, ~4.7 per client). Negative binomial (mean, shape) of count - 1.
BUREAU_NONE_RATE: Final = 0.14
BUREAU_EXTRA_MEAN: Final = 4.6
BUREAU_SHAPE: Final = 1.5
BUREAU_BALANCE_SHARE: Final = 0.476  # share of bureau records with monthly balance rows
BUREAU_BALANCE_MEAN: Final = 34.5  # months per bureau record with balance rows → ~27M rows
PREV_NONE_RATE: Final = 0.05
PREV_EXTRA_MEAN: Final = 3.9
PREV_SHAPE: Final = 1.2
POS_WINDOW_MEAN: Final = 21.0  # POS months = min(CNT_PAYMENT + 1, window) → ~10M rows
INSTALMENT_FACTOR: Final = 1.36  # instalments ≈ factor x POS months → ~13.6M rows
CC_MONTHS_MEAN: Final = 42.5  # months per revolving loan → ~3.8M rows
MAX_MONTHS: Final = 96

# The latent risk z ~ N(0, 1) per client. TARGET ~ Bernoulli(sigmoid(a + TARGET_SLOPE * z)), with a
# solved so the mean is the profiled positive rate.
TARGET_SLOPE: Final = 2.4

# Gaussian-copula loadings of application columns on z (sign = direction of risk: a positive loading
# puts risky clients at the high end of the column's distribution; categorical levels are ordered by
# their profiled default rate, so a positive loading puts risky clients in risky levels).
APPLICATION_LOADINGS: Final[dict[str, float]] = {
    "EXT_SOURCE_1": -0.36,
    "EXT_SOURCE_2": -0.40,
    "EXT_SOURCE_3": -0.40,
    "DAYS_BIRTH": 0.22,
    "DAYS_EMPLOYED": 0.18,
    "AMT_INCOME_TOTAL": -0.06,
    "DAYS_ID_PUBLISH": 0.10,
    "DAYS_LAST_PHONE_CHANGE": 0.10,
    "REGION_RATING_CLIENT": 0.12,
    "REGION_RATING_CLIENT_W_CITY": 0.12,
    "CODE_GENDER": 0.20,
    "NAME_EDUCATION_TYPE": 0.20,
    "NAME_INCOME_TYPE": 0.12,
    "OCCUPATION_TYPE": 0.15,
    "ORGANIZATION_TYPE": 0.12,
    "NAME_FAMILY_STATUS": 0.08,
    "FLAG_OWN_CAR": 0.08,
    "AMT_ANNUITY": 0.12,  # with AMT_CREDIT fixed: a shorter term (higher annuity / credit) is riskier
    "AMT_GOODS_PRICE/AMT_CREDIT": -0.12,
}
PENSIONER_LOADING: Final = -0.10  # pensioners default less

# Per-client behaviour in each history table: h = rho * z + sqrt(1 - rho^2) * noise; each row's event
# (late / underpaid instalment, DPD month, overdue bureau credit, refused application) has probability
# sigmoid(c + EVENT_SLOPE * h), c solved so the mean rate is the profiled one.
HISTORY_RHO: Final[dict[str, float]] = {
    "bureau": 0.6,
    "previous_application": 0.6,
    "installments_payments": 0.65,
    "POS_CASH_balance": 0.6,
    "credit_card_balance": 0.6,
}
EVENT_SLOPE: Final = 1.5
REFUSED_LOADING: Final = 0.45  # copula loading of NAME_CONTRACT_STATUS (ordered by risk) on h

# Group columns: every other column of these tables is profiled per level of the group, so quirks that
# depend on it (pensioners' DAYS_EMPLOYED = 365243 with ORGANIZATION_TYPE 'XNA'; DAYS_* null for refused
# applications; no end date for active bureau credits) come out consistent.
PENSIONER_GROUP: Final = "_PENSIONER"
APPLICATION_GROUP_COLUMNS: Final = (
    "DAYS_EMPLOYED",
    "ORGANIZATION_TYPE",
    "NAME_INCOME_TYPE",
    "OCCUPATION_TYPE",
    "FLAG_EMP_PHONE",
    "FLAG_WORK_PHONE",
    "DAYS_BIRTH",
    "AMT_INCOME_TOTAL",
    "CNT_CHILDREN",
)
TABLE_GROUP: Final[dict[str, str]] = {
    "bureau": "CREDIT_ACTIVE",
    "previous_application": "NAME_CONTRACT_STATUS",
}
# Amounts derived from another column by a profiled ratio (in this order), so the classic ratios
# (credit / application, debt / credit sum, annuity / credit) look like the real ones.
# Ratios are profiled per level of the table's group where it has one.
RATIO_COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "application": (("AMT_GOODS_PRICE", "AMT_CREDIT"),),
    "previous_application": (("AMT_CREDIT", "AMT_APPLICATION"), ("AMT_GOODS_PRICE", "AMT_APPLICATION")),
    "bureau": (("AMT_CREDIT_SUM_DEBT", "AMT_CREDIT_SUM"),),
}
# Columns drawn jointly with an anchor column (Gaussian copula; the rank correlation is profiled), so
# that e.g. a bureau credit's end and update dates follow its start, and annuities follow amounts.
COUPLED_COLUMNS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "application": (
        ("AMT_ANNUITY", "AMT_CREDIT"),
        ("AMT_INCOME_TOTAL", "AMT_CREDIT"),
        ("CNT_FAM_MEMBERS", "CNT_CHILDREN"),
    ),
    "bureau": (
        ("DAYS_ENDDATE_FACT", "DAYS_CREDIT"),
        ("DAYS_CREDIT_UPDATE", "DAYS_CREDIT"),
        ("DAYS_CREDIT_ENDDATE", "DAYS_CREDIT"),
        ("AMT_ANNUITY", "AMT_CREDIT_SUM"),
    ),
    "previous_application": (("AMT_ANNUITY", "AMT_APPLICATION"), ("CNT_PAYMENT", "AMT_APPLICATION")),
    "credit_card_balance": (
        ("AMT_PAYMENT_CURRENT", "AMT_BALANCE"),
        ("AMT_INST_MIN_REGULARITY", "AMT_BALANCE"),
    ),
}
# Coupled amounts whose ratio stays within its profiled 0.1 %-99.9 % range (annuity / credit).
BOUNDED_RATIOS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "application": (("AMT_ANNUITY", "AMT_CREDIT"),),
    "previous_application": (("AMT_ANNUITY", "AMT_CREDIT"),),
}
# Level order of NAME_CONTRACT_STATUS from safe to risky (the copula puts risky clients at the end).
PREV_STATUS_ORDER: Final = ("Approved", "Unused offer", "Canceled", "Refused")
BUREAU_DPD_STATUSES: Final = ("1", "2", "3", "4", "5")


def application_missing_block(column: str) -> str | None:
    """Application columns that are missing together in the real data (nested missingness)."""
    if column.endswith(("_AVG", "_MODE", "_MEDI")):
        return "housing"  # the 47 building-description columns
    if column.startswith("AMT_REQ_CREDIT_BUREAU_"):
        return "bureau_requests"
    return None
