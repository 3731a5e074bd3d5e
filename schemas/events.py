"""Event contracts of the scorer (pydantic v2), versioned with ``schema_version``.

Decisions recorded here (also in the exported JSON Schemas, ``schemas/json/``):

* **Field names.** Envelope fields are snake_case (``event_id``, ``application_id``, ``sk_id_curr``,
  ``event_time``, ``schema_version``); the application fields keep the raw Home Credit column names
  (``AMT_CREDIT``, ``NAME_CONTRACT_TYPE``, …) as their JSON names, exactly as in the feature schema, so
  no alias table can drift.
* **Only ``sk_id_curr`` is required.** ``event_id`` defaults to a generated id (the codec derives it
  deterministically from the payload bytes, so a redelivered record keeps its id), ``application_id``
  defaults to ``event_id`` and ``event_time`` to the Kafka record timestamp (codec) or now.
* **Carried vs not carried.** An application field present in the JSON — even as ``null`` (= unknown,
  scored as missing) — overrides the client's cached value; an absent field keeps the cached value.
  :meth:`LoanApplication.scoring_fields` returns exactly the carried ones.
* **Extra fields are ignored** (forward compatible: upstream may add fields before we upgrade).
* **The application form** (contract version 2): every application column of the Home Credit schema
  (application_train/test minus ``SK_ID_CURR`` and ``TARGET``: :data:`APPLICATION_FIELDS`), each
  optional, typed and bounded by the committed contract ``schemas/application_columns.json``
  (:mod:`schemas.application_form`). Version 1 events (the 8 fields of :data:`V1_FIELDS`) are still
  read: they are valid version 2 events that carry fewer fields.
* **Strict types.** Numbers must be JSON numbers (``"1000"`` or ``true`` are rejected); integers must be
  whole (``10`` or ``10.0``, not ``10.5``); categoricals must be strings (an unknown level is accepted
  and scored as missing). Every number must be finite and within its column's physical range (amounts
  ``>= 0``, days ``<= 0``, flags 0/1, normalised values 0..1, …) or one of its codes (``DAYS_EMPLOYED``
  365243); event times in years 2000..2100; naive times are read as UTC; every datetime is normalised
  to UTC.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from schemas.application_form import FORM_COLUMNS, WholeNumber, pydantic_fields
from schemas.exceptions import ErrorKind

# The Decision contract: 2 = ``score`` is the probability of approval (1 − probability_default), the
# original API's credit score; the policy (REFER, rules fired, policy version), reason codes, review
# and counter-offer are added; 1 = ``score`` was the probability of default.
DECISION_VERSION: Final = 2
# The DeadLetter record's version (unchanged by the application form).
DEAD_LETTER_VERSION: Final = 1
# The LoanApplication contract: 2 = the whole application form; 1 = the first 8 fields (still read).
APPLICATION_VERSION: Final = 2
SUPPORTED_VERSIONS = frozenset({1, APPLICATION_VERSION})
MAX_AMOUNT = 1e9  # the largest Home Credit income is 1.17e8; beyond 1e9 is a unit or typing error
MAX_ID_LEN = 128
MIN_EVENT_YEAR, MAX_EVENT_YEAR = 2000, 2100

# Every application column an event may carry, in the Home Credit column names and file order.
APPLICATION_FIELDS: tuple[str, ...] = tuple(c.name for c in FORM_COLUMNS)
# The fields of a version 1 event (what upstream systems sent before the whole form).
V1_FIELDS: tuple[str, ...] = (
    "NAME_CONTRACT_TYPE",
    "AMT_INCOME_TOTAL",
    "AMT_CREDIT",
    "AMT_ANNUITY",
    "AMT_GOODS_PRICE",
    "NAME_TYPE_SUITE",
    "WEEKDAY_APPR_PROCESS_START",
    "HOUR_APPR_PROCESS_START",
)

_APPLICATION_FIELD_SET = frozenset(APPLICATION_FIELDS)

Identifier = Annotated[str, Field(strict=True, min_length=1, max_length=MAX_ID_LEN)]
ProbabilityValue = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(description="Duration in seconds.")]


def new_event_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


def _check_version(value: int) -> int:
    if value not in SUPPORTED_VERSIONS:
        raise PydanticCustomError(
            "unsupported_version",
            "schema_version {version} is not supported (supported: {supported})",
            {"version": value, "supported": sorted(SUPPORTED_VERSIONS)},
        )
    return value


def _to_utc(value: datetime) -> datetime:
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not MIN_EVENT_YEAR <= value.year <= MAX_EVENT_YEAR:
        raise PydanticCustomError(
            "out_of_range",
            "time {value} is outside years {lo}..{hi}",
            {"value": value.isoformat(), "lo": MIN_EVENT_YEAR, "hi": MAX_EVENT_YEAR},
        )
    return value


class _Envelope(BaseModel):
    """The envelope of an application event; the form's fields are added from the contract."""

    model_config = ConfigDict(
        extra="ignore",
        allow_inf_nan=False,
        frozen=True,
        title="LoanApplication",
        use_attribute_docstrings=True,
    )

    schema_version: Annotated[int, Field(strict=True)] = APPLICATION_VERSION
    """Contract version; this build reads versions 1 and 2 (2 = the whole application form)."""
    event_id: Identifier = Field(default_factory=new_event_id)
    """Unique id of this event; defaults to a generated id (derived from the payload by the codec)."""
    application_id: Identifier | None = None
    """Id of the loan application (the decisions' Kafka key); defaults to ``event_id``."""
    sk_id_curr: Annotated[WholeNumber, Field(gt=0, le=2**63 - 1)]
    """The client (Home Credit ``SK_ID_CURR``)."""
    event_time: datetime = Field(default_factory=utc_now)
    """Producer's timestamp (UTC; a naive time is read as UTC)."""


