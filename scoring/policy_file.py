"""Reading the policy and the reason-code catalogue from their YAML files (the only I/O of the policy).

:func:`load_policy` / :func:`load_catalogue` raise :class:`PolicyFileError` with one line naming the
file, the rule (its code when the file gives one) and the field at fault, so a bad file stops the start
of the worker, the API or replay with that line. :func:`prepare_with_policy` binds both to a model.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from scoring.exceptions import PolicyFileError
from scoring.policy import Policy
from scoring.reason_codes import ReasonCatalogue

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_POLICY_FILE = DATA_DIR / "policy.yaml"
DEFAULT_CATALOGUE_FILE = DATA_DIR / "reason_codes.yaml"

if TYPE_CHECKING:
    from scoring.model import ScoringModel
    from scoring.prepared import PreparedModel

_M = TypeVar("_M", bound=BaseModel)


def prepare_with_policy(
    model: ScoringModel, policy_path: Path, catalogue_path: Path, *, use_forest: bool = True
) -> PreparedModel:
    """The model prepared with the policy and the catalogue of these files — what the worker, the API and
    replay score with (PolicyError naming the file, rule and field: the caller stops its start)."""
    from scoring.prepared import PreparedModel

    policy, catalogue = load_policy(policy_path), load_catalogue(catalogue_path)
    return PreparedModel(model, use_forest=use_forest, policy=policy, catalogue=catalogue)


def load_policy(path: Path = DEFAULT_POLICY_FILE) -> Policy:
    """The validated policy of a YAML file (PolicyFileError naming the rule and the field)."""
    return _load(Policy, Path(path), "policy")


def load_catalogue(path: Path = DEFAULT_CATALOGUE_FILE) -> ReasonCatalogue:
    """The validated reason-code catalogue of a YAML file (PolicyFileError naming the group and field)."""
    return _load(ReasonCatalogue, Path(path), "reason catalogue")


def _load(cls: type[_M], path: Path, what: str) -> _M:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyFileError(f"{what} file {path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise PolicyFileError(f"{what} file {path}{line}: not valid YAML ({_first_line(exc)})") from None
    if not isinstance(raw, dict):
        raise PolicyFileError(f"{what} file {path}: expected a mapping at the top, got {type(raw).__name__}")
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        raise PolicyFileError(f"{what} file {path}: {describe_error(exc, raw)}") from None


def describe_error(exc: ValidationError, raw: dict[str, Any]) -> str:
    """The first error as 'rule <code> (<path>) field <name>: <message>' (rule = the list item)."""
    err = exc.errors()[0]
    loc = [str(part) for part in err["loc"]]
    item: Any = raw
    rule_at = 0
    code = ""
    for depth, part in enumerate(err["loc"]):
        item = item.get(part) if isinstance(item, dict) else _index(item, part)
        if isinstance(item, dict) and "code" in item:
            rule_at = depth + 1
            code = item["code"]
        if item is None:
            break
    if rule_at:
        rule = f"rule {code} ({'.'.join(loc[:rule_at])})"
        field = ".".join(loc[rule_at:]) or "(the rule)"
        return f"{rule} field {field}: {err['msg']}"
    return f"field {'.'.join(loc) or '(top level)'}: {err['msg']}"


def _index(item: Any, part: Any) -> Any:
    if isinstance(item, list) and isinstance(part, int) and 0 <= part < len(item):
        return item[part]
    return None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
