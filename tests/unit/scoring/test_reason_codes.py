"""Reason codes (scoring.reason_codes): the committed catalogue covers the feature build's schema, and
per-row contributions become up to four distinct codes, strongest first, with the features behind them."""

from __future__ import annotations

import numpy as np
import pytest

from feature_loader.build import feature_schema
from scoring.exceptions import CatalogueBindError
from scoring.policy_file import load_catalogue
from scoring.reason_codes import OTHER, ReasonCatalogue, bind_catalogue
from tests.fixtures.schemas import make_schema


def test_the_committed_catalogue_covers_every_feature_of_the_schema() -> None:
    schema = feature_schema()
    bound = bind_catalogue(load_catalogue(), schema)  # strict: raises on an uncovered feature
    codes = [g.code for g in bound.catalogue.groups]
    assert OTHER.code not in codes
    used = {codes[g] for g in bound.group.tolist()}
    assert used == set(codes)  # every group explains some feature
    by_name = {f.name: codes[g] for f, g in zip(schema.fields, bound.group.tolist(), strict=True)}
    assert by_name["EXT_SOURCE_MEAN"] == "R01_EXTERNAL_SCORES"
    assert by_name["ANNUITY_INCOME_RATIO"] == "R02_DEBT_BURDEN"
    assert by_name["DAYS_BIRTH"] == "R05_AGE"
    assert (
        by_name["INST_LATE_SHARE"] == "R06_LATE_PAYMENTS" and by_name["CC_SK_DPD_MAX"] == "R06_LATE_PAYMENTS"
    )
    assert by_name["BURO_BB_LATE_SHARE_MAX"] == "R07_BUREAU_DELINQUENCY"
    assert by_name["BURO_ACTIVE_DEBT_SUM"] == "R08_BUREAU_DEBT"
    assert (
        by_name["PREV_REFUSED_SHARE"] == "R10_PREVIOUS_REFUSALS"
        and by_name["PREV_COUNT"] == "R11_PREVIOUS_CREDITS"
    )
    assert all(g.text and g.text_fr for g in bound.catalogue.groups)


def test_an_uncovered_feature_is_refused_when_strict_and_other_otherwise() -> None:
    schema = make_schema(extra_cached=2)  # CACHED_0, CACHED_1: no group
    with pytest.raises(CatalogueBindError, match=r"no group covers feature\(s\) \['CACHED_0', 'CACHED_1'\]"):
        bind_catalogue(load_catalogue(), schema)
    lenient = bind_catalogue(load_catalogue(), schema, strict=False)
    assert lenient.catalogue.groups[-1] == OTHER
    assert lenient.group[schema.index["CACHED_0"]] == len(lenient.catalogue.groups) - 1


CATALOGUE = ReasonCatalogue.model_validate(
    {
        "version": "t",
        "groups": [
            {"code": "EXT", "text": "external", "patterns": ["EXT_SOURCE_.*"]},
            {
                "code": "DEBT",
                "text": "debt",
                "features": ["AMT_CREDIT", "AMT_ANNUITY", "CREDIT_INCOME_RATIO"],
            },
            {"code": "INCOME", "text": "income", "features": ["AMT_INCOME_TOTAL"]},
            {"code": "AGE", "text": "age", "features": ["DAYS_BIRTH"]},
            {"code": "REST", "text": "the rest", "patterns": [".*"]},
        ],
    }
)


def contributions(schema: object, **values: float) -> np.ndarray:
    row = np.zeros(len(schema.fields))  # type: ignore[attr-defined]
    for name, v in values.items():
        row[schema.index[name]] = v  # type: ignore[attr-defined]
    return row


def test_codes_sum_their_features_rank_distinct_and_keep_the_features_behind() -> None:
    schema = make_schema()
    bound = bind_catalogue(CATALOGUE, schema)
    refused = contributions(
        schema, EXT_SOURCE_1=0.5, EXT_SOURCE_2=0.3, EXT_SOURCE_3=-0.1, AMT_CREDIT=0.4, AMT_ANNUITY=0.25,
        CREDIT_INCOME_RATIO=0.1, AMT_INCOME_TOTAL=0.05, DAYS_BIRTH=-0.3, HOUR_APPR_PROCESS_START=0.02,
        DAYS_EMPLOYED=0.01,
    )  # fmt: skip
    approved = contributions(schema, DAYS_BIRTH=-0.3, EXT_SOURCE_1=0.2)
    values = np.arange(2 * len(schema.fields), dtype=np.float32).reshape(2, -1)
    got = bound.codes(np.stack([refused, approved]), values, np.array([True, False]), 4)
    codes = [[(c.code, round(c.contribution, 6)) for c in row] for row in got]
    assert codes[0] == [("DEBT", 0.75), ("EXT", 0.7), ("INCOME", 0.05), ("REST", 0.03)]
    assert codes[1] == [("AGE", -0.3)]  # an approval: what pushed away from default
    ext = got[0][1]
    assert [(r.feature, r.contribution) for r in ext.features] == [
        ("EXT_SOURCE_1", 0.5),
        ("EXT_SOURCE_2", 0.3),
    ]
    assert ext.features[0].value == float(values[0, schema.index["EXT_SOURCE_1"]])
    assert len(bound.codes(np.stack([refused]), values[:1], np.array([True]), 9)[0]) == 4  # never more than 4
    assert bound.codes(np.stack([refused]), values[:1], np.array([True]), 2)[0] == got[0][:2]


def test_a_refusal_no_group_pushes_on_balance_still_gets_the_groups_that_pushed() -> None:
    schema = make_schema()
    bound = bind_catalogue(CATALOGUE, schema)
    row = contributions(schema, EXT_SOURCE_1=0.2, EXT_SOURCE_2=-0.5, AMT_CREDIT=0.1, AMT_ANNUITY=-0.3)
    (got,) = bound.codes(row[None, :], np.zeros((1, len(schema.fields))), np.array([True]), 4)
    assert [c.code for c in got] == ["EXT", "DEBT"]  # ranked by what pushed towards default
    assert [c.contribution for c in got] == pytest.approx([-0.3, -0.2])  # the net sums, as they are
    assert [[r.feature for r in c.features] for c in got] == [["EXT_SOURCE_1"], ["AMT_CREDIT"]]
