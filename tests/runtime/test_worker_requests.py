"""Semantics of the six request types at a real worker, and of batches."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io
import scipy.sparse as sp

from fedla.runtime.errors import (
    AccessDeniedError,
    InvalidArgumentError,
    RequestSkippedError,
    ShapeMismatchError,
    UnknownVariableError,
)
from fedla.runtime.protocol.requests import (
    Clear,
    ExecInst,
    ExecUdf,
    Get,
    Literal,
    Metadata,
    Put,
    Read,
)


def relative(site_dir: Path, path: Path) -> str:
    return path.relative_to(site_dir).as_posix()


# --- READ ------------------------------------------------------------------------------------

DENSE = np.array([[1.0, 0.0, 2.5], [0.0, -3.0, 4.0], [5.0, 6.0, 0.0], [7.0, 0.0, 8.0]])


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _csv_text(delimiter: str = ",", header: bool = False) -> str:
    lines = [delimiter.join(f"{v:g}" for v in row) for row in DENSE]
    if header:
        lines.insert(0, delimiter.join(["a", "b", "c"]))
    return "\n".join(lines) + "\n"


CSV_CASES = {
    "plain": ("X.csv", _csv_text(), {}, ""),
    "header": ("X.csv", _csv_text(header=True), {"header": "true"}, ""),
    "header-1": ("X.csv", _csv_text(header=True), {"header": "1"}, ""),
    "no-header-explicit": ("X.csv", _csv_text(), {"header": "false"}, ""),
    "semicolon": ("X.csv", _csv_text(";"), {"delimiter": ";"}, ""),
    "tab-header": ("X.tsv", _csv_text("\t", header=True), {"delimiter": "\t", "header": "yes"},
                   "csv"),
    "txt-suffix": ("X.txt", _csv_text(), {}, ""),
    "format-upper": ("X.data", _csv_text(), {}, "CSV"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_read_csv(client, tenant, site_dir, site_subdir, case):
    name, text, options, fmt = CSV_CASES[case]
    path = _write_csv(site_subdir / name, text)
    meta, value = client.execute(
        tenant, [Read("X", relative(site_dir, path), fmt, options), Get("X")]
    )
    assert meta == Metadata(
        shape=(4, 3), dtype="<f8", sparse=False, nnz=8, fingerprint=meta.fingerprint
    )
    assert len(meta.fingerprint) == 32
    np.testing.assert_array_equal(value, DENSE)


def test_read_csv_single_column_is_a_column_vector(client, tenant, site_dir, site_subdir):
    path = _write_csv(site_subdir / "y.csv", "1\n2\n3\n")
    meta, value = client.execute(tenant, [Read("y", relative(site_dir, path)), Get("y")])
    assert meta.shape == (3, 1)
    np.testing.assert_array_equal(value, [[1.0], [2.0], [3.0]])


NPY_CASES = {
    "float64": DENSE,
    "float32": DENSE.astype(np.float32),
    "int64": DENSE.astype(np.int64),
    "bool": DENSE != 0,
    "complex": DENSE + 1j,
    "fortran": np.asfortranarray(DENSE),
    "vector": np.arange(5.0),
}


@pytest.mark.parametrize("case", list(NPY_CASES))
def test_read_npy(client, tenant, site_dir, site_subdir, case):
    array = NPY_CASES[case]
    np.save(site_subdir / "X.npy", array)
    meta, value = client.execute(tenant, [Read("X", relative(site_dir, site_subdir / "X.npy")),
                                          Get("X")])
    expected = array.reshape(-1, 1) if array.ndim == 1 else array
    assert meta.shape == expected.shape
    assert meta.dtype == expected.dtype.str
    assert not meta.sparse
    assert meta.nnz == np.count_nonzero(expected)
    np.testing.assert_array_equal(value, expected)
    assert value.dtype == expected.dtype


def test_read_npy_by_declared_format(client, tenant, site_dir, site_subdir):
    with open(site_subdir / "X.bin", "wb") as file:
        np.save(file, DENSE)
    (meta,) = client.execute(tenant, [Read("X", relative(site_dir, site_subdir / "X.bin"), "npy")])
    assert meta.shape == DENSE.shape


def test_read_sparse_mtx(client, tenant, site_dir, site_subdir):
    matrix = sp.csr_array(DENSE)
    scipy.io.mmwrite(site_subdir / "X.mtx", matrix)
    meta, value = client.execute(
        tenant, [Read("X", relative(site_dir, site_subdir / "X.mtx")), Get("X")]
    )
    assert meta.sparse and meta.shape == (4, 3) and meta.nnz == 8 and meta.dtype == "<f8"
    assert isinstance(value, sp.csr_array)
    np.testing.assert_array_equal(value.toarray(), DENSE)


def test_read_dense_mtx(client, tenant, site_dir, site_subdir):
    scipy.io.mmwrite(site_subdir / "X.mtx", DENSE)
    meta, value = client.execute(
        tenant, [Read("X", relative(site_dir, site_subdir / "X.mtx")), Get("X")]
    )
    assert not meta.sparse and meta.shape == (4, 3) and meta.nnz == 8
    np.testing.assert_array_equal(value, DENSE)


def test_read_parquet(client, tenant, site_dir, site_subdir):
    table = pa.table({
        "f64": DENSE[:, 0],
        "i32": pa.array(DENSE[:, 1].astype(np.int32)),
        "flag": pa.array(DENSE[:, 2] != 0),
    })
    pq.write_table(table, site_subdir / "X.parquet")
    meta, value = client.execute(
        tenant, [Read("X", relative(site_dir, site_subdir / "X.parquet")), Get("X")]
    )
    assert meta.shape == (4, 3) and meta.dtype == "<f8" and not meta.sparse
    expected = np.column_stack([DENSE[:, 0], DENSE[:, 1], DENSE[:, 2] != 0])
    np.testing.assert_array_equal(value, expected)


def test_read_variable_is_a_copy_the_tenant_owns(client, tenant, site_dir, site_subdir):
    np.save(site_subdir / "X.npy", DENSE)
    rel = relative(site_dir, site_subdir / "X.npy")
    client.execute(tenant, [Read("X", rel), Put("X", np.zeros(1))])
    (value,) = client.execute(tenant, [Get("X")])
    np.testing.assert_array_equal(value, np.zeros(1))
    (meta,) = client.execute(tenant, [Read("X", rel)])
    assert meta.shape == DENSE.shape


def test_fingerprint_is_stable_across_reads_and_tenants(client, tenant, site_dir, site_subdir):
    path = _write_csv(site_subdir / "X.csv", _csv_text())
    rel = relative(site_dir, path)
    first, second = client.execute(tenant, [Read("A", rel), Read("B", rel)])
    (other_tenant,) = client.execute(tenant + "-other", [Read("A", rel)])
    client.execute(tenant + "-other", [Clear(all=True)])
    assert first.fingerprint == second.fingerprint == other_tenant.fingerprint


def test_fingerprint_changes_when_the_file_changes(client, tenant, site_dir, site_subdir):
    path = _write_csv(site_subdir / "X.csv", _csv_text())
    rel = relative(site_dir, path)
    (before,) = client.execute(tenant, [Read("X", rel)])
    stat = path.stat()
    _write_csv(path, _csv_text() + "9,9,9\n")
    # Another mtime as well, in case the file system's clock did not tick.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after, value = client.execute(tenant, [Read("X", rel), Get("X")])
    assert after.fingerprint != before.fingerprint
    assert after.shape == (5, 3)
    np.testing.assert_array_equal(value[-1], [9.0, 9.0, 9.0])


def test_fingerprint_changes_with_same_size_content(client, tenant, site_dir, site_subdir):
    path = _write_csv(site_subdir / "X.csv", "1,2\n3,4\n")
    rel = relative(site_dir, path)
    (before,) = client.execute(tenant, [Read("X", rel)])
    stat = path.stat()
    path.write_text("5,6\n7,8\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after, value = client.execute(tenant, [Read("X", rel), Get("X")])
    assert after.fingerprint != before.fingerprint
    np.testing.assert_array_equal(value, [[5.0, 6.0], [7.0, 8.0]])


def test_fingerprint_differs_between_files(client, tenant, site_dir, site_subdir):
    a = _write_csv(site_subdir / "A.csv", _csv_text())
    b = _write_csv(site_subdir / "B.csv", _csv_text())
    meta_a, meta_b = client.execute(
        tenant, [Read("A", relative(site_dir, a)), Read("B", relative(site_dir, b))]
    )
    assert meta_a.fingerprint != meta_b.fingerprint


# --- PUT / GET -------------------------------------------------------------------------------


def test_put_reports_metadata_and_get_returns_value(client, tenant):
    dense = np.arange(6, dtype=np.int32).reshape(2, 3)
    csr = sp.csr_array(DENSE)
    results = client.execute(
        tenant, [Put("d", dense), Put("s", csr), Put("n", 3.5), Get("d"), Get("s"), Get("n")]
    )
    meta_d, meta_s, meta_n, got_d, got_s, got_n = results
    assert (meta_d.shape, meta_d.dtype, meta_d.sparse) == ((2, 3), "<i4", False)
    assert (meta_s.shape, meta_s.dtype, meta_s.sparse, meta_s.nnz) == ((4, 3), "<f8", True, 8)
    assert meta_n.shape == ()
    np.testing.assert_array_equal(got_d, dense)
    np.testing.assert_array_equal(got_s.toarray(), DENSE)
    assert got_n == 3.5


def test_put_overwrites_a_variable(client, tenant):
    results = client.execute(tenant, [Put("x", 1), Get("x"), Put("x", np.ones(2)), Get("x")])
    assert results[1] == 1
    np.testing.assert_array_equal(results[3], np.ones(2))


# --- EXEC_INST -------------------------------------------------------------------------------


def test_exec_inst_with_variables(client, tenant):
    a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    meta, product = client.execute(
        tenant, [Put("a", a), Put("b", b), ExecInst("matmul", ("a", "b"), "c"), Get("c")]
    )[2:]
    assert meta.shape == (2, 4) and meta.dtype == "<f8" and not meta.sparse
    np.testing.assert_allclose(product, a @ b)


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        (2.0, np.arange(6.0).reshape(2, 3) + 2.0),
        (np.array([[10.0, 20.0, 30.0]]), np.arange(6.0).reshape(2, 3) + [[10.0, 20.0, 30.0]]),
        (np.array([[1.0], [2.0]]), np.arange(6.0).reshape(2, 3) + [[1.0], [2.0]]),
    ],
    ids=["scalar", "row", "column"],
)
def test_exec_inst_with_literal_operand(client, tenant, literal, expected):
    _, meta, result = client.execute(
        tenant,
        [
            Put("a", np.arange(6.0).reshape(2, 3)),
            ExecInst("binary", ("a", Literal(literal)), "out", {"op": "add"}),
            Get("out"),
        ],
    )
    assert meta.shape == (2, 3)
    np.testing.assert_allclose(result, expected)


def test_exec_inst_literal_on_the_left(client, tenant):
    _, _, result = client.execute(
        tenant,
        [
            Put("a", np.array([[1.0, 2.0, 4.0]])),
            ExecInst("binary", (Literal(1.0), "a"), "out", {"op": "div"}),
            Get("out"),
        ],
    )
    np.testing.assert_allclose(result, [[1.0, 0.5, 0.25]])


def test_exec_inst_chain_in_one_batch(client, tenant):
    x = np.arange(1.0, 7.0).reshape(3, 2)
    results = client.execute(
        tenant,
        [
            Put("X", x),
            ExecInst("tsmm", ("X",), "G"),
            ExecInst("binary", ("G", Literal(2.0)), "G2", {"op": "mul"}),
            ExecInst("transpose", ("X",), "Xt"),
            Get("G2"),
            Get("Xt"),
        ],
    )
    np.testing.assert_allclose(results[4], 2.0 * x.T @ x)
    np.testing.assert_array_equal(results[5], x.T)


def test_exec_inst_on_sparse_keeps_sparse(client, tenant):
    csr = sp.csr_array(DENSE)
    meta, result = client.execute(
        tenant,
        [
            Put("S", csr),
            ExecInst("binary", ("S", Literal(3.0)), "S3", {"op": "mul"}),
            Get("S3"),
        ],
    )[1:]
    assert meta.sparse
    np.testing.assert_allclose(result.toarray(), 3.0 * DENSE)


def test_exec_inst_output_may_overwrite_its_input(client, tenant):
    _, _, value = client.execute(
        tenant,
        [
            Put("a", np.ones((2, 2))),
            ExecInst("binary", ("a", "a"), "a", {"op": "add"}),
            Get("a"),
        ],
    )
    np.testing.assert_array_equal(value, np.full((2, 2), 2.0))


# --- EXEC_UDF --------------------------------------------------------------------------------


def test_exec_udf_returns_its_value(client, tenant):
    _, value = client.execute(
        tenant, [Put("a", np.arange(4.0)), ExecUdf("tests.udfs:add", ("a", Literal(1.0)))]
    )
    np.testing.assert_array_equal(value, np.arange(4.0) + 1.0)


def test_exec_udf_attrs_are_keyword_arguments(client, tenant):
    _, value = client.execute(
        tenant,
        [
            Put("a", np.arange(6.0).reshape(2, 3)),
            ExecUdf("tests.udfs:total", ("a",), attrs={"axis": 0}),
        ],
    )
    np.testing.assert_array_equal(value, [3.0, 5.0, 7.0])


def test_exec_udf_calls_a_registered_function_of_an_allowed_package(client, tenant):
    _, value = client.execute(
        tenant, [Put("a", np.array([3.0, 4.0])), ExecUdf("tests.udfs:norm", ("a",))]
    )
    assert value == pytest.approx(5.0)


def test_exec_udf_stores_one_output(client, tenant):
    results = client.execute(
        tenant,
        [Put("a", np.arange(3.0)), ExecUdf("tests.udfs:add", ("a", "a"), outputs=("s",)), Get("s")],
    )
    assert results[1] is None
    np.testing.assert_array_equal(results[2], [0.0, 2.0, 4.0])


def test_exec_udf_stores_several_outputs(client, tenant):
    results = client.execute(
        tenant,
        [
            Put("a", np.array([7.0, 9.0])),
            ExecUdf("tests.udfs:quotient_remainder", ("a", Literal(4.0)), outputs=("q", "r")),
            Get("q"),
            Get("r"),
        ],
    )
    np.testing.assert_array_equal(results[2], [1.0, 2.0])
    np.testing.assert_array_equal(results[3], [3.0, 1.0])


def test_exec_udf_output_count_must_match(client, tenant):
    with pytest.raises(InvalidArgumentError, match=r"must return 3 values for outputs"):
        client.execute(
            tenant,
            [
                Put("a", np.array([7.0])),
                ExecUdf(
                    "tests.udfs:quotient_remainder", ("a", Literal(4.0)), outputs=("q", "r", "z")
                ),
            ],
        )


@pytest.mark.parametrize(
    ("reference", "match"),
    [
        ("os:system", r"module 'os' is not allowed at this worker.*--allow-module"),
        ("subprocess:run", "module 'subprocess' is not allowed"),
        ("builtins:eval", "module 'builtins' is not allowed"),
        ("numpy:add", "module 'numpy' is not allowed"),
        ("tests.udfsx:add", "module 'tests.udfsx' is not allowed"),  # a prefix is not a package
        ("tests.udfs:__class__", "private attribute"),
        ("tests.udfs:_private", "private attribute"),
        ("tests.udfs:not_registered", "is not a registered remote function"),
        ("tests.udfs:np", "is not a registered remote function"),  # an imported module
        ("tests.udfs:PI", "is not a registered remote function"),
        ("tests.udfs:no_such_function", "is not a registered remote function"),
        ("tests.udfs.no_such_module:f", "is not a registered remote function"),
        ("fedla.algorithms.nn.ffn:ffn_train", "is not a registered remote function"),
        ("fedla.algorithms:lm", "is not a registered remote function"),
        ("fedla.algorithms.nn.ffn:init", "is not a registered remote function"),
    ],
    ids=[
        "os-system", "subprocess", "eval", "numpy", "name-prefix", "dunder", "private",
        "unregistered-function", "module-attribute", "constant", "missing-function",
        "missing-module", "ffn-train", "lm", "ffn-init",
    ],
)
def test_exec_udf_refused(client, tenant, assert_healthy, reference, match):
    with pytest.raises(AccessDeniedError, match=match) as info:
        client.execute(tenant, [ExecUdf(reference, (Literal("echo hacked"),))])
    assert f"EXEC_UDF {reference!r}" in str(info.value)
    assert_healthy()


def test_ffn_train_is_refused_with_how_to_register_a_function(client, tenant, tmp_path,
                                                                assert_healthy):
    """ffn_train's checkpoint_dir would write files anywhere and its k start processes."""
    reference = "fedla.algorithms.nn.ffn:ffn_train"
    checkpoints = tmp_path / "checkpoints"
    client.execute(tenant, [Put("X", np.zeros((8, 3))), Put("Y", np.eye(2)[[0, 1] * 4])])
    with pytest.raises(AccessDeniedError) as info:
        client.execute(tenant, [ExecUdf(
            reference, ("X", "Y"), attrs={"checkpoint_dir": str(checkpoints), "k": 8}
        )])
    message = str(info.value)
    assert f"{reference!r} is not a registered remote function" in message
    assert "@fedla.runtime.udf_registry.remote_function" in message
    assert "--allow-module PKG" in message and "--list-udfs" in message
    assert not checkpoints.exists()
    assert_healthy()


