import math

import pytest

from feature_loader.feature_schema import FeatureField, FeatureKind, FeatureSchema, FeatureSource


def make_schema(**overrides: object) -> FeatureSchema:
    fields = [
        FeatureField(name="AMT_CREDIT", source=FeatureSource.EVENT),
        FeatureField(
            name="NAME_CONTRACT_TYPE",
            kind=FeatureKind.CATEGORICAL,
            source=FeatureSource.EVENT,
            categories=("Cash loans", "Revolving loans"),
        ),
        FeatureField(name="AMT_INCOME_TOTAL"),
        FeatureField(name="CREDIT_INCOME_RATIO", source=FeatureSource.DERIVED),
    ]
    return FeatureSchema(fields=tuple(fields), **overrides)


def test_version_is_stable_and_round_trips() -> None:
    a, b = make_schema(), make_schema()
    assert a.version == b.version
    assert FeatureSchema.from_json_bytes(a.to_json_bytes()).version == a.version


def test_version_changes_with_any_field_change() -> None:
    base = make_schema()
    renamed = FeatureSchema(fields=(*base.fields[:-1], FeatureField(name="X", source=FeatureSource.DERIVED)))
    moved = FeatureSchema(fields=(base.fields[1], base.fields[0], *base.fields[2:]))
    resourced = FeatureSchema(
        fields=(
            *base.fields[:2],
            FeatureField(name="AMT_INCOME_TOTAL", source=FeatureSource.EVENT),
            base.fields[3],
        )
    )
    assert len({base.version, renamed.version, moved.version, resourced.version}) == 4


def test_split_by_source() -> None:
    s = make_schema()
    assert [f.name for f in s.event_fields] == ["AMT_CREDIT", "NAME_CONTRACT_TYPE"]
    assert [f.name for f in s.cached_fields] == ["AMT_INCOME_TOTAL"]
    assert [f.name for f in s.derived_fields] == ["CREDIT_INCOME_RATIO"]


def test_tampered_version_is_refused() -> None:
    raw = make_schema().to_json_bytes().replace(b'"version": "', b'"version": "0')
    with pytest.raises(ValueError, match="hash to"):
        FeatureSchema.from_json_bytes(raw)


def test_categorical_encoding() -> None:
    f = make_schema().field("NAME_CONTRACT_TYPE")
    assert f.encode("Revolving loans") == 1.0
    assert math.isnan(f.encode("Unknown"))
    assert f.decode(1.0) == "Revolving loans"
    assert f.decode(float("nan")) is None


def test_duplicate_names_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        FeatureSchema(fields=(FeatureField(name="A"), FeatureField(name="A")))
