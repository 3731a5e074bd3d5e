"""A lean validator for the common LoanApplication document, with pydantic as the only judge of errors.

:func:`fast_application` takes the decoded JSON object (after the codec added its ``event_id`` and
``event_time`` defaults) and returns the :class:`LoanApplication` pydantic would build — or ``None``
whenever it is not *certain* the document is valid and how pydantic would convert it; the codec then
runs ``LoanApplication.model_validate`` (so every rejection, and its error kind and message, still comes
from pydantic, and the accepted set is never larger). It accepts only exact JSON types: ints for whole
numbers and the version, floats or ints for ``number`` columns (stored as float, as pydantic does),
ints or integral floats for ``integer`` columns (stored as int), strings within length for ids and
categories, each number within its column's range (or one of its codes), and ``event_time`` as a UTC
datetime or a ``…Z``/``…+00:00`` ISO string. Anything else (numeric or offset times, out-of-range
values, …) goes to pydantic. A property test checks that both paths give equal objects (same values,
same types, same set fields) on generated documents.

The checks come from the same committed contract as the model's fields
(:mod:`schemas.application_form`), one table lookup per carried column: the cost grows with the
fields an event carries, not with the form's size (measured in ``bench/results/parse.json``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired, cast

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from schemas.application_form import FORM_COLUMNS, MAX_TEXT_LEN, FormColumn
from schemas.events import (
    MAX_EVENT_YEAR,
    MAX_ID_LEN,
    MIN_EVENT_YEAR,
    SUPPORTED_VERSIONS,
    LoanApplication,
)

_MAX_SK_ID = 2**63 - 1
_ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")
_NUMBER, _INTEGER, _TEXT = 0, 1, 2
_KIND = {"number": _NUMBER, "integer": _INTEGER, "category": _TEXT}

# column → (kind, low, high, codes); the order of LoanApplication.model_fields is the instance dict's
_CHECKS: dict[str, tuple[int, float, float, frozenset[int]]] = {
    c.name: (_KIND[c.type], c.low or 0.0, c.high or 0.0, frozenset(c.codes)) for c in FORM_COLUMNS
}
_ENVELOPE = ("schema_version", "event_id", "application_id", "sk_id_curr", "event_time")
_FIELD_ORDER: tuple[str, ...] = tuple(LoanApplication.model_fields)
_FIELD_SET = frozenset(_FIELD_ORDER)
_FORM_SET = frozenset(_CHECKS)
_DEFAULTS: dict[str, Any] = {name: None for name in _FIELD_ORDER}
_DEFAULTS["schema_version"] = LoanApplication.model_fields["schema_version"].default
# never take the fast path for a model this validator does not fully know
_EXPECTED_FIELDS = _FORM_SET | frozenset(_ENVELOPE) == _FIELD_SET
_MISSING = object()
_PRESENT = frozenset({"event_id", "event_time", "sk_id_curr"})  # in every document the fast path takes


def _strict_type(column: FormColumn) -> Any:
    """The column's check in pydantic-core alone (no Python validator): exact JSON types only."""
    if column.type == "category":
        return Annotated[str, Field(strict=True, max_length=MAX_TEXT_LEN)]
    if column.type == "number":
        return Annotated[float, Field(strict=True, ge=column.low, le=column.high, allow_inf_nan=False)]
    whole = Annotated[int, Field(strict=True, ge=column.low, le=column.high)]
    return whole | Literal[column.codes] if column.codes else whole  # type: ignore[valid-type]


# The whole form as one TypedDict checked in Rust: returns exactly the carried columns, converted
# (ints of number columns as floats); refuses what the model would convert with a Python validator
# (an integral float in an integer column): the Python loop below takes those.
_Form = TypedDict(  # type: ignore[misc]
    "_Form", {c.name: NotRequired[_strict_type(c) | None] for c in FORM_COLUMNS}, total=False
)
_Form.__pydantic_config__ = ConfigDict(extra="ignore")  # type: ignore[attr-defined]
_FORM = TypeAdapter(_Form)


