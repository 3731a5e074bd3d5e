"""Decision policy as data: knock-out rules, REFER rules and the model's threshold.

A :class:`Policy` (validated pydantic v2, read from the committed YAML by :mod:`scoring.policy_file`)
is bound once to a model's feature schema (:func:`bind_policy`: every field a rule names must be a
feature of the model; the column indices are resolved then) and evaluated on a whole batch with numpy
(:meth:`BoundPolicy.evaluate`). Precedence, so that a rule's outcome never depends on the model:

1. a **knock-out** rule fires → REFUS (the application is outside what the lender grants);
2. else a **REFER** rule fires → REFER (a human decides: the model's answer is close, or rests on
   weak data — unknown client on a weak path, stale cached features, critical fields missing);
3. else the model: REFUS when ``probability >= threshold``, ACCORD otherwise.

Every rule that fired is recorded (knock-outs and refers), and the model's probability always is.
A comparison with a missing value (NaN) never fires a knock-out: missing data is the REFER rule's job.
Pure: numpy and pydantic only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scoring.exceptions import PolicyBindError

if TYPE_CHECKING:
    from feature_loader.feature_schema import FeatureSchema

ACCORD = "ACCORD"
REFUS = "REFUS"
REFER = "REFER"
LABELS = (ACCORD, REFUS, REFER)  # index = the outcome code of BoundPolicy.evaluate

Code = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]{1,39}$", description="Stable rule code.")]
Text = Annotated[str, Field(min_length=1, max_length=300, description="What the rule means, in words.")]


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Code
    text: Text


class KnockOut(_Rule):
    """REFUS when ``feature [/ per] / divide_by  <op>  value`` (e.g. age from DAYS_BIRTH: divide_by
    -365.25; annuity/income: per AMT_INCOME_TOTAL)."""

    feature: str = Field(min_length=1)
    per: str | None = Field(None, min_length=1, description="Denominator feature (a ratio rule).")
    divide_by: float = Field(1.0, description="Unit conversion applied last (never 0).")
    op: Literal["<", "<=", ">", ">="]
    value: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _nonzero_divisor(self) -> KnockOut:
        if self.divide_by == 0:
            raise ValueError("divide_by must not be 0")
        return self


class Band(_Rule):
    """REFER when ``threshold - below <= probability < threshold + above``."""

    below: float = Field(ge=0.0, le=1.0)
    above: float = Field(ge=0.0, le=1.0)


class UnknownClient(_Rule):
    """REFER a client unknown to the feature cache when that path is weak: the model card's
    ``unknown_client_path.weak`` when it says, else ``weak`` here."""

    weak: bool = True


class StaleFeatures(_Rule):
    """REFER when the client's cached features are older than ``max_age_s``."""

    max_age_s: float = Field(gt=0.0)


class MissingFields(_Rule):
    """REFER when any of ``fields`` is missing (NaN in the assembled vector)."""

    fields: list[str] = Field(min_length=1)


class ReferRules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    band: Band | None = None
    unknown_client: UnknownClient | None = None
    stale_features: StaleFeatures | None = None
    missing_fields: MissingFields | None = None

    def rules(self) -> list[_Rule]:
        return [r for r in (self.band, self.unknown_client, self.stale_features, self.missing_fields) if r]


