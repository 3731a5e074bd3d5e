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


_AMOUNTS = tuple(n for n in _FIELD_ORDER if _KIND[n] == "amount")
_TEXTS = tuple(n for n in _FIELD_ORDER if _KIND[n] == "text")
_MISSING = object()


def fast_application(doc: dict[str, Any]) -> LoanApplication | None:
    """The validated application of ``doc`` if it is plainly valid, else ``None`` (ask pydantic)."""
    if not _EXPECTED_FIELDS:
        return None
    get = doc.get
    event_id, event_time, sk_id = get("event_id"), get("event_time"), get("sk_id_curr", _MISSING)
    if event_id is None or event_time is None or sk_id is _MISSING:
        return None  # absent (or null: pydantic judges)
    values = dict(_DEFAULTS)
    # one loop per kind over the model's few fields, never over the document's keys: upstream documents
    # often carry every column of the application (120+ keys, extras ignored)
    for name in _AMOUNTS:
        value = get(name, _MISSING)
        if value is _MISSING or value is None:
            continue
        vt = type(value)
        if vt is float:
            if not 0.0 <= value <= MAX_AMOUNT:  # also false for NaN
                return None
        elif vt is int:
            if not 0 <= value <= MAX_AMOUNT:
                return None
            value = float(value)
        else:
            return None
        values[name] = value
    for name in _TEXTS:
        value = get(name)
        if value is not None:
            if type(value) is not str or len(value) > MAX_TEXT_LEN:
                return None
            values[name] = value
    hour = get("HOUR_APPR_PROCESS_START")
    if hour is not None:
        if type(hour) is float and hour.is_integer():  # 10.0 from a float column: pydantic's lax int
            hour = int(hour)
        elif type(hour) is not int:
            return None
        if not 0 <= hour <= 23:
            return None
        values["HOUR_APPR_PROCESS_START"] = hour
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
    app = LoanApplication.__new__(LoanApplication)
    object.__setattr__(app, "__dict__", values)
    object.__setattr__(
        app,
        "__pydantic_fields_set__",
        {n for n in _FIELD_ORDER if n in doc},  # bounded by the model, whatever the document carries
    )
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
