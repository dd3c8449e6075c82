"""Unit tests of READ's building blocks: path confinement, format inference, file loading."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io
import scipy.sparse as sp

from fedla.runtime.errors import AccessDeniedError, DataFileNotFoundError, InvalidArgumentError
from fedla.runtime.worker.data_reader import (
    FORMATS,
    data_format,
    file_fingerprint,
    open_data_file,
    read_matrix,
    resolve_data_path,
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with a few files, a subdirectory and a sibling directory outside it."""
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "X.csv").write_text("1,2\n3,4\n")
    (root / "sub" / "Y.csv").write_text("5,6\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text("7,8\n")
    (tmp_path / "site-evil").mkdir()  # shares the data dir's name as a prefix
    (tmp_path / "site-evil" / "Z.csv").write_text("9\n")
    return root


# --- resolve_data_path ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("X.csv", "X.csv"),
        ("./X.csv", "X.csv"),
        ("sub/Y.csv", "sub/Y.csv"),
        ("sub/../X.csv", "X.csv"),
        ("sub//Y.csv", "sub/Y.csv"),
        ("sub/./Y.csv", "sub/Y.csv"),
    ],
    ids=["plain", "dot-slash", "subdir", "dotdot-inside", "double-slash", "dot-segment"],
)
def test_resolve_paths_inside(data_dir, path, expected):
    assert resolve_data_path(data_dir, path) == (data_dir / expected).resolve()


def test_resolve_through_a_symlinked_data_dir(data_dir, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(data_dir)
    assert resolve_data_path(alias, "X.csv") == (data_dir / "X.csv").resolve()


def test_resolve_symlink_staying_inside(data_dir):
    (data_dir / "link.csv").symlink_to(data_dir / "sub" / "Y.csv")
    (data_dir / "sublink").symlink_to(data_dir / "sub")
    assert resolve_data_path(data_dir, "link.csv") == (data_dir / "sub" / "Y.csv").resolve()
    assert resolve_data_path(data_dir, "sublink/Y.csv") == (data_dir / "sub" / "Y.csv").resolve()


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.csv",
        "../outside/missing.csv",
        "sub/../../outside/secret.csv",
        "..",
        "../site-evil/Z.csv",
        "sub/../../site/../outside/secret.csv",
    ],
    ids=["dotdot", "dotdot-missing", "dotdot-from-subdir", "parent", "prefix-sibling", "zigzag"],
)
def test_resolve_refuses_dotdot_escapes(data_dir, path):
    with pytest.raises(AccessDeniedError, match="resolves outside the worker's data directory"):
        resolve_data_path(data_dir, path)


@pytest.mark.parametrize("path", ["/etc/passwd", "/", "//X.csv"], ids=["etc", "root", "slashes"])
def test_resolve_refuses_absolute_paths(data_dir, path):
    with pytest.raises(AccessDeniedError, match="is absolute"):
        resolve_data_path(data_dir, path)


def test_resolve_refuses_absolute_path_even_inside(data_dir):
    with pytest.raises(AccessDeniedError, match="is absolute"):
        resolve_data_path(data_dir, str(data_dir / "X.csv"))


@pytest.mark.parametrize(
    ("link", "target", "path"),
    [
        ("link.csv", "../outside/secret.csv", "link.csv"),
        ("linkdir", "../outside", "linkdir/secret.csv"),
        ("dangling.csv", "../outside/missing.csv", "dangling.csv"),
        ("root", "/", "root/etc/passwd"),
        ("sub/up", "../..", "sub/up/outside/secret.csv"),
    ],
    ids=["file", "directory", "dangling", "to-root", "nested-up"],
)
def test_resolve_refuses_symlink_escapes(data_dir, link, target, path):
    (data_dir / link).symlink_to(target)
    with pytest.raises(AccessDeniedError, match="outside the worker's data directory"):
        resolve_data_path(data_dir, path)


