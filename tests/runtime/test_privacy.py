"""The privacy rules of ``fedla.runtime.privacy`` and the parsing of policy files (no workers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedla.runtime.errors import AccessDeniedError, InvalidArgumentError
from fedla.runtime.kernels import kernel_names
from fedla.runtime.privacy import KERNEL_RULES, PUBLIC, PrivacyLevel, derive, of_dataset, refusal
from fedla.runtime.worker.dataset_policy import DatasetPolicy, load_policy

X = of_dataset("X.csv", PrivacyLevel.PRIVATE_AGGREGATION, 10, rows=40)
XT = derive("transpose", {}, [X])
SECRET = of_dataset("S.csv", PrivacyLevel.PRIVATE, 10, rows=40)


def _small(rows: int) -> object:
    return derive("slice", {"rows": [0, rows]}, [X])


RELEASABLE = {
    "X^T X": derive("tsmm", {}, [X]),
    "X^T X as matmul": derive("matmul", {}, [XT, X]),
    "X^T v (public v)": derive("matmul", {}, [XT, PUBLIC]),
    "column sums": derive("reduce_partial", {"reduction": "sum", "axis": 0}, [X]),
    "mean of all": derive("reduce", {"reduction": "mean", "axis": None}, [X]),
    "mmchain": derive("mmchain", {}, [X, PUBLIC, PUBLIC]),
    "elementwise of aggregates": derive("binary", {"op": "add"}, [
        derive("tsmm", {}, [X]), derive("tsmm", {}, [X])]),
    "part of an aggregate": derive("slice", {"rows": [0, 1]}, [derive("tsmm", {}, [X])]),
    "public only": derive("no-such-kernel", {}, [PUBLIC, PUBLIC]),
}

REFUSED = {
    "raw": (X, "raw rows"),
    "elementwise": (derive("unary", {"op": "exp"}, [X]), "raw rows"),
    "row sums": (derive("reduce", {"reduction": "sum", "axis": 1}, [X]), "raw rows"),
    "X v (contracts columns)": (derive("matmul", {}, [X, PUBLIC]), "raw rows"),
    "X X^T": (derive("tsmm", {"left": False}, [X]), "products of raw rows"),
    "gram of 5 rows": (derive("tsmm", {}, [_small(5)]), "aggregates only 5 rows"),
    "one row broadcast": (derive("tsmm", {}, [derive("binary", {}, [_small(1), X])]),
                          "aggregates only 1 rows"),
    "one row stacked 10x": (derive("tsmm", {}, [derive("rbind", {}, [_small(1)] * 10)]),
                            "aggregates only 1 rows"),
    "max over rows": (derive("reduce", {"reduction": "max", "axis": 0}, [X]),
                      "max of raw rows"),
    "unknown kernel": (derive("no-such-kernel", {}, [X]), "has no privacy rule"),
    "opaque stays opaque": (derive("tsmm", {}, [derive("no-such-kernel", {}, [X])]),
                            "has no privacy rule"),
    "private aggregate": (derive("tsmm", {}, [SECRET]), "is private: nothing derived"),
    "mixed with private": (derive("matmul", {}, [XT, SECRET]), "'S.csv', 'X.csv' are private"),
}


@pytest.mark.parametrize("case", list(RELEASABLE))
def test_releasable(case):
    assert refusal(RELEASABLE[case]) is None


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused(case):
    privacy, message = REFUSED[case]
    reason = refusal(privacy)
    assert reason is not None and message in reason


def test_every_registered_kernel_has_a_rule():
    assert sorted(KERNEL_RULES) == kernel_names()


def _policy(tmp_path: Path, spec: object) -> DatasetPolicy:
    data = tmp_path / "X.csv"
    data.write_text("1\n")
    (tmp_path / "X.csv.policy.json").write_text(json.dumps(spec))
    return load_policy(tmp_path, data.resolve())


def test_policy_parsing(tmp_path):
    policy = _policy(tmp_path, {"level": "private-aggregation", "tenants": ["a"], "min_rows": 5})
    assert policy == DatasetPolicy("X.csv", PrivacyLevel.PRIVATE_AGGREGATION, ("a",), 5)
    policy.check_reader("a")
    with pytest.raises(AccessDeniedError, match="dataset 'X.csv' may be read only by"):
        policy.check_reader("b")
    assert _policy(tmp_path, {"level": "private-aggregation"}).min_rows == 10
    (tmp_path / "X.csv.policy.json").unlink()
    assert load_policy(tmp_path, (tmp_path / "X.csv").resolve()).level is PrivacyLevel.PUBLIC


def test_invalid_policy_names_its_file(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"policy file 'X.csv.policy.json' is invalid"):
        _policy(tmp_path, {"level": "public", "extra": 1})
