"""``ctx.federated`` over real files in the workers' data directory.

Files are written into the session's ``site_dir`` (shared by the three workers, so any of them
can READ any file) under names unique to each test. Every federated matrix is compared with the
numpy matrix the files were cut from, and used in a few operations.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.io
import scipy.sparse as sp

import fedla as fl
from fedla import Partitioning
from tests.conftest import assert_matches

SEED = 20240613
A = np.random.default_rng([SEED, 0]).standard_normal((13, 5))
S = sp.random_array((13, 5), density=0.25, format="csr", rng=np.random.default_rng([SEED, 1]))
W = np.random.default_rng([SEED, 2]).standard_normal((5, 2))


def _write_csv(path: Path, block: np.ndarray, delimiter: str = ",", header: bool = False) -> None:
    head = delimiter.join(f"x{j}" for j in range(block.shape[1])) if header else ""
    np.savetxt(path, block, delimiter=delimiter, fmt="%.17g", header=head, comments="")


def _write_parquet(path: Path, block: np.ndarray) -> None:
    pq.write_table(pa.table({f"x{j}": block[:, j] for j in range(block.shape[1])}), path)


WRITERS: dict[str, tuple[str, Callable[[Path, Any], None]]] = {
    "csv": ("csv", _write_csv),
    "csv-header": ("csv", lambda p, b: _write_csv(p, b, header=True)),
    "csv-semicolon": ("csv", lambda p, b: _write_csv(p, b, delimiter=";")),
    "csv-tab": ("txt", lambda p, b: _write_csv(p, b, delimiter="\t")),
    "npy": ("npy", np.save),
    "mtx": ("mtx", scipy.io.mmwrite),
    "parquet": ("parquet", _write_parquet),
}
OPTIONS: dict[str, dict[str, str]] = {
    "csv-header": {"header": "true"},
    "csv-semicolon": {"delimiter": ";"},
    "csv-tab": {"delimiter": "\t"},
}


def cut(data: Any, axis: int, sizes: Sequence[int]) -> list[Any]:
    """Contiguous blocks of ``data`` of the given sizes along ``axis``."""
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [data[lo:hi] if axis == 0 else data[:, lo:hi] for lo, hi in zip(bounds, bounds[1:])]


def write_files(site_dir: Path, workers: list[str], blocks: list[Any], fmt: str) -> list[str]:
    """Write ``blocks`` to uniquely named files; their locations go round robin over workers."""
    suffix, writer = WRITERS[fmt]
    stem = uuid.uuid4().hex[:12]
    locations = []
    for i, block in enumerate(blocks):
        name = f"{stem}-{i}.{suffix}"
        writer(site_dir / name, block)
        locations.append(f"{workers[i % len(workers)]}/{name}")
    return locations


def check_matrix(X: fl.Matrix, expected: Any, partitioning: Partitioning) -> None:
    """``X`` holds ``expected``, split as said, and computes like it."""
    dense = expected.toarray() if sp.issparse(expected) else expected
    assert X.shape == dense.shape
    assert X.partitioning is partitioning
    value = X.compute()
    assert sp.issparse(value) == sp.issparse(expected)
    assert_matches(value, dense)
    assert_matches((X.T @ X).compute(), dense.T @ dense)
    assert_matches((X @ W[: dense.shape[1]]).compute(), dense @ W[: dense.shape[1]])
    assert_matches(X.mean(axis=0).compute(), dense.mean(axis=0, keepdims=True))
    assert_matches((X - X.mean(axis=0)).var(axis=1, ddof=1).compute(),
                   (dense - dense.mean(axis=0)).var(axis=1, ddof=1, keepdims=True))
    assert_matches(X.argmax(axis=0).compute(), dense.argmax(axis=0, keepdims=True))


# --- ranges from file metadata ---------------------------------------------------------------

FORMATS = ["csv", "csv-header", "csv-semicolon", "csv-tab", "npy", "parquet"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("axis", "sizes"),
    [(0, [5, 1, 7]), (1, [2, 3]), (0, [13])],
    ids=["rows-3-files", "cols-2-files", "one-file"],
)
def test_stacked_from_metadata(
    ctx: fl.Context, site_dir: Path, workers: list[str], fmt: str, axis: int, sizes: list[int]
) -> None:
    locations = write_files(site_dir, workers, cut(A, axis, sizes), fmt)
    X = ctx.federated(locations, axis=axis, options=OPTIONS.get(fmt))
    assert X.dtype == np.float64
    check_matrix(X, A, Partitioning.ROW if axis == 0 else Partitioning.COL)
    assert X.nnz == np.count_nonzero(A)  # known from the READ metadata


@pytest.mark.parametrize("axis", [0, 1], ids=["rows", "cols"])
def test_matrix_market_stays_sparse(
    ctx: fl.Context, site_dir: Path, workers: list[str], axis: int
) -> None:
    locations = write_files(site_dir, workers, cut(S, axis, [6, 7] if axis == 0 else [3, 2]),
                            "mtx")
    X = ctx.federated(locations, axis=axis)
    before = ctx.stats()
    assert X.nnz == S.nnz  # from the READ metadata: no round trip
    assert ctx.stats() == before
    check_matrix(X, S, Partitioning.ROW if axis == 0 else Partitioning.COL)
    assert sp.issparse((X * 2).compute())


def test_npy_keeps_integer_dtype(ctx: fl.Context, site_dir: Path, workers: list[str]) -> None:
    ints = np.arange(40, dtype=np.int64).reshape(10, 4) % 7 - 3
    X = ctx.federated(write_files(site_dir, workers, cut(ints, 0, [4, 6]), "npy"))
    assert X.dtype == np.int64
    value = X.compute()
    assert value.dtype == np.int64
    assert_matches(value, ints)
    assert_matches((X.T @ X).compute(), ints.T @ ints)
    assert_matches((X // 2).sum(axis=0).compute(), (ints // 2).sum(axis=0, keepdims=True))


def test_mixed_formats(ctx: fl.Context, site_dir: Path, workers: list[str]) -> None:
    blocks = cut(A, 0, [4, 4, 5])
    locations = [
        write_files(site_dir, workers[i:], [block], fmt)[0]
        for i, (block, fmt) in enumerate(zip(blocks, ["csv", "npy", "parquet"]))
    ]
    check_matrix(ctx.federated(locations), A, Partitioning.ROW)


def test_file_matrix_meets_a_scattered_one(
    ctx: fl.Context, site_dir: Path, workers: list[str]
) -> None:
    """Blocks at different workers than the scattered ones: the plan still computes right."""
    X = ctx.federated(write_files(site_dir, workers[::-1], cut(A, 0, [7, 6]), "npy"))
    Y = ctx.scatter(A, parts=3)
    assert_matches((X - Y).compute(), np.zeros_like(A))
    assert_matches((X.T @ Y).compute(), A.T @ A)
    assert_matches(fl.hstack([X, Y]).sum(axis=0).compute(),
                   np.hstack([A, A]).sum(axis=0, keepdims=True))


def test_gram_of_files_is_one_call_per_worker(
    ctx: fl.Context, site_dir: Path, workers: list[str]
) -> None:
    X = ctx.federated(write_files(site_dir, workers, cut(A, 0, [5, 4, 4]), "parquet"))
    before = ctx.stats()
    assert_matches((X.T @ X).compute(), A.T @ A)
    for address, after in ctx.stats().items():
        assert after["calls"] - before[address]["calls"] == 1


# --- explicit SystemDS-style addresses and ranges -------------------------------------------


@pytest.mark.parametrize(
    ("axis", "sizes", "order"),
    [(0, [3, 6, 4], [0, 1, 2]), (0, [3, 6, 4], [2, 0, 1]), (1, [1, 4], [0, 1]),
     (1, [2, 1, 2], [1, 2, 0])],
    ids=["rows", "rows-listed-out-of-order", "cols", "cols-listed-out-of-order"],
)
def test_explicit_ranges(
    ctx: fl.Context, site_dir: Path, workers: list[str], axis: int, sizes: list[int],
    order: list[int],
) -> None:
    locations = write_files(site_dir, workers, cut(A, axis, sizes), "csv")
    bounds = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    ranges = [
        ((lo, 0), (hi, A.shape[1])) if axis == 0 else ((0, lo), (A.shape[0], hi))
        for lo, hi in zip(bounds, bounds[1:])
    ]
    X = ctx.federated(addresses=[locations[i] for i in order], ranges=[ranges[i] for i in order])
    check_matrix(X, A, Partitioning.ROW if axis == 0 else Partitioning.COL)


def test_explicit_single_range_over_sparse(
    ctx: fl.Context, site_dir: Path, workers: list[str]
) -> None:
    (location,) = write_files(site_dir, workers, [S], "mtx")
    X = ctx.federated(addresses=[location], ranges=[((0, 0), S.shape)])
    check_matrix(X, S, Partitioning.ROW)


# --- errors ----------------------------------------------------------------------------------

RANGE_ERRORS = {
    # (sizes of the files, their ranges, error, message)
    "gap": ([(4, 5), (6, 5)], [((0, 0), (4, 5)), ((5, 0), (11, 5))],
            fl.InvalidArgumentError, "tile"),
    "overlap": ([(4, 5), (6, 5)], [((0, 0), (4, 5)), ((3, 0), (9, 5))],
                fl.InvalidArgumentError, "tile"),
    "not-from-zero": ([(4, 5), (6, 5)], [((1, 0), (5, 5)), ((5, 0), (11, 5))],
                      fl.InvalidArgumentError, "tile"),
    "grid-not-stripes": (
        [(4, 2), (4, 3), (6, 2), (6, 3)],
        [((0, 0), (4, 2)), ((0, 2), (4, 5)), ((4, 0), (10, 2)), ((4, 2), (10, 5))],
        fl.InvalidArgumentError, "tile"),
    "range-vs-file-shape": ([(4, 5), (6, 5)], [((0, 0), (5, 5)), ((5, 0), (10, 5))],
                            fl.ShapeMismatchError, "5x5 block but"),
    "too-few-ranges": ([(4, 5), (6, 5)], [((0, 0), (4, 5))],
                       fl.InvalidArgumentError, "2 locations"),
}


@pytest.mark.parametrize(("shapes", "ranges", "error", "message"), RANGE_ERRORS.values(),
                         ids=list(RANGE_ERRORS))
def test_bad_ranges(
    ctx: fl.Context, site_dir: Path, workers: list[str], shapes: list[tuple[int, int]],
    ranges: list[Any], error: type[Exception], message: str,
) -> None:
    blocks = [np.ones(shape) for shape in shapes]
    locations = write_files(site_dir, workers, blocks, "npy")
    with pytest.raises(error, match=message):
        ctx.federated(addresses=locations, ranges=ranges)
    # the tenant is still usable afterwards
    assert_matches(ctx.scatter(A).sum(axis=0).compute(), A.sum(axis=0, keepdims=True))


@pytest.mark.parametrize("axis", [0, 1], ids=["rows", "cols"])
def test_stacking_files_of_different_widths(
    ctx: fl.Context, site_dir: Path, workers: list[str], axis: int
) -> None:
    locations = write_files(site_dir, workers, [np.ones((3, 4)), np.ones((4, 3))], "npy")
    with pytest.raises(fl.ShapeMismatchError, match="same number of"):
        ctx.federated(locations, axis=axis)


def test_location_errors(ctx: fl.Context, site_dir: Path, workers: list[str]) -> None:
    (good,) = write_files(site_dir, workers, [A], "csv")
    address = workers[0]
    cases = [
        ([], fl.InvalidArgumentError, "at least one"),
        (["just-a-file.csv"], fl.InvalidArgumentError, "host:port/path"),
        ([f"{address}/"], fl.InvalidArgumentError, "host:port/path"),
        ([f"{address}/no-such-{uuid.uuid4().hex}.csv"], fl.DataFileNotFoundError, "no file"),
        ([good], None, None),  # sanity: the good one reads
    ]
    for locations, error, message in cases:
        if error is None:
            assert ctx.federated(locations).shape == A.shape
            continue
        with pytest.raises(error, match=message):
            ctx.federated(locations)
    with pytest.raises(fl.InvalidArgumentError, match="unknown csv option"):
        ctx.federated([good], options={"quote": "'"})
    with pytest.raises(fl.InvalidArgumentError, match="format"):
        ctx.federated([good], format="xlsx")
    with pytest.raises(fl.InvalidArgumentError, match="axis"):
        ctx.federated([good], axis=2)


@pytest.mark.parametrize("path", ["../outside.csv", "sub/../../outside.csv"])
def test_path_outside_data_dir_is_denied(ctx: fl.Context, workers: list[str], path: str) -> None:
    with pytest.raises(fl.AccessDeniedError, match="outside"):
        ctx.federated([f"{workers[0]}/{path}"])


def test_absolute_path_is_denied(ctx: fl.Context, site_dir: Path, workers: list[str]) -> None:
    (good,) = write_files(site_dir, workers, [A], "csv")
    absolute = site_dir / good.split("/", 1)[1]
    with pytest.raises(fl.AccessDeniedError, match="absolute"):
        ctx.federated([f"{workers[0]}/{absolute}"])