def test_registered_paramserv_pair_is_callable(client, tenant):
    from fedla.algorithms.nn import ffn

    model = ffn.init(3, 2, hidden=(4,), seed=1)
    X, Y = np.random.default_rng(0).normal(size=(6, 3)), np.eye(2)[[0, 1, 0, 1, 0, 1]]
    *_, grads = client.execute(tenant, [Put("X", X), Put("Y", Y), ExecUdf(
        "fedla.algorithms.nn.ffn:gradients", (Literal(model), Literal({}), "X", "Y")
    )])
    expected = ffn.gradients(model, {}, X, Y)
    assert len(grads) == len(expected)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want)


@pytest.mark.parametrize(
    ("reference", "match"),
    [
        ("tests.udfs", "must look like 'package.module:function'"),
        ("tests.udfs:", "must look like"),
        (":add", "must look like"),
        ("", "must look like"),
        ("tests.udfs:linalg.norm", "must look like"),
        ("tests.udfs:1add", "must look like"),
    ],
    ids=[
        "no-colon", "no-function", "no-module", "empty", "dotted-function", "not-identifier",
    ],
)
def test_exec_udf_malformed_reference(client, tenant, assert_healthy, reference, match):
    with pytest.raises(InvalidArgumentError, match=match):
        client.execute(tenant, [ExecUdf(reference, (Literal(1.0),))])
    assert_healthy()


