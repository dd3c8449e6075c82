"""READ at a worker: confining paths to the data directory and loading matrix files.

Formats: csv (options ``header``, ``delimiter``), npy, Matrix Market (.mtx, sparse or dense) and
parquet (numeric columns). A path is refused when it is absolute or resolves, through ``..`` or
symbolic links, to anything outside the worker's data directory.

Checking a path and then opening it would race with a file swapped for a symbolic link in between,
so ``open_data_file`` opens the checked path again relative to a descriptor of the data
directory, one component at a time, following no symbolic link; the file is read from that
descriptor.
"""

from __future__ import annotations

import io
import os
import stat as stat_module
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.io
import scipy.sparse as sp

from fedla.runtime.errors import AccessDeniedError, DataFileNotFoundError, InvalidArgumentError
from fedla.runtime.lineage import lineage_key

FORMATS = ("csv", "npy", "mtx", "parquet")
_SUFFIXES = {".csv": "csv", ".txt": "csv", ".npy": "npy", ".mtx": "mtx", ".parquet": "parquet"}
_CSV_OPTIONS = {"header", "delimiter"}
_NUMERIC_KINDS = "biufc"


def resolve_data_path(data_dir: Path, path: str) -> Path:
    """Return the real path of ``path`` inside ``data_dir`` or raise a clear error.

    Escapes are checked before existence so that a refused path reveals nothing about the
    file system outside the data directory.
    """
    if not path:
        raise InvalidArgumentError("READ needs a file path; got an empty one")
    if "\0" in path:
        raise InvalidArgumentError(f"path {path!r} contains a NUL character")
    if Path(path).is_absolute():
        raise AccessDeniedError(
            f"path {path!r} is absolute; give a path relative to the worker's data directory"
        )
    root = data_dir.resolve()
    try:
        resolved = (root / path).resolve()
        inside = resolved.is_relative_to(root)
        is_file = inside and resolved.is_file()
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long for the OS
        # The OS message would show the data directory's absolute path: give the cause only.
        cause = getattr(exc, "strerror", None) or "symbolic link loop"
        raise DataFileNotFoundError(
            f"cannot open {path!r} in the worker's data directory: {cause}"
        ) from None
    if not inside:
        raise AccessDeniedError(f"path {path!r} resolves outside the worker's data directory")
    if not is_file:
        raise DataFileNotFoundError(f"no file {path!r} in the worker's data directory")
    return resolved


def open_data_file(data_dir: Path, path: Path, shown: str) -> BinaryIO:
    """Open ``path`` (from ``resolve_data_path``) for reading without leaving ``data_dir``.

    Each component of ``path`` below the data directory is opened relative to its parent's
    descriptor with ``O_NOFOLLOW``: ``path`` has no symbolic links when it was resolved, so one
    that appears since (a file swapped for a link out of the data directory) makes the open
    fail instead of following it. ``shown`` is the path as the caller gave it, for messages.
    """
    root = data_dir.resolve()
    parts = path.relative_to(root).parts
    if not parts:
        raise DataFileNotFoundError(f"no file {shown!r} in the worker's data directory")
    flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise DataFileNotFoundError(
            f"cannot open the worker's data directory for {shown!r}: {exc.strerror}"
        ) from None
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, flags | os.O_DIRECTORY, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        # O_NONBLOCK: opening a FIFO swapped in must not hang the worker (no effect on files).
        fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        raise DataFileNotFoundError(
            f"cannot open {shown!r} in the worker's data directory: it changed while being "
            f"opened ({exc.strerror})"
        ) from None
    finally:
        os.close(dir_fd)
    if not stat_module.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataFileNotFoundError(f"no file {shown!r} in the worker's data directory")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def data_format(path: Path, declared: str) -> str:
    """The format to read ``path`` with: ``declared`` if given, else from the file suffix."""
    fmt = declared.lower() or _SUFFIXES.get(path.suffix.lower(), "")
    if fmt not in FORMATS:
        shown = declared or path.suffix or "(no suffix)"
        raise InvalidArgumentError(
            f"unknown file format {shown!r} for {path.name!r}; expected one of {', '.join(FORMATS)}"
        )
    return fmt


def file_fingerprint(
    path: Path, fmt: str, options: dict[str, str], stat: os.stat_result | None = None
) -> str:
    """Identity of a file's content as read: path, size, mtime and the format options.

    ``stat`` is the file's status when it is already open (``os.fstat``), else ``path``'s.
    """
    stat = stat if stat is not None else path.stat()
    return lineage_key("file", str(path), stat.st_size, stat.st_mtime_ns, fmt,
                       sorted(options.items()))