if TYPE_CHECKING:
    _Form = _Envelope
else:  # the application columns, typed and bounded by the committed contract
    _Form = create_model("_Form", __base__=_Envelope, **pydantic_fields())


class LoanApplication(_Form):
    """A loan application event (topic ``loan-applications``, key = application id): the envelope and
    the application form, every column optional."""

    @field_validator("schema_version")
    @classmethod
    def _supported_version(cls, value: int) -> int:
        return _check_version(value)

    @field_validator("event_time")
    @classmethod
    def _utc_event_time(cls, value: datetime) -> datetime:
        return _to_utc(value)

    @model_validator(mode="after")
    def _default_application_id(self) -> LoanApplication:
        if self.application_id is None:
            object.__setattr__(self, "application_id", self.event_id)
        return self

    @property
    def key(self) -> str:
        """The Kafka key of this application and of its decision."""
        return self.application_id or self.event_id

    @cached_property
    def carried_fields(self) -> dict[str, object]:
        """The application fields this event carries (present in the input, ``None`` = unknown);
        computed once (the fast validator fills it as it checks them). Read-only."""
        values = self.__dict__
        return {name: values[name] for name in self.__pydantic_fields_set__ & _APPLICATION_FIELD_SET}

    def scoring_fields(self) -> dict[str, object]:
        """The application fields this event carries (present in the input, ``None`` = unknown).
        The same dict on every call: do not modify it."""
        return self.carried_fields


class DecisionLabel(StrEnum):
    ACCORD = "ACCORD"
    REFUS = "REFUS"
    REFER = "REFER"


class Reason(BaseModel):
    """One feature behind a reason: its name, human-readable value and contribution to the log-odds."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    feature: str
    value: float | str | None
    contribution: float


class CounterOffer(BaseModel):
    """The largest credit the model accepts at the same term, for a refusal by score."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, title="CounterOffer")

    amt_credit: Annotated[float, Field(gt=0.0)]
    """Offered credit amount (a whole currency unit, at most 95 % of the amount asked)."""
    amt_annuity: Annotated[float, Field(gt=0.0)]
    """Its annuity: the application's annuity / credit ratio kept (same term), to the cent."""
    probability_default: ProbabilityValue
    """The model's probability of default for the offered loan (below the threshold)."""


class ReasonCode(BaseModel):
    """One principal reason of a decision, from the committed reason-code catalogue."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False, use_attribute_docstrings=True)

    code: str
    text: str
    """Plain-language text a lender can send."""
    contribution: float
    """The group's features' summed contribution to the log-odds (positive = towards default)."""
    features: list[Reason] = Field(default_factory=list)
    """The strongest features behind this code."""


class RuleFired(BaseModel):
    """A policy rule that fired: a knock-out (outcome REFUS) or a REFER rule."""

    model_config = ConfigDict(frozen=True)

    code: str
    text: str
    outcome: DecisionLabel


class Review(BaseModel):
    """A human reviewer's verdict: present on the final decision that follows a REFER."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    reviewer: Annotated[str, Field(strict=True, min_length=1, max_length=MAX_ID_LEN)]
    reason: Annotated[str, Field(strict=True, min_length=1, max_length=2000)]
    reviewed_at: datetime
    original_decision: DecisionLabel = DecisionLabel.REFER
    """The decision reviewed (a REFER)."""
    original_event_id: str | None = None
    """The reviewed decision's event id, when the reviewer knows it."""