# --- CLEAR -----------------------------------------------------------------------------------


def test_clear_named_variables(client, tenant):
    client.execute(tenant, [Put("a", 1), Put("b", 2), Put("c", 3)])
    (done,) = client.execute(tenant, [Clear(("a", "c", "never-existed"))])
    assert done is None
    results = client.execute_all(tenant, [Get("b"), Get("a")])
    assert results[0] == 2
    assert isinstance(results[1], UnknownVariableError)


def test_clear_is_idempotent(client, tenant):
    results = client.execute(tenant, [Put("a", 1), Put("b", 2), Clear(("a",)), Clear(("a",))])
    assert results[2:] == [None, None]  # clearing a cleared variable is no error
    outcome = client.execute_all(tenant, [Get("b"), Get("a")])
    assert outcome[0] == 2 and isinstance(outcome[1], UnknownVariableError)
    assert client.execute(tenant, [Clear(all=True), Clear(all=True)]) == [None, None]
    with pytest.raises(UnknownVariableError, match="no variable 'b'"):
        client.execute(tenant, [Get("b")])


def test_clear_all(client, tenant):
    client.execute(tenant, [Put("a", 1), Put("b", np.ones(3)), Clear(all=True)])
    for name in ("a", "b"):
        with pytest.raises(UnknownVariableError, match=f"no variable '{name}'"):
            client.execute(tenant, [Get(name)])
    assert client.execute(tenant, [Put("a", 5), Get("a")])[1] == 5  # the scope still works