def fast_application(doc: dict[str, Any]) -> LoanApplication | None:
    """The validated application of ``doc`` if it is plainly valid, else ``None`` (ask pydantic)."""
    if not _EXPECTED_FIELDS:
        return None
    get = doc.get
    event_id, event_time, sk_id = get("event_id"), get("event_time"), get("sk_id_curr", _MISSING)
    if event_id is None or event_time is None or sk_id is _MISSING:
        return None  # absent (or null: pydantic judges)
    try:
        form: dict[str, Any] | None = cast(dict[str, Any], _FORM.validate_python(doc))
    except ValidationError:
        form = _loose_form(doc)
    if form is None:
        return None
    values = {**_DEFAULTS, **form}
    if type(sk_id) is float and sk_id.is_integer():
        sk_id = int(sk_id)
    elif type(sk_id) is not int:
        return None
    if not 0 < sk_id <= _MAX_SK_ID:
        return None
    values["sk_id_curr"] = sk_id
    if type(event_id) is not str or not 1 <= len(event_id) <= MAX_ID_LEN:
        return None
    values["event_id"] = event_id
    application_id = get("application_id")
    if application_id is not None and (
        type(application_id) is not str or not 1 <= len(application_id) <= MAX_ID_LEN
    ):
        return None
    values["application_id"] = event_id if application_id is None else application_id
    stamp = _utc_time(event_time)
    if stamp is None:
        return None
    values["event_time"] = stamp
    version = get("schema_version", _MISSING)
    if version is not _MISSING:
        if type(version) is not int or version not in SUPPORTED_VERSIONS:
            return None
        values["schema_version"] = version
    values["carried_fields"] = form  # LoanApplication.scoring_fields, already known (a cached property)
    app = LoanApplication.__new__(LoanApplication)
    object.__setattr__(app, "__dict__", values)
    carried = form.keys() | _PRESENT  # the form columns present, and the envelope's
    if "application_id" in doc:
        carried.add("application_id")
    if version is not _MISSING:
        carried.add("schema_version")
    object.__setattr__(app, "__pydantic_fields_set__", carried)
    object.__setattr__(app, "__pydantic_extra__", None)
    object.__setattr__(app, "__pydantic_private__", None)
    return app


def _loose_form(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The carried form columns, integral floats of integer columns as ints (pydantic's lax int); None
    when pydantic must judge. One check per carried column, in Python: the less common path."""
    form: dict[str, Any] = {}
    for name in _FORM_SET.intersection(doc):  # (a dict view & frozenset costs 3x more)
        value = doc[name]
        if value is not None:
            kind, low, high, codes = _CHECKS[name]
            vt = type(value)
            if kind == _TEXT:
                if vt is not str or len(value) > MAX_TEXT_LEN:
                    return None
            elif kind == _NUMBER:
                if vt is not float and vt is not int:
                    return None
                if not low <= value <= high:  # also false for NaN
                    return None
                value = float(value)  # after the range check: a huge int would overflow
            else:
                if vt is float:  # 10.0 from a float column: pydantic's lax int
                    if not value.is_integer():
                        return None
                    value = int(value)
                elif vt is not int:
                    return None
                if not low <= value <= high and value not in codes:
                    return None
        form[name] = value
    return form


def _utc_time(value: object) -> datetime | None:
    """A UTC datetime in the accepted years, from a UTC datetime or a strict UTC ISO string."""
    if type(value) is datetime:
        if value.tzinfo is not UTC:
            return None
        stamp = value
    elif type(value) is str:
        if _ISO_UTC.fullmatch(value) is None:
            return None
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return None
        if stamp.utcoffset() is None or stamp.utcoffset():
            return None
        stamp = stamp.replace(tzinfo=UTC)
    else:
        return None
    if not MIN_EVENT_YEAR <= stamp.year <= MAX_EVENT_YEAR:
        return None
    return stamp