@pytest.mark.parametrize(
    ("path", "error", "match"),
    [
        ("missing.csv", DataFileNotFoundError, "no file 'missing.csv'"),
        ("sub", DataFileNotFoundError, "no file 'sub'"),
        (".", DataFileNotFoundError, "no file '.'"),
        ("", InvalidArgumentError, "READ needs a file path"),
        ("X\0.csv", InvalidArgumentError, "NUL"),
        ("x" * 1000, DataFileNotFoundError, "cannot open"),
        ("X.csv/inner", DataFileNotFoundError, "'X.csv/inner'"),
    ],
    ids=["missing", "directory", "dot", "empty", "nul", "name-too-long", "under-a-file"],
)
def test_resolve_reports_what_is_wrong(data_dir, path, error, match):
    with pytest.raises(error, match=match) as info:
        resolve_data_path(data_dir, path)
    assert str(data_dir) not in str(info.value)  # no absolute paths of the worker leak


def test_resolve_symlink_loop(data_dir):
    (data_dir / "a").symlink_to("b")
    (data_dir / "b").symlink_to("a")
    with pytest.raises(DataFileNotFoundError, match="'a'"):
        resolve_data_path(data_dir, "a")


def test_resolve_checks_escape_before_existence(data_dir):
    """A refused path says nothing about whether the file outside exists."""
    with pytest.raises(AccessDeniedError) as exists:
        resolve_data_path(data_dir, "../outside/secret.csv")
    with pytest.raises(AccessDeniedError) as missing:
        resolve_data_path(data_dir, "../outside/nothing.csv")
    assert str(exists.value).replace("secret", "nothing") == str(missing.value)


# --- data_format -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "declared", "expected"),
    [
        ("X.csv", "", "csv"),
        ("X.txt", "", "csv"),
        ("X.CSV", "", "csv"),
        ("X.npy", "", "npy"),
        ("X.mtx", "", "mtx"),
        ("X.parquet", "", "parquet"),
        ("X.data.csv", "", "csv"),
        ("X.bin", "npy", "npy"),
        ("X.csv", "parquet", "parquet"),
        ("X", "MTX", "mtx"),
    ],
    ids=[
        "csv", "txt", "upper-suffix", "npy", "mtx", "parquet", "double-suffix",
        "declared", "declared-wins", "declared-upper",
    ],
)
def test_data_format(name, declared, expected):
    assert data_format(Path(name), declared) == expected


@pytest.mark.parametrize(
    ("name", "declared", "match"),
    [
        ("X.xlsx", "", r"unknown file format '\.xlsx' for 'X\.xlsx'"),
        ("X", "", r"unknown file format '\(no suffix\)'"),
        ("X.csv", "hdf5", r"unknown file format 'hdf5'"),
        ("X.csv", " csv", r"unknown file format ' csv'"),
    ],
    ids=["unknown-suffix", "no-suffix", "unknown-declared", "padded-declared"],
)
def test_data_format_unknown(name, declared, match):
    with pytest.raises(InvalidArgumentError, match=match) as info:
        data_format(Path(name), declared)
    assert ", ".join(FORMATS) in str(info.value)


# --- read_matrix: csv ------------------------------------------------------------------------


def _csv(tmp_path: Path, text: str, name: str = "X.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("1,2\n3,4\n", {}, [[1, 2], [3, 4]]),
        ("a,b\n1,2\n3,4\n", {"header": "true"}, [[1, 2], [3, 4]]),
        ("a,b\n1,2\n", {"header": "TRUE"}, [[1, 2]]),
        ("1,2\n", {"header": "no"}, [[1, 2]]),
        ("1;2\n3;4\n", {"delimiter": ";"}, [[1, 2], [3, 4]]),
        ("1\t2\n", {"delimiter": "\t"}, [[1, 2]]),
        ("1|2\n", {"delimiter": "|", "header": "0"}, [[1, 2]]),
        ("1.5,-2e3\n", {}, [[1.5, -2000.0]]),
        ("true,1\nfalse,0\n", {}, [[1, 1], [0, 0]]),
        ("1,2", {}, [[1, 2]]),
        ("1,2\r\n3,4\r\n", {}, [[1, 2], [3, 4]]),
        ("7\n8\n", {}, [[7], [8]]),
        ("a,b\n", {"header": "true"}, np.empty((0, 2))),
    ],
    ids=[
        "plain", "header", "header-upper", "header-no", "semicolon", "tab", "pipe", "floats",
        "bools", "no-final-newline", "crlf", "one-column", "header-only",
    ],
)
def test_read_csv(tmp_path, text, options, expected):
    value = read_matrix(_csv(tmp_path, text), "csv", options)
    assert isinstance(value, np.ndarray) and value.dtype == np.float64
    np.testing.assert_array_equal(value, np.asarray(expected, dtype=np.float64))


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"header": "maybe"}, "csv option 'header' must be true or false; got 'maybe'"),
        ({"header": ""}, "csv option 'header' must be true or false"),
        ({"delimiter": ";;"}, "csv delimiter must be one character; got ';;'"),
        ({"delimiter": ""}, "csv delimiter must be one character; got ''"),
        ({"sep": ";"}, r"unknown csv option\(s\) \['sep'\]; known: \['delimiter', 'header'\]"),
        (
            {"header": "true", "skip": "1", "quote": "'"},
            r"unknown csv option\(s\) \['quote', 'skip'\]",
        ),
    ],
    ids=["header-word", "header-empty", "long-delimiter", "empty-delimiter", "unknown",
         "several-unknown"],
)
def test_read_csv_option_validation(tmp_path, options, match):
    with pytest.raises(InvalidArgumentError, match=match):
        read_matrix(_csv(tmp_path, "1,2\n"), "csv", options)