# --- batches ---------------------------------------------------------------------------------


def test_batch_runs_in_order_with_one_response_per_request(client, tenant):
    results = client.execute(
        tenant,
        [Put("x", 1), Get("x"), Put("x", 2), Get("x"), Clear(("x",)), Put("x", 3), Get("x")],
    )
    assert len(results) == 7
    assert [results[1], results[3], results[6]] == [1, 2, 3]
    assert results[4] is None
    assert all(isinstance(results[i], Metadata) for i in (0, 2, 5))


def test_several_gets_in_one_batch(client, tenant):
    values = {
        "small": np.arange(4.0),
        "large": np.arange(100_000, dtype=np.int64),  # out of line
        "sparse": sp.csr_array(np.eye(300)),
        "other-large": np.full((300, 300), 2.5, dtype=np.float32),
        "scalar": 7,
    }
    client.execute(tenant, [Put(name, value) for name, value in values.items()])
    names = ["large", "small", "large", "sparse", "other-large", "scalar"]
    results = client.execute(tenant, [Get(name) for name in names])
    assert len(results) == len(names)
    for name, result in zip(names, results):
        expected = values[name]
        if sp.issparse(expected):
            np.testing.assert_array_equal(result.toarray(), expected.toarray())
        else:
            np.testing.assert_array_equal(result, expected)
            assert np.asarray(result).dtype == np.asarray(expected).dtype


