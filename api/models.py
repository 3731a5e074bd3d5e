"""Request and response bodies of the REST API (pydantic v2; they make the OpenAPI document).

``PredictRequest`` takes the client id and, optionally, the application fields of
:class:`schemas.events.LoanApplication` with exactly the same names, types and bounds (copied from
it, so the two contracts cannot drift). Unknown fields are rejected (422) so a typo such as
``AMT_CREDITT`` never silently scores the cached value instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from schemas.events import APPLICATION_FIELDS, LoanApplication

_ID_FIELD = LoanApplication.model_fields["sk_id_curr"]


def _application_field(name: str) -> tuple[Any, Any]:
    info = LoanApplication.model_fields[name]
    return info.annotation, info


def _fix_schema(schema: dict[str, Any]) -> None:
    """Standard JSON Schema bounds for the id (pydantic writes ``gt``/``le`` for the wrapped int)."""
    prop = schema.get("properties", {}).get("sk_id_curr", {})
    if "gt" in prop:
        prop["exclusiveMinimum"] = prop.pop("gt")
    if "le" in prop:
        prop["maximum"] = prop.pop("le")
    schema["examples"] = [{"sk_id_curr": 100001}, {"sk_id_curr": 100001, "AMT_CREDIT": 250000.0}]


class _PredictBase(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        frozen=True,
        json_schema_extra=lambda schema: _fix_schema(schema),
    )

    def scoring_fields(self) -> dict[str, object]:
        """The application fields the request carries (present in the body; ``null`` = unknown)."""
        values = self.__dict__
        return {name: values[name] for name in self.model_fields_set if name != "sk_id_curr"}


if TYPE_CHECKING:
    PredictRequest = _PredictBase
else:
    PredictRequest = create_model(
        "PredictRequest",
        __base__=_PredictBase,
        __doc__=(
            "A client id and, optionally, application fields (Home Credit column names). A field present "
            "(even null) overrides the client's cached value; an absent one keeps it."
        ),
        sk_id_curr=(_ID_FIELD.annotation, _ID_FIELD),
        **{name: _application_field(name) for name in APPLICATION_FIELDS},
    )


class ReasonOut(BaseModel):
    feature: str
    value: float | str | None = Field(description="Human-readable value (category name, number or null).")
    contribution: float = Field(description="Contribution to the log-odds of default.")


class CounterOfferOut(BaseModel):
    amt_credit: float = Field(description="The largest credit amount the model accepts at the same term.")
    amt_annuity: float = Field(description="Its annuity (the application's annuity / credit ratio kept).")
    probability_default: float = Field(description="The probability of default of the offered loan.")


class ReasonCodeOut(BaseModel):
    code: str
    text: str = Field(description="Plain-language principal reason.")
    contribution: float = Field(description="The code's features' summed contribution to the log-odds.")
    features: list[ReasonOut] = Field(description="The strongest features behind the code.")


class RuleOut(BaseModel):
    code: str
    text: str
    outcome: Literal["REFUS", "REFER"] = Field(description="REFUS: a knock-out rule; REFER: to a human.")


class PredictResponse(BaseModel):
    """The original project's response, plus the decision's provenance, policy rules and reason codes."""

    sk_id_curr: int
    score: float = Field(
        description="The original API's credit score: the probability of approval (same as "
        "probability_approval, 1 - probability_refusal); higher is better."
    )
    decision: Literal["ACCORD", "REFUS", "REFER"] = Field(
        description="Knock-out rule → REFUS, REFER rule → REFER, else REFUS when "
        "probability_refusal >= threshold."
    )
    probability_refusal: float = Field(
        description="Calibrated probability of default (the model's probability through its calibration)."
    )
    probability_approval: float = Field(description="1 - probability_refusal.")
    threshold: float = Field(description="Cut-off on probability_refusal.")
    model_version: str
    feature_version: str
    policy_version: str | None = Field(description="The decision policy's version.")
    features_found: bool = Field(
        description="False when the client is not cached (scored on the request's application fields)."
    )
    features_age_s: float | None = Field(description="Seconds since the cache load; null if not found.")
    rules: list[RuleOut] = Field(description="The policy rules that fired.")
    reason_codes: list[ReasonCodeOut] = Field(description="Up to 4 principal reasons, strongest first.")
    counter_offer: CounterOfferOut | None = Field(
        None, description="REFUS by score: the largest credit accepted at the same term (null: none)."
    )
    application_id: str | None = Field(
        None, description="Id of the decision published to the decisions topic (GET /decisions/{id})."
    )


class HealthResponse(BaseModel):
    status: Literal["healthy", "degraded"] = Field(
        description='The original API\'s "healthy", or "degraded".'
    )
    reasons: list[str] = Field(description="Why the service is degraded (empty when healthy).")
    model_loaded: bool
    model_version: str | None
    model_feature_version: str | None
    redis_reachable: bool
    cache_feature_version: str | None = Field(description="The live feature version in the cache.")
    feature_versions_match: bool


class ReviewRequest(BaseModel):
    """A reviewer's verdict on a referred application (POST /reviews, ``credit-scorer review submit``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    application_id: str = Field(min_length=1, max_length=128, description="The referred application.")
    decision: Literal["ACCORD", "REFUS"] = Field(description="The final decision.")
    reviewer: str = Field(min_length=1, max_length=128, description="Who decided.")
    reason: str = Field(min_length=1, max_length=2000, description="Why, in words.")
    original_decision: Literal["REFER", "ACCORD", "REFUS"] = Field(
        "REFER", description="The decision reviewed (a REFER; ACCORD/REFUS: an override of the model)."
    )
    original_event_id: str | None = Field(
        None, min_length=1, max_length=128, description="The reviewed decision's event id, if known."
    )


class ReviewAccepted(BaseModel):
    application_id: str
    event_id: str = Field(description="Event id of the final decision published.")
    decision: Literal["ACCORD", "REFUS"]
    topic: str
    partition: int
    offset: int


class ApplicationAccepted(BaseModel):
    application_id: str
    event_id: str
    topic: str
    partition: int
    offset: int


class ErrorResponse(BaseModel):
    detail: str