class StageLatency(BaseModel):
    """Seconds spent in each stage. ``produce_s`` is unknown when the record is built (it is measured
    into the ``credit_scorer_stage_seconds`` metric) and then ``null``."""

    model_config = ConfigDict(frozen=True)

    queue_s: Seconds
    features_s: Seconds
    inference_s: Seconds
    reasons_s: Seconds
    produce_s: Seconds | None = None
    total_s: Seconds


# What only a model's decision has: null on a reviewer's verdict (``review`` set), required otherwise.
MODEL_FIELDS: Final = (
    "sk_id_curr", "probability_default", "score", "threshold", "model_version", "feature_version",
    "features_found", "latency",
)  # fmt: skip


class Decision(BaseModel):
    """A decision (topic ``loan-decisions``, key = application id, for deduplication): the model's and
    the policy's (``review`` null), or a reviewer's final verdict on a REFER (``review`` set, same
    application id, ACCORD or REFUS; the model's fields are then null)."""

    model_config = ConfigDict(
        frozen=True, allow_inf_nan=False, title="Decision", use_attribute_docstrings=True
    )

    schema_version: Literal[2] = 2
    """Contract version: 2 = ``score`` is the probability of approval (1 − probability_default)."""
    application_id: str
    event_id: str
    sk_id_curr: int | None
    decision: DecisionLabel
    """The policy's outcome: REFUS when a knock-out rule fired, else REFER when a REFER rule fired,
    else REFUS when probability_default >= threshold, else ACCORD (a review: the reviewer's)."""
    probability_default: ProbabilityValue | None
    """Calibrated probability of default (PD): the model's probability through the model card's
    calibration, a probability a lender can price and provision on; the model's also when a rule
    decided (null only on a review)."""
    score: ProbabilityValue | None
    """The original API's credit score: the probability of approval, 1 − probability_default (higher is
    better)."""
    threshold: ProbabilityValue | None
    """Cut-off on probability_default (the business-cost optimum on the calibrated scale)."""
    model_version: str | None
    feature_version: str | None
    features_found: bool | None
    """False when the client is not in the feature cache (scored on the application fields alone)."""
    features_age_s: float | None
    """Age of the cached client features (seconds since the cache load), null when not found."""
    reasons: list[Reason] = Field(default_factory=list)
    """Version 1 only (top raw features); version 2 records carry ``reason_codes``."""
    reason_codes: list[ReasonCode] = Field(default_factory=list)
    """Up to 4 principal reasons, strongest first (every REFUS and REFER at least)."""
    rules: list[RuleFired] = Field(default_factory=list)
    """The policy rules that fired."""
    policy_version: str | None = None
    """The version of the decision policy applied."""
    review: Review | None = None
    """Set on a reviewer's final verdict (the model's fields are then null)."""
    latency: StageLatency | None
    event_time: datetime
    consumed_at: datetime
    decided_at: datetime
    is_replay: bool = False
    baseline_model_version: str | None = None
    """Replay only: the model version of the decision being compared against."""
    baseline_decision: DecisionLabel | None = None
    baseline_probability_default: ProbabilityValue | None = None
    counter_offer: CounterOffer | None = None
    """REFUS by score: the largest credit the model would accept at the same term; null when none is
    (or for an ACCORD, or when counter-offers are off)."""

    @model_validator(mode="after")
    def _model_fields(self) -> Decision:
        if self.review is None:
            missing = [name for name in MODEL_FIELDS if getattr(self, name) is None]
            if missing:
                raise ValueError(f"a model decision needs {missing} (null only on a review)")
        elif self.decision is DecisionLabel.REFER:
            raise ValueError("a review's decision must be ACCORD or REFUS")
        return self


class DeadLetter(BaseModel):
    """An event that could not be scored (topic ``loan-applications-dlq``)."""

    model_config = ConfigDict(frozen=True, title="DeadLetter", use_attribute_docstrings=True)

    schema_version: Literal[1] = DEAD_LETTER_VERSION
    error_kind: ErrorKind
    message: str
    """Human-readable reason, naming the field at fault."""
    payload_b64: str
    """The original payload (standard base64), truncated to the payload limit when oversized."""
    payload_size: int
    """Size in bytes of the original payload."""
    payload_truncated: bool = False
    key_b64: str | None = None
    """The original Kafka key (standard base64), if any."""
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    failed_at: datetime

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)