def test_batch_with_large_put_and_get_together(client, tenant):
    big = np.arange(3 * 2**20, dtype=np.float32)
    results = client.execute(tenant, [Put("big", big), Get("big"), Put("tiny", 1), Get("tiny")])
    np.testing.assert_array_equal(results[1], big)
    assert results[3] == 1


def test_failed_request_skips_the_rest_of_the_batch(client, tenant):
    requests = [
        Put("before", 1),
        ExecInst("matmul", ("before", "missing"), "product"),
        Put("after", 2),
        Get("before"),
    ]
    results = client.execute_all(tenant, requests)
    assert isinstance(results[0], Metadata)
    assert isinstance(results[1], UnknownVariableError)
    assert "request #1 EXEC_INST 'matmul'" in str(results[1])
    for index in (2, 3):
        assert isinstance(results[index], RequestSkippedError)
        assert f"request #{index}" in str(results[index])
        assert "because request #1 failed" in str(results[index])
    # The request before the failure ran; none after it did.
    assert client.execute(tenant, [Get("before")]) == [1]
    for name in ("after", "product"):
        with pytest.raises(UnknownVariableError):
            client.execute(tenant, [Get(name)])


def test_execute_raises_the_failed_request_not_the_skipped_ones(client, tenant):
    with pytest.raises(ShapeMismatchError, match="request #1 EXEC_INST 'matmul'"):
        client.execute(
            tenant,
            [
                Put("a", np.ones((2, 3))),
                ExecInst("matmul", ("a", "a"), "c"),
                Get("a"),
            ],
        )


