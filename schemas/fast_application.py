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
from typing import Any

from schemas.application_form import FORM_COLUMNS, MAX_TEXT_LEN
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
_NO_CODES: frozenset[int] = frozenset()

# column → (kind, low, high, codes); the order of LoanApplication.model_fields is the instance dict's
_CHECKS: dict[str, tuple[int, float, float, frozenset[int]]] = {
    c.name: (_KIND[c.type], c.low or 0.0, c.high or 0.0, frozenset(c.codes) or _NO_CODES)
    for c in FORM_COLUMNS
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


def fast_application(doc: dict[str, Any]) -> LoanApplication | None:
    """The validated application of ``doc`` if it is plainly valid, else ``None`` (ask pydantic)."""
    if not _EXPECTED_FIELDS:
        return None
    get = doc.get
    event_id, event_time, sk_id = get("event_id"), get("event_time"), get("sk_id_curr", _MISSING)
    if event_id is None or event_time is None or sk_id is _MISSING:
        return None  # absent (or null: pydantic judges)
    values = dict(_DEFAULTS)
    carried = doc.keys() & _FIELD_SET  # C-speed; extras are ignored, as by the model
    if not _form_values(doc, carried & _FORM_SET, values):
        return None
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
    object.__setattr__(app, "__pydantic_fields_set__", carried)
    object.__setattr__(app, "__pydantic_extra__", None)
    object.__setattr__(app, "__pydantic_private__", None)
    return app


def _form_values(doc: dict[str, Any], names: set[str], values: dict[str, Any]) -> bool:
    """Check and convert the carried form columns into ``values``; False when pydantic must judge."""
    checks = _CHECKS
    for name in names:
        value = doc[name]
        if value is None:
            continue  # explicit null: carried, unknown
        kind, low, high, codes = checks[name]
        vt = type(value)
        if kind == _TEXT:
            if vt is not str or len(value) > MAX_TEXT_LEN:
                return False
        elif kind == _NUMBER:
            if vt is not float and vt is not int:
                return False
            if not low <= value <= high:  # also false for NaN
                return False
            value = float(value)  # after the range check: a huge int would overflow
        else:
            if vt is float:  # 10.0 from a float column: pydantic's lax int
                if not value.is_integer():
                    return False
                value = int(value)
            elif vt is not int:
                return False
            if not low <= value <= high and value not in codes:
                return False
        values[name] = value
    return True


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
