"""LOCAL executor: ``k`` worker processes on this machine, the parameter server in this process.

How the data is shared
    Features and labels are copied once per run into POSIX shared memory
    (``multiprocessing.shared_memory``); every worker maps the same pages read-only, so nothing is
    copied per worker or per epoch. A batch is a view when the worker's rows are contiguous
    (``DISJOINT_CONTIGUOUS``) and a gather of just the batch's rows otherwise. Models and updates
    travel over one pipe per worker (pickled arrays).

How workers start
    With the ``forkserver`` start method (``spawn`` where there is none): the fork server imports
    numpy, fedla and the modules of ``upd`` and ``agg`` once, so a worker starts in milliseconds,
    and no thread of this process (gRPC channels, tqdm, BLAS pools) is ever forked. Hence ``upd``
    and ``agg`` must be importable: ``module:function`` references or module-level functions (not
    ones defined in an interactive session). Unlike plain spawn-style multiprocessing, workers do
    not re-run the main script (unless ``upd`` or ``agg`` live in it), so scripts without an
    ``if __name__ == "__main__":`` guard and code read from stdin work. Each worker limits its
    BLAS pool to ``cores // k`` threads when threadpoolctl is installed: small matrix products
    get far slower when several processes' BLAS pools compete for the cores.

How failures surface
    An exception in a worker comes back with its traceback and is raised here as
    ``WorkerFailedError`` (the original exception is its ``__cause__``); a worker that dies (killed,
    segfault, ``os._exit``) is noticed through its process sentinel. Either way all workers are
    stopped and the shared memory is released before the error propagates.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from fedla.paramserv.arguments import import_function
from fedla.paramserv.executor import ParamservExecutor
from fedla.runtime.paramserv.errors import RemoteTraceback, WorkerFailedError
from fedla.runtime.paramserv.messages import Release, Update
from fedla.runtime.paramserv.session import TrainingSession
from fedla.runtime.paramserv.worker import WorkerTask, local_compute, run_worker

_LOGGER = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 5.0
PRELOAD = ["numpy", "fedla.paramserv.local_executor"]


@dataclass(frozen=True)
class SharedArray:
    """How a worker finds an array in shared memory."""

    name: str
    shape: tuple[int, ...]
    dtype: str


def _share(array: np.ndarray) -> tuple[SharedMemory, SharedArray]:
    """Copy ``array`` into a new shared-memory block."""
    shm = SharedMemory(create=True, size=max(array.nbytes, 1))
    np.ndarray(array.shape, array.dtype, buffer=shm.buf)[...] = array
    return shm, SharedArray(shm.name, array.shape, array.dtype.str)


def _attach(spec: SharedArray) -> tuple[SharedMemory, np.ndarray]:
    """Map a shared block as a read-only array (not tracked: the coordinator owns it)."""
    try:
        shm = SharedMemory(name=spec.name, track=False)  # type: ignore[call-arg]  # Python >= 3.13
    except TypeError:
        shm = SharedMemory(name=spec.name)
    array = np.ndarray(spec.shape, np.dtype(spec.dtype), buffer=shm.buf)
    array.flags.writeable = False
    return shm, array


def _context(modules: list[str]) -> Any:
    """The multiprocessing context workers start in (see the module docstring).

    The fork server starts with the first run and preloads numpy, fedla and that run's
    ``modules`` (those of ``upd`` and ``agg``).
    """
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD + [m for m in modules if m != "__main__"])
        return ctx
    return mp.get_context("spawn")


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start processes that do not re-run the main script (``upd``/``agg`` are not in it).

    spawn-style start methods make every new process import ``__main__`` again, found through its
    ``__spec__`` or ``__file__``: slow when the script loads data at top level, fatal when it has
    no ``if __name__ == "__main__":`` guard or is read from stdin. Hiding both while a process
    starts makes it skip that import, as a forked process would.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, Any] = {
        name: main.__dict__[name] for name in ("__spec__", "__file__") if name in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class _PipeChannel:
    """A worker's ``ServerChannel`` over its pipe."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def pull(self) -> tuple[list[Any], int]:
        self._conn.send(("pull",))
        return self._receive()

    def push(self, update: Update) -> tuple[list[Any], int]:
        self._conn.send(("push", update))
        return self._receive()

    def end_epoch(self) -> tuple[list[Any], int]:
        self._conn.send(("end_epoch",))
        return self._receive()

    def _receive(self) -> tuple[list[Any], int]:
        _, model, version = self._conn.recv()
        return model, version


def _limit_blas_threads(threads: int) -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(threads)


