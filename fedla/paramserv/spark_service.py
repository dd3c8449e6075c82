"""The driver's gRPC parameter server for ``paramserv(mode="REMOTE_SPARK")``.

A thin servicer over the run's ``TrainingSession``: each RPC is one session call (serialized by
one lock, as the session requires), and the caller waits for its own release, which another
worker's call may deliver (BSP releases everyone at the barrier). Calls carry the job's token
(``authorization: Bearer ...``) and the Spark stage attempt: when a newer attempt calls (Spark
retried the barrier stage after a task died), the server goes back to its state at the start of
the last completed epoch, so the retried tasks resume from there and nothing the failed attempt
pushed in the unfinished epoch stays in the model; calls of older attempts are refused. Every
wait is bounded by ``timeout``.
"""

from __future__ import annotations

import copy
import hmac
import logging
import queue
import secrets
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
import numpy as np

from fedla.runtime.paramserv.messages import Release, Update
from fedla.runtime.paramserv.session import TrainingSession
from fedla.runtime.protocol import paramserv_pb2 as pb
from fedla.runtime.protocol import paramserv_pb2_grpc as pb_grpc

_LOGGER = logging.getLogger(__name__)

_SERVER_STATE_SHARED = ("agg", "hyperparams", "history", "_on_epoch_end", "on_round")
"""ParameterServer attributes kept by reference in a snapshot (functions, the shared history);
the rest, a server optimizer's state among it, goes back to the snapshot on a retry."""


def to_proto(array: Any) -> pb.Array:
    """A numpy array as an ``Array`` message (little-endian, C order)."""
    value = np.ascontiguousarray(array)
    value = value.astype(value.dtype.newbyteorder("<"), copy=False)
    return pb.Array(dtype=value.dtype.str, shape=list(value.shape), data=value.tobytes())


def from_proto(message: pb.Array) -> np.ndarray:
    """The numpy array of an ``Array`` message (a writable copy)."""
    return np.frombuffer(message.data, dtype=np.dtype(message.dtype)).reshape(
        tuple(message.shape)).copy()


class StaleAttemptError(Exception):
    """A call of a Spark stage attempt that a newer attempt replaced."""


