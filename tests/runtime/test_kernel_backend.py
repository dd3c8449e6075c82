"""``backend_of`` picks the array libraries of a kernel call from its inputs."""

from __future__ import annotations

import sys

import array_api_strict
import numpy as np
import pytest
import scipy.sparse as sp

from fedla.runtime.errors import InvalidArgumentError
from fedla.runtime.kernels import array_namespace, backend_of


@pytest.mark.parametrize(
    "inputs",
    [
        [np.ones((2, 2))],
        [sp.csr_array(np.eye(2)), np.ones((2, 1))],
        [sp.csr_matrix(np.eye(2))],
        [np.float32(1.0), 2, True],
        [],
        ["not an array", None],
    ],
    ids=["ndarray", "sparse-and-dense", "csr_matrix", "scalars", "nothing", "non-arrays"],
)
def test_numpy_backend(inputs):
    backend = backend_of(*inputs)
    assert backend.name == "numpy"
    assert backend.sparse is sp and backend.array_module is np
    x = np.arange(3.0)
    assert backend.to_host(x) is x and backend.from_host(x) is x
    assert isinstance(backend.xp.matmul(np.ones((2, 2)), np.ones((2, 1))), np.ndarray)
    assert backend.issparse(sp.csr_array(np.eye(2))) and not backend.issparse(x)


def test_strict_backend_round_trips_through_the_host():
    x = array_api_strict.asarray([[1.0, 2.0]])
    backend = backend_of(x, 2.0)
    assert backend.xp is array_api_strict and backend.name == "array_api_strict"
    host = backend.to_host(x)
    assert isinstance(host, np.ndarray)
    np.testing.assert_array_equal(host, [[1.0, 2.0]])
    again = backend.from_host(host)
    assert type(again) is type(x)
    assert backend.to_host(3.5) == 3.5


def test_mixing_libraries_is_an_invalid_argument():
    with pytest.raises(InvalidArgumentError, match="cannot mix array_api_strict arrays with a"):
        backend_of(array_api_strict.asarray([1.0]), np.ones(1))


def test_cupy_is_recognised_by_module_name_and_never_imported():
    fake = type("ndarray", (), {"__module__": "cupy._core.core"})()
    with pytest.raises(InvalidArgumentError, match="this build has no CuPy backend"):
        backend_of(fake)
    assert "cupy" not in sys.modules


def test_array_namespace_is_the_plain_numpy_module():
    assert array_namespace(np.ones(2), sp.csr_array(np.eye(2))) is np
