"""Limits of a worker (``fedla worker --max-envelope ... --ticket-mem``), probed as attacks.

Each exceeded limit is answered with a ``ResourceLimitError`` naming its option, before the
worker allocates anything for the request, and the worker then answers a healthy request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from fedla.local_workers import LocalWorkerPool
from fedla.runtime.errors import ResourceLimitError
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.batch_codec import encode_batch
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.codec import INLINE_LIMIT
from fedla.runtime.protocol.framing import pack_message
from fedla.runtime.protocol.requests import Clear, Get, Put, Read
from tests.runtime.test_worker_errors import RawWorker

MB = 1024**2
LIMITS = (
    "--max-envelope", "2MB", "--max-buffers", "8", "--tenant-mem", "8MB",
    "--max-tenant-id", "64", "--ticket-ttl", "2", "--ticket-mem", "6MB",
)


@pytest.fixture(scope="module")
def limited_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("limited")


@pytest.fixture(scope="module")
def limited(limited_dir) -> Iterator[str]:
    """Address of a worker started with small limits."""
    with LocalWorkerPool(1, data_dir=limited_dir, options=LIMITS) as pool:
        yield pool.addresses[0]


@pytest.fixture(scope="module")
def lclient(limited) -> Iterator[WorkerClient]:
    client = WorkerClient(limited, timeout=60)
    yield client
    client.close()


@pytest.fixture(scope="module")
def lraw(limited) -> Iterator[RawWorker]:
    raw = RawWorker(limited)
    yield raw
    raw.channel.close()


@pytest.fixture
def ltenant(lclient) -> Iterator[str]:
    name = f"limits-{uuid.uuid4().hex[:8]}"
    yield name
    lclient.execute(name, [Clear(all=True)])


def _healthy(client: WorkerClient, tenant: str) -> None:
    value = np.arange(12.0).reshape(3, 4)
    _, got = client.execute(tenant, [Put("health-check", value), Get("health-check")])
    np.testing.assert_array_equal(got, value)


def _inline_arrays(n: int) -> list[np.ndarray]:
    """``n`` arrays that each ride inside the envelope (no buffers)."""
    return [np.full(INLINE_LIMIT // 8 - 16, float(i)) for i in range(n)]


def test_envelope_over_max_envelope_is_refused(lclient, ltenant):
    limit = r"envelope exceeds 2097152 bytes \(--max-envelope\)"
    with pytest.raises(ResourceLimitError, match=limit):
        lclient.execute(ltenant, [Put("many", _inline_arrays(40))])  # ~2.6 MB of envelope
    _healthy(lclient, ltenant)


def test_more_buffers_than_max_buffers_are_refused(lclient, ltenant):
    arrays = [np.zeros(INLINE_LIMIT // 8 + 1) for _ in range(9)]  # each out of line
    with pytest.raises(ResourceLimitError, match=r"declares 9 buffers.*at most 8.*--max-buffers"):
        lclient.execute(ltenant, [Put("many", arrays)])
    client_ok = lclient.execute(ltenant, [Put("eight", arrays[:8])])
    assert client_ok[0].dtype == "list"
    _healthy(lclient, ltenant)


def test_declared_buffers_over_the_quota_are_refused_before_allocation(lraw, lclient, ltenant):
    """12 GiB declared in a 100-byte envelope: refused at once, nothing allocated."""
    batch = pb.BatchRequest(
        tenant=ltenant,
        requests=[pb.Request(put=pb.Put(var="huge", value=pb.Value(array=pb.Array(
            dtype="<f8", shape=[3 * 2**29], buffer=0))))],
        buffer_sizes=[12 * 1024**3],
    )
    envelope_only = [pb.Frame(envelope=batch.SerializeToString()).SerializeToString()]
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        lraw.stream(envelope_only)
    assert time.monotonic() - start < 5
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ResourceLimitError" in info.value.details()
    assert "(--tenant-mem) is 8388608 bytes" in info.value.details()
    _healthy(lclient, ltenant)


def test_puts_are_counted_against_the_tenant_quota(lclient, ltenant):
    lclient.execute(ltenant, [Put("a", np.zeros(7 * MB // 8))])
    with pytest.raises(ResourceLimitError, match="--tenant-mem"):  # its buffer: at admission
        lclient.execute(ltenant, [Put("b", np.zeros(5 * MB // 8))])
    # Inline values need no buffers: the PUT itself checks the quota.
    results = lclient.execute_all(ltenant, [
        Put(f"s{i}", array) for i, array in enumerate(_inline_arrays(30))
    ])
    refused = [r for r in results if isinstance(r, ResourceLimitError)]
    assert len(refused) == 1 and "PUT -> 's" in str(refused[0])
    assert "--tenant-mem" in str(refused[0])
    other = ltenant + "-other"  # the quota is per tenant
    try:
        lclient.execute(other, [Put("b", np.zeros(5 * MB // 8))])
    finally:
        lclient.execute(other, [Clear(all=True)])
    lclient.execute(ltenant, [Clear(all=True)])
    lclient.execute(ltenant, [Put("b", np.zeros(5 * MB // 8))])  # room again after CLEAR
    _healthy(lclient, ltenant)


def test_files_read_do_not_count_against_the_quota(lclient, ltenant, limited_dir):
    np.save(limited_dir / "large.npy", np.ones((10 * MB // 8, 1)))  # over --tenant-mem
    (meta,) = lclient.execute(ltenant, [Read("X", "large.npy")])
    assert meta.shape == (10 * MB // 8, 1)
    lclient.execute(ltenant, [Put("a", np.zeros(7 * MB // 8))])
    _healthy(lclient, ltenant)


def test_tenant_id_over_max_tenant_id_is_refused(lclient, ltenant):
    results = lclient.execute_all("t" * 65, [Put("x", 1.0), Get("x")])
    assert all(isinstance(r, ResourceLimitError) for r in results)
    assert "65 characters" in str(results[0]) and "--max-tenant-id" in str(results[0])
    lclient.execute("t" * 64, [Put("x", 1.0), Clear(all=True)])
    _healthy(lclient, ltenant)


def _get_ticket(raw: RawWorker, tenant: str, var: str) -> str:
    envelope, _ = encode_batch(tenant, [Get(var)])
    reply = raw.call_batch(envelope)
    assert reply.ticket, "a 5 MB reply should wait under a ticket"
    return reply.ticket


def _fetch(raw: RawWorker, tenant: str, ticket: str) -> list[bytes]:
    request = pack_message(pb.FetchRequest(tenant=tenant, ticket=ticket), [])
    return list(raw.fetch(request, timeout=30))


def test_unfetched_replies_are_bounded_and_expire(lraw, lclient, ltenant):
    lclient.execute(ltenant, [Put("big", np.zeros(5 * MB // 8))])
    first = _get_ticket(lraw, ltenant, "big")
    with pytest.raises(grpc.RpcError) as info:  # 10 MB would wait: over --ticket-mem
        _get_ticket(lraw, ltenant, "big")
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "--ticket-mem" in info.value.details()
    time.sleep(2.5)  # past --ticket-ttl: the first reply is dropped, making room
    second = _get_ticket(lraw, ltenant, "big")
    with pytest.raises(grpc.RpcError) as expired:
        _fetch(lraw, ltenant, first)
    assert expired.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(b"".join(_fetch(lraw, ltenant, second))) > 5 * MB
    (value,) = lclient.execute(ltenant, [Get("big")])  # the client fetches its tickets at once
    assert value.shape == (5 * MB // 8,)
    _healthy(lclient, ltenant)


def test_tenants_over_max_tenants_are_refused(tmp_path):
    with LocalWorkerPool(1, data_dir=tmp_path, options=("--max-tenants", "2")) as pool:
        client = WorkerClient(pool.addresses[0], timeout=60)
        try:
            client.execute("a", [Put("x", 1.0)])
            client.execute("b", [Put("x", 2.0)])
            with pytest.raises(ResourceLimitError, match=r"serves 2 tenants.*--max-tenants"):
                client.execute("c", [Put("x", 3.0)])
            assert client.execute("a", [Get("x")]) == [1.0]  # known tenants are served
        finally:
            client.close()

