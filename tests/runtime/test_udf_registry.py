"""The closed EXEC_UDF surface: only functions registered with ``@remote_function``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fedla.runtime.udf_registry import (
    describe_functions,
    registered_functions,
    remote_function,
)
from fedla.runtime.worker.request_handler import DEFAULT_ALLOWED_MODULES
from tests.conftest import REPO_ROOT

PARAMSERV_FUNCTIONS = [
    "fedla.algorithms.nn.cnn:aggregate",
    "fedla.algorithms.nn.cnn:gradients",
    "fedla.algorithms.nn.cnn:validate",
    "fedla.algorithms.nn.ffn:aggregate",
    "fedla.algorithms.nn.ffn:gradients",
    "fedla.algorithms.nn.ffn:validate",
    "fedla.runtime.paramserv.site_training:evaluate",
    "fedla.runtime.paramserv.site_training:row_order",
    "fedla.runtime.paramserv.site_training:secagg_keys",
    "fedla.runtime.paramserv.site_training:secagg_receive",
    "fedla.runtime.paramserv.site_training:secagg_reveal",
    "fedla.runtime.paramserv.site_training:secagg_share",
    "fedla.runtime.paramserv.site_training:train",
]


def test_only_the_paramserv_functions_are_callable_by_default():
    import fedla.algorithms  # noqa: F401 - registers its remote functions

    assert list(registered_functions(DEFAULT_ALLOWED_MODULES)) == PARAMSERV_FUNCTIONS


def test_registered_functions_filters_by_package():
    import tests.udfs  # noqa: F401

    functions = registered_functions(["tests.udfs"])
    assert "tests.udfs:add" in functions
    assert "tests.udfs:not_registered" not in functions
    assert not any(ref.startswith("fedla.") for ref in functions)
    assert registered_functions(["tests.udf"]) == {}  # a name prefix is not a package


@pytest.mark.parametrize(
    "parameter", ["path", "checkpoint_dir", "resume", "k", "out_file", "n_jobs", "processes"]
)
def test_functions_taking_paths_or_process_counts_cannot_be_registered(parameter):
    namespace: dict = {}
    exec(f"def train(X, {parameter}=None):\n    return X", namespace)  # noqa: S102
    function = namespace["train"]
    function.__module__ = "tests.not_registered"
    with pytest.raises(TypeError, match=rf"parameter\(s\) \['{parameter}'\].*remote caller"):
        remote_function(function)
    assert "tests.not_registered:train" not in registered_functions()


def test_methods_and_lambdas_cannot_be_registered():
    with pytest.raises(TypeError, match="module-level functions only"):
        remote_function(lambda X: X)
    with pytest.raises(TypeError, match="module-level functions only"):
        remote_function(print)


def test_describe_functions_lists_signature_and_summary():
    import tests.udfs  # noqa: F401

    lines = describe_functions(["tests.udfs"])
    assert "tests.udfs:total(a, axis=None)  ``a.sum(axis)``." in lines
    assert describe_functions(["tests.nothing"]) == ["no registered functions in tests.nothing"]


def _fedla(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "fedla", "worker", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )


def test_list_udfs_prints_the_default_surface_and_exits():
    done = _fedla("--list-udfs")
    assert done.returncode == 0, done.stderr
    assert [line.partition("(")[0] for line in done.stdout.splitlines()] == PARAMSERV_FUNCTIONS
    assert "ffn_train" not in done.stdout


def test_list_udfs_includes_allowed_packages():
    done = _fedla("--list-udfs", "--allow-module", "tests.udfs")
    assert done.returncode == 0, done.stderr
    assert "tests.udfs:add(a, b)" in done.stdout
    assert "fedla.algorithms.nn.ffn:gradients" in done.stdout


def test_unimportable_allowed_package_is_a_usage_error():
    done = _fedla("--list-udfs", "--allow-module", "no_such_package_fedla")
    assert done.returncode == 2
    assert "--allow-module: No module named 'no_such_package_fedla'" in done.stderr