@pytest.mark.parametrize(
    ("text", "options", "match"),
    [
        ("1,x\n2,y\n", {}, "column 'f1' of 'X.csv' has type string; a matrix needs numeric"),
        ("a,b\n1,2\n", {}, r"the first row of 'X.csv' holds text \(a, b\) above numbers; if "
         r"it is a header, read the file with options=\{'header': True\}"),  # not declared
        ("id,name\n1,bob\n", {"header": "true"}, "column 'name' of 'X.csv' has type string"),
        ("1,2024-01-01\n", {}, "column 'f1' of 'X.csv' has type"),
        ("1,2\n3,\n", {}, "column 'f1' of 'X.csv' has 1 missing values"),
        ("1,\n,\n", {}, "has 1 missing values|has 2 missing values"),
        ("1,2,3\n4,5\n", {}, "cannot read 'X.csv' as csv: CSV parse error: Expected 3 columns"),
        ("", {}, "cannot read 'X.csv' as csv: Empty CSV file"),
        ("1;2\n", {}, "column 'f0' of 'X.csv' has type string"),  # wrong delimiter
    ],
    ids=[
        "text-column", "undeclared-header", "named-text-column", "date-column", "one-null",
        "nulls", "ragged", "empty-file", "wrong-delimiter",
    ],
)
def test_read_csv_errors(tmp_path, text, options, match):
    with pytest.raises(InvalidArgumentError, match=match) as info:
        read_matrix(_csv(tmp_path, text), "csv", options)
    assert str(tmp_path) not in str(info.value)


# --- read_matrix: npy, mtx, parquet ------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [
        np.arange(6.0).reshape(2, 3),
        np.arange(6, dtype=np.int32).reshape(3, 2),
        np.array([[True, False]]),
        np.array([[1 + 2j]]),
        np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        np.arange(4.0).astype(">f8").reshape(2, 2),
        np.empty((0, 3)),
    ],
    ids=["float64", "int32", "bool", "complex", "fortran", "big-endian", "empty"],
)
def test_read_npy(tmp_path, array):
    np.save(tmp_path / "X.npy", array)
    value = read_matrix(tmp_path / "X.npy", "npy", {})
    np.testing.assert_array_equal(value, array)
    assert value.dtype == array.dtype


def test_read_npy_vector_becomes_a_column(tmp_path):
    np.save(tmp_path / "v.npy", np.arange(3))
    np.testing.assert_array_equal(read_matrix(tmp_path / "v.npy", "npy", {}), [[0], [1], [2]])


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((2, 2, 2)), "'X.npy' holds a 3-D array; fedla reads 2-D matrices"),
        (np.float64(1.0), "'X.npy' holds a 0-D array"),
        (np.array([{"a": 1}], dtype=object), "Object arrays cannot be loaded"),
        (np.array([["a", "b"]]), "'X.npy' holds an array of dtype <U1; a matrix needs"),
        (np.zeros(2, dtype=[("x", "<i4")]), "holds an array of dtype"),
        (np.array([["2024-01-01"]], dtype="datetime64[D]"), "holds an array of dtype"),
    ],
    ids=["3d", "0d", "object", "strings", "structured", "datetime"],
)
def test_read_npy_refuses_what_is_not_a_matrix(tmp_path, array, match):
    np.save(tmp_path / "X.npy", array, allow_pickle=True)
    with pytest.raises(InvalidArgumentError, match=match):
        read_matrix(tmp_path / "X.npy", "npy", {})