class ParameterService(pb_grpc.ParameterServerServicer):
    """Serves one ``TrainingSession`` to the tasks of one Spark job."""

    def __init__(self, session: TrainingSession, token: str, timeout: float,
                 on_failure: Callable[[BaseException], None]) -> None:
        self.session = session
        self.token = token
        self.timeout = timeout
        self.failure: BaseException | None = None
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._attempt: int | None = None  # the stage attempt of the first call, then the latest
        self._mailboxes = self._new_mailboxes()
        self._snapshot = self._server_state()

    # ----- RPCs
    def Pull(self, request: pb.Caller, context: grpc.ServicerContext) -> pb.ModelReply:  # noqa: N802
        """A worker (re)starts: the current model and the epoch to start in."""
        return self._call(request, context, lambda: self.session.pull(request.worker))

    def Push(self, request: pb.PushRequest, context: grpc.ServicerContext) -> pb.ModelReply:  # noqa: N802
        """A worker pushes an update and waits for its release."""
        arrays = [from_proto(a) for a in request.arrays]
        update = Update(request.caller.worker, request.kind, arrays, int(request.weight),
                        int(request.version), bytes_up=sum(int(a.nbytes) for a in arrays),
                        seconds=float(request.seconds))
        return self._call(request.caller, context, lambda: self.session.push(update))

    def EndEpoch(self, request: pb.Caller, context: grpc.ServicerContext) -> pb.ModelReply:  # noqa: N802
        """A worker reached the epoch barrier and waits for the next epoch's model."""
        return self._call(request, context, lambda: self.session.end_epoch(request.worker))

    # ----- one call
    def _call(self, caller: pb.Caller, context: grpc.ServicerContext,
              step: Callable[[], list[Release]]) -> pb.ModelReply:
        self._authenticate(context)
        try:
            mailbox = self._deliver(caller, step)
        except StaleAttemptError as exc:
            context.abort(grpc.StatusCode.ABORTED, str(exc))
        except Exception as exc:  # noqa: BLE001 - the run fails; the driver raises it
            self._fail(exc)
            context.abort(grpc.StatusCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        try:
            release = mailbox.get(timeout=self.timeout)
        except queue.Empty:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED,
                          f"worker {caller.worker} got no model within {self.timeout:.0f} s")
        if release is None:
            context.abort(grpc.StatusCode.ABORTED,
                          f"stage attempt {caller.attempt} was replaced by a newer attempt")
        model, version, epoch = release
        return pb.ModelReply(model=[to_proto(a) for a in model], version=version, epoch=epoch)

    def _deliver(self, caller: pb.Caller,
                 step: Callable[[], list[Release]]) -> queue.Queue[Any]:
        """Run ``step`` in the session; post the releases; return the caller's mailbox."""
        with self._lock:
            if self.failure is not None:
                raise StaleAttemptError(f"the run failed already: {self.failure}")
            if self._attempt is None:
                self._attempt = caller.attempt
            elif caller.attempt < self._attempt:
                raise StaleAttemptError(
                    f"stage attempt {caller.attempt} was replaced by attempt {self._attempt}"
                )
            elif caller.attempt > self._attempt:
                self._restart(caller.attempt)
            server = self.session.server
            epoch_before = server.epoch
            releases = step()
            for release in releases:
                self._mailboxes[release.worker].put((release.model, release.version,
                                                     server.epoch))
            if server.epoch != epoch_before:  # an epoch ended: the new restart point
                self._snapshot = self._server_state()
            return self._mailboxes[caller.worker]

    def _restart(self, attempt: int) -> None:
        """Drop what the replaced attempt did in the unfinished epoch."""
        _LOGGER.warning("paramserv REMOTE_SPARK: stage attempt %d replaces attempt %d; resuming "
                        "at epoch %d", attempt, self._attempt, self._snapshot["epoch"] + 1)
        for mailbox in self._mailboxes.values():
            mailbox.put(None)  # wakes the replaced attempt's waiting calls
        vars(self.session.server).update(copy.deepcopy(self._snapshot))
        self._attempt = attempt
        self._mailboxes = self._new_mailboxes()

    def _server_state(self) -> dict[str, Any]:
        return copy.deepcopy({name: value for name, value in vars(self.session.server).items()
                              if name not in _SERVER_STATE_SHARED})

    def _new_mailboxes(self) -> dict[int, queue.Queue[Any]]:
        return {task.worker: queue.Queue() for task in self.session.tasks}

    def close(self) -> None:
        """Wake every waiting call (the job is over): their threads must not outlive the run."""
        with self._lock:
            for mailbox in self._mailboxes.values():
                mailbox.put(None)

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self.failure is None:
                self.failure = exc
                for mailbox in self._mailboxes.values():
                    mailbox.put(None)
        self._on_failure(exc)

    def _authenticate(self, context: grpc.ServicerContext) -> None:
        sent = dict(context.invocation_metadata()).get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "wrong or missing job token")


def create_server(service: ParameterService, host: str, workers: int) -> tuple[grpc.Server, int]:
    """A started gRPC server for ``service`` on ``host`` (a free port); returns it and the port.

    ``workers`` threads: every task may wait in a call at once (BSP waits at each barrier).
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers + 2,
                                                    thread_name_prefix="fedla-ps"),
                         options=[("grpc.max_receive_message_length", 512 * 1024**2),
                                  ("grpc.max_send_message_length", 512 * 1024**2)])
    pb_grpc.add_ParameterServerServicer_to_server(service, server)
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    return server, port


def new_token() -> str:
    """A fresh per-job token."""
    return secrets.token_urlsafe(32)
