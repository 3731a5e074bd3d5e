"""The lean application validator never disagrees with pydantic (it only ever skips work)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.application_form import FORM_COLUMNS, FormColumn
from schemas.codec import parse_application
from schemas.events import MAX_AMOUNT, LoanApplication
from schemas.fast_application import fast_application

numbers = st.one_of(
    st.integers(-5, 2 * int(MAX_AMOUNT)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.0, -0.0, MAX_AMOUNT, MAX_AMOUNT + 1, 10.0, 23, 24, 2**63, 2**64]),
)
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=70), st.lists(st.integers(), max_size=2))
times = st.one_of(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1), timezones=st.just(UTC)),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1)).map(
        lambda d: d.replace(tzinfo=UTC).isoformat()
    ),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1)).map(
        lambda d: d.isoformat() + "Z"
    ),
    st.sampled_from(
        ["2026-11-21T12:00:00+02:00", "2026-01-02T03:04:05", "2026-02-30T00:00:00Z", "2026-01-01T23:59:60Z"]
    ),
    st.floats(1e9, 4e9),
    junk,
)
ids = st.one_of(st.text(min_size=0, max_size=130), junk)


def column_values(column: FormColumn) -> st.SearchStrategy[Any]:
    """Values around a column's contract: its levels or bounds and codes, just outside, other types."""
    if column.type == "category":
        return st.one_of(st.sampled_from(column.levels), st.text(max_size=70), junk, numbers)
    assert column.low is not None and column.high is not None
    edges = [column.low, column.high, *column.codes, column.low - 1, column.high + 1, column.high + 0.5]
    edges += [int(column.low), int(column.high), float(column.high), (column.low + column.high) / 2]
    edges += [float(code) for code in column.codes]
    inside = (
        st.floats(column.low, column.high)
        if column.type == "number"  # whole numbers of an integer column, as ints and as floats (10.0)
        else st.one_of(st.integers(column.low, column.high), st.integers(column.low, column.high).map(float))
    )
    return st.one_of(inside, st.sampled_from(edges), numbers, junk)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {"event_id": draw(ids), "event_time": draw(times)}
    if draw(st.booleans()):
        doc["sk_id_curr"] = draw(st.one_of(st.integers(-2, 2**64), numbers, junk))
    else:
        doc["sk_id_curr"] = draw(st.integers(1, 10**9))
    for column in draw(st.lists(st.sampled_from(FORM_COLUMNS), unique=True, max_size=30)):
        doc[column.name] = draw(column_values(column))
    if draw(st.booleans()):
        doc["application_id"] = draw(ids)
    if draw(st.booleans()):
        doc["schema_version"] = draw(st.one_of(st.integers(0, 3), numbers, junk))
    if draw(st.booleans()):
        doc["SOMETHING_NEW"] = draw(junk)
    return doc


def same_application(a: LoanApplication, b: LoanApplication) -> bool:
    fields = list(LoanApplication.model_fields)
    carried_a, carried_b = a.scoring_fields(), b.scoring_fields()  # (the fast path computes it as it checks)
    return (
        a == b
        and a.model_fields_set == b.model_fields_set
        and [k for k in a.__dict__ if k in fields] == [k for k in b.__dict__ if k in fields] == fields
        and all(type(a.__dict__[k]) is type(b.__dict__[k]) for k in fields)
        and a.event_time.tzinfo is b.event_time.tzinfo
        and carried_a == carried_b
        and all(type(carried_a[k]) is type(carried_b[k]) for k in carried_a)
    )


@settings(max_examples=600, deadline=None)
@given(documents())
def test_fast_path_accepts_only_what_pydantic_accepts_and_builds_the_same_object(doc: dict[str, Any]) -> None:
    fast = fast_application(dict(doc))
    try:
        slow = LoanApplication.model_validate(dict(doc))
    except ValidationError:
        assert fast is None, f"fast path accepted what pydantic rejects: {doc!r}"
        return
    if fast is not None:
        assert same_application(fast, slow), (doc, fast, slow)