def read_matrix(
    path: Path, fmt: str, options: dict[str, str], file: BinaryIO | None = None
) -> Any:
    """Load the matrix stored at ``path``: a 2-D ndarray or a CSR array.

    With ``file`` (from ``open_data_file``), the matrix is read from it and ``path`` only names
    the file in messages.
    """
    if fmt in ("npy", "mtx") and options:
        raise InvalidArgumentError(f"{fmt} takes no options; got {sorted(options)}")
    source: Any = file if file is not None else path
    try:
        if fmt == "csv":
            value: Any = _read_csv(source, path, options)
        elif fmt == "npy":
            value = np.load(source, allow_pickle=False)
        elif fmt == "mtx":
            # scipy's threaded reader aborts the process (std::terminate) when it fails on a
            # file object, e.g. a csv read as mtx; from memory it raises ValueError instead.
            value = scipy.io.mmread(io.BytesIO(source.read()) if file is not None else source)
            value = sp.csr_array(value) if sp.issparse(value) else np.asarray(value)
        else:
            value = _read_parquet(source, path, options)
    except (ValueError, OSError, TypeError) as exc:
        if isinstance(exc, InvalidArgumentError):
            raise
        # Readers quote the absolute path; the caller knows the file by its name only.
        cause = str(exc).replace(str(path), path.name)
        raise InvalidArgumentError(f"cannot read {path.name!r} as {fmt}: {cause}") from None
    if value.dtype.kind not in _NUMERIC_KINDS:
        raise InvalidArgumentError(
            f"{path.name!r} holds an array of dtype {value.dtype}; a matrix needs bool, integer, "
            "float or complex values"
        )
    if value.ndim == 1:
        value = value.reshape(-1, 1)
    if value.ndim != 2:
        raise InvalidArgumentError(
            f"{path.name!r} holds a {value.ndim}-D array; fedla reads 2-D matrices"
        )
    return value


def _read_csv(source: Any, path: Path, options: dict[str, str]) -> np.ndarray:
    import pyarrow.csv as pacsv

    unknown = set(options) - _CSV_OPTIONS
    if unknown:
        raise InvalidArgumentError(
            f"unknown csv option(s) {sorted(unknown)}; known: {sorted(_CSV_OPTIONS)}"
        )
    header = _flag(options.get("header", "false"), "header")
    delimiter = options.get("delimiter", ",")
    if len(delimiter) != 1:
        raise InvalidArgumentError(f"csv delimiter must be one character; got {delimiter!r}")
    table = pacsv.read_csv(
        _csv_source(source),
        read_options=pacsv.ReadOptions(autogenerate_column_names=not header),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
    )
    if not header and _first_row_is_a_header(table):
        first_row = [table.column(j)[0].as_py() for j in range(min(table.num_columns, 5))]
        raise InvalidArgumentError(
            f"the first row of {path.name!r} holds text ({', '.join(map(str, first_row))}"
            f"{', ...' if table.num_columns > 5 else ''}) above numbers; if it is a header, "
            "read the file with options={'header': True}"
        )
    return _numeric_table(table, path)


def _first_row_is_a_header(table: Any) -> bool:
    """Whether the text columns of a csv read without a header hold numbers below row one."""
    import pyarrow as pa

    text_columns = [column for column in table.columns if pa.types.is_string(column.type)]
    if not text_columns or table.num_rows < 2:
        return False
    try:
        for column in text_columns:
            column.slice(1).cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def _csv_source(source: Any) -> Any:
    """``source`` (a path or an open file), or its bytes with a final newline when it lacks one.

    pyarrow refuses a one-line csv without a final newline ("cannot infer number of columns").
    """
    import pyarrow as pa

    if not isinstance(source, Path):
        return pa.BufferReader(_with_final_newline(source))
    with open(source, "rb") as file:
        if file.seek(0, io.SEEK_END) == 0:
            return source
        file.seek(-1, io.SEEK_END)
        if file.read(1) in b"\r\n":
            return source
        file.seek(0)
        return pa.BufferReader(file.read() + b"\n")


def _with_final_newline(file: BinaryIO) -> bytes:
    data = file.read()
    return data if not data or data[-1:] in b"\r\n" else data + b"\n"


def _read_parquet(source: Any, path: Path, options: dict[str, str]) -> np.ndarray:
    import pyarrow.parquet as pq

    if options:
        raise InvalidArgumentError(f"parquet takes no options; got {sorted(options)}")
    return _numeric_table(pq.read_table(source), path)


def _numeric_table(table: Any, path: Path) -> np.ndarray:
    import pyarrow as pa

    for name, column_type in zip(table.column_names, table.schema.types):
        if not (pa.types.is_integer(column_type) or pa.types.is_floating(column_type)
                or pa.types.is_boolean(column_type) or pa.types.is_null(column_type)):
            # (A csv column holding no values at all has the null type: reported below.)
            raise InvalidArgumentError(
                f"column {name!r} of {path.name!r} has type {column_type}; "
                "a matrix needs numeric columns"
            )
    if table.num_columns == 0:
        raise InvalidArgumentError(f"{path.name!r} has no columns")
    out = np.empty((table.num_rows, table.num_columns), dtype=np.float64)
    for j, column in enumerate(table.columns):
        if column.null_count:
            raise InvalidArgumentError(
                f"column {table.column_names[j]!r} of {path.name!r} has "
                f"{column.null_count} missing values"
            )
        out[:, j] = column.to_numpy()
    return out


def _flag(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidArgumentError(f"csv option {name!r} must be true or false; got {text!r}")