def test_empty_batch(client, tenant):
    assert client.execute(tenant, []) == []


def test_site_evaluate_scores_its_rows_and_refuses_what_it_cannot_score(client, tenant,
                                                                      assert_healthy):
    from fedla.algorithms.nn import ffn

    evaluate = "fedla.runtime.paramserv.site_training:evaluate"
    model = ffn.init(3, 2, hidden=(4,), seed=1)
    X, Y = np.random.default_rng(0).normal(size=(6, 3)), np.eye(2)[[0, 1, 0, 1, 0, 1]]
    client.execute(tenant, [Put("X", X), Put("Y", Y), Put("Y5", Y[:5])])
    attrs = {"val": ffn.VAL, "hyperparams": {}}
    (score,) = client.execute(tenant, [ExecUdf(evaluate, ("X", "Y", *map(Literal, model)),
                                               attrs=attrs)])
    loss, accuracy = ffn.validate(model, {}, X, Y)
    assert score == [pytest.approx(loss, rel=1e-12), pytest.approx(accuracy), 6]
    with pytest.raises(InvalidArgumentError, match="features have 6 rows but labels have 5"):
        client.execute(tenant, [ExecUdf(evaluate, ("X", "Y5", *map(Literal, model)),
                                        attrs=attrs)])
    with pytest.raises(AccessDeniedError, match="is not a registered remote function"):
        client.execute(tenant, [ExecUdf(evaluate, ("X", "Y", *map(Literal, model)),
                                        attrs={**attrs, "val": "fedla.algorithms.nn.ffn:init"})])
    assert_healthy()