def test_fast_path_takes_the_usual_events() -> None:
    stamp = datetime(2026, 11, 21, 12, 0, 0, 123456, tzinfo=UTC)
    doc = {
        "event_id": "e-1",
        "sk_id_curr": 100002,
        "event_time": stamp,
        "AMT_CREDIT": 1000,
        "AMT_ANNUITY": 35698.5,
        "NAME_CONTRACT_TYPE": "Cash loans",
        "HOUR_APPR_PROCESS_START": 11,
        "AMT_GOODS_PRICE": None,
    }
    for event_time in (stamp, stamp.isoformat(), "2026-11-21T12:00:00.123456Z"):
        fast = fast_application({**doc, "event_time": event_time})
        assert fast is not None
        assert same_application(fast, LoanApplication.model_validate({**doc, "event_time": event_time}))
    assert fast is not None and fast.AMT_CREDIT == 1000.0 and type(fast.AMT_CREDIT) is float
    assert fast.key == "e-1" and fast.scoring_fields()["AMT_GOODS_PRICE"] is None
    floats = fast_application({**doc, "sk_id_curr": 100002.0, "HOUR_APPR_PROCESS_START": 11.0})
    assert floats is not None and same_application(floats, fast)


def test_fast_path_takes_a_whole_application_form() -> None:
    form: dict[str, Any] = {}
    for c in FORM_COLUMNS:
        if c.type == "category":
            form[c.name] = c.levels[-1]
        elif c.codes:
            form[c.name] = c.codes[0]  # DAYS_EMPLOYED 365243: the source's own code
        else:
            form[c.name] = c.high if c.type == "number" else int(c.low or 0)
    form["CODE_GENDER"] = "XNA"  # outside the vocabulary: valid, scored as missing
    doc = {"event_id": "e-2", "sk_id_curr": 100002, "event_time": "2026-01-01T00:00:00Z", **form}
    fast = fast_application(dict(doc))
    assert fast is not None and same_application(fast, LoanApplication.model_validate(doc))
    assert fast.scoring_fields() == form and fast.schema_version == 2


def test_fast_path_declines_what_it_cannot_judge() -> None:
    base = {"event_id": "e", "sk_id_curr": 1, "event_time": "2026-01-01T00:00:00Z"}
    for extra in (
        {"sk_id_curr": 1.5},
        {"HOUR_APPR_PROCESS_START": 23.5},
        {"event_time": 1_700_000_000.5},  # numeric time: pydantic's own rounding
        {"event_time": "2026-01-01T00:00:00+02:00"},
        {"AMT_CREDIT": -1},
        {"AMT_CREDIT": float("nan")},
        {"HOUR_APPR_PROCESS_START": True},
        {"schema_version": 3},
        {"DAYS_BIRTH": 1},
        {"DAYS_EMPLOYED": 10},
        {"EXT_SOURCE_1": 1.01},
        {"FLAG_DOCUMENT_3": 2},
        {"CNT_CHILDREN": 1.5},
        {"CODE_GENDER": 1},
    ):
        assert fast_application({**base, **extra}) is None, extra
    assert fast_application({"sk_id_curr": 1, "event_time": "2026-01-01T00:00:00Z"}) is None


@settings(max_examples=200, deadline=None)
@given(documents(), st.floats(1.6e9, 1.9e9))
def test_codec_results_do_not_depend_on_the_path(doc: dict[str, Any], record_time: float) -> None:
    del doc["event_time"]
    raw = json.dumps(doc, default=str).encode()
    try:
        via_codec = parse_application(raw, 64 * 1024, record_time=record_time)
    except Exception:
        return  # rejections are pydantic's (covered by test_schemas_codec)
    again = LoanApplication.model_validate(
        {**orjson.loads(raw), "event_id": via_codec.event_id, "event_time": via_codec.event_time}
    )
    assert same_application(via_codec, again)
