"""Reason codes are pinned to what the per-row builder gave before the batch builder replaced it.

The digests below are of the codes the earlier implementation of ``BoundCatalogue.codes`` (one
generator of ``Reason`` per code, row by row; commit 1243971) gave for three seeded synthetic batches
on the feature build's schema and the committed catalogue: rows where no group pushes the explained
way on balance, rows with nothing pushing at all, tied contributions, NaN values, categorical codes
in and out of their levels, refusals and approvals, k = 4, 3 and 1. The canonical form keeps every
string, every float exactly and each value's type, so any change of order, content or type fails.
"""

from __future__ import annotations

import hashlib

import numpy as np
import orjson
import pytest

from feature_loader.build import feature_schema
from feature_loader.feature_schema import FeatureSchema
from scoring.policy_file import load_catalogue
from scoring.reason_codes import bind_catalogue
from scoring.results import CodeReason, Reason

GOLDEN = {
    (1, 4): "481468a4f2cbd11bf640e2ea8ff8894f505e93d268c174e3a0e11792c71642c5",
    (2, 3): "41234c558d178cd0f0194a348a9fb435341b9e12926503b391287e884ab97790",
    (3, 1): "095a47ced38ce07eb5e53c9d040e2ef61de329670232937f54abadb611c3119a",
}


def seeded_batch(seed: int) -> tuple[FeatureSchema, np.ndarray, np.ndarray, np.ndarray]:
    schema = feature_schema()
    rng = np.random.default_rng(seed)
    m, f = 240, len(schema.fields)
    contrib = rng.normal(0, 0.05, (m, f)) * (rng.random((m, f)) < 0.4)
    contrib[:10] = -np.abs(contrib[:10])  # no group pushes towards default on balance
    contrib[10:20, :] = 0.0  # nothing pushes at all
    contrib[20:30] = np.round(contrib[20:30], 2)  # ties
    values = rng.normal(0, 1000, (m, f)).astype(np.float32)
    for j, fld in enumerate(schema.fields):
        if fld.categories:
            values[:, j] = rng.integers(-2, len(fld.categories) + 2, m)
    values[rng.random((m, f)) < 0.2] = np.nan
    towards = rng.random(m) < 0.7
    return schema, contrib, values, towards


def canonical(out: list[tuple[CodeReason, ...]]) -> list[object]:
    return [
        [
            [
                c.code,
                c.text,
                c.contribution,
                [[r.feature, r.value, type(r.value).__name__, r.contribution] for r in c.features],
            ]
            for c in row
        ]
        for row in out
    ]


@pytest.mark.parametrize(("seed", "k"), sorted(GOLDEN))
def test_codes_equal_the_earlier_builders(seed: int, k: int) -> None:
    schema, contrib, values, towards = seeded_batch(seed)
    out = bind_catalogue(load_catalogue(), schema).codes(contrib, values, towards, k)
    assert all(
        type(c) is CodeReason and all(type(r) is Reason for r in c.features) for row in out for c in row
    )
    assert hashlib.sha256(orjson.dumps(canonical(out))).hexdigest() == GOLDEN[(seed, k)]


def test_one_row_in_full() -> None:
    """A readable excerpt of the pinned output (the digest says only that something changed)."""
    schema, contrib, values, towards = seeded_batch(1)
    out = bind_catalogue(load_catalogue(), schema).codes(contrib, values, towards, 4)
    row = canonical(out)[0]
    assert row == []
    full = next(r for r in canonical(out) if len(r) == 4 and any(type(x[1]) is str for c in r for x in c[3]))
    assert full[0] == [
        "R15_HOUSING_REGION",
        "Housing and region of residence.",
        0.26,
        [
            ["FLAG_OWN_REALTY", None, "NoneType", 0.11],
            ["FONDKAPREMONT_MODE", "reg oper spec account", "str", 0.07],
            ["WALLSMATERIAL_MODE", "Mixed", "str", 0.06],
        ],
    ]
    assert full[2][2] == 0.09000000000000001 and full[2][3][0][1] == -413.6314697265625
