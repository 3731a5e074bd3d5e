"""Feature build on tiny hand-made tables: aggregates checked by value, the contract, pinning, errors."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from feature_loader import application
from feature_loader.build import (
    BUILD_INFO_FILE,
    FAMILIES,
    FEATURES_FILE,
    SCHEMA_FILE,
    build_features,
    feature_schema,
)
from feature_loader.cli import app
from feature_loader.derived import DERIVED, apply_derived
from feature_loader.exceptions import FeatureContractError, MissingColumnError, MissingFileError, RawDataError
from feature_loader.feature_schema import FeatureField, FeatureSchema, FeatureSource
from feature_loader.raw_tables import (
    APPLICATION_TEST,
    APPLICATION_TRAIN,
    BUREAU,
    BUREAU_BALANCE,
    CREDIT_CARD_BALANCE,
    INSTALLMENTS_PAYMENTS,
    POS_CASH_BALANCE,
    PREVIOUS_APPLICATION,
    RawTable,
)
from schemas.application_form import LEVELS
from schemas.events import APPLICATION_FIELDS

Row = dict[str, object]
A, B, C = 100001, 100002, 100003  # A: full history (train), B: no history (train), C: test


def write_table(raw: Path, table: RawTable, rows: list[Row], gz: bool = False, drop: str = "") -> Path:
    """Write rows with every spec column (unset → empty = missing), optionally gzipped / minus a column."""
    columns = [c for c in table.columns if c != drop]
    path = raw / f"{table.name}.csv{'.gz' if gz else ''}"
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="") as fh:  # type: ignore[operator]
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in columns})
    return path


def app_row(sk: int, **values: object) -> Row:
    base: Row = {
        "SK_ID_CURR": sk, "NAME_CONTRACT_TYPE": "Cash loans", "CODE_GENDER": "F", "AMT_INCOME_TOTAL": 100000,
        "AMT_CREDIT": 250000, "AMT_ANNUITY": 12500, "AMT_GOODS_PRICE": 200000, "CNT_FAM_MEMBERS": 2,
        "DAYS_BIRTH": -12000, "DAYS_EMPLOYED": -3000, "EXT_SOURCE_1": 0.2, "EXT_SOURCE_2": 0.5,
        "WEEKDAY_APPR_PROCESS_START": "MONDAY", "HOUR_APPR_PROCESS_START": 10,
        "FLAG_DOCUMENT_3": 1, "FLAG_DOCUMENT_5": 1,
    }  # fmt: skip
    return base | values


def write_applications(raw: Path, gz: bool = False, **kw: object) -> None:
    write_table(
        raw,
        APPLICATION_TRAIN,
        [
            app_row(A, TARGET=1, **({"ORGANIZATION_TYPE": "School"} | kw)),
            app_row(B, TARGET=0, CODE_GENDER="XNA", DAYS_EMPLOYED=365243, ORGANIZATION_TYPE="XNA"),
        ],
        gz=gz,
    )
    write_table(
        raw,
        APPLICATION_TEST,
        [app_row(C, NAME_CONTRACT_TYPE="Revolving loans", CODE_GENDER="M", AMT_INCOME_TOTAL=0)],
        gz=gz,
    )


def write_history(raw: Path) -> None:
    write_table(
        raw,
        INSTALLMENTS_PAYMENTS,
        [  # 3 instalments of A: #1 on time, #2 five days late, #3 under-paid by 100 (paid in two rows)
            {"SK_ID_PREV": 1, "SK_ID_CURR": A, "NUM_INSTALMENT_VERSION": 1, "NUM_INSTALMENT_NUMBER": 1,
             "DAYS_INSTALMENT": -100, "DAYS_ENTRY_PAYMENT": -102, "AMT_INSTALMENT": 1000,
             "AMT_PAYMENT": 1000},
            {"SK_ID_PREV": 1, "SK_ID_CURR": A, "NUM_INSTALMENT_VERSION": 1, "NUM_INSTALMENT_NUMBER": 2,
             "DAYS_INSTALMENT": -70, "DAYS_ENTRY_PAYMENT": -65, "AMT_INSTALMENT": 1000, "AMT_PAYMENT": 1000},
            {"SK_ID_PREV": 1, "SK_ID_CURR": A, "NUM_INSTALMENT_VERSION": 1, "NUM_INSTALMENT_NUMBER": 3,
             "DAYS_INSTALMENT": -40, "DAYS_ENTRY_PAYMENT": -45, "AMT_INSTALMENT": 1000, "AMT_PAYMENT": 500},
            {"SK_ID_PREV": 1, "SK_ID_CURR": A, "NUM_INSTALMENT_VERSION": 1, "NUM_INSTALMENT_NUMBER": 3,
             "DAYS_INSTALMENT": -40, "DAYS_ENTRY_PAYMENT": -40, "AMT_INSTALMENT": 1000, "AMT_PAYMENT": 400},
        ],
    )  # fmt: skip
    write_table(
        raw,
        BUREAU,
        [
            {"SK_ID_CURR": A, "SK_ID_BUREAU": 11, "CREDIT_ACTIVE": "Active", "DAYS_CREDIT": -200,
             "AMT_CREDIT_SUM": 1000, "AMT_CREDIT_SUM_DEBT": 400, "AMT_ANNUITY": 50,
             "CREDIT_TYPE": "Consumer credit"},
            {"SK_ID_CURR": A, "SK_ID_BUREAU": 12, "CREDIT_ACTIVE": "Closed", "DAYS_CREDIT": -900,
             "AMT_CREDIT_SUM": 3000, "AMT_CREDIT_SUM_DEBT": 0, "CREDIT_TYPE": "Credit card"},
        ],
    )  # fmt: skip
    write_table(
        raw,
        BUREAU_BALANCE,
        [
            {"SK_ID_BUREAU": 11, "MONTHS_BALANCE": 0, "STATUS": "0"},
            {"SK_ID_BUREAU": 11, "MONTHS_BALANCE": -1, "STATUS": "2"},
            {"SK_ID_BUREAU": 11, "MONTHS_BALANCE": -2, "STATUS": "X"},
            {"SK_ID_BUREAU": 12, "MONTHS_BALANCE": -30, "STATUS": "C"},
            {"SK_ID_BUREAU": 99, "MONTHS_BALANCE": -1, "STATUS": "5"},  # no bureau row: ignored
        ],
    )
    write_table(
        raw,
        PREVIOUS_APPLICATION,
        [
            {"SK_ID_PREV": 1, "SK_ID_CURR": A, "NAME_CONTRACT_STATUS": "Approved", "AMT_APPLICATION": 900,
             "AMT_CREDIT": 1000, "DAYS_DECISION": -300, "DAYS_TERMINATION": 365243,
             "NAME_CONTRACT_TYPE": "Consumer loans"},
            {"SK_ID_PREV": 2, "SK_ID_CURR": A, "NAME_CONTRACT_STATUS": "Refused", "AMT_APPLICATION": 5000,
             "AMT_CREDIT": 0, "DAYS_DECISION": -20, "DAYS_TERMINATION": -10, "NAME_CONTRACT_TYPE": "XNA"},
        ],
    )  # fmt: skip
    write_table(
        raw,
        POS_CASH_BALANCE,
        [
            {"SK_ID_PREV": 1, "SK_ID_CURR": A, "MONTHS_BALANCE": -2, "CNT_INSTALMENT_FUTURE": 4,
             "NAME_CONTRACT_STATUS": "Active", "SK_DPD": 0, "SK_DPD_DEF": 0},
            {"SK_ID_PREV": 1, "SK_ID_CURR": A, "MONTHS_BALANCE": -1, "CNT_INSTALMENT_FUTURE": 3,
             "NAME_CONTRACT_STATUS": "Active", "SK_DPD": 7, "SK_DPD_DEF": 0},
        ],
    )  # fmt: skip
    write_table(
        raw,
        CREDIT_CARD_BALANCE,
        [
            {"SK_ID_PREV": 5, "SK_ID_CURR": A, "MONTHS_BALANCE": -1, "AMT_BALANCE": 500,
             "AMT_CREDIT_LIMIT_ACTUAL": 1000, "SK_DPD": 0, "NAME_CONTRACT_STATUS": "Active"},
            {"SK_ID_PREV": 5, "SK_ID_CURR": A, "MONTHS_BALANCE": -2, "AMT_BALANCE": 100,
             "AMT_CREDIT_LIMIT_ACTUAL": 0, "SK_DPD": 3, "NAME_CONTRACT_STATUS": "Active"},
        ],
    )  # fmt: skip


@pytest.fixture
def raw(tmp_path: Path) -> Path:
    d = tmp_path / "raw"
    d.mkdir()
    write_applications(d)
    write_history(d)
    return d


def build(raw: Path, out: Path) -> tuple[dict[int, dict[str, Any]], FeatureSchema]:
    build_features(raw, out)
    df = pl.read_parquet(out / FEATURES_FILE)
    return {r["SK_ID_CURR"]: r for r in df.iter_rows(named=True)}, FeatureSchema.load(out / SCHEMA_FILE)


def test_installment_aggregates_by_value(raw: Path, tmp_path: Path) -> None:
    rows, _ = build(raw, tmp_path / "out")
    a = rows[A]
    assert a["INST_COUNT"] == 3  # the split payment of #3 counts as one instalment
    assert a["INST_LATE_COUNT"] == 1
    assert a["INST_DAYS_LATE_SUM"] == 5 and a["INST_DAYS_LATE_MAX"] == 5
    assert a["INST_LATE_SHARE"] == pytest.approx(1 / 3)
    assert a["INST_UNDERPAID_COUNT"] == 1
    assert a["INST_UNDERPAID_AMT_SUM"] == 100
    assert a["INST_AMT_PAYMENT_SUM"] == 2900
    assert a["INST_PAYMENT_RATIO_MIN"] == pytest.approx(0.9)
    assert a["INST_PAYMENTS_PER_INSTALMENT_MEAN"] == pytest.approx(4 / 3)
    assert a["INST_DAYS_EARLY_MAX"] == 2


def test_bureau_previous_pos_and_card_aggregates_by_value(raw: Path, tmp_path: Path) -> None:
    a = build(raw, tmp_path / "out")[0][A]
    assert (a["BURO_COUNT"], a["BURO_ACTIVE_COUNT"], a["BURO_CLOSED_SHARE"]) == (2, 1, 0.5)
    assert (a["BURO_ACTIVE_DEBT_SUM"], a["BURO_ACTIVE_CREDIT_SUM"], a["BURO_AMT_CREDIT_SUM_SUM"]) == (
        400,
        1000,
        4000,
    )
    assert a["BURO_DAYS_CREDIT_MIN"] == -900 and a["BURO_TYPE_CARD_SHARE"] == 0.5
    assert a["BURO_BB_STATUS_MAX"] == 2  # the orphan bureau_balance row (status 5) is ignored
    assert a["BURO_BB_MONTHS_MEAN"] == 2  # (3 + 1) / 2 credits
    assert a["BURO_BB_LATE_SHARE_MAX"] == pytest.approx(1 / 2)  # X is unknown, not on time
    assert a["BURO_BB_CREDITS_EVER_LATE"] == 1
    assert (a["PREV_COUNT"], a["PREV_APPROVED_SHARE"], a["PREV_REFUSED_COUNT"]) == (2, 0.5, 1)
    assert a["PREV_APP_CREDIT_RATIO_MEAN"] == pytest.approx(0.9)  # the 0-credit row is ignored
    assert a["PREV_DAYS_TERMINATION_MAX"] == -10  # 365243 means "not applicable"
    assert a["PREV_CONSUMER_SHARE"] == 1.0  # XNA contract type is missing, not a level
    assert a["PREV_REFUSED_AMT_APPLICATION_MAX"] == 5000
    assert (a["POS_MONTHS_COUNT"], a["POS_SK_DPD_MAX"], a["POS_REMAINING_INSTALMENTS_SUM"]) == (2, 7, 3)
    assert a["POS_DPD_MONTHS_SHARE"] == 0.5
    assert a["CC_UTILISATION_MEAN"] == 0.5  # the zero-limit month has no utilisation
    assert (a["CC_SK_DPD_MAX"], a["CC_DPD_SHARE"], a["CC_CARDS_COUNT"]) == (3, 0.5, 1)


def test_clients_without_history_get_nan_and_ids_target_split(raw: Path, tmp_path: Path) -> None:
    rows, schema = build(raw, tmp_path / "out")
    assert sorted(rows) == [A, B, C]
    assert [rows[k]["TARGET"] for k in (A, B, C)] == [1, 0, None]
    assert [rows[k]["IS_TRAIN"] for k in (A, B, C)] == [True, True, False]
    related = [f.name for f in schema.fields if f.name.split("_")[0] in {"BURO", "PREV", "POS", "INST", "CC"}]
    assert len(related) > 100
    assert all(math.isnan(rows[B][n]) for n in related)


def test_application_columns_as_the_event_carries_them(raw: Path, tmp_path: Path) -> None:
    rows, schema = build(raw, tmp_path / "out")
    gender = schema.field("CODE_GENDER")
    assert gender.categories == LEVELS["CODE_GENDER"] == ("F", "M")  # XNA is missing, not a level
    assert math.isnan(rows[B]["CODE_GENDER"]) and rows[C]["CODE_GENDER"] == 1.0
    organisation = schema.field("ORGANIZATION_TYPE")
    assert organisation.categories == LEVELS["ORGANIZATION_TYPE"]  # the contract's, not the rows'
    assert rows[A]["ORGANIZATION_TYPE"] == organisation.categories.index("School")
    assert math.isnan(rows[B]["ORGANIZATION_TYPE"])  # XNA
    # numbers as sent, the code included; what the code means is derived
    assert rows[B]["DAYS_EMPLOYED"] == 365243 and rows[B]["DAYS_EMPLOYED_ANOM"] == 1.0
    assert math.isnan(rows[B]["EMPLOYED_AGE_RATIO"])  # the code is not a number of days
    assert rows[A]["DAYS_EMPLOYED"] == -3000 and rows[A]["DAYS_EMPLOYED_ANOM"] == 0.0
    assert rows[A]["EMPLOYED_AGE_RATIO"] == pytest.approx(0.25)
    assert rows[A]["DOCUMENT_COUNT"] == 2
    contract = schema.field("NAME_CONTRACT_TYPE")
    assert rows[C]["NAME_CONTRACT_TYPE"] == contract.encode("Revolving loans") == 1.0
    assert contract.decode(rows[A]["NAME_CONTRACT_TYPE"]) == "Cash loans"


def test_a_level_outside_the_vocabulary_is_missing(raw: Path, tmp_path: Path) -> None:
    first = build(raw, tmp_path / "a")[1]
    write_applications(raw, ORGANIZATION_TYPE="Space agency", NAME_INCOME_TYPE="Maternity leave")
    rows, second = build(raw, tmp_path / "b")
    assert second == first  # same schema, same version, whatever the levels of the rows
    assert math.isnan(rows[A]["ORGANIZATION_TYPE"])
    assert second.field("NAME_INCOME_TYPE").decode(rows[A]["NAME_INCOME_TYPE"]) == "Maternity leave"


def test_derived_columns_are_those_of_apply_derived(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rows, schema = build(raw, out)
    assert rows[A]["CREDIT_INCOME_RATIO"] == pytest.approx(2.5)
    assert rows[A]["EXT_SOURCE_MEAN"] == pytest.approx(0.35)
    assert math.isnan(rows[C]["CREDIT_INCOME_RATIO"])  # income 0: NaN, never inf
    assert rows[A]["BURO_ACTIVE_DEBT_INCOME_RATIO"] == pytest.approx(0.004)
    df = pl.read_parquet(out / FEATURES_FILE)
    matrix = df.select(schema.names).to_numpy().astype(np.float32)
    stored = matrix.copy()
    matrix[:, [schema.index[d.name] for d in DERIVED]] = 0.0
    apply_derived(matrix, schema)
    assert matrix.view(np.uint32).tolist() == stored.view(np.uint32).tolist()


def test_output_files_dtypes_and_order(raw: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build_features(raw, out)
    df = pl.read_parquet(out / FEATURES_FILE)
    schema = FeatureSchema.load(out / SCHEMA_FILE)
    assert df.columns == ["SK_ID_CURR", "TARGET", "IS_TRAIN", *schema.names]
    assert (df.schema["SK_ID_CURR"], df.schema["TARGET"], df.schema["IS_TRAIN"]) == (
        pl.Int64,
        pl.Int8,
        pl.Boolean,
    )
    assert {df.schema[n] for n in schema.names} == {pl.Float32}
    info = pl.read_json(out / BUILD_INFO_FILE).row(0, named=True)
    assert (info["rows"], info["train_rows"], info["test_rows"]) == (3, 2, 1)
    assert info["schema_version"] == schema.version
    assert 200 <= len(schema) <= 300


def test_event_cached_derived_split(raw: Path, tmp_path: Path) -> None:
    _, schema = build(raw, tmp_path / "out")
    event = [f.name for f in schema.event_fields]
    assert event == list(application.FEATURES)  # every application feature arrives with the event
    assert set(event) <= set(APPLICATION_FIELDS) and {"EXT_SOURCE_1", "DAYS_BIRTH", "CODE_GENDER"} <= set(
        event
    )
    assert not {"APARTMENTS_MODE", "APARTMENTS_MEDI", "FLAG_MOBIL"} & set(event)  # near-duplicates
    assert [f.name for f in schema.derived_fields] == [d.name for d in DERIVED]
    derived = {f.name for f in schema.derived_fields}
    for d in DERIVED:  # pure functions of non-derived features of the schema
        assert set(d.inputs) <= set(schema.names) - derived, d.name
    for name in ("CREDIT_INCOME_RATIO", "ANNUITY_INCOME_RATIO", "CREDIT_ANNUITY_RATIO", "CREDIT_GOODS_RATIO"):
        spec = next(d for d in DERIVED if d.name == name)
        assert set(spec.inputs) & set(event), f"{name} must use the requested amounts of the event"
    cached = {f.name for f in schema.cached_fields}  # the client's history, known before the application
    assert cached.isdisjoint(set(event) | derived) and len(cached) + len(event) + len(derived) == len(schema)
    assert {n.split("_")[0] for n in cached} == {"BURO", "PREV", "POS", "INST", "CC"}


def test_schema_version_stable_across_runs_and_rows(raw: Path, tmp_path: Path) -> None:
    _, first = build(raw, tmp_path / "a")
    _, second = build(raw, tmp_path / "b")
    assert first.version == second.version == feature_schema().version
    assert (tmp_path / "a" / SCHEMA_FILE).read_bytes() == (tmp_path / "b" / SCHEMA_FILE).read_bytes()
    write_applications(raw, ORGANIZATION_TYPE="Bank")  # other levels in the rows: same schema
    assert build(raw, tmp_path / "c")[1].version == first.version


def test_a_build_pinned_to_a_schema_writes_that_schema(raw: Path, tmp_path: Path) -> None:
    own = feature_schema()
    pinned = FeatureSchema(
        fields=(
            own.field("EXT_SOURCE_1"),
            own.field("AMT_CREDIT"),
            own.field("AMT_INCOME_TOTAL"),
            own.field("CODE_GENDER").model_copy(update={"categories": ("M", "F")}),  # another order
            own.field("BURO_COUNT"),
            own.field("CREDIT_INCOME_RATIO"),
        )
    )
    result = build_features(raw, tmp_path / "out", pinned=pinned)
    assert result.schema == pinned and result.pinned
    df = pl.read_parquet(tmp_path / "out" / FEATURES_FILE)
    assert df.columns == ["SK_ID_CURR", "TARGET", "IS_TRAIN", *pinned.names]
    rows = {r["SK_ID_CURR"]: r for r in df.iter_rows(named=True)}
    assert (rows[A]["CODE_GENDER"], rows[C]["CODE_GENDER"]) == (1.0, 0.0)  # the pinned indices
    assert rows[A]["CREDIT_INCOME_RATIO"] == pytest.approx(2.5) and rows[A]["BURO_COUNT"] == 2
    info = orjson.loads((tmp_path / "out" / BUILD_INFO_FILE).read_bytes())
    assert info["schema_pinned"] is True and info["schema_version"] == pinned.version


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (FeatureField(name="NOT_A_FEATURE"), "'NOT_A_FEATURE' is not computed by this build"),
        (FeatureField(name="DAYS_BIRTH"), "'DAYS_BIRTH' is numeric/cached there but numeric/event"),
        (FeatureField(name="CREDIT_INCOME_RATIO", source=FeatureSource.DERIVED), "needs 'AMT_CREDIT'"),
    ],
)
def test_a_pin_this_code_cannot_build_is_refused(
    raw: Path, tmp_path: Path, field: FeatureField, message: str
) -> None:
    pinned = FeatureSchema(fields=(FeatureField(name="EXT_SOURCE_2", source=FeatureSource.EVENT), field))
    with pytest.raises(FeatureContractError, match=message):
        build_features(raw, tmp_path / "out", pinned=pinned)
    assert not (tmp_path / "out").exists()


def test_cli_pins_to_a_model_directory(raw: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    pinned = FeatureSchema(fields=(feature_schema().field("AMT_CREDIT"),))
    pinned.save(model / SCHEMA_FILE)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["build", "--raw", str(raw), "--out", str(out), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert f"schema {pinned.version} (pinned)" in result.output
    assert FeatureSchema.load(out / SCHEMA_FILE) == pinned
    bad = CliRunner().invoke(app, ["build", "--raw", str(raw), "--schema", str(tmp_path / "nope.json")])
    assert bad.exit_code == 2 and "nope.json: feature schema not found" in bad.output


def test_absent_optional_tables_give_nan_and_warnings(tmp_path: Path, raw: Path) -> None:
    only_apps = tmp_path / "only_apps"
    only_apps.mkdir()
    write_applications(only_apps, gz=True)
    result = build_features(only_apps, tmp_path / "out")
    assert len(result.warnings) == 5 and all("absent" in w for w in result.warnings)
    full = build_features(raw, tmp_path / "full")
    assert result.schema == full.schema  # same features, whatever the tables present
    df = pl.read_parquet(tmp_path / "out" / FEATURES_FILE)
    related = [name for family in FAMILIES for name in family.features]
    assert len(related) == len(df.columns) - 3 - len(application.FEATURES) - len(DERIVED)
    assert df.select(pl.col(related).is_nan().all()).row(0) == (True,) * len(related)
    assert df["CREDIT_INCOME_RATIO"][0] == pytest.approx(2.5)


def test_bureau_without_bureau_balance(raw: Path, tmp_path: Path) -> None:
    (raw / "bureau_balance.csv").unlink()
    result = build_features(raw, tmp_path / "out")
    assert any("bureau_balance" in w for w in result.warnings)
    a = pl.read_parquet(tmp_path / "out" / FEATURES_FILE).row(0, named=True)
    assert a["BURO_COUNT"] == 2 and math.isnan(a["BURO_BB_STATUS_MAX"])


def test_missing_required_file(raw: Path, tmp_path: Path) -> None:
    (raw / "application_test.csv").unlink()
    with pytest.raises(MissingFileError, match=r"application_test\.csv"):
        build_features(raw, tmp_path / "out")
    assert not (tmp_path / "out" / FEATURES_FILE).exists()


@pytest.mark.parametrize(
    ("table", "column"),
    [(APPLICATION_TRAIN, "TARGET"), (APPLICATION_TEST, "AMT_CREDIT"), (BUREAU, "SK_ID_BUREAU")],
)
def test_missing_column(raw: Path, tmp_path: Path, table: RawTable, column: str) -> None:
    rows = pl.read_csv(raw / f"{table.name}.csv", infer_schema=False).to_dicts()
    write_table(raw, table, rows, drop=column)
    with pytest.raises(MissingColumnError, match=rf"{table.name}\.csv: required column {column} is missing"):
        build_features(raw, tmp_path / "out")


def test_bad_values_are_clear_errors(raw: Path, tmp_path: Path) -> None:
    write_table(raw, INSTALLMENTS_PAYMENTS, [{"SK_ID_CURR": A, "SK_ID_PREV": 1, "AMT_PAYMENT": "lots"}])
    with pytest.raises(RawDataError, match=r"installments_payments\.csv: unreadable value"):
        build_features(raw, tmp_path / "out")
    write_history(raw)
    write_table(raw, APPLICATION_TRAIN, [app_row(A, TARGET=2)])
    with pytest.raises(RawDataError, match=r"application_train\.csv: TARGET must be 0 or 1, got 2"):
        build_features(raw, tmp_path / "out")
    write_table(raw, APPLICATION_TRAIN, [app_row(C, TARGET=0)])  # C is also in application_test
    with pytest.raises(RawDataError, match=f"SK_ID_CURR {C} appears more than once"):
        build_features(raw, tmp_path / "out")


def test_cli_build_and_exit_code_2_naming_the_column(raw: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["build", "--raw", str(raw), "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0, ok.output
    assert "3 clients (2 train, 1 test)" in ok.stdout
    rows = pl.read_csv(raw / "bureau.csv", infer_schema=False).to_dicts()
    write_table(raw, BUREAU, rows, drop="CREDIT_ACTIVE")
    bad = runner.invoke(app, ["build", "--raw", str(raw), "--out", str(tmp_path / "out2")])
    assert bad.exit_code == 2
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "bureau.csv: required column CREDIT_ACTIVE is missing" in lines[0]
