"""The application form: every application column of the Home Credit schema, from the committed contract.

``schemas/application_columns.json`` (generated once by ``python -m devtools.application_contract``,
reviewed and committed; never learned at run time) lists, per column of application_train/test minus
``SK_ID_CURR`` and ``TARGET``: its type (``number``, ``integer`` or ``category``), its physical range
(``min``/``max``), the out-of-range ``codes`` the source data uses on purpose (``DAYS_EMPLOYED``
365243), the ``levels`` of a categorical (its fixed vocabulary) and the description of
``HomeCredit_columns_description.csv``.

This module reads it once at import and gives the event model its fields (:func:`pydantic_fields`),
the fast validator its checks, and the feature build its vocabularies (:data:`LEVELS`). Pure: pydantic
and the standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

CONTRACT_FILE: Final = Path(__file__).resolve().parent / "application_columns.json"
MAX_TEXT_LEN: Final = 64

ColumnType = Literal["number", "integer", "category"]


@dataclass(frozen=True, slots=True)
class FormColumn:
    """One application column of the contract."""

    name: str
    type: ColumnType
    description: str
    low: float | None = None  # physical range (None for categories)
    high: float | None = None
    codes: tuple[int, ...] = ()  # out-of-range values the source uses on purpose
    levels: tuple[str, ...] = ()  # fixed vocabulary of a category

    def accepts(self, value: float) -> bool:
        """Whether a number is in the physical range or one of the codes."""
        assert self.low is not None and self.high is not None
        return self.low <= value <= self.high or value in self.codes


def _load(path: Path) -> tuple[FormColumn, ...]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    columns = []
    for c in doc["columns"]:
        columns.append(
            FormColumn(
                name=c["name"],
                type=c["type"],
                description=c["description"],
                low=c.get("min"),
                high=c.get("max"),
                codes=tuple(c.get("codes", ())),
                levels=tuple(c.get("levels", ())),
            )
        )
    return tuple(columns)


FORM_COLUMNS: Final[tuple[FormColumn, ...]] = _load(CONTRACT_FILE)
COLUMN: Final[dict[str, FormColumn]] = {c.name: c for c in FORM_COLUMNS}
LEVELS: Final[dict[str, tuple[str, ...]]] = {c.name: c.levels for c in FORM_COLUMNS if c.type == "category"}


def _number_not_text(value: object) -> object:
    """Integers may arrive as integral floats (``10.0``, from float columns) but never as text/booleans."""
    if isinstance(value, str | bool | bytes):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


WholeNumber = Annotated[int, BeforeValidator(_number_not_text)]


def _range_with_codes(column: FormColumn) -> AfterValidator:
    codes = f", or one of {list(column.codes)}" if column.codes else ""

    def check(value: int | None) -> int | None:
        if value is not None and not column.accepts(value):
            raise PydanticCustomError(
                "out_of_range",
                "Input should be between {low} and {high}{codes}",
                {"low": column.low, "high": column.high, "codes": codes},
            )
        return value

    return AfterValidator(check)


def _field(column: FormColumn) -> tuple[Any, Any]:
    """(annotation, default) of one form column in the event model."""
    text = column.description
    if column.type == "category":
        doc = f"{text}. Levels: {', '.join(column.levels)}; another text is scored as missing."
        example = [column.levels[0]]
        return Annotated[
            str | None, Field(strict=True, max_length=MAX_TEXT_LEN, description=doc, examples=example)
        ], None
    if column.type == "number":
        return Annotated[
            float | None, Field(strict=True, ge=column.low, le=column.high, description=text)
        ], None
    # integers: the range check runs after pydantic's lax int (10.0 → 10), so the JSON Schema is written
    # here, in standard keywords (pydantic would emit its own ``ge``/``le`` for a wrapped int)
    if column.codes:
        text += f". Also accepted: {', '.join(map(str, column.codes))} (codes of the source data)."
    schema: dict[str, Any] = {
        "anyOf": [
            {"type": "integer", "minimum": column.low, "maximum": column.high},
            *({"const": c} for c in column.codes),
            {"type": "null"},
        ],
        "description": text,
        "default": None,
    }
    return Annotated[WholeNumber | None, _range_with_codes(column), WithJsonSchema(schema)], None


def pydantic_fields() -> dict[str, tuple[Any, Any]]:
    """Field definitions of every form column, for ``pydantic.create_model``."""
    return {c.name: _field(c) for c in FORM_COLUMNS}
