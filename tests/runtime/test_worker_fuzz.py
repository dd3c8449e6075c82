"""Fuzzing a real worker over raw gRPC: mutated valid batches and random bytes.

Every case (``fuzz_harness``) must be answered with a result or a typed error — a gRPC status
whose details name a fedla error class, or per-request fedla errors in the response — within
``HANG_SECONDS``, by a worker that is still running and then answers a healthy batch. A crash,
a hang, an UNKNOWN/INTERNAL status or a ``WorkerInternalError`` fails the test with the input.
``bench/fuzz_worker.py`` runs the same generators for 10,000 cases and more.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.runtime.fuzz_harness import (
    FuzzCase,
    FuzzTarget,
    Outcome,
    RandomDraw,
    mutated_case,
    random_case,
)


class HypothesisDraw:
    """A ``Draw`` over hypothesis' ``data``, so that failing cases shrink."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def raw(self, size: int) -> bytes:
        return self.data.draw(st.binary(min_size=size, max_size=size))


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Iterator[FuzzTarget]:
    fuzz_target = FuzzTarget(tmp_path_factory.mktemp("fuzz-site"))
    yield fuzz_target
    fuzz_target.close()


def _settings(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _check(target: FuzzTarget, case: FuzzCase) -> None:
    outcome, detail = target.send(case)  # also checks the worker runs and answers a healthy batch
    assert outcome.allowed, f"{outcome.value}: {detail}\n{case!r}"


@_settings(max_examples=200)
@given(data=st.data())
def test_mutated_valid_batches_get_a_result_or_a_typed_error(target, data):
    _check(target, mutated_case(HypothesisDraw(data)))


@_settings(max_examples=100)
@given(data=st.data())
def test_random_bytes_get_a_typed_error(target, data):
    _check(target, random_case(HypothesisDraw(data)))


def test_the_fuzzer_reaches_past_the_framing(target):
    """The generators are not all stopped at the frame parser: results and per-request errors
    of every request type come back."""
    outcomes, details = [], []
    for seed in range(300):
        outcome, detail = target.send(mutated_case(RandomDraw(seed)))
        assert outcome.allowed, f"{outcome.value}: {detail}"
        outcomes.append(outcome)
        details.append(detail)
    assert outcomes.count(Outcome.RESULT) >= 20
    for request_type in ("PUT", "GET", "READ", "EXEC_INST", "EXEC_UDF"):
        assert any(f" {request_type} " in d for d in details), request_type


# --- found by the fuzzer -------------------------------------------------------------------------


def test_extra_inputs_on_private_data_are_typed_errors_or_opaque(target):
    """An input past a kernel's arrays binds to an attribute parameter (``slice(A, [0, 2])``).
    The privacy rules read one input: they failed with WorkerInternalError, and a rule taking
    the first input would have counted a 2-row slice as all 12 rows of ``agg.csv``."""
    from fedla.runtime.errors import AccessDeniedError, InvalidArgumentError
    from fedla.runtime.protocol.requests import ExecInst, Get, Literal, Read

    tenant = "fuzz-regression"
    cut = [Read("A", "agg.csv"), ExecInst("slice", ("A", Literal([0, 2])), "S"),
           ExecInst("reduce", ("S",), "T", {"reduction": "sum", "axis": 0}), Get("T")]
    results = target.client.execute_all(tenant, cut)
    assert isinstance(results[3], AccessDeniedError), results
    assert "was computed by kernel 'slice' from 2 inputs" in str(results[3])
    twice = [Read("A", "agg.csv"), ExecInst("tsmm", ("A", "A"), "G")]
    results = target.client.execute_all(tenant, twice)
    assert type(results[1]) is InvalidArgumentError, results
    assert target.healthy()


def test_a_csv_read_as_mtx_is_a_typed_error_not_a_crash(target):
    """scipy's Matrix Market reader called std::terminate on a file object that is not Matrix
    Market (seed 5104 of bench/fuzz_worker.py): one READ took the worker down."""
    from fedla.runtime.errors import InvalidArgumentError
    from fedla.runtime.protocol.requests import Read

    (result,) = target.client.execute_all("fuzz-regression", [Read("X", "fuzz.csv", "mtx")])
    assert type(result) is InvalidArgumentError, result
    assert "cannot read 'fuzz.csv' as mtx" in str(result)
    assert target.alive() and target.healthy()



def test_a_csr_of_absurd_extent_is_refused_at_decode(client, tenant, assert_healthy):
    """Found by bench/fuzz_worker.py (seed 632): a CSR of shape (4, 2**62) was accepted, and its
    transpose then failed inside scipy as WorkerInternalError."""
    import scipy.sparse as sp

    from fedla.runtime.errors import MalformedRequestError
    from fedla.runtime.protocol.requests import ExecInst, Put

    huge = sp.csr_array((np.ones(1), np.array([5]), np.array([0, 1, 1, 1, 1])), shape=(4, 2**62))
    with pytest.raises(MalformedRequestError, match="2\\*\\*40"):
        client.execute(tenant, [Put("huge", huge), ExecInst("transpose", ("huge",), "t")])
    assert_healthy()
