"""Decision and DeadLetter records: built fast, valid against their models, round-trip through the codec."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import (
    decision_to_dict,
    decode_dead_letter,
    decode_decision,
    encode_dead_letter,
    encode_decision,
    make_dead_letter,
    parse_application,
)
from schemas.events import DeadLetter, Decision, DecisionLabel, LoanApplication
from schemas.exceptions import ErrorKind, InvalidEvent, InvalidRecord
from scoring.decision import StageTimings, build_decision, decision_bytes
from scoring.policy import RuleHit
from scoring.results import CodeReason, Reason, ScoreResult

EVENT_TIME = datetime(2026, 11, 21, 12, 0, 0, 250_000, tzinfo=UTC)


def application(**fields: object) -> LoanApplication:
    return LoanApplication.model_validate(
        {
            "event_id": "e-1",
            "application_id": "app-1",
            "sk_id_curr": 100002,
            "event_time": EVENT_TIME,
            **fields,
        }
    )


def result(decision: str = "REFUS", reasons: tuple[CodeReason, ...] | None = None) -> ScoreResult:
    if reasons is None:
        reasons = (
            CodeReason(
                "R01_EXTERNAL_SCORES",
                "External scores are low.",
                0.8,
                (Reason("EXT_SOURCE_MEAN", 0.1234, 0.8),),
            ),
            CodeReason(
                "R02_DEBT_BURDEN",
                "Debt burden.",
                0.25,
                (Reason("NAME_CONTRACT_TYPE", "Cash loans", 0.2), Reason("AMT_GOODS_PRICE", None, 0.05)),
            ),
        )
    return ScoreResult(
        sk_id_curr=100002,
        probability=0.61,
        decision=decision,
        threshold=0.42,
        model_version="m-1",
        feature_version="0123456789abcdef",
        features_found=True,
        features_age_s=12.5,
        reasons=reasons,
        rules=(RuleHit("KO_X", "A knock-out.", "REFUS"),) if decision == "REFUS" else (),
        policy_version="p-1",
    )


TIMINGS = StageTimings(
    consumed_at=EVENT_TIME.timestamp() + 0.004,
    features_s=0.0005,
    inference_s=0.001,
    reasons_s=0.0002,
    decided_at=EVENT_TIME.timestamp() + 0.006,
)


def test_build_decision_fills_every_field() -> None:
    d = build_decision(application(), result(), TIMINGS)
    assert d.application_id == "app-1" and d.event_id == "e-1" and d.sk_id_curr == 100002
    assert d.decision is DecisionLabel.REFUS and d.probability_default == 0.61
    assert d.score == 1.0 - 0.61 and d.schema_version == 2  # score: the probability of approval
    assert d.threshold == 0.42 and d.model_version == "m-1" and d.feature_version == "0123456789abcdef"
    assert d.features_found and d.features_age_s == 12.5
    assert [c.code for c in d.reason_codes] == ["R01_EXTERNAL_SCORES", "R02_DEBT_BURDEN"]
    assert [[r.feature for r in c.features] for c in d.reason_codes] == [
        ["EXT_SOURCE_MEAN"],
        ["NAME_CONTRACT_TYPE", "AMT_GOODS_PRICE"],
    ]
    assert d.reasons == [] and d.review is None and d.schema_version == 2
    assert [(r.code, r.outcome) for r in d.rules] == [
        ("KO_X", DecisionLabel.REFUS)
    ] and d.policy_version == "p-1"
    assert d.latency.queue_s == pytest.approx(0.004, abs=1e-6)
    assert d.latency.total_s == pytest.approx(0.006, abs=1e-6)
    assert d.latency.produce_s is None
    assert d.event_time == EVENT_TIME and d.consumed_at < d.decided_at
    assert not d.is_replay


def test_built_decisions_validate_and_fast_encoding_equals_pydantic() -> None:
    d = build_decision(
        application(),
        result(),
        TIMINGS,
        is_replay=True,
        baseline_model_version="m-0",
        baseline_decision="ACCORD",
        baseline_probability=0.3,
    )
    validated = Decision.model_validate(decision_to_dict(d))  # trusted construction obeys the model
    assert validated == d and validated.model_fields_set == d.model_fields_set
    assert validated.latency == d.latency and validated.reason_codes == d.reason_codes
    assert validated.rules == d.rules
    assert orjson.loads(encode_decision(d)) == orjson.loads(d.model_dump_json())
    assert decode_decision(encode_decision(d)) == d


def test_worker_fast_path_gives_the_same_bytes() -> None:
    replay = {"is_replay": True, "baseline_model_version": "m-0", "baseline_decision": "REFUS"}
    for res in (result(), result("ACCORD", ()), result("REFER")):
        fast = decision_bytes(application(), res, TIMINGS, **replay)
        assert fast == encode_decision(build_decision(application(), res, TIMINGS, **replay))
        assert decode_decision(fast) == build_decision(application(), res, TIMINGS, **replay)


def test_unknown_decision_label_is_refused() -> None:
    with pytest.raises(ValueError, match="ACCORD, REFUS or REFER"):
        build_decision(application(), result("MAYBE"), TIMINGS)


def test_clock_skew_never_gives_negative_latencies() -> None:
    early = StageTimings(consumed_at=EVENT_TIME.timestamp() - 5, features_s=0, inference_s=0, reasons_s=0,
                         decided_at=EVENT_TIME.timestamp() - 4)  # fmt: skip
    d = build_decision(application(), result(), early)
    assert d.latency.queue_s == 0.0 and d.latency.total_s == 0.0


def test_decision_for_another_client_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot decide"):
        build_decision(application(sk_id_curr=5), result(), TIMINGS)


def test_decisions_are_keyed_by_the_default_application_id() -> None:
    app = parse_application(b'{"sk_id_curr": 100002}', 1024, record_time=EVENT_TIME.timestamp())
    d = build_decision(app, result("ACCORD", ()), TIMINGS)
    assert d.application_id == app.event_id and d.reason_codes == []


@pytest.mark.parametrize(
    "raw", [b"{}", b"not json", b'{"decision": "MAYBE"}', orjson.dumps({"schema_version": 1})]
)
def test_bad_decision_records_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRecord, match="not a Decision"):
        decode_decision(raw)


@settings(max_examples=100, deadline=None)
@given(
    st.floats(0, 1),
    st.sampled_from(["ACCORD", "REFUS", "REFER"]),
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=10),
            st.one_of(st.none(), st.text(max_size=10), st.floats(-1e9, 1e9)),
            st.floats(-10, 10),
        ),
        max_size=5,
    ),
)
def test_any_decision_round_trips(p: float, label: str, reasons: list[tuple[str, object, float]]) -> None:
    codes = tuple(CodeReason(f"R{i}", "t", x[2], (Reason(*x),)) for i, x in enumerate(reasons))
    r = ScoreResult(100002, p, label, 0.5, "m", "f", False, None, codes, (RuleHit("RF", "t", "REFER"),), "v")
    d = build_decision(application(), r, TIMINGS)
    assert decode_decision(encode_decision(d)) == d


# --- dead letters -----------------------------------------------------------------------------------
def test_dead_letter_keeps_payload_reason_and_source() -> None:
    payload = b'{"sk_id_curr": 1, "AMT_CREDIT": -5}'
    with pytest.raises(InvalidEvent) as info:
        parse_application(payload, 1024)
    letter = make_dead_letter(
        payload,
        info.value,
        max_payload_bytes=1024,
        topic="loan-applications",
        partition=2,
        offset=41,
        key=b"k",
    )
    back = decode_dead_letter(encode_dead_letter(letter))
    assert back == DeadLetter.model_validate(letter.model_dump())
    assert back.payload == payload and back.payload_size == len(payload) and not back.payload_truncated
    assert back.error_kind is ErrorKind.OUT_OF_RANGE and "'AMT_CREDIT'" in back.message
    assert (back.source_topic, back.source_partition, back.source_offset) == ("loan-applications", 2, 41)
    assert base64.b64decode(back.key_b64 or "") == b"k"
    assert back.failed_at.tzinfo is not None


def test_oversized_payload_is_truncated_in_the_dead_letter() -> None:
    payload = b"x" * 5000
    err = InvalidEvent(ErrorKind.OVERSIZED, "payload of 5000 bytes exceeds the 1024-byte limit")
    back = decode_dead_letter(encode_dead_letter(make_dead_letter(payload, err, max_payload_bytes=1024)))
    assert back.payload == payload[:1024] and back.payload_truncated and back.payload_size == 5000


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=300)), st.sampled_from(list(ErrorKind)), st.text(max_size=50))
def test_any_payload_round_trips(payload: bytes | None, kind: ErrorKind, message: str) -> None:
    letter = make_dead_letter(payload, InvalidEvent(kind, message), max_payload_bytes=256, offset=7)
    back = decode_dead_letter(encode_dead_letter(letter))
    assert back.payload == (payload or b"")[:256]
    assert back.error_kind is kind and back.message == message and back.source_offset == 7


def test_bad_dead_letter_records_are_refused() -> None:
    with pytest.raises(InvalidRecord, match="not a DeadLetter"):
        decode_dead_letter(b'{"error_kind": "nope"}')


def test_invalid_event_pickles_with_its_kind() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(InvalidEvent(ErrorKind.SCHEMA, "field 'x': bad")))
    assert err.kind is ErrorKind.SCHEMA and err.message == "field 'x': bad"


# --- a reviewer's final decision ------------------------------------------------------------------
def test_a_review_is_a_final_decision_linked_by_application_id() -> None:
    from pydantic import ValidationError

    from scoring.decision import review_decision

    review = {"reviewer": "alice", "reason": "payslips checked", "original_event_id": "e-1"}
    d = review_decision("app-1", "ACCORD", review, event_id="r-1", decided_at=EVENT_TIME.timestamp())
    assert d.application_id == "app-1" and d.decision is DecisionLabel.ACCORD and d.schema_version == 2
    assert d.review is not None and d.review.original_decision is DecisionLabel.REFER
    assert d.review.reviewed_at == d.decided_at == EVENT_TIME
    assert d.probability_default is None and d.latency is None and d.reason_codes == [] and d.rules == []
    assert orjson.loads(encode_decision(d)) == orjson.loads(d.model_dump_json())
    assert decode_decision(encode_decision(d)) == d
    with pytest.raises(ValidationError, match="a review's decision must be ACCORD or REFUS"):
        review_decision("app-1", "REFER", review, event_id="r-2")
    with pytest.raises(ValidationError, match="reviewer"):
        review_decision("app-1", "REFUS", {**review, "reviewer": ""}, event_id="r-3")
    # a model's decision (no review) must carry the model's fields
    doc = orjson.loads(encode_decision(build_decision(application(), result(), TIMINGS)))
    with pytest.raises(InvalidRecord, match=r"needs \['probability_default'\]"):
        decode_decision(orjson.dumps({**doc, "probability_default": None}))
