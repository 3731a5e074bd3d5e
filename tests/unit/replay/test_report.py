"""The replay comparison and report on hand-made rows whose answers are worked out below."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replay.checkpoint import ROW_SCHEMA
from replay.cli import parse_offsets, parse_time
from replay.compare import CostMatrix, compare, income_band, load_labels
from replay.exceptions import ReplayInputError
from replay.report import render_markdown, write_plots

# id, client, contract, income, p_old, refused_old, p_new, refused_new   (None = no live decision)
HAND = [
    ("a1", 1, "Cash loans", 90_000.0, 0.1, False, 0.6, True),  # ACCORD→REFUS, defaulted: FN fixed
    ("a2", 2, "Cash loans", 120_000.0, 0.7, True, 0.2, False),  # REFUS→ACCORD, repaid: FP fixed
    ("a3", 3, "Revolving loans", 250_000.0, 0.2, False, 0.3, False),  # ACCORD both, defaulted: FN both
    ("a4", 4, "Revolving loans", 400_000.0, 0.8, True, 0.9, True),  # REFUS both, repaid: FP both
    ("a5", 5, "Cash loans", None, 0.1, False, 0.1, False),  # no label, unknown income
    ("a6", 6, None, 150_000.0, None, None, 0.5, True),  # no live decision: not joined
]
LABELS = {1: 1, 2: 0, 3: 1, 4: 0, 6: 1}


def hand_rows(rows: list[tuple[Any, ...]] = HAND) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "application_id": [r[0] for r in rows],
            "sk_id_curr": [r[1] for r in rows],
            "partition": [0] * len(rows),
            "offset": list(range(len(rows))),
            "contract_type": [r[2] for r in rows],
            "income": [r[3] for r in rows],
            "prob_new": [r[6] for r in rows],
            "refused_new": [r[7] for r in rows],
            "prob_old": [r[4] for r in rows],
            "refused_old": [r[5] for r in rows],
            "baseline_model": [None if r[5] is None else "m-live" for r in rows],
            # outcomes and rules: given as r[8:12], else the model's label and no rule
            "decision_new": [r[8] if len(r) > 8 else ("REFUS" if r[7] else "ACCORD") for r in rows],
            "rules_new": [r[9] if len(r) > 8 else "" for r in rows],
            "decision_old": [
                r[10] if len(r) > 8 else (None if r[5] is None else "REFUS" if r[5] else "ACCORD")
                for r in rows
            ],
            "rules_old": [r[11] if len(r) > 8 else (None if r[5] is None else "") for r in rows],
            # fairness groups: odd clients F, even M; contract as stored; age and income not in the schema
            "group_gender": ["F" if r[1] % 2 else "M" for r in rows],
            "group_age_band": [None] * len(rows),
            "group_contract_type": [r[2] or "unknown" for r in rows],
            "group_income_band": [None] * len(rows),
        },
        schema=ROW_SCHEMA,
    )


def hand_labels() -> pl.DataFrame:
    return pl.DataFrame(
        {"sk_id_curr": list(LABELS), "label": list(LABELS.values())},
        schema={"sk_id_curr": pl.Int64, "label": pl.Int8},
    )


def test_hand_case_counts_rates_flips_and_cost() -> None:
    c = compare(hand_rows(), "m-new", hand_labels())
    o = c.overall
    assert (c.rescored, c.joined, c.unmatched, c.labelled) == (6, 5, 1, 5)
    assert c.baseline_models == {"m-live": 5}
    assert o.approval_before == pytest.approx(3 / 5) and o.approval_after == pytest.approx(3 / 5)
    assert (o.accord_to_refus, o.refus_to_accord, o.labelled) == (1, 1, 4)
    # before: FN a1, a3 (10 each) + FP a2, a4 (1 each) = 22; after: FN a3 + FP a4 = 11
    assert (o.fn_before, o.fp_before, o.cost_before) == (2, 2, 22.0)
    assert (o.fn_after, o.fp_after, o.cost_after) == (1, 1, 11.0)
    assert c.shift["mean"] == pytest.approx(0.04) and c.shift["median"] == pytest.approx(0.1)
    assert c.shift["max_abs"] == pytest.approx(0.5)
    assert [e["application_id"] for e in c.examples["accord_to_refus"]] == ["a1"]
    assert [e["application_id"] for e in c.examples["refus_to_accord"]] == ["a2"]


def test_hand_case_segments() -> None:
    c = compare(hand_rows(), "m-new", hand_labels())
    contract = {g.name: g for g in c.by_contract}
    assert list(contract) == ["Cash loans", "Revolving loans"]  # a6 (unknown contract) is not joined
    cash, revolving = contract["Cash loans"], contract["Revolving loans"]
    assert (cash.joined, cash.approval_before, cash.approval_after) == (
        3,
        pytest.approx(2 / 3),
        pytest.approx(2 / 3),
    )
    assert (cash.cost_before, cash.cost_after, revolving.cost_before, revolving.cost_after) == (11, 0, 11, 11)
    income = {g.name: (g.joined, g.accord_to_refus, g.refus_to_accord) for g in c.by_income}
    assert income == {
        "< 100k": (1, 1, 0),
        "100k–150k": (1, 0, 1),
        "200k–300k": (1, 0, 0),
        "≥ 300k": (1, 0, 0),
        "unknown": (1, 0, 0),
    }


def test_custom_cost_matrix_and_no_labels() -> None:
    c = compare(hand_rows(), "m-new", hand_labels(), CostMatrix(fn=5, fp=2))
    assert (c.overall.cost_before, c.overall.cost_after) == (2 * 5 + 2 * 2, 5 + 2)
    bare = compare(hand_rows(), "m-new")
    assert (bare.labelled, bare.overall.cost_before, bare.overall.cost_after) == (0, 0, 0)


@pytest.mark.parametrize(
    ("income", "band"),
    [
        (None, "unknown"),
        (float("nan"), "unknown"),
        (0.0, "< 100k"),
        (99_999.0, "< 100k"),
        (100_000.0, "100k–150k"),
        (150_000.0, "150k–200k"),
        (300_000.0, "≥ 300k"),
    ],
)
def test_income_band_edges(income: float | None, band: str) -> None:
    assert income_band(income) == band


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.booleans(), st.sampled_from([0, 1, None])), min_size=1, max_size=40)
)
def test_rates_move_by_the_net_flips_and_cost_matches_its_definition(
    cases: list[tuple[bool, bool, int | None]],
) -> None:
    rows = [
        (f"x{i}", i + 1, "Cash loans", 1e5, 0.9 if old else 0.1, old, 0.9 if new else 0.1, new)
        for i, (old, new, _) in enumerate(cases)
    ]
    labels = pl.DataFrame(
        {
            "sk_id_curr": [i + 1 for i, c in enumerate(cases) if c[2] is not None],
            "label": [c[2] for c in cases if c[2] is not None],
        },
        schema={"sk_id_curr": pl.Int64, "label": pl.Int8},
    )
    o = compare(hand_rows(rows), "m", labels).overall
    n = len(cases)
    assert o.approval_after - o.approval_before == pytest.approx((o.refus_to_accord - o.accord_to_refus) / n)  # type: ignore[operator]
    fn = sum(1 for old, new, y in cases if y == 1 and not new)
    fp = sum(1 for old, new, y in cases if y == 0 and new)
    assert o.cost_after == 10 * fn + fp


def test_markdown_and_plots(tmp_path: Path) -> None:
    c = compare(hand_rows(), "m-new", hand_labels())
    text = render_markdown(
        c, {"applications_topic": "apps", "decisions_topic": "dec", "counts": {"invalid_bad_json": 2}}
    )
    assert "ACCORD → REFUS: **1**" in text and "REFUS → ACCORD: **1**" in text
    assert "| live | 2 | 2 | 22 | 5.5000 |" in text and "| replay | 1 | 1 | 11 | 2.7500 |" in text
    assert "invalid_bad_json 2" in text and "**m-live** (5)" in text
    paths = write_plots(c, pl.Series([0.5, -0.5, 0.1, 0.1, 0.0]), tmp_path / "plots")
    assert sorted(p.name for p in paths) == [
        "approval_by_segment.png",
        "approval_rate.png",
        "cost.png",
        "score_shift.png",
    ]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_labels_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    good = tmp_path / "labels.csv"
    good.write_text("SK_ID_CURR,TARGET\n1,1\n2,0\n3,\n")
    assert load_labels(good).to_dicts() == [{"sk_id_curr": 1, "label": 1}, {"sk_id_curr": 2, "label": 0}]
    cases = {
        "nocol.csv": ("SK_ID_CURR,Y\n1,1\n", "no column TARGET"),
        "two.csv": ("SK_ID_CURR,TARGET\n1,2\n", "TARGET must be 0 or 1, got 2 for SK_ID_CURR 1"),
        "dup.csv": ("SK_ID_CURR,TARGET\n1,1\n1,0\n", "SK_ID_CURR 1 has more than one TARGET"),
    }
    for name, (body, message) in cases.items():
        (tmp_path / name).write_text(body)
        with pytest.raises(ReplayInputError, match=f"{name}.*{message}"):
            load_labels(tmp_path / name)
    with pytest.raises(ReplayInputError, match="not found"):
        load_labels(tmp_path / "absent.parquet")


def test_cli_range_arguments() -> None:
    assert parse_offsets(None, "--from-offset") == {}
    assert parse_offsets(["42"], "--from-offset") == 42
    assert parse_offsets(["0:10", "3:7"], "--from-offset") == {0: 10, 3: 7}
    for bad, message in ((["x"], "not an integer"), (["-1"], ">= 0"), (["1:2", "5"], "PARTITION:OFFSET")):
        with pytest.raises(ReplayInputError, match=message):
            parse_offsets(bad, "--from-offset")
    assert parse_time("1700000000000", "--from-time") == 1_700_000_000_000
    assert parse_time("2023-11-14T22:13:20", "--from-time") == 1_700_000_000_000
    assert parse_time("2023-11-14T23:13:20+01:00", "--to-time") == 1_700_000_000_000
    with pytest.raises(ReplayInputError, match="--to-time 'yesterday'"):
        parse_time("yesterday", "--to-time")


POLICY_ROWS = [  # ... decision_new, rules_new, decision_old, rules_old
    ("p1", 1, "Cash loans", 1e5, 0.1, False, 0.6, True, "REFUS", "KO_AGE_MAX", "ACCORD", ""),
    ("p2", 2, "Cash loans", 1e5, 0.5, True, 0.5, True, "REFER", "RF_BAND", "REFER", "RF_BAND"),
    ("p3", 3, "Cash loans", 1e5, 0.5, True, 0.4, True, "REFER", "RF_BAND,RF_MISSING_FIELDS", "REFUS", ""),
    ("p4", 4, "Cash loans", 1e5, 0.1, False, 0.1, False, "ACCORD", "", "ACCORD", ""),
    ("p5", 5, None, 1e5, None, None, 0.9, True, "REFUS", "KO_AGE_MAX,RF_BAND", None, None),  # not joined
]


def test_policy_outcomes_and_rule_hits_per_model(tmp_path: Path) -> None:
    c = compare(hand_rows(POLICY_ROWS), "m-new")
    replay, live = c.policy
    assert (replay.model, replay.side, replay.decisions) == ("m-new", "replay", 5)
    assert replay.outcomes == {"ACCORD": 1, "REFER": 2, "REFUS": 2} and replay.refer == 2
    assert replay.rule_hits == {"RF_BAND": 3, "KO_AGE_MAX": 2, "RF_MISSING_FIELDS": 1}
    assert (live.model, live.side, live.decisions) == ("m-live", "live", 4)  # its joined rows only
    assert live.outcomes == {"ACCORD": 2, "REFER": 1, "REFUS": 1} and live.rule_hits == {"RF_BAND": 1}
    assert c.overall.approval_before == pytest.approx(2 / 4)  # a REFER is not an approval
    text = render_markdown(c, {})
    assert (
        "| m-new | replay | 5 | 1 | 2 | 2 | 40.00 % | RF_BAND 3, KO_AGE_MAX 2, RF_MISSING_FIELDS 1 |" in text
    )
    assert "| m-live | live | 4 | 2 | 1 | 1 | 25.00 % | RF_BAND 1 |" in text


def test_fairness_old_and_new_side_by_side_with_the_change_in_disparate_impact() -> None:
    c = compare(hand_rows(), "m-new", min_group_decisions=1)
    old, new = c.fairness["old"], c.fairness["new"]
    assert old["rows"] == new["rows"] == 5  # the joined rows only (a6 has no live decision)
    # F = a1, a3, a5: live ACCORD ×3, replay ACCORD a3, a5; M = a2, a4: live REFUS ×2, replay ACCORD a2
    f_old, f_new = old["segments"]["gender"]["groups"]["F"], new["segments"]["gender"]["groups"]["F"]
    assert (f_old["decisions"], f_old["approvals"], f_new["approvals"]) == (3, 3, 2)
    assert f_old["mean_probability"] == pytest.approx((0.1 + 0.2 + 0.1) / 3)
    assert f_new["mean_probability"] == pytest.approx((0.6 + 0.3 + 0.1) / 3)
    assert old["segments"]["gender"]["disparate_impact"] == 0.0  # M: 0 / 2 approved live
    assert new["segments"]["gender"]["disparate_impact"] == pytest.approx(0.5 / (2 / 3))
    assert c.fairness["disparate_impact_change"]["gender"] == pytest.approx(0.75)
    assert old["segments"]["gender"]["below_four_fifths"] and new["segments"]["gender"]["below_four_fifths"]
    # contract: Cash a1, a2, a5 (live 2/3, replay 2/3), Revolving a3, a4 (1/2, 1/2)
    assert new["segments"]["contract_type"]["disparate_impact"] == pytest.approx(0.5 / (2 / 3))
    assert c.fairness["disparate_impact_change"]["contract_type"] == pytest.approx(0.0)
    for family in ("age_band", "income_band"):  # not in the (hand) model's schema
        assert old["segments"][family]["status"] == new["segments"][family]["status"] == "unavailable"
        assert c.fairness["disparate_impact_change"][family] is None
    text = render_markdown(c, {})
    assert "| gender | 0.000 ⚠ < 0.8 | 0.750 ⚠ < 0.8 | +0.750 |" in text
    assert "| age_band | unavailable | unavailable | – |" in text
    assert "| gender | F | 3 | 100.00 % | 66.67 % | -33.33 pp |" in text
    # the default minimum (the live metric's 100 applications) leaves every ratio undefined here
    assert compare(hand_rows(), "m-new").fairness["new"]["segments"]["gender"]["disparate_impact"] is None


def test_two_versions_are_named_instead_of_live_and_replay() -> None:
    from replay.report import sides_of

    meta = {"against_model_version": "m-old", "registry_version": "3", "against_registry_version": "2"}
    assert sides_of(meta) == ("v2", "v3") and sides_of({}) == ("live", "replay")
    c = compare(hand_rows(), "m-new", hand_labels(), sides=sides_of(meta))
    text = render_markdown(c, {**meta, "feature_version": "fv1"})
    assert "**v3** = model **m-new** (registry version 3)" in text
    assert "**v2** = model **m-old** (registry version 2)" in text
    assert "| v2 | 2 | 2 | 22 | 5.5000 |" in text and "| v3 | 1 | 1 | 11 | 2.7500 |" in text
    assert "| live |" not in text and "live decision" not in text.split("not read")[1]
    assert [s.side for s in c.policy] == ["v3", "v2"]
