"""parse_application: each bad input is one InvalidEvent (bounded kind, message naming the field)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.application_form import FORM_COLUMNS
from schemas.codec import encode_application, parse_application
from schemas.events import APPLICATION_FIELDS, MAX_AMOUNT, V1_FIELDS, LoanApplication
from schemas.exceptions import ErrorKind, InvalidEvent

LIMIT = 64 * 1024
ENVELOPE = ("event_id", "application_id", "sk_id_curr", "event_time", "schema_version")


def parse(doc: object, **kw: object) -> LoanApplication:
    return parse_application(orjson.dumps(doc), LIMIT, **kw)  # type: ignore[arg-type]


def kind_of(raw: bytes, limit: int = LIMIT) -> tuple[ErrorKind, str]:
    with pytest.raises(InvalidEvent) as info:
        parse_application(raw, limit)
    return info.value.kind, info.value.message


def test_minimal_event_is_valid_and_gets_ids_and_time() -> None:
    app = parse({"sk_id_curr": 100002}, record_time=1_700_000_000.5)
    assert app.sk_id_curr == 100002
    assert app.event_time == datetime.fromtimestamp(1_700_000_000.5, UTC)
    assert len(app.event_id) == 32 and app.application_id == app.event_id == app.key
    assert app.scoring_fields() == {}
    assert app.schema_version == 2


def test_derived_event_id_is_stable_for_a_redelivered_record() -> None:
    raw = b'{"sk_id_curr": 5, "AMT_CREDIT": 1000}'
    a = parse_application(raw, LIMIT, record_time=1_700_000_000.0)
    b = parse_application(raw, LIMIT, record_time=1_700_000_000.0)
    c = parse_application(raw, LIMIT, record_time=1_700_000_001.0)  # another record with the same bytes
    assert a.event_id == b.event_id != c.event_id
    assert parse({"sk_id_curr": 5, "event_id": "e-1"}).event_id == "e-1"
    assert parse({"sk_id_curr": 5, "event_id": "e-1", "application_id": "a-9"}).key == "a-9"


def test_full_event_with_raw_column_names() -> None:
    doc = {
        "event_id": "e-42",
        "application_id": "app-42",
        "sk_id_curr": 100003,
        "event_time": "2026-11-21T12:00:00+02:00",
        "NAME_CONTRACT_TYPE": "Cash loans",
        "AMT_INCOME_TOTAL": 270000,
        "AMT_CREDIT": 1293502.5,
        "AMT_ANNUITY": 35698.5,
        "AMT_GOODS_PRICE": None,
        "NAME_TYPE_SUITE": "Family",
        "WEEKDAY_APPR_PROCESS_START": "MONDAY",
        "HOUR_APPR_PROCESS_START": 11,
        "SOMETHING_NEW": [1, 2],  # extra fields are ignored
    }
    app = parse(doc)
    assert app.event_time == datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    assert app.event_time.tzinfo is UTC
    fields = app.scoring_fields()
    assert set(fields) == set(V1_FIELDS)  # all carried, AMT_GOODS_PRICE as an explicit null
    assert fields["AMT_GOODS_PRICE"] is None and fields["AMT_INCOME_TOTAL"] == 270000.0
    assert not hasattr(app, "SOMETHING_NEW")


def test_version_1_events_are_still_read() -> None:
    app = parse({"sk_id_curr": 5, "schema_version": 1, "AMT_CREDIT": 1000})
    assert app.schema_version == 1 and app.scoring_fields() == {"AMT_CREDIT": 1000.0}


def test_the_whole_application_form() -> None:
    form = {
        "CODE_GENDER": "F", "FLAG_OWN_CAR": "N", "CNT_CHILDREN": 0, "DAYS_BIRTH": -19241,
        "DAYS_EMPLOYED": 365243, "REGION_RATING_CLIENT_W_CITY": -1, "EXT_SOURCE_2": 0.789654,
        "OWN_CAR_AGE": None, "FLAG_DOCUMENT_3": 1, "AMT_REQ_CREDIT_BUREAU_YEAR": 0.0,
        "ORGANIZATION_TYPE": "XNA", "NAME_INCOME_TYPE": "Astronaut",  # outside the vocabulary: missing
    }  # fmt: skip
    app = parse({"sk_id_curr": 100001, **form})
    fields = app.scoring_fields()
    assert fields == form and set(fields) <= set(APPLICATION_FIELDS)
    assert type(fields["AMT_REQ_CREDIT_BUREAU_YEAR"]) is int  # a count, sent as 0.0 by a float column
    assert len(APPLICATION_FIELDS) == 120 and set(V1_FIELDS) < set(APPLICATION_FIELDS)


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("DAYS_BIRTH", 10, ErrorKind.OUT_OF_RANGE),  # a birth after the application
        ("DAYS_EMPLOYED", 15, ErrorKind.OUT_OF_RANGE),  # only the source's code is positive
        ("EXT_SOURCE_1", 1.2, ErrorKind.OUT_OF_RANGE),  # normalised
        ("FLAG_DOCUMENT_3", 2, ErrorKind.OUT_OF_RANGE),
        ("REGION_RATING_CLIENT", 4, ErrorKind.OUT_OF_RANGE),
        ("CNT_CHILDREN", -1, ErrorKind.OUT_OF_RANGE),
        ("CNT_CHILDREN", 1.5, ErrorKind.SCHEMA),
        ("CODE_GENDER", 1, ErrorKind.SCHEMA),
        ("OWN_CAR_AGE", "3", ErrorKind.SCHEMA),
    ],
)
def test_a_bad_form_value_names_its_field(field: str, value: object, kind: ErrorKind) -> None:
    got, message = kind_of(orjson.dumps({"sk_id_curr": 1, "AMT_CREDIT": 1000.0, field: value}))
    assert got is kind and f"field {field!r}" in message


def test_whole_numbers_may_arrive_as_integral_floats() -> None:
    app = parse({"sk_id_curr": 100002.0, "HOUR_APPR_PROCESS_START": 10.0})
    assert app.sk_id_curr == 100002 and app.HOUR_APPR_PROCESS_START == 10
    assert isinstance(app.sk_id_curr, int) and isinstance(app.HOUR_APPR_PROCESS_START, int)


def test_naive_event_time_is_utc() -> None:
    app = parse({"sk_id_curr": 1, "event_time": "2026-01-02T03:04:05"})
    assert app.event_time == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "kind", "names"),
    [
        (b'{"sk_id_curr": 1, "AMT_CREDIT": NaN}', ErrorKind.NON_FINITE, "NaN"),
        (b'{"sk_id_curr": 1, "AMT_CREDIT": Infinity}', ErrorKind.NON_FINITE, "NaN/Infinity"),
        (b'{"sk_id_curr": 1, "AMT_CREDIT": 1e400}', ErrorKind.NON_FINITE, "infinity"),
        (b'{"sk_id_curr": 1, "AMT_CREDIT": -1}', ErrorKind.OUT_OF_RANGE, "'AMT_CREDIT'"),
        (b'{"sk_id_curr": 1, "AMT_ANNUITY": 2e9}', ErrorKind.OUT_OF_RANGE, "'AMT_ANNUITY'"),
        (
            b'{"sk_id_curr": 1, "HOUR_APPR_PROCESS_START": 24}',
            ErrorKind.OUT_OF_RANGE,
            "'HOUR_APPR_PROCESS_START'",
        ),
        (b'{"sk_id_curr": 0}', ErrorKind.OUT_OF_RANGE, "'sk_id_curr'"),
        (b'{"sk_id_curr": 1, "event_time": "1970-01-01T00:00:00Z"}', ErrorKind.OUT_OF_RANGE, "'event_time'"),
        (b'{"sk_id_curr": 1, "schema_version": 3}', ErrorKind.UNSUPPORTED_VERSION, "schema_version 3"),
        (b'{"sk_id_curr": 1, "AMT_CREDIT": "1000"}', ErrorKind.SCHEMA, "'AMT_CREDIT'"),
        (b'{"sk_id_curr": true}', ErrorKind.SCHEMA, "'sk_id_curr'"),
        (b'{"sk_id_curr": 1.5}', ErrorKind.SCHEMA, "'sk_id_curr'"),
        (b'{"sk_id_curr": "7"}', ErrorKind.SCHEMA, "'sk_id_curr'"),
        (b'{"sk_id_curr": 1, "HOUR_APPR_PROCESS_START": "9"}', ErrorKind.SCHEMA, "'HOUR_APPR_PROCESS_START'"),
        (b'{"sk_id_curr": 1, "HOUR_APPR_PROCESS_START": 9.5}', ErrorKind.SCHEMA, "'HOUR_APPR_PROCESS_START'"),
        (b'{"sk_id_curr": 1, "NAME_CONTRACT_TYPE": 3}', ErrorKind.SCHEMA, "'NAME_CONTRACT_TYPE'"),
        (b'{"sk_id_curr": 1, "event_time": "yesterday"}', ErrorKind.SCHEMA, "'event_time'"),
        (b'{"sk_id_curr": 1, "event_id": ""}', ErrorKind.SCHEMA, "'event_id'"),
        (b'{"AMT_CREDIT": 1}', ErrorKind.SCHEMA, "'sk_id_curr': Field required"),
        (b"[1, 2]", ErrorKind.SCHEMA, "JSON object, got an array"),
        (b'"text"', ErrorKind.SCHEMA, "got a string"),
        (b"null", ErrorKind.SCHEMA, "got null"),
        (b'{"sk_id_curr": 1', ErrorKind.BAD_JSON, "invalid JSON"),
        (b"", ErrorKind.BAD_JSON, "empty payload"),
        (b"\xff\xfe{}", ErrorKind.BAD_ENCODING, "not UTF-8"),
    ],
)
def test_each_bad_input_has_its_kind_and_names_the_field(raw: bytes, kind: ErrorKind, names: str) -> None:
    got_kind, message = kind_of(raw)
    assert got_kind is kind
    assert names in message


def test_oversized_and_null_payloads() -> None:
    kind, message = kind_of(b'{"sk_id_curr": 1}' + b" " * 300, limit=256)
    assert kind is ErrorKind.OVERSIZED and "256-byte limit" in message
    with pytest.raises(InvalidEvent) as info:
        parse_application(None, LIMIT)
    assert info.value.kind is ErrorKind.BAD_JSON


def test_several_errors_are_counted_and_version_error_wins() -> None:
    kind, message = kind_of(b'{"sk_id_curr": -1, "AMT_CREDIT": -1, "schema_version": 7}')
    assert kind is ErrorKind.UNSUPPORTED_VERSION and "2 more error(s)" in message


def test_long_inputs_are_shortened_in_messages() -> None:
    _, message = kind_of(orjson.dumps({"sk_id_curr": 1, "NAME_TYPE_SUITE": "x" * 5000}))
    assert len(message) < 200


# --- property tests: total over arbitrary input --------------------------------------------------------
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from((*ENVELOPE, *APPLICATION_FIELDS, "other"))


def _check_total(raw: bytes) -> None:
    try:
        app = parse_application(raw, 4096, record_time=1_700_000_000.0)
    except InvalidEvent as exc:
        assert isinstance(exc.kind, ErrorKind) and exc.message
        return
    # a valid event honours every constraint of the contract
    assert app.sk_id_curr > 0 and app.event_time.tzinfo is UTC and app.application_id
    for column in FORM_COLUMNS:
        value = getattr(app, column.name)
        if value is None:
            continue
        if column.type == "category":
            assert isinstance(value, str)
        else:
            assert type(value) is (float if column.type == "number" else int)
            assert math.isfinite(value) and column.accepts(value), (column.name, value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_invalid_event(raw: bytes) -> None:
    _check_total(raw)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_never_raises_anything_but_invalid_event(doc: object) -> None:
    _check_total(json.dumps(doc).encode())  # json.dumps writes NaN/Infinity, as careless producers do


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(field_names, json_values, max_size=8), st.integers(1, 10**12))
def test_event_shaped_json_is_valid_or_one_invalid_event(doc: dict[str, object], sk_id: int) -> None:
    doc.setdefault("sk_id_curr", sk_id)
    _check_total(json.dumps(doc).encode())


valid_events = st.fixed_dictionaries(
    {"sk_id_curr": st.integers(1, 2**63 - 1)},
    optional={
        "event_id": st.text(min_size=1, max_size=20),
        "event_time": st.datetimes(
            min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC)
        ).map(lambda d: d.isoformat()),
        "AMT_CREDIT": st.one_of(st.none(), st.floats(0, MAX_AMOUNT), st.integers(0, 10**9)),
        "AMT_INCOME_TOTAL": st.floats(0, MAX_AMOUNT),
        "NAME_CONTRACT_TYPE": st.one_of(st.none(), st.sampled_from(["Cash loans", "Revolving loans"])),
        "HOUR_APPR_PROCESS_START": st.integers(0, 23),
    },
)


@settings(max_examples=150, deadline=None)
@given(valid_events)
def test_valid_events_round_trip_through_the_producer_encoding(doc: dict[str, object]) -> None:
    app = parse(doc, record_time=1_700_000_000.0)
    again = parse_application(encode_application(app), LIMIT)
    assert again == app
    assert again.scoring_fields() == app.scoring_fields()
    assert set(app.scoring_fields()) == set(doc) & set(APPLICATION_FIELDS)


def test_default_time_without_record_time_is_now() -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert parse({"sk_id_curr": 3}).event_time >= before
    assert parse({"sk_id_curr": 3}, record_time=-0.001).event_time >= before  # Kafka's "no timestamp"
