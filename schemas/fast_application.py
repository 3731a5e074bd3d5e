"""A lean validator for the common LoanApplication document, with pydantic as the only judge of errors.

:func:`fast_application` takes the decoded JSON object (after the codec added its ``event_id`` and
``event_time`` defaults) and returns the :class:`LoanApplication` pydantic would build — or ``None``
whenever it is not *certain* the document is valid and how pydantic would convert it; the codec then
runs ``LoanApplication.model_validate`` (so every rejection, and its error kind and message, still comes
from pydantic, and the accepted set is never larger). It accepts only exact JSON types: ints for whole
numbers and the version, floats or ints for amounts (stored as float, as pydantic does), strings within
length for ids and texts, and ``event_time`` as a UTC datetime or a ``…Z``/``…+00:00`` ISO string.
Anything else (numeric or offset times, out-of-range values, …) goes to
pydantic. A property test checks that both paths give equal objects (same values, same types, same set
fields) on generated documents.

About 5x cheaper than ``model_validate`` for a typical event (no Python field validators to call).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from schemas.events import (
    APPLICATION_FIELDS,
    MAX_AMOUNT,
    MAX_EVENT_YEAR,
    MAX_ID_LEN,
    MAX_TEXT_LEN,
    MIN_EVENT_YEAR,
    SUPPORTED_VERSIONS,
    LoanApplication,
)

_MAX_SK_ID = 2**63 - 1
_ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|\+00:00)")

# field name → check kind; the order of LoanApplication.model_fields is the order of the instance dict
_KIND: dict[str, str] = {
    "schema_version": "version",
    "event_id": "id",
    "application_id": "optional_id",
    "sk_id_curr": "sk_id",
    "event_time": "time",
    "HOUR_APPR_PROCESS_START": "hour",
}
for _name, _info in LoanApplication.model_fields.items():
    if _name in _KIND:
        continue
    if _name not in APPLICATION_FIELDS:  # a field this validator does not know: never take the fast path
        _KIND[_name] = "unknown"
    elif _info.annotation == (str | None):
        _KIND[_name] = "text"
    elif _info.annotation == (float | None):
        _KIND[_name] = "amount"
    else:
        _KIND[_name] = "unknown"
_FIELD_ORDER: tuple[str, ...] = tuple(LoanApplication.model_fields)
_DEFAULTS: dict[str, Any] = {name: None for name in _FIELD_ORDER}
_DEFAULTS["schema_version"] = LoanApplication.model_fields["schema_version"].default
_EXPECTED_FIELDS = frozenset(_KIND) == frozenset(_FIELD_ORDER) and "unknown" not in _KIND.values()


def fast_application(doc: dict[str, Any]) -> LoanApplication | None:
    """The validated application of ``doc`` if it is plainly valid, else ``None`` (ask pydantic)."""
    if not _EXPECTED_FIELDS or "event_id" not in doc or "event_time" not in doc or "sk_id_curr" not in doc:
        return None
    values = dict(_DEFAULTS)
    kinds = _KIND
    present: list[str] = []
    # the model's few fields, not the document's keys: upstream documents often carry every column of
    # the application (120+ keys, extras ignored), and walking them cost 15 µs per event
    for name in _FIELD_ORDER:
        if name not in doc:
            continue
        present.append(name)
        value = doc[name]
        kind = kinds[name]
        vt = type(value)
        if kind == "amount":
            if vt is float:
                if not 0.0 <= value <= MAX_AMOUNT:  # also false for NaN
                    return None
            elif vt is int:
                if not 0 <= value <= MAX_AMOUNT:
                    return None
                value = float(value)
            elif value is not None:
                return None
        elif kind == "text":
            if value is not None and (vt is not str or len(value) > MAX_TEXT_LEN):
                return None
        elif kind == "hour":
            if vt is float and value.is_integer():  # 10.0 from a float column: pydantic's lax int
                value = int(value)
            elif value is not None and vt is not int:
                return None
            if value is not None and not 0 <= value <= 23:
                return None
        elif kind == "sk_id":
            if vt is float and value.is_integer():
                value = int(value)
            elif vt is not int:
                return None
            if not 0 < value <= _MAX_SK_ID:
                return None
        elif kind == "id" or kind == "optional_id":
            valid_id = vt is str and 1 <= len(value) <= MAX_ID_LEN
            if not valid_id and not (value is None and kind == "optional_id"):
                return None
        elif kind == "time":
            value = _utc_time(value)
            if value is None:
                return None
        elif kind == "version":
            if vt is not int or value not in SUPPORTED_VERSIONS:
                return None
        else:
            return None
        values[name] = value
    if values["application_id"] is None:
        values["application_id"] = values["event_id"]
    app = LoanApplication.__new__(LoanApplication)
    object.__setattr__(app, "__dict__", values)
    object.__setattr__(app, "__pydantic_fields_set__", set(present))
    object.__setattr__(app, "__pydantic_extra__", None)
    object.__setattr__(app, "__pydantic_private__", None)
    return app


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
