"""Policy and reason-catalogue files (scoring.policy_file): the committed ones load, a bad file is one
line naming the file, the rule and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from scoring.exceptions import PolicyFileError
from scoring.policy_file import DEFAULT_CATALOGUE_FILE, DEFAULT_POLICY_FILE, load_catalogue, load_policy


def committed_policy() -> dict:
    return yaml.safe_load(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))


def write(tmp_path: Path, doc: object, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_the_committed_files_load() -> None:
    policy = load_policy()
    assert policy.version and len(policy.knockouts) == 5 and len(policy.refer.rules()) == 4
    catalogue = load_catalogue()
    assert catalogue.max_codes == 4 and len(catalogue.groups) >= 10


def bad(doc: dict, path: list[object], value: object) -> dict:
    """``doc`` with the value at ``path`` replaced (a key set to ... is removed)."""
    node: object = doc
    for part in path[:-1]:
        node = node[part]  # type: ignore[index]
    if value is ...:
        del node[path[-1]]  # type: ignore[attr-defined]
    else:
        node[path[-1]] = value  # type: ignore[index]
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["knockouts", 1, "op"], "=>", r"rule KO_AGE_MAX \(knockouts\.1\) field op: Input should be"),
        (["knockouts", 3, "value"], "lots", r"rule KO_ANNUITY_INCOME \(knockouts\.3\) field value:"),
        (["knockouts", 0, "divide_by"], 0, r"rule KO_AGE_MIN \(knockouts\.0\) field \(the rule\): .*divide"),
        (["knockouts", 2, "colour"], "red", r"rule KO_INCOME_NOT_POSITIVE \(knockouts\.2\) field colour"),
        (["knockouts", 4, "code"], "ko lower", r"knockouts\.4\) field code: String should match pattern"),
        (["refer", "band", "below"], -0.1, r"rule RF_BAND \(refer\.band\) field below: .*greater than"),
        (["refer", "stale_features", "max_age_s"], ..., r"rule RF_STALE_FEATURES .* field max_age_s: Field"),
        (["refer", "missing_fields", "fields"], [], r"rule RF_MISSING_FIELDS .* field fields: List should"),
        (["version"], ..., r"field version: Field required"),
    ],
)  # fmt: skip
def test_a_bad_policy_names_the_rule_and_the_field(
    tmp_path: Path, path: list[object], value: object, message: str
) -> None:
    file = write(tmp_path, bad(committed_policy(), path, value))
    with pytest.raises(PolicyFileError, match=message) as info:
        load_policy(file)
    assert str(info.value).startswith(f"policy file {file}: ") and "\n" not in str(info.value)


def test_repeated_rule_codes_are_refused(tmp_path: Path) -> None:
    doc = committed_policy()
    doc["refer"]["band"]["code"] = "KO_AGE_MIN"
    with pytest.raises(PolicyFileError, match=r"rule codes must be unique, repeated: \['KO_AGE_MIN'\]"):
        load_policy(write(tmp_path, doc))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: [1\nknockouts: []", r"line \d+: not valid YAML"),
        ("- just\n- a list", "expected a mapping at the top, got list"),
    ],
)
def test_unreadable_policy_files(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyFileError, match=message):
        load_policy(write(tmp_path, text))
    with pytest.raises(PolicyFileError, match=r"cannot read it"):
        load_policy(tmp_path / "absent.yaml")


def test_a_bad_catalogue_names_the_group_and_the_field(tmp_path: Path) -> None:
    doc = yaml.safe_load(DEFAULT_CATALOGUE_FILE.read_text(encoding="utf-8"))
    doc["groups"][1]["patterns"] = ["EXT_(SOURCE"]
    with pytest.raises(
        PolicyFileError, match=r"rule R02_DEBT_BURDEN \(groups\.1\) field patterns: .*not a regular"
    ):
        load_catalogue(write(tmp_path, doc, "codes.yaml"))
    doc = yaml.safe_load(DEFAULT_CATALOGUE_FILE.read_text(encoding="utf-8"))
    doc["max_codes"] = 5  # Regulation B practice: at most four principal reasons
    with pytest.raises(PolicyFileError, match=r"field max_codes: Input should be less than or equal to 4"):
        load_catalogue(write(tmp_path, doc, "codes.yaml"))