def test_read_npy_never_unpickles(tmp_path):
    marker = tmp_path / "unpickled"

    class Touch:
        def __reduce__(self):
            return (Path.touch, (marker,))

    np.save(tmp_path / "X.npy", np.array([Touch()], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidArgumentError):
        read_matrix(tmp_path / "X.npy", "npy", {})
    assert not marker.exists()


@pytest.mark.parametrize("fmt", ["npy", "mtx"])
def test_npy_and_mtx_take_no_options(tmp_path, fmt):
    path = tmp_path / f"X.{fmt}"
    if fmt == "npy":
        np.save(path, np.eye(2))
    else:
        scipy.io.mmwrite(path, sp.csr_array(np.eye(2)))
    with pytest.raises(InvalidArgumentError, match=rf"{fmt} takes no options; got \['header'\]"):
        read_matrix(path, fmt, {"header": "true"})


def test_read_sparse_mtx(tmp_path):
    matrix = sp.csr_array(np.array([[0, 1.5, 0], [2, 0, 0]]))
    scipy.io.mmwrite(tmp_path / "X.mtx", matrix)
    value = read_matrix(tmp_path / "X.mtx", "mtx", {})
    assert isinstance(value, sp.csr_array)
    np.testing.assert_array_equal(value.toarray(), matrix.toarray())


def test_read_integer_and_pattern_mtx(tmp_path):
    (tmp_path / "int.mtx").write_text(
        "%%MatrixMarket matrix coordinate integer general\n2 2 1\n2 1 7\n"
    )
    (tmp_path / "pattern.mtx").write_text(
        "%%MatrixMarket matrix coordinate pattern general\n2 2 2\n1 1\n2 2\n"
    )
    np.testing.assert_array_equal(read_matrix(tmp_path / "int.mtx", "mtx", {}).toarray(),
                                  [[0, 0], [7, 0]])
    np.testing.assert_array_equal(read_matrix(tmp_path / "pattern.mtx", "mtx", {}).toarray(),
                                  np.eye(2))


def test_read_dense_mtx(tmp_path):
    scipy.io.mmwrite(tmp_path / "X.mtx", np.array([[1.0, 2.0], [3.0, 4.0]]))
    value = read_matrix(tmp_path / "X.mtx", "mtx", {})
    assert isinstance(value, np.ndarray)
    np.testing.assert_array_equal(value, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not a matrix market file\n", "cannot read 'X.mtx' as mtx"),
        ("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1.5\n", "Truncated file"),
        ("%%MatrixMarket matrix coordinate real general\n3 3 1\n9 9 1.5\n", "out of bounds"),
    ],
    ids=["no-banner", "truncated", "index-out-of-bounds"],
)
def test_read_mtx_errors(tmp_path, text, match):
    (tmp_path / "X.mtx").write_text(text)
    with pytest.raises(InvalidArgumentError, match=match):
        read_matrix(tmp_path / "X.mtx", "mtx", {})


def test_read_parquet(tmp_path):
    table = pa.table({
        "a": pa.array([1.5, 2.5], pa.float64()),
        "b": pa.array([1, 2], pa.int8()),
        "c": pa.array([True, False]),
        "d": pa.array([0.5, 1.0], pa.float32()),
    })
    pq.write_table(table, tmp_path / "X.parquet")
    value = read_matrix(tmp_path / "X.parquet", "parquet", {})
    assert value.dtype == np.float64
    np.testing.assert_array_equal(value, [[1.5, 1, 1, 0.5], [2.5, 2, 0, 1.0]])


@pytest.mark.parametrize(
    ("table", "match"),
    [
        (pa.table({"a": [1.0], "s": ["x"]}), "column 's' of 'X.parquet' has type string"),
        (pa.table({"a": [1.0, None]}), "column 'a' of 'X.parquet' has 1 missing values"),
        (pa.table({"l": [[1.0, 2.0]]}), "column 'l' of 'X.parquet' has type list"),
        (pa.table({"a": pa.array([1], pa.decimal128(5, 2))}), "has type decimal"),
        (pa.table({}), "'X.parquet' has no columns"),
    ],
    ids=["string", "null", "list", "decimal", "no-columns"],
)
def test_read_parquet_errors(tmp_path, table, match):
    pq.write_table(table, tmp_path / "X.parquet")
    with pytest.raises(InvalidArgumentError, match=match):
        read_matrix(tmp_path / "X.parquet", "parquet", {})


