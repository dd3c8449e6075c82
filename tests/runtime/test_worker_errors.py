"""Nothing lost, nothing leaked: every bad request gets a clear error of the right class whose
message names the request and the cause, and the same worker then answers normal requests.

Bad input reaches a real worker three ways: as requests built by ``WorkerClient``, as envelopes
built by hand (what a buggy or hostile client could send), and as raw bytes on a gRPC channel.
"""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
import scipy.sparse as sp
from google.protobuf.message import Message

from fedla.runtime.errors import (
    AccessDeniedError,
    DataFileNotFoundError,
    FedlaError,
    InvalidArgumentError,
    MalformedRequestError,
    RequestSkippedError,
    ShapeMismatchError,
    UnknownKernelError,
    UnknownVariableError,
    WorkerInternalError,
)
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.batch_codec import encode_batch
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.framing import (
    GRPC_OPTIONS,
    from_frames,
    pack_message,
    to_frames,
    unpack_frames,
)
from fedla.runtime.protocol.requests import (
    Clear,
    ExecInst,
    ExecUdf,
    Get,
    Literal,
    Put,
    Read,
    Request,
)

SERVICE = "/fedla.v1.Worker"


class RawWorker:
    """A gRPC channel to a worker that sends whatever bytes a test hands it."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address, options=GRPC_OPTIONS)
        self.call = self.channel.unary_unary(f"{SERVICE}/Call")
        self.execute = self.channel.stream_stream(f"{SERVICE}/Execute")
        self.fetch = self.channel.unary_stream(f"{SERVICE}/Fetch")

    def call_batch(self, batch: pb.BatchRequest) -> pb.BatchResponse:
        """Send a hand-built envelope in one frame and parse the answer."""
        reply = self.call(_message(batch), timeout=30)
        response, _ = from_frames(unpack_frames(reply), pb.BatchResponse)
        return response

    def stream(self, frames: list[bytes]) -> list[bytes]:
        return list(self.execute(iter(frames), timeout=30))


@pytest.fixture(scope="module")
def raw(workers: list[str]) -> Iterator[RawWorker]:
    worker = RawWorker(workers[0])
    yield worker
    worker.channel.close()


# --- bad requests through the client -----------------------------------------------------------


@dataclass
class Site:
    """Where a case may put files: the data dir, a fresh subdir of it, a dir outside it."""

    root: Path
    subdir: Path
    outside: Path

    def rel(self, path: Path) -> str:
        return os.path.relpath(path, self.root)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _secret(site: Site) -> Path:
    return _write(site.outside / "secret.csv", "1,2\n3,4\n")


def _symlink(site: Site, name: str, target: Path) -> str:
    link = site.subdir / name
    link.symlink_to(target)
    return site.rel(link)


def _corrupt_csr() -> sp.csr_array:
    # scipy's constructor does not check index bounds; the worker must.
    return sp.csr_array(
        (np.array([1.0, 2.0]), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 3)
    )


A23 = np.arange(6.0).reshape(2, 3)
A42 = np.arange(8.0).reshape(4, 2)

# Each case: the requests of one batch (built from the site), the error class of the failing
# request and fragments its message must contain (the request, the variable or path, the cause).
BAD_BATCHES: dict[str, tuple[Callable[[Site], list[Request]], type[FedlaError], list[str]]] = {
    "unknown-op": (
        lambda s: [Put("x", A23), ExecInst("no_such_op", ("x",), "y")],
        UnknownKernelError,
        ["request #1 EXEC_INST 'no_such_op' -> 'y'", "unknown operation", "known operations"],
    ),
    "unknown-op-with-unknown-input": (
        lambda s: [ExecInst("no_such_op", ("missing",), "y")],
        UnknownKernelError,
        ["request #0 EXEC_INST 'no_such_op'", "unknown operation 'no_such_op'"],
    ),
    "matmul-shape-mismatch": (
        lambda s: [Put("a", A23), Put("b", A42), ExecInst("matmul", ("a", "b"), "c")],
        ShapeMismatchError,
        ["request #2 EXEC_INST 'matmul' -> 'c'", "(2, 3) and (4, 2) are not aligned"],
    ),
    "binary-shape-mismatch": (
        lambda s: [
            Put("a", A23), Put("b", A42), ExecInst("binary", ("a", "b"), "c", {"op": "add"})
        ],
        ShapeMismatchError,
        ["request #2 EXEC_INST 'binary'", "(2, 3)", "(4, 2)"],
    ),
    "kernel-missing-input": (
        lambda s: [Put("a", A23), ExecInst("matmul", ("a",), "c")],
        InvalidArgumentError,
        ["request #1 EXEC_INST 'matmul'", "operation 'matmul' cannot take 1 input", "'b'"],
    ),
    "kernel-unknown-attr": (
        lambda s: [Put("a", A23), ExecInst("transpose", ("a",), "c", {"bogus": 1})],
        InvalidArgumentError,
        ["request #1 EXEC_INST 'transpose'", "bogus"],
    ),
    "kernel-missing-attr": (
        lambda s: [Put("a", A23), ExecInst("binary", ("a", "a"), "c")],
        InvalidArgumentError,
        ["request #1 EXEC_INST 'binary'", "'op'"],
    ),
    "kernel-unknown-binary-op": (
        lambda s: [Put("a", A23), ExecInst("binary", ("a", "a"), "c", {"op": "xor3"})],
        InvalidArgumentError,
        ["request #1 EXEC_INST 'binary'", "'xor3'"],
    ),
    "kernel-on-non-matrix": (
        lambda s: [Put("d", {"k": 1}), ExecInst("matmul", ("d", "d"), "c")],
        InvalidArgumentError,
        ["request #1 EXEC_INST 'matmul'", "2-D block", "dict"],
    ),
    "exec-unknown-variable": (
        lambda s: [ExecInst("transpose", ("nope",), "c")],
        UnknownVariableError,
        ["request #0 EXEC_INST 'transpose'", "no variable 'nope'"],
    ),
    "udf-bad-arguments": (
        lambda s: [Put("a", A23), ExecUdf("tests.udfs:total", ("a",), attrs={"bogus": 1})],
        InvalidArgumentError,
        ["request #1 EXEC_UDF 'tests.udfs:total'", "bogus"],
    ),
    "udf-forbidden": (
        lambda s: [ExecUdf("os:system", (Literal("touch /tmp/fedla-hacked"),))],
        AccessDeniedError,
        ["request #0 EXEC_UDF 'os:system'", "module 'os' is not allowed"],
    ),
    "missing-file": (
        lambda s: [Read("X", s.rel(s.subdir / "nope.csv"))],
        DataFileNotFoundError,
        ["request #0 READ", "nope.csv", "-> 'X'", "no file"],
    ),
    "missing-directory": (
        lambda s: [Read("X", "no/such/dir/X.csv")],
        DataFileNotFoundError,
        ["'no/such/dir/X.csv'", "no file"],
    ),
    "directory-not-file": (
        lambda s: [Read("X", s.rel(s.subdir))],
        DataFileNotFoundError,
        ["no file"],
    ),
    "escape-dotdot": (
        lambda s: [Read("X", s.rel(_secret(s)))],
        AccessDeniedError,
        ["request #0 READ '../", "secret.csv", "outside the worker's data directory"],
    ),
    "escape-dotdot-missing-target": (  # refused the same way: nothing learned about outside
        lambda s: [Read("X", "../no-such-dir/x.csv")],
        AccessDeniedError,
        ["'../no-such-dir/x.csv'", "outside the worker's data directory"],
    ),
    "escape-dotdot-from-subdir": (
        lambda s: [Read("X", s.rel(s.subdir) + "/../../" + s.rel(_secret(s)).lstrip("./"))],
        AccessDeniedError,
        ["outside the worker's data directory"],
    ),
    "escape-absolute": (
        lambda s: [Read("X", str(_secret(s)))],
        AccessDeniedError,
        ["secret.csv", "is absolute"],
    ),
    "absolute-inside-data-dir": (
        lambda s: [Read("X", str(_write(s.subdir / "in.csv", "1\n")))],
        AccessDeniedError,
        ["is absolute"],
    ),
    "escape-symlink-file": (
        lambda s: [Read("X", _symlink(s, "link.csv", _secret(s)))],
        AccessDeniedError,
        ["link.csv", "outside the worker's data directory"],
    ),
    "escape-symlink-dir": (
        lambda s: [Read("X", _symlink(s, "linkdir", s.outside) + "/secret.csv")],
        AccessDeniedError,
        ["linkdir/secret.csv", "outside the worker's data directory"],
    ),
    "escape-symlink-to-root": (
        lambda s: [Read("X", _symlink(s, "root", Path("/")) + "/etc/passwd")],
        AccessDeniedError,
        ["outside the worker's data directory"],
    ),
    "symlink-loop": (
        lambda s: [Read("X", _symlink(s, "loop.csv", s.subdir / "loop.csv"))],
        DataFileNotFoundError,
        ["loop.csv"],
    ),
    "path-with-nul": (
        lambda s: [Read("X", "X\0.csv")],
        InvalidArgumentError,
        ["NUL"],
    ),
    "path-too-long": (
        lambda s: [Read("X", "x" * 5000 + ".csv")],
        DataFileNotFoundError,
        ["cannot open"],
    ),
    "empty-path": (
        lambda s: [Read("X", "")],
        InvalidArgumentError,
        ["request #0 READ", "empty"],
    ),
    "unknown-suffix": (
        lambda s: [Read("X", s.rel(_write(s.subdir / "X.xlsx", "1,2\n")))],
        InvalidArgumentError,
        ["unknown file format '.xlsx'", "X.xlsx", "csv, npy, mtx, parquet"],
    ),
    "unknown-declared-format": (
        lambda s: [Read("X", s.rel(_write(s.subdir / "X.csv", "1,2\n")), "hdf5")],
        InvalidArgumentError,
        ["unknown file format 'hdf5'"],
    ),
    "malformed-csv": (
        lambda s: [Read("X", s.rel(_write(s.subdir / "bad.csv", "1,2,3\n4,5\n")))],
        InvalidArgumentError,
        ["request #0 READ", "cannot read 'bad.csv' as csv", "Expected 3 columns"],
    ),
    "non-numeric-csv": (
        lambda s: [Read("X", s.rel(_write(s.subdir / "names.csv", "1,alice\n2,bob\n")))],
        InvalidArgumentError,
        ["column 'f1' of 'names.csv'", "numeric"],
    ),
    "csv-with-missing-values": (
        lambda s: [Read("X", s.rel(_write(s.subdir / "gaps.csv", "1,2\n3,\n")))],
        InvalidArgumentError,
        ["column 'f1' of 'gaps.csv' has 1 missing values"],
    ),
    "unknown-csv-option": (
        lambda s: [Read("X", s.rel(_write(s.subdir / "X.csv", "1\n")), "", {"sep": ";"})],
        InvalidArgumentError,
        ["unknown csv option(s) ['sep']"],
    ),
    "csv-read-as-npy": (
        lambda s: [Read("X", s.rel(_write(s.subdir / "X.csv", "1,2\n")), "npy")],
        InvalidArgumentError,
        ["cannot read 'X.csv' as npy"],
    ),
    "corrupt-csr": (
        lambda s: [Put("c", _corrupt_csr())],
        MalformedRequestError,
        ["request #0 PUT -> 'c'", "invalid CSR matrix of shape (2, 3)", "indices must be < 3"],
    ),
    "empty-variable-name": (
        lambda s: [Put("", 1)],
        InvalidArgumentError,
        ["request #0 PUT -> ''", "variable names must have 1 to 256 characters"],
    ),
    "variable-name-too-long": (
        lambda s: [Put("v" * 300, 1)],
        InvalidArgumentError,
        ["variable names must have 1 to 256 characters"],
    ),
    "get-cleared-variable": (
        lambda s: [Put("x", 1), Clear(("x",)), Get("x")],
        UnknownVariableError,
        ["request #2 GET 'x'", "no variable 'x'", "cleared"],
    ),
    "get-never-created": (
        lambda s: [Get("ghost")],
        UnknownVariableError,
        ["request #0 GET 'ghost'", "never created"],
    ),
    "get-unsendable-value": (
        lambda s: [ExecUdf("tests.udfs:object_array", (Literal(2),), ("o",)), Get("o")],
        InvalidArgumentError,
        ["request #1 GET 'o'", "dtype object cannot be sent"],
    ),
}


@pytest.fixture
def site(site_dir: Path, site_subdir: Path, tmp_path: Path) -> Site:
    outside = tmp_path / "outside"
    outside.mkdir()
    return Site(site_dir, site_subdir, outside)


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_bad_request_gets_a_clear_error_and_the_worker_carries_on(
    client, tenant, site, assert_healthy, case
):
    build, error, fragments = BAD_BATCHES[case]
    keep = np.arange(5.0)
    client.execute(tenant, [Put("keep", keep)])
    requests = build(site)
    with pytest.raises(error) as info:
        client.execute(tenant, requests)
    assert type(info.value) is error  # exactly this class, not a parent or WorkerInternalError
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if not any(isinstance(r, Read) and os.path.isabs(r.path) for r in requests):
        assert str(site.root) not in message  # the worker's own paths stay private
    # Nothing lost: what the tenant had before is intact.
    np.testing.assert_array_equal(client.execute(tenant, [Get("keep")])[0], keep)
    assert_healthy()


def test_failed_request_leaves_no_output_behind(client, tenant):
    client.execute_all(tenant, [Put("a", A23), ExecInst("matmul", ("a", "a"), "product")])
    with pytest.raises(UnknownVariableError):
        client.execute(tenant, [Get("product")])


def test_failed_put_keeps_the_old_value(client, tenant):
    client.execute(tenant, [Put("c", sp.csr_array(np.eye(3)))])
    with pytest.raises(MalformedRequestError):
        client.execute(tenant, [Put("c", _corrupt_csr())])
    (value,) = client.execute(tenant, [Get("c")])
    np.testing.assert_array_equal(value.toarray(), np.eye(3))


def test_forbidden_function_did_not_run(client, tenant, tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(AccessDeniedError):
        client.execute(tenant, [ExecUdf("subprocess:call", (Literal(["touch", str(marker)]),))])
    with pytest.raises(AccessDeniedError):
        client.execute(tenant, [ExecUdf("os:system", (Literal(f"touch {marker}"),))])
    assert not marker.exists()


# --- hand-built envelopes ------------------------------------------------------------------------


class _TouchOnUnpickle:
    """Unpickling this creates a file: proof that a payload was (or was not) unpickled."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _put_batch(tenant: str, array: pb.Array) -> pb.BatchRequest:
    return pb.BatchRequest(
        tenant=tenant, requests=[pb.Request(put=pb.Put(var="p", value=pb.Value(array=array)))]
    )