def _worker_main(
    conn: Connection, task: WorkerTask, upd_ref: str, agg_ref: str,
    hyperparams: dict[str, Any], features: SharedArray, labels: SharedArray, blas_threads: int,
    prox_mu: float,
) -> None:
    """Entry point of a worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the coordinator's to handle
    try:
        _limit_blas_threads(blas_threads)
        shm_x, X = _attach(features)  # keep the blocks referenced while X and y are in use
        shm_y, y = _attach(labels)
        upd, agg = import_function("upd", upd_ref), import_function("agg", agg_ref)
        run_worker(_PipeChannel(conn), task,
                   local_compute(task, upd, agg, hyperparams, X, y, prox_mu))
        conn.send(("done",))
    except BaseException as exc:  # report everything, then exit
        text = traceback.format_exc()
        try:
            pickle.dumps(exc)
        except Exception:
            exc = RuntimeError(f"{type(exc).__name__}: {exc}")
        try:
            conn.send(("error", exc, text))
        except (OSError, ValueError):
            pass
    # the process exits with os._exit: shared memory is unmapped by the OS, never unlinked here


class LocalExecutor(ParamservExecutor):
    """LOCAL: one worker process per task on this machine (see the module docstring)."""

    mode = "LOCAL"

    def run(self, session: TrainingSession, features: np.ndarray, labels: np.ndarray,
            upd_ref: str, agg_ref: str, hyperparams: dict[str, Any]) -> None:
        """Train ``session`` with one process per task until every epoch is done."""
        _run_processes(session, features, labels, upd_ref, agg_ref, hyperparams)


def _run_processes(
    session: TrainingSession, features: np.ndarray, labels: np.ndarray, upd_ref: str,
    agg_ref: str, hyperparams: dict[str, Any],
) -> None:
    ctx = _context([ref.partition(":")[0] for ref in (upd_ref, agg_ref)])
    blocks: list[SharedMemory] = []
    processes: list[Any] = []
    conns: list[Connection] = []
    try:
        shm_x, spec_x = _share(features)
        blocks.append(shm_x)
        shm_y, spec_y = _share(labels)
        blocks.append(shm_y)
        blas_threads = max(1, (os.cpu_count() or 1) // len(session.tasks))
        need_main = any(ref.startswith("__main__:") for ref in (upd_ref, agg_ref))
        for task in session.tasks:
            parent, child = ctx.Pipe(duplex=True)
            process = ctx.Process(
                target=_worker_main, name=f"fedla-paramserv-worker-{task.worker}", daemon=True,
                args=(child, task, upd_ref, agg_ref, hyperparams, spec_x, spec_y, blas_threads,
                      session.plan.prox_mu),
            )
            with contextlib.nullcontext() if need_main else _main_module_hidden():
                process.start()
            child.close()
            processes.append(process)
            conns.append(parent)
        _serve(session, processes, conns)
        for process in processes:
            process.join(STOP_GRACE_SECONDS)
    finally:
        _stop(processes)
        for conn in conns:
            conn.close()
        for block in blocks:
            block.close()
            block.unlink()


def _serve(session: TrainingSession, processes: list[Any], conns: list[Connection]) -> None:
    """The coordinator's message loop: one message at a time into the session."""
    finished = [False] * len(conns)
    by_conn = {id(conn): w for w, conn in enumerate(conns)}
    by_sentinel = {process.sentinel: w for w, process in enumerate(processes)}
    while not all(finished):
        waiting: list[Any] = [conns[w] for w in range(len(conns)) if not finished[w]]
        waiting += [processes[w].sentinel for w in range(len(conns)) if not finished[w]]
        for ready in wait(waiting):
            if isinstance(ready, int):
                worker = by_sentinel[ready]
                if not finished[worker] and not conns[worker].poll():
                    raise _died(session, processes, worker)
                continue
            conn: Connection = ready  # type: ignore[assignment]
            worker = by_conn[id(conn)]
            while not finished[worker] and conn.poll():
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    raise _died(session, processes, worker) from None
                finished[worker] = _handle(session, processes, conns, worker, message)


def _handle(
    session: TrainingSession, processes: list[Any], conns: list[Connection], worker: int,
    message: tuple[Any, ...],
) -> bool:
    """Run one message through the session; send the releases. True when the worker is done."""
    kind = message[0]
    releases: list[Release]
    if kind == "pull":
        releases = session.pull(worker)
    elif kind == "push":
        releases = session.push(message[1])
    elif kind == "end_epoch":
        releases = session.end_epoch(worker)
    elif kind == "done":
        return True
    elif kind == "error":
        _, exc, text = message
        exc.__cause__ = RemoteTraceback(text)
        raise WorkerFailedError(
            f"paramserv worker {worker} (pid {processes[worker].pid}) failed in epoch "
            f"{session.server.epoch + 1}: {type(exc).__name__}: {exc}"
        ) from exc
    else:
        raise WorkerFailedError(f"paramserv worker {worker} sent an unknown message {kind!r}")
    payloads: dict[int, bytes] = {}  # a model released to several workers is pickled once
    for release in releases:
        payload = payloads.get(release.version)
        if payload is None:
            payload = bytes(ForkingPickler.dumps(("model", release.model, release.version)))
            payloads[release.version] = payload
        try:
            conns[release.worker].send_bytes(payload)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise _died(session, processes, release.worker) from None
    return False


def _died(session: TrainingSession, processes: list[Any], worker: int) -> WorkerFailedError:
    process = processes[worker]
    process.join(1.0)
    code = process.exitcode
    how = f"exit code {code}"
    if code is not None and code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    hint = "A worker killed by SIGKILL is often out of memory: lower batchsize or k."
    if any(ref.startswith("__main__:") for ref in (session.plan.upd, session.plan.agg)):
        hint = ("upd/agg are defined in __main__, which each worker must import again: move them "
                "to a module (a notebook or a script read from stdin cannot be imported).")
    return WorkerFailedError(
        f"paramserv worker {worker} (pid {process.pid}) died ({how}) in epoch "
        f"{session.server.epoch + 1} without reporting an error; the other workers were stopped. "
        f"{hint}"
    )


def _stop(processes: list[Any]) -> None:
    """Terminate workers still alive (SIGTERM, then SIGKILL after a grace period)."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(STOP_GRACE_SECONDS)
        if process.is_alive():
            _LOGGER.warning("paramserv worker pid %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.join()