def test_read_parquet_takes_no_options(tmp_path):
    pq.write_table(pa.table({"a": [1.0]}), tmp_path / "X.parquet")
    with pytest.raises(InvalidArgumentError, match="parquet takes no options"):
        read_matrix(tmp_path / "X.parquet", "parquet", {"header": "true"})


@pytest.mark.parametrize("fmt", ["npy", "mtx", "parquet", "csv"])
def test_read_file_in_the_wrong_format(tmp_path, fmt):
    path = tmp_path / "X.bin"
    path.write_bytes(b"\x00\x01garbage\xff" * 10)
    with pytest.raises(InvalidArgumentError, match=f"cannot read 'X.bin' as {fmt}|column") as info:
        read_matrix(path, fmt, {})
    assert str(tmp_path) not in str(info.value)  # readers quote the full path; not to callers


# --- file_fingerprint -------------------------------------------------------------------------


def test_fingerprint(tmp_path):
    path = _csv(tmp_path, "1,2\n")
    first = file_fingerprint(path, "csv", {})
    assert first == file_fingerprint(path, "csv", {})
    assert len(first) == 32 and int(first, 16) >= 0
    assert first != file_fingerprint(path, "csv", {"header": "true"})
    assert first != file_fingerprint(path, "npy", {})
    assert file_fingerprint(path, "csv", {"a": "1", "b": "2"}) == file_fingerprint(
        path, "csv", {"b": "2", "a": "1"}
    )
    stat = path.stat()
    path.write_text("3,4\n")  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert first != file_fingerprint(path, "csv", {})


# --- open_data_file ---------------------------------------------------------------------------


def test_open_data_file_reads_the_checked_file(data_dir):
    path = resolve_data_path(data_dir, "sub/Y.csv")
    with open_data_file(data_dir, path, "sub/Y.csv") as file:
        np.testing.assert_array_equal(read_matrix(path, "csv", {}, file), [[5.0, 6.0]])


def test_open_data_file_through_a_symlink_staying_inside(data_dir):
    (data_dir / "sublink").symlink_to(data_dir / "sub")
    path = resolve_data_path(data_dir, "sublink/Y.csv")
    with open_data_file(data_dir, path, "sublink/Y.csv") as file:
        assert file.read() == b"5,6\n"


@pytest.mark.parametrize("swapped", ["sub", "sub/Y.csv"], ids=["directory", "file"])
def test_open_data_file_refuses_a_symlink_swapped_in_after_the_check(data_dir, swapped):
    path = resolve_data_path(data_dir, "sub/Y.csv")
    target = data_dir / swapped
    os.rename(target, data_dir / "moved")  # the check passed; now the attacker swaps
    outside = data_dir.parent / "outside"
    target.symlink_to(outside if swapped == "sub" else outside / "secret.csv")
    if swapped == "sub":
        (outside / "Y.csv").write_text("7,8\n")
    with pytest.raises(DataFileNotFoundError, match="'sub/Y.csv'.*changed while being opened"):
        open_data_file(data_dir, path, "sub/Y.csv")


def test_open_data_file_refuses_what_is_no_longer_a_regular_file(data_dir):
    path = resolve_data_path(data_dir, "X.csv")
    os.remove(path)
    os.mkfifo(path)  # opening a FIFO for reading would block without a writer
    with pytest.raises(DataFileNotFoundError, match="no file 'X.csv'"):
        open_data_file(data_dir, path, "X.csv")


@pytest.mark.parametrize("fmt", FORMATS)
def test_read_matrix_from_an_open_file(tmp_path, fmt):
    value = np.array([[1.0, 0.0], [3.0, 4.0]])
    path = tmp_path / f"M.{fmt}"
    if fmt == "csv":
        path.write_text("1,0\n3,4")  # no final newline
    elif fmt == "npy":
        np.save(path, value)
    elif fmt == "mtx":
        scipy.io.mmwrite(path, sp.coo_array(value))
    else:
        pq.write_table(pa.table({"a": value[:, 0], "b": value[:, 1]}), path)
    with open(path, "rb") as file:
        result = read_matrix(path, fmt, {}, file)
    np.testing.assert_array_equal(result.toarray() if sp.issparse(result) else result, value)