@pytest.mark.parametrize("dtype", ["O", "|O", "|V8", "V8", "<U2", "i4,i4", "M8[s]"])
def test_put_with_non_numeric_dtype_is_refused_without_unpickling(
    raw, client, tenant, tmp_path, assert_healthy, dtype
):
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(_TouchOnUnpickle(marker))
    itemsize = 8
    payload += b"\0" * (-len(payload) % itemsize)
    array = pb.Array(dtype=dtype, shape=[len(payload) // itemsize], inline=payload)
    response = raw.call_batch(_put_batch(tenant, array))
    (answer,) = response.responses
    assert answer.WhichOneof("kind") == "error"
    assert answer.error.type == "InvalidArgumentError"
    assert answer.error.code == "INVALID_ARGUMENT"
    assert "request #0 PUT -> 'p'" in answer.error.message
    assert "cannot be sent; only bool, integer, float and complex arrays can" in (
        answer.error.message
    )
    assert not marker.exists()
    with pytest.raises(UnknownVariableError):
        client.execute(tenant, [Get("p")])
    assert_healthy()


@pytest.mark.parametrize(
    ("array", "fragment"),
    [
        (pb.Array(dtype="bogus", shape=[1], inline=b"\0" * 8), "unknown dtype 'bogus'"),
        (pb.Array(dtype="<f8", shape=[3], inline=b"\0" * 8), "needs 24 bytes; got 8"),
        (pb.Array(dtype="<f8", shape=[2], buffer=5), "refers to buffer 5 but only 0 were sent"),
        (pb.Array(dtype="<f8", shape=[1] * 40, inline=b"\0" * 8), "40 dimensions"),
        (pb.Array(dtype="(99999999999,)f8", shape=[1], inline=b"\0" * 8), "dtype"),
        (pb.Array(dtype="<f8", shape=[0, 2**62], inline=b""), "shape"),
        (pb.Array(dtype=">f8", shape=[1], inline=b"\0" * 8), "little-endian"),
    ],
    ids=["unknown-dtype", "wrong-byte-count", "missing-buffer", "too-many-dims",
         "huge-subarray-dtype", "zero-size-huge-shape", "big-endian"],
)
def test_put_with_inconsistent_array_is_refused(raw, tenant, assert_healthy, array, fragment):
    (answer,) = raw.call_batch(_put_batch(tenant, array)).responses
    assert answer.WhichOneof("kind") == "error"
    assert answer.error.type in ("MalformedRequestError", "InvalidArgumentError"), answer.error
    assert answer.error.code == "INVALID_ARGUMENT"
    assert "request #0 PUT -> 'p'" in answer.error.message
    assert fragment in answer.error.message
    assert_healthy()


def test_request_without_a_type(raw, tenant, assert_healthy):
    batch = pb.BatchRequest(tenant=tenant, requests=[pb.Request(), pb.Request(get=pb.Get(var="x"))])
    first, second = raw.call_batch(batch).responses
    assert first.error.type == "InvalidArgumentError"
    assert "request #0 (no type)" in first.error.message
    assert second.error.type == "RequestSkippedError"
    assert_healthy()


@pytest.mark.parametrize("tenant_id", ["", None], ids=["empty", "unset"])
def test_batch_without_tenant_is_refused(client, raw, tenant, assert_healthy, tenant_id):
    if tenant_id is None:  # a hand-built envelope that never set the field
        batch = pb.BatchRequest(requests=[pb.Request(get=pb.Get(var="x"))] * 2)
        results = [r.error for r in raw.call_batch(batch).responses]
        assert [e.type for e in results] == ["InvalidArgumentError"] * 2
        assert all("names no tenant" in e.message for e in results)
    else:
        results = client.execute_all(tenant_id, [Put("x", 1), Get("x")])
        assert len(results) == 2
        for result in results:
            assert isinstance(result, InvalidArgumentError)
            assert "the batch names no tenant" in str(result)
    assert_healthy()


def _nested_list(depth: int) -> list:
    value: list = [1.0]
    for _ in range(depth):
        value = [value]
    return value


def test_nested_value_round_trips(client, tenant):
    value = _nested_list(30)
    assert client.execute(tenant, [Put("nested", value), Get("nested")])[1] == value


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, written by hand."""
    size, length = b"", len(payload)
    while True:
        size += bytes([(length & 0x7F) | (0x80 if length > 0x7F else 0)])
        length >>= 7
        if not length:
            return bytes([tag]) + size + payload


def test_too_deeply_nested_value_is_refused_by_the_worker(raw, tenant, assert_healthy):
    # Written as bytes: past the encoder's limit and deeper than protobuf parses (100 levels),
    # which the Python message classes would refuse to even build.
    value = pb.Value(float_value=1.0).SerializeToString()
    for _ in range(60):
        value = _field(0x42, _field(0x0A, value))  # Value.list -> ValueList.items
    put = _field(0x0A, b"deep") + _field(0x12, value)
    batch = _field(0x0A, tenant.encode()) + _field(0x12, _field(0x12, put))
    with pytest.raises(grpc.RpcError) as caught:
        raw.call(_field(0x0A, _field(0x0A, batch)), timeout=30)  # Frames{Frame{envelope}}
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "BatchRequest does not parse" in caught.value.details()
    assert_healthy()


def test_too_deeply_nested_value_is_refused_by_the_encoder(client, tenant):
    with pytest.raises(InvalidArgumentError, match="nest"):
        client.execute(tenant, [Put("deep", _nested_list(200))])


# --- tenants ------------------------------------------------------------------------------------


def test_tenant_cannot_read_overwrite_or_clear_another_tenants_variable(client, tenant):
    other = tenant + "-intruder"
    secret = np.array([[1.0, 2.0], [3.0, 4.0]])
    client.execute(tenant, [Put("x", secret)])
    try:
        with pytest.raises(UnknownVariableError, match="no variable 'x' in this tenant's scope"):
            client.execute(other, [Get("x")])
        with pytest.raises(UnknownVariableError, match="no variable 'x'"):
            client.execute(other, [ExecInst("transpose", ("x",), "y")])
        with pytest.raises(UnknownVariableError, match="no variable 'x'"):
            client.execute(other, [ExecUdf("tests.udfs:total", ("x",))])
        # Overwriting binds the intruder's own x; clearing drops only the intruder's.
        client.execute(other, [Put("x", np.zeros((2, 2))), Get("x")])
        np.testing.assert_array_equal(client.execute(tenant, [Get("x")])[0], secret)
        client.execute(other, [Clear(("x",))])
        np.testing.assert_array_equal(client.execute(tenant, [Get("x")])[0], secret)
        client.execute(other, [Put("x", 5), Clear(all=True)])
        np.testing.assert_array_equal(client.execute(tenant, [Get("x")])[0], secret)
        with pytest.raises(UnknownVariableError):
            client.execute(other, [Get("x")])
    finally:
        client.execute(other, [Clear(all=True)])


def test_tenant_ids_are_not_prefixes_of_each_other(client, tenant):
    client.execute(tenant, [Put("x", 1)])
    for other in (tenant[:-1], tenant + " ", tenant.upper(), tenant + "\0"):
        with pytest.raises(UnknownVariableError):
            client.execute(other, [Get("x")])


def _message(envelope: Message) -> bytes:
    """A unary ``Call``/``Fetch`` message holding just ``envelope``."""
    return pack_message(envelope, [])


def _ticket_for(raw: RawWorker, tenant: str, var: str) -> str:
    envelope, buffers = encode_batch(tenant, [Get(var)])
    assert not buffers
    response, _ = from_frames(unpack_frames(raw.call(_message(envelope))), pb.BatchResponse)
    assert response.ticket and not response.responses
    return response.ticket


def _fetch(raw: RawWorker, tenant: str, ticket: str) -> pb.BatchResponse:
    frames = raw.fetch(_message(pb.FetchRequest(tenant=tenant, ticket=ticket)), timeout=30)
    response, _ = from_frames(frames, pb.BatchResponse)
    return response


def test_ticket_cannot_be_fetched_by_another_tenant(raw, client, tenant, assert_healthy):
    value = np.arange(800_000.0)  # too large for one Call: the answer waits under a ticket
    client.execute(tenant, [Put("big", value)])
    ticket = _ticket_for(raw, tenant, "big")
    for intruder in (tenant + "-intruder", ""):
        with pytest.raises(grpc.RpcError) as info:
            _fetch(raw, intruder, ticket)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
        assert "UnknownVariableError" in info.value.details()
        assert "no pending response under ticket" in info.value.details()
    # The owner still gets the answer, exactly once.
    frames = list(raw.fetch(_message(pb.FetchRequest(tenant=tenant, ticket=ticket))))
    response, buffers = from_frames(frames, pb.BatchResponse)
    assert len(response.responses) == 1
    assert buffers[0].nbytes == value.nbytes
    np.testing.assert_array_equal(buffers[0].view(np.float64), value)
    with pytest.raises(grpc.RpcError) as info:
        _fetch(raw, tenant, ticket)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert_healthy()


def test_unknown_ticket(raw, tenant):
    with pytest.raises(grpc.RpcError) as info:
        _fetch(raw, tenant, "0" * 32)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


# --- malformed bytes on the wire ----------------------------------------------------------------


def _big_put_frames(tenant: str) -> list[bytes]:
    envelope, buffers = encode_batch(tenant, [Put("streamed", np.arange(300_000.0))])
    assert len(buffers) == 1
    frames = list(to_frames(envelope, buffers))
    assert len(frames) == 4  # an envelope and three chunks of at most 1 MiB
    return frames


def _chunk(buffer: int, offset: int, data: bytes) -> bytes:
    return pb.Frame(chunk=pb.Chunk(buffer=buffer, offset=offset, data=data)).SerializeToString()


UNARY_GARBAGE = {
    "not-frames": (b"\x00garbage", "message (8 bytes) is not a list of frames"),
    "frames-overrun": (b"\x0a\x7fabc", "a frame runs past the end of the message"),
    "no-frames": (b"", "stream carried no envelope frame"),
    "garbage": (_field(0x0A, b"\x00garbage"), "frame 0 (8 bytes) is not a valid fedla frame"),
    "empty": (_field(0x0A, b""), "frame 0 is empty"),
    "all-ones": (_field(0x0A, b"\xff" * 64), "is not a valid fedla frame"),
    "truncated-chunk-header": (_field(0x0A, b"\x12\x05abc"), "is not a valid fedla frame"),
    "envelope-not-a-batch": (
        _field(0x0A, pb.Frame(envelope=b"\x0a\x05ab").SerializeToString()),
        "BatchRequest does not parse",
    ),
    "chunk-without-envelope": (
        _field(0x0A, _chunk(0, 0, b"abcd")), "stream carried no envelope frame"
    ),
}


@pytest.mark.parametrize("case", list(UNARY_GARBAGE))
def test_call_with_malformed_bytes(raw, assert_healthy, case):
    data, fragment = UNARY_GARBAGE[case]
    with pytest.raises(grpc.RpcError) as info:
        raw.call(data, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("MalformedRequestError: ")
    assert fragment in info.value.details()
    assert_healthy()


STREAM_GARBAGE: dict[str, tuple[Callable[[list[bytes]], list[bytes]], grpc.StatusCode, str]] = {
    "missing-last-chunk": (
        lambda f: f[:-1],
        grpc.StatusCode.INVALID_ARGUMENT,
        "stream ended early: buffer 0 received 2097152 of 2400000 bytes",
    ),
    "envelope-only": (
        lambda f: f[:1],
        grpc.StatusCode.INVALID_ARGUMENT,
        "stream ended early: buffer 0 received 0 of 2400000 bytes",
    ),
    "too-few-chunk-bytes": (
        lambda f: [f[0], _chunk(0, 0, b"\0" * 1000)],
        grpc.StatusCode.INVALID_ARGUMENT,
        "stream ended early: buffer 0 received 1000 of 2400000 bytes",
    ),
    "chunk-cut-mid-frame": (
        lambda f: f[:-1] + [f[-1][:100]],
        grpc.StatusCode.INVALID_ARGUMENT,
        "frame 3 (100 bytes) is not a valid fedla frame",
    ),
    "chunk-repeated": (
        lambda f: f[:2] + f[1:],
        grpc.StatusCode.INVALID_ARGUMENT,
        "chunk at offset 0 (+1048576 bytes) does not continue buffer 0",
    ),
    "chunk-out-of-order": (
        lambda f: [f[0], f[2], f[1], f[3]],
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not continue buffer 0 (0 of 2400000 bytes received)",
    ),
    "chunk-past-end": (
        lambda f: f + [_chunk(0, 2_400_000, b"x")],
        grpc.StatusCode.INVALID_ARGUMENT,
        "does not continue buffer 0",
    ),
    "chunk-for-undeclared-buffer": (
        lambda f: f + [_chunk(1, 0, b"x")],
        grpc.StatusCode.INVALID_ARGUMENT,
        "chunk for buffer 1 but the envelope declares 1 buffers",
    ),
    "envelope-after-chunks": (
        lambda f: f + f[:1],
        grpc.StatusCode.INVALID_ARGUMENT,
        "frame 4: an envelope frame after buffer chunks",
    ),
    "garbage-after-envelope": (
        lambda f: [f[0], b"\x00garbage"],
        grpc.StatusCode.INVALID_ARGUMENT,
        "frame 1 (8 bytes) is not a valid fedla frame",
    ),
    "no-frames": (
        lambda f: [],
        grpc.StatusCode.INVALID_ARGUMENT,
        "stream carried no envelope frame",
    ),
    "declares-too-many-bytes": (
        lambda f: [
            next(to_frames(pb.BatchRequest(tenant="t", buffer_sizes=[2**40, 2**40]), [])),
        ],
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "ResourceLimitError: message carries 2199023255552 bytes of buffers; this endpoint "
        "accepts at most",
    ),
}


@pytest.mark.parametrize("case", list(STREAM_GARBAGE))
def test_execute_with_malformed_stream(raw, client, tenant, assert_healthy, case):
    mangle, code, fragment = STREAM_GARBAGE[case]
    with pytest.raises(grpc.RpcError) as info:
        raw.stream(mangle(_big_put_frames(tenant)))
    assert info.value.code() == code
    assert fragment in info.value.details()
    # The batch was refused as a whole: nothing of it ran.
    with pytest.raises(UnknownVariableError):
        client.execute(tenant, [Get("streamed")])
    assert_healthy()


def test_intact_stream_is_accepted(raw, client, tenant):
    frames = raw.stream(_big_put_frames(tenant))
    response, _ = from_frames(frames, pb.BatchResponse)
    assert response.responses[0].WhichOneof("kind") == "meta"
    (value,) = client.execute(tenant, [Get("streamed")])
    np.testing.assert_array_equal(value, np.arange(300_000.0))


# --- endurance and concurrency -----------------------------------------------------------------


def test_worker_survives_many_bad_requests_in_a_row(raw, client, tenant, assert_healthy):
    bad_requests: list[list[Request]] = [
        [ExecInst("no_such_op", (), "y")],
        [Read("X", "../../etc/passwd")],
        [Read("X", "/etc/passwd")],
        [ExecUdf("os:system", (Literal("true"),))],
        [Get("ghost")],
        [Put("c", _corrupt_csr())],
    ]
    frames = _big_put_frames(tenant)
    for round_ in range(40):
        for requests in bad_requests:
            results = client.execute_all(tenant, [*requests, Get("ghost")])
            assert isinstance(results[0], FedlaError)
            assert not isinstance(results[0], WorkerInternalError), results[0]
            assert isinstance(results[1], RequestSkippedError)
        with pytest.raises(grpc.RpcError):
            raw.call(b"\x00garbage" * round_, timeout=30)
        with pytest.raises(grpc.RpcError):
            raw.stream(frames[:-1])
    assert_healthy()


def test_concurrent_tenants_see_only_their_own_values(workers):
    n_threads, n_rounds = 8, 25
    shared = WorkerClient(workers[0])
    clients = [shared] * (n_threads // 2) + [
        WorkerClient(workers[0]) for _ in range(n_threads - n_threads // 2)
    ]
    failures: list[str] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        tenant = f"concurrent-{index}-{uuid.uuid4().hex[:8]}"
        worker_client = clients[index]
        try:
            for round_ in range(n_rounds):
                # Same variable names in every tenant; values unique to this tenant and round.
                value = np.full((50, 40), float(index * 1000 + round_))
                if round_ % 5 == 0:  # a large one, streamed
                    value = np.full((400, 300), float(index * 1000 + round_))
                _, _, result, _ = worker_client.execute(
                    tenant,
                    [
                        Put("x", value),
                        ExecInst("binary", ("x", Literal(1.0)), "y", {"op": "add"}),
                        Get("y"),
                        Clear(("y",)),
                    ],
                )
                if not np.array_equal(result, value + 1.0):
                    raise AssertionError(f"tenant {index} round {round_}: wrong value")
                bad = worker_client.execute_all(tenant, [Read("X", "../x.csv"), Get("x")])
                if not isinstance(bad[0], AccessDeniedError):
                    raise AssertionError(f"tenant {index}: expected AccessDeniedError: {bad[0]}")
                if not isinstance(bad[1], RequestSkippedError):
                    raise AssertionError(f"tenant {index}: expected a skip: {bad[1]}")
            worker_client.execute(tenant, [Clear(all=True)])
        except Exception as exc:  # noqa: BLE001 - collected and reported by the main thread
            with lock:
                failures.append(f"{type(exc).__name__}: {exc}")

    try:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(run, range(n_threads)))
    finally:
        for worker_client in set(clients):
            worker_client.close()
    assert not failures, failures
