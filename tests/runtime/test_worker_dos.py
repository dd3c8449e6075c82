"""Denial of service against a worker, probed as attacks (``--stream-timeout``,
``--max-streams-per-tenant``, ``--tenant-timeout`` with a batch in flight, CLEAR and the lineage
cache).

Each attack runs against a real ``fedla worker`` process over raw gRPC; what is refused is
refused with a ``ResourceLimitError`` naming its option, and the worker serves afterwards.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from fedla.local_workers import LocalWorkerPool
from fedla.runtime.errors import ResourceLimitError
from fedla.runtime.lineage_cache import LineageCache
from fedla.runtime.protocol import fedla_pb2 as pb
from fedla.runtime.protocol.client import WorkerClient
from fedla.runtime.protocol.requests import Clear, ExecInst, Get, Put
from fedla.runtime.worker.frame_reader import TimedFrames
from fedla.runtime.worker.server import server_threads
from fedla.runtime.worker.stream_slots import StreamSlots
from fedla.runtime.worker.tenant_scope import TenantRegistry
from tests.runtime.test_worker_errors import RawWorker

STREAM_TIMEOUT = 4.0
STREAMS = 4


@pytest.fixture(scope="module")
def guarded() -> Iterator[str]:
    """A worker with a short stream timeout and the default streams per tenant."""
    options = ("--stream-timeout", str(STREAM_TIMEOUT), "--max-streams-per-tenant", str(STREAMS))
    with LocalWorkerPool(1, options=options) as pool:
        yield pool.addresses[0]


@pytest.fixture(scope="module")
def client(guarded) -> Iterator[WorkerClient]:
    worker = WorkerClient(guarded, timeout=10)
    yield worker
    worker.close()


def _tenant(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _healthy(client: WorkerClient, tenant: str) -> None:
    value = np.arange(12.0).reshape(3, 4)
    _, got = client.execute(tenant, [Put("health-check", value), Get("health-check")])
    np.testing.assert_array_equal(got, value)


def _envelope_declaring_buffers(tenant: str) -> bytes:
    """A valid first frame: a PUT whose 1 MiB buffer is announced and never sent."""
    batch = pb.BatchRequest(
        tenant=tenant,
        requests=[pb.Request(put=pb.Put(var="stalled", value=pb.Value(array=pb.Array(
            dtype="<f8", shape=[2**17], buffer=0))))],
        buffer_sizes=[2**20],
    )
    return pb.Frame(envelope=batch.SerializeToString()).SerializeToString()


def _stalled_stream(raw: RawWorker, first: list[bytes], release: threading.Event
                    ) -> tuple[grpc.StatusCode, str, float]:
    """Send ``first`` frames, then nothing until ``release``; the status and when it came."""

    def frames() -> Iterator[bytes]:
        yield from first
        release.wait(60)

    start = time.monotonic()
    try:
        list(raw.execute(frames(), timeout=60))
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or "", time.monotonic() - start
    return grpc.StatusCode.OK, "", time.monotonic() - start


def _round_trips(client: WorkerClient, tenant: str, n: int = 60) -> float:
    """Median seconds of a small GET round trip of ``tenant``."""
    client.execute(tenant, [Put("small", np.arange(8.0))])
    times = []
    for _ in range(n):
        start = time.perf_counter()
        client.execute(tenant, [Get("small")])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- attacks against a worker process ------------------------------------------------------------


def test_stalled_streams_of_one_tenant_do_not_delay_another(guarded, client):
    """16 streams that send an envelope declaring buffers and then stall (issue 9, defect 3)."""
    attacker, other = _tenant("attacker"), _tenant("other")
    raw = RawWorker(guarded)
    release = threading.Event()
    before = _round_trips(client, other)
    with ThreadPoolExecutor(16) as pool:
        streams = [
            pool.submit(_stalled_stream, raw, [_envelope_declaring_buffers(attacker)], release)
            for _ in range(16)
        ]
        time.sleep(1.0)  # every stream has sent its envelope; the extra ones are refused
        during = _round_trips(client, other)
        refused = [s.result() for s in streams if s.done()]
        outcomes = [s.result(timeout=STREAM_TIMEOUT + 30) for s in streams]
        release.set()
    raw.channel.close()

    assert during <= 2 * before, f"p50 round trip {before * 1e3:.2f} ms -> {during * 1e3:.2f} ms"
    assert len(refused) == 16 - STREAMS
    for code, details, _ in refused:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "ResourceLimitError" in details and "--max-streams-per-tenant" in details
    stalled = [outcome for outcome in outcomes if "--stream-timeout" in outcome[1]]
    assert len(stalled) == STREAMS
    for code, details, elapsed in stalled:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "ResourceLimitError" in details
        assert STREAM_TIMEOUT - 0.5 < elapsed < STREAM_TIMEOUT + 10
    _healthy(client, attacker)  # its slots are free again
    _healthy(client, other)
    client.execute(attacker, [Clear(all=True)])
    client.execute(other, [Clear(all=True)])


def test_a_stream_that_sends_nothing_is_ended_after_the_stream_timeout(guarded, client):
    raw = RawWorker(guarded)
    release = threading.Event()
    code, details, elapsed = _stalled_stream(raw, [], release)
    release.set()
    raw.channel.close()
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "ResourceLimitError" in details and "(--stream-timeout)" in details
    assert STREAM_TIMEOUT - 0.5 < elapsed < STREAM_TIMEOUT + 10
    _healthy(client, _tenant("after-silence"))


def test_silent_streams_that_name_no_tenant_do_not_take_every_thread(guarded, client):
    """16 streams that send nothing at all: no tenant to count them against, so they share the
    budget of streams not yet naming one (twice a tenant's), and the rest is refused."""
    raw = RawWorker(guarded)
    release = threading.Event()
    other = _tenant("other")
    before = _round_trips(client, other)
    with ThreadPoolExecutor(16) as pool:
        streams = [pool.submit(_stalled_stream, raw, [], release) for _ in range(16)]
        time.sleep(1.0)
        during = _round_trips(client, other)
        refused = [s.result() for s in streams if s.done()]
        outcomes = [s.result(timeout=STREAM_TIMEOUT + 30) for s in streams]
        release.set()
    raw.channel.close()
    assert during <= 2 * before, f"p50 round trip {before * 1e3:.2f} ms -> {during * 1e3:.2f} ms"
    assert len(refused) == 16 - 2 * STREAMS
    for code, details, _ in refused:
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "streams not yet naming a tenant" in details
        assert "--max-streams-per-tenant" in details
    assert sum("(--stream-timeout)" in details for _, details, _ in outcomes) == 2 * STREAMS
    _healthy(client, other)
    client.execute(other, [Clear(all=True)])


def test_clear_all_drops_the_tenants_private_lineage_entries(client):
    """After CLEAR(all) nobody can reuse results derived from a tenant's PUT data."""
    tenant = _tenant("clearing")
    X = np.random.default_rng(0).random((200, 50))
    start = client.status(tenant).lineage_cache
    client.execute(tenant, [
        Put("X", X), Put("Y", X.T.copy()),
        ExecInst("matmul", ("Y", "X"), "G"), ExecInst("matmul", ("G", "Y"), "H"),
    ])
    computed = client.status(tenant).lineage_cache
    assert computed.entries == start.entries + 2
    assert computed.bytes >= start.bytes + 50 * 50 * 8 + 50 * 200 * 8
    client.execute(tenant, [Clear(all=True)])
    cleared = client.status(tenant).lineage_cache
    assert (cleared.entries, cleared.bytes) == (start.entries, start.bytes)


def test_a_batch_longer_than_the_tenant_timeout_keeps_its_tenant(tmp_path):
    """--tenant-timeout 0.5 and a batch of about 2 s: the batch's tenant keeps its data, and is
    dropped (with its cached results) once it is really idle."""
    with LocalWorkerPool(1, data_dir=tmp_path, options=("--tenant-timeout", "0.5")) as pool:
        client = WorkerClient(pool.addresses[0], timeout=60)
        tenant = _tenant("slow")
        n = 1500
        X = np.random.default_rng(1).random((n, n)) / n
        start = time.perf_counter()
        X @ X
        steps = min(60, int(2.0 / (time.perf_counter() - start)) + 1)  # about 2 s of matmuls
        chain = [ExecInst("matmul", ("X" if i == 0 else f"A{i - 1}", "X"), f"A{i}")
                 for i in range(steps)]
        start = time.monotonic()
        client.execute(tenant, [Put("X", X), *chain])
        elapsed = time.monotonic() - start
        assert elapsed > 1.0, f"the batch took {elapsed:.2f} s, too short to test anything"
        (got,) = client.execute(tenant, [Get("X")])  # right after: the scope is still there
        np.testing.assert_array_equal(got, X)

        time.sleep(2.0)  # now idle past the timeout: dropped, and its cached results with it
        status = client.status(tenant)
        assert status.lineage_cache.entries == 0
        assert all(t.tenant != tenant for t in status.tenants)
        client.close()


# --- the pieces ---------------------------------------------------------------------------------


def test_timed_frames_pass_frames_and_refuse_a_pause():
    assert list(TimedFrames(iter([b"a", b"b"]), timeout=1.0)) == [b"a", b"b"]

    def pausing() -> Iterator[bytes]:
        yield b"a"
        time.sleep(1.0)
        yield b"b"

    frames = TimedFrames(pausing(), timeout=0.2)
    assert next(frames) == b"a"
    with pytest.raises(ResourceLimitError, match=r"nothing for 0.2 s.*\(--stream-timeout\)"):
        next(frames)

    def failing() -> Iterator[bytes]:
        yield b"a"
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        list(TimedFrames(failing(), timeout=1.0))


def test_stream_slots_refuse_over_the_limit_per_tenant():
    slots = StreamSlots(2)
    slots.acquire("a")
    slots.acquire("a")
    slots.acquire("b")  # another tenant's budget is its own
    limit = r"this tenant: 2 calls in flight.*the limit 2 \(--max-streams-per-tenant\)"
    with pytest.raises(ResourceLimitError, match=limit):
        slots.acquire("a")
    slots.release("a")
    slots.acquire("a")
    assert (slots.in_flight("a"), slots.in_flight("b")) == (2, 1)


@pytest.mark.parametrize(("streams", "cores", "threads"), [
    (4, 2, 16), (4, 64, 68), (1, 2, 6), (100, 8, 128),
], ids=["default-2-cores", "many-cores", "small-budget", "capped"])
def test_server_threads_hold_four_tenants_budgets(streams, cores, threads):
    assert server_threads(streams, cores) == threads


def test_a_scope_in_use_is_not_dropped_as_idle():
    registry = TenantRegistry()
    dropped: list[str] = []
    registry.on_drop.append(dropped.append)
    with registry.using("busy") as scope:
        scope.last_used -= 100
        assert registry.drop_idle(1.0) == []
    registry.tenants()[0].last_used -= 100
    assert registry.drop_idle(1.0) == ["busy"]
    assert dropped == ["busy"]


def test_lineage_cache_drops_entries_by_tag():
    cache = LineageCache(budget=10_000)
    cache.put("shared", np.zeros(10))
    cache.put("t1-a", np.zeros(10), tags=("t1",))
    cache.put("t1-b", np.zeros(10), tags=("t1",))
    cache.put("t2-a", np.zeros(10), tags=("t2",))
    assert cache.drop_tag("t1") == 2
    assert cache.stats()["entries"] == 2
    assert cache.stats()["bytes"] == 160
    assert cache.drop_tag("t1") == 0
    cache.put("t2-b", np.zeros(1245), tags=("t2",))  # evicts "shared" and "t2-a"
    assert cache.stats()["entries"] == 1
    assert cache.drop_tag("t2") == 1
    assert cache.stats()["bytes"] == 0