class Policy(BaseModel):
    """A versioned decision policy (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1, max_length=64)
    knockouts: list[KnockOut] = Field(default_factory=list)
    refer: ReferRules = Field(default_factory=ReferRules)

    @model_validator(mode="after")
    def _unique_codes(self) -> Policy:
        codes = [r.code for r in self.knockouts] + [r.code for r in self.refer.rules()]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"rule codes must be unique, repeated: {dupes}")
        return self


# The policy of a model scored without a policy file (tests, benchmarks): the threshold alone.
THRESHOLD_ONLY = Policy(version="threshold-only")


@dataclass(frozen=True, slots=True)
class RuleHit:
    code: str
    text: str
    outcome: str  # REFUS (knock-out) or REFER


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    labels: np.ndarray  # (n,) int8 index into LABELS
    fired: np.ndarray  # (n, rules) bool, columns in BoundPolicy.hits order

    def hits(self, bound: BoundPolicy) -> dict[int, tuple[RuleHit, ...]]:
        """The rules that fired, by row (rows where none fired are absent)."""
        rows = np.flatnonzero(self.fired.any(axis=1)) if self.fired.shape[1] else np.zeros(0, np.int64)
        return {int(i): tuple(bound.hits[j] for j in np.flatnonzero(self.fired[i])) for i in rows}


_OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}


class BoundPolicy:
    """A policy bound to one model's feature columns (built once per prepared model)."""

    def __init__(self, policy: Policy, schema: FeatureSchema, card: Any = None) -> None:
        self.policy = policy
        self.version = policy.version
        index = schema.index
        self._knockouts = [
            (_column(index, r, r.feature, "feature"), _column(index, r, r.per, "per"), r)
            for r in policy.knockouts
        ]
        refer = policy.refer
        self._band = refer.band
        self._unknown = refer.unknown_client if _unknown_path_weak(refer.unknown_client, card) else None
        self._stale = refer.stale_features
        self._missing = refer.missing_fields
        self._missing_cols = (
            [_column(index, self._missing, name, "fields") for name in self._missing.fields]
            if self._missing
            else []
        )
        refers = [r for r in (self._band, self._unknown, self._stale, self._missing) if r is not None]
        self.hits = tuple(
            [RuleHit(r.code, r.text, REFUS) for r in policy.knockouts]
            + [RuleHit(r.code, r.text, REFER) for r in refers]
        )
        self.n_knockouts = len(policy.knockouts)

    def evaluate(
        self,
        matrix: np.ndarray,
        probabilities: np.ndarray,
        threshold: float,
        found: np.ndarray,
        features_age_s: float | None,
    ) -> PolicyOutcome:
        """Outcome and fired rules of every row of an assembled (n, F) matrix."""
        n = matrix.shape[0]
        fired = np.zeros((n, len(self.hits)), dtype=bool)
        self._knockout_masks(matrix, fired)
        col = self.n_knockouts
        for mask in self._refer_masks(matrix, probabilities, threshold, found, features_age_s):
            fired[:, col] = mask
            col += 1
        labels = (probabilities >= threshold).astype(np.int8)  # 0 ACCORD, 1 REFUS
        if self.hits:
            labels[fired[:, self.n_knockouts :].any(axis=1)] = 2
            labels[fired[:, : self.n_knockouts].any(axis=1)] = 1
        return PolicyOutcome(labels, fired)

    def _knockout_masks(self, matrix: np.ndarray, out: np.ndarray) -> None:
        """Write each knock-out rule's mask of the rows of ``matrix`` into ``out``'s first columns."""
        with np.errstate(divide="ignore", invalid="ignore"):
            for col, (j, per, rule) in enumerate(self._knockouts):
                x = matrix[:, j].astype(np.float64)
                if per is not None:
                    x = x / matrix[:, per]
                out[:, col] = _OPS[rule.op](x / rule.divide_by, rule.value)

    def knocked_out(self, matrix: np.ndarray) -> np.ndarray:
        """(n,) bool: some knock-out rule fires on the row (counter-offer candidates must pass them)."""
        fired = np.zeros((matrix.shape[0], self.n_knockouts), dtype=bool)
        self._knockout_masks(matrix, fired)
        return np.asarray(fired.any(axis=1))

    def refused_by_score(self, outcome: PolicyOutcome) -> np.ndarray:
        """(n,) bool: REFUS by the model's threshold, no knock-out fired (what a counter-offer answers)."""
        return (outcome.labels == 1) & ~outcome.fired[:, : self.n_knockouts].any(axis=1)

    def accept_below(self, threshold: float) -> float:
        """The probability under which a row is accepted, not referred: the REFER band's lower edge."""
        return threshold - self._band.below if self._band is not None else threshold

    def _refer_masks(
        self,
        matrix: np.ndarray,
        probabilities: np.ndarray,
        threshold: float,
        found: np.ndarray,
        age: float | None,
    ) -> list[np.ndarray]:
        masks: list[np.ndarray] = []
        if self._band is not None:
            low, high = threshold - self._band.below, threshold + self._band.above
            masks.append((probabilities >= low) & (probabilities < high))
        if self._unknown is not None:
            masks.append(~found)
        if self._stale is not None:
            stale = age is not None and age > self._stale.max_age_s
            masks.append(found & stale)
        if self._missing is not None:
            masks.append(np.isnan(matrix[:, self._missing_cols]).any(axis=1))
        return masks


def _column(index: dict[str, int], rule: _Rule, name: str | None, field: str) -> Any:
    if name is None:
        return None
    if name not in index:
        raise PolicyBindError(
            f"policy rule {rule.code}: {field} {name!r} is not a feature of the model's feature schema"
        )
    return index[name]


def _unknown_path_weak(rule: UnknownClient | None, card: Any) -> bool:
    """The model card's ``unknown_client_path.weak`` when it has one, else the policy's default."""
    if rule is None:
        return False
    path = getattr(card, "unknown_client_path", None)
    weak = path.get("weak") if isinstance(path, dict) else getattr(path, "weak", None)
    return rule.weak if weak is None else bool(weak)


def bind_policy(policy: Policy, schema: FeatureSchema, card: Any = None) -> BoundPolicy:
    """The policy bound to a model's schema (PolicyBindError naming the rule and the field)."""
    return BoundPolicy(policy, schema, card)


def refused_mask(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the rows the model alone refuses (``probability >= threshold``)."""
    return np.asarray(probabilities) >= threshold


def decide(probability: float, threshold: float) -> str:
    """The model's decision for one probability (same rule as :func:`refused_mask`)."""
    return REFUS if probability >= threshold else ACCORD
