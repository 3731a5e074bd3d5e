"""decision_batch_bytes: the worker's batch encoder gives the bytes of encode_decision(build_decision())."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import decode_decision, encode_decision
from schemas.events import LoanApplication
from scoring.decision import StageTimings, build_decision, decision_batch_bytes, decision_bytes
from scoring.policy import RuleHit
from scoring.results import CodeReason, CounterOffer, Reason, ScoreResult

BASE = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)

features = st.lists(
    st.builds(
        Reason,
        st.text(min_size=1, max_size=12),
        st.one_of(st.none(), st.text(max_size=10), st.floats(-1e12, 1e12), st.integers(-5, 5)),
        st.floats(-10, 10),
    ),
    max_size=3,
).map(tuple)
reasons = st.lists(
    st.builds(
        CodeReason, st.text(min_size=1, max_size=8), st.text(max_size=20), st.floats(-10, 10), features
    ),
    max_size=4,
).map(tuple)
rules = st.lists(
    st.builds(
        RuleHit, st.text(min_size=1, max_size=8), st.text(max_size=20), st.sampled_from(["REFUS", "REFER"])
    ),
    max_size=3,
).map(tuple)


@st.composite
def scored(draw: st.DrawFn) -> tuple[LoanApplication, ScoreResult]:
    sk = draw(st.integers(1, 2**40))
    app = LoanApplication.model_validate(
        {
            "event_id": draw(st.text(min_size=1, max_size=20)),
            "application_id": draw(st.one_of(st.none(), st.text(min_size=1, max_size=20))),
            "sk_id_curr": sk,
            "event_time": BASE + timedelta(microseconds=draw(st.integers(-(10**7), 10**7))),
        }
    )
    found = draw(st.booleans())
    res = ScoreResult(
        sk_id_curr=sk,
        probability=draw(st.floats(0, 1)),
        decision=draw(st.sampled_from(["ACCORD", "REFUS", "REFER"])),
        threshold=draw(st.floats(0, 1)),
        model_version=draw(st.text(min_size=1, max_size=8)),
        feature_version="0123456789abcdef",
        features_found=found,
        features_age_s=draw(st.floats(0, 1e6)) if found else None,
        reasons=draw(reasons),
        rules=draw(rules),
        policy_version=draw(st.one_of(st.none(), st.text(min_size=1, max_size=8))),
        counter_offer=draw(
            st.one_of(st.none(), st.builds(CounterOffer, *[st.floats(1, 1e7)] * 2, st.floats(0, 1)))
        ),
    )
    return app, res


@settings(max_examples=150, deadline=None)
@given(
    st.lists(scored(), max_size=6),
    st.floats(-5.0, 5.0),
    st.floats(0, 0.1),
    st.one_of(st.none(), st.floats(0, 0.1)),
)
def test_batch_bytes_equal_the_one_by_one_encoding(
    batch: list[tuple[LoanApplication, ScoreResult]], skew: float, stage: float, produce: float | None
) -> None:
    timings = StageTimings(
        consumed_at=BASE.timestamp() + skew,
        features_s=stage,
        inference_s=stage / 2,
        reasons_s=stage / 3,
        decided_at=BASE.timestamp() + skew + 0.003,
        produce_s=produce,
    )
    apps = [a for a, _ in batch]
    results = [r for _, r in batch]
    fast = decision_batch_bytes(apps, results, timings)
    slow = [encode_decision(build_decision(a, r, timings)) for a, r in batch]
    assert fast == slow
    assert fast == [decision_bytes(a, r, timings) for a, r in batch]


def test_decided_at_is_taken_per_record_when_not_given() -> None:
    app = LoanApplication.model_validate({"event_id": "e", "sk_id_curr": 7, "event_time": BASE})
    code = CodeReason("R01", "text", 0.5, (Reason("X", 1.0, 0.5),))
    res = ScoreResult(
        7, 0.7, "REFER", 0.5, "m", "f", True, 1.0, (code,), (RuleHit("RF", "why", "REFER"),), "p1"
    )
    timings = StageTimings(BASE.timestamp() + 0.01, 0.001, 0.002, 0.0)
    before = datetime.now(UTC)
    (raw,) = decision_batch_bytes([app], [res], timings)
    d = decode_decision(raw)
    assert before <= d.decided_at <= datetime.now(UTC)
    assert d.latency is not None
    assert d.latency.total_s == pytest.approx((d.decided_at - BASE).total_seconds(), abs=1e-6)
    assert d.reason_codes[0].code == "R01" and d.reason_codes[0].features[0].feature == "X"
    assert d.decision.value == "REFER" and d.rules[0].code == "RF" and d.policy_version == "p1"
    assert d.reasons == []  # version 2: no raw feature reasons outside the codes


def test_a_score_of_another_client_or_label_is_refused_like_the_slow_path() -> None:
    app = LoanApplication.model_validate({"event_id": "e", "sk_id_curr": 7, "event_time": BASE})
    timings = StageTimings(BASE.timestamp(), 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="cannot decide"):
        decision_batch_bytes([app], [ScoreResult(8, 0.1, "ACCORD", 0.5, "m", "f", False, None, ())], timings)
    with pytest.raises(ValueError, match="ACCORD, REFUS or REFER"):
        decision_batch_bytes([app], [ScoreResult(7, 0.1, "MAYBE", 0.5, "m", "f", False, None, ())], timings)
    with pytest.raises(ValueError, match="1 applications but 0"):
        decision_batch_bytes([app], [], timings)
