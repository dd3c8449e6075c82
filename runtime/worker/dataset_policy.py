"""Dataset policies: the operator's ``<file>.policy.json`` next to a data file.

A policy file holds one JSON object::

    {"level": "private-aggregation", "tenants": ["analytics"], "min_rows": 10}

``level`` is ``public``, ``private-aggregation`` or ``private`` (see ``fedla.runtime.privacy``);
``tenants`` (optional) lists who may READ the file at all; ``min_rows`` (default 10) is the fewest
rows an aggregate of a ``private-aggregation`` dataset must cover to leave the site. A file
without a policy file is public. The policy is read at every READ, so an edit applies to the next
READ; the policy files themselves cannot be READ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedla.runtime.errors import AccessDeniedError, InvalidArgumentError
from fedla.runtime.privacy import Privacy, PrivacyLevel, of_dataset

POLICY_SUFFIX = ".policy.json"
DEFAULT_MIN_ROWS = 10
_KEYS = ("level", "tenants", "min_rows")
_MAX_POLICY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DatasetPolicy:
    """What the operator allows for one data file.

    Attributes
    ----------
    dataset : str
        The file's path relative to the data directory; errors and the audit log use it.
    level : PrivacyLevel
        How much derived from the file may leave the site.
    tenants : tuple of str or None
        The tenants that may READ the file; ``None`` for any tenant.
    min_rows : int
        Rows an aggregate must cover to leave the site (``private-aggregation``; 0 for the
        other levels).
    """

    dataset: str
    level: PrivacyLevel = PrivacyLevel.PUBLIC
    tenants: tuple[str, ...] | None = None
    min_rows: int = 0

    def check_reader(self, tenant: str) -> None:
        """Raise ``AccessDeniedError`` unless ``tenant`` may READ the dataset."""
        if self.tenants is not None and tenant not in self.tenants:
            raise AccessDeniedError(
                f"dataset {self.dataset!r} may be read only by the tenants its operator lists "
                "in its policy file; this tenant is not one of them"
            )

    def privacy(self, rows: int) -> Privacy:
        """The privacy descriptor of the file's matrix of ``rows`` rows."""
        return of_dataset(self.dataset, self.level, self.min_rows, rows)


def load_policy(data_dir: Path, path: Path) -> DatasetPolicy:
    """The policy of data file ``path`` (a resolved path inside ``data_dir``).

    Raises
    ------
    AccessDeniedError
        If ``path`` is itself a policy file.
    InvalidArgumentError
        If the policy file is not valid JSON or holds unknown keys, an unknown level, a
        ``tenants`` that is not a list of strings or a ``min_rows`` that is not a positive
        integer; the message names the policy file.
    """
    root = data_dir.resolve()
    dataset = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
    if path.name.endswith(POLICY_SUFFIX):
        raise AccessDeniedError(f"{dataset!r} is a policy file; policy files cannot be read")
    policy_path = path.with_name(path.name + POLICY_SUFFIX)
    shown = dataset + POLICY_SUFFIX
    try:
        with open(policy_path, "rb") as file:
            text = file.read(_MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        return DatasetPolicy(dataset)
    except OSError as exc:
        raise InvalidArgumentError(
            f"policy file {shown!r} cannot be read: {exc.strerror}; its operator must fix it"
        ) from None
    if len(text) > _MAX_POLICY_BYTES:
        _invalid(shown, f"it is larger than {_MAX_POLICY_BYTES} bytes")
    try:
        spec = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        _invalid(shown, f"it is not JSON ({exc})")
    return _parse(dataset, shown, spec)


def _parse(dataset: str, shown: str, spec: Any) -> DatasetPolicy:
    if not isinstance(spec, dict):
        _invalid(shown, f"it must hold a JSON object; got {type(spec).__name__} instead")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        _invalid(shown, f"unknown key(s) {unknown}; expected {list(_KEYS)}")
    levels = [level.value for level in PrivacyLevel]
    if spec.get("level") not in levels:
        _invalid(shown, f"'level' must be one of {levels}; got {spec.get('level')!r} instead")
    tenants = spec.get("tenants")
    if tenants is not None and (
        not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants)
    ):
        _invalid(shown, f"'tenants' must be a list of tenant names; got {tenants!r} instead")
    min_rows = spec.get("min_rows", DEFAULT_MIN_ROWS)
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        _invalid(shown, f"'min_rows' must be an integer >= 1; got {min_rows!r} instead")
    level = PrivacyLevel(spec["level"])
    return DatasetPolicy(
        dataset,
        level,
        tuple(tenants) if tenants is not None else None,
        min_rows if level is PrivacyLevel.PRIVATE_AGGREGATION else 0,
    )


def _invalid(shown: str, problem: str) -> Any:
    raise InvalidArgumentError(
        f"policy file {shown!r} is invalid: {problem}; READs of its dataset fail until its "
        "operator fixes it"
    )
