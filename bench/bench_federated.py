"""FedAvg per round: fedla FEDERATED vs Flower's deployment runtime and its older gRPC path.

    python bench/bench_federated.py              # 30,000 x 50 over 3 sites, 10 rounds, 3 passes
    python bench/bench_federated.py --quick      # 3,000 rows, 3 rounds, a 2 MB model in (b)

Two cases, each FedAvg over 3 sites on loopback (127.0.0.1), 1 local epoch per round in batches
of 128, SGD lr 0.1, all 3 sites every round, no evaluation rounds:

- (a) logistic regression: ``ffn.init(50, 2, hidden=())`` on ``make_classification(30000, 50,
  n_informative=20, random_state=0)`` with one-hot labels, split contiguously into 3 sites;
- (b) the same data with ``ffn.init(50, 2, hidden=(H,))``, H chosen so that the whole model list
  (parameters, optimizer slots, step counter: all of it moves every round) is ~20 MB.

Three paths train the same model with the same local code (``local_steps`` with
``ffn.gradients``/``ffn.aggregate``, fedla's seeds per site and round):

- fedla: ``fl.paramserv(..., freq="EPOCH")`` on ``Context(local_workers=3)`` with scattered data
  (FEDERATED mode); seconds and bytes per round from ``model.history``;
- Flower, deployment runtime: ``flower-superlink``, 3 ``flower-supernode`` (each with its site's
  ``.npz`` in its node config) and ``flwr run bench/flower_app``;
- Flower, older gRPC path: ``flwr.server.start_server`` and 3 ``flwr.client.start_client``
  processes (deprecated since flwr 1.13, still shipped).

Both Flower paths run a NumPyClient and FedAvg weighted by samples (``bench/flower_app``); the
server side records each round: seconds per round are the time between round starts (taken once
the round's clients are sampled; the last round runs to the end of its aggregation), bytes per
round are the serialized parameters (numpy ``.npy`` bytes) sent to the 3 clients plus those they
return, without gRPC/protobuf framing; the clients also report their local training seconds
(fedla's sites do too, in ``history.round_compute_seconds``). The slowest site's training is
the share of a round that no runtime can save; the "overhead" column is the rest (the median of
round seconds minus the slowest site's training), and its ratio compares what the runtimes
themselves cost. Final accuracy is training accuracy on all rows; a note gives each final
model's largest difference to the gRPC path's, and one the floor this machine sets: the sites'
local training alone, run one after another, divided by the cores the sites share. Each Flower
site's BLAS gets ``cores // 3`` threads, as each of fedla's local workers does. The ratio column
divides a path's median seconds per round by the faster Flower path's. fedla counts raw array
bytes each way; Flower's count adds a 128-byte ``.npy`` header per array.

The "CPU s/round" column is the whole machine's busy CPU time (``/proc/stat``, every process:
servers, clients, sites) over a path's rounds, divided by the rounds; over the round seconds it
says how many cores the path kept busy. Where that nears the core count, a path's rounds are
bound by CPU, and the ratio of two paths' rounds can be no better than the ratio of their CPU.

Flower pins ``protobuf<7`` and fedla needs ``>=7.35``: install Flower with
``pip install flwr==1.42.0 && pip install "protobuf>=7.35.1"`` (flwr 1.42 ran so here).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FLOWER_APP = Path(__file__).resolve().parent / "flower_app"
N_SITES = 3
N_FEATURES, N_CLASSES = 50, 2
BIN = Path(sys.executable).parent
# as fedla's local workers do: each of the 3 sites' BLAS gets its share of this machine's cores
SITE_BLAS_THREADS = {variable: str(max(1, (os.cpu_count() or 1) // N_SITES))
                     for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@dataclass(frozen=True)
class Case:
    """One benchmark case: its name and the hidden units of its model (0: logistic regression)."""

    name: str
    hidden: int


@dataclass(frozen=True)
class Measured:
    """What one path measured: seconds and bytes (up + down) per round, the final model.

    ``train_seconds``: per round, the local training time of the slowest site. ``window``: the
    ``time.perf_counter`` interval of the rounds (one clock for every process on Linux).
    ``cpu_per_round``: the machine's busy CPU seconds in that window over the rounds.
    """

    round_seconds: list[float]
    round_bytes: list[int]
    model: list[np.ndarray]
    train_seconds: list[float]
    window: tuple[float, float]
    cpu_per_round: float = float("nan")


class BusyCpu:
    """Samples the machine's busy CPU time (``/proc/stat``, all cores) while it runs.

    ``seconds(start, stop)``: busy CPU seconds between two ``time.perf_counter`` instants,
    interpolated between samples. The kernel counts in ticks of 1/``SC_CLK_TCK`` s per core, so
    a window of a few hundred ms is good to a few percent.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self._interval = interval
        self._tick = 1.0 / os.sysconf("SC_CLK_TCK")
        self._times: list[float] = []
        self._busy: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> BusyCpu:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            with open("/proc/stat") as stat:
                fields = [int(v) for v in stat.readline().split()[1:]]
            # user nice system idle iowait irq softirq steal: idle and iowait are not busy
            self._times.append(time.perf_counter())
            self._busy.append((sum(fields[:8]) - fields[3] - fields[4]) * self._tick)
            if self._stop.wait(self._interval):
                return

    def seconds(self, start: float, stop: float) -> float:
        return float(np.diff(np.interp([start, stop], self._times, self._busy))[0])


def make_sites(rows: int, directory: Path) -> tuple[np.ndarray, np.ndarray, list[Path]]:
    """The features, one-hot labels and one ``.npz`` per site (contiguous, equal parts)."""
    from sklearn.datasets import make_classification

    from fedla.algorithms.nn.labels import one_hot

    X, y = make_classification(rows, N_FEATURES, n_informative=20, random_state=0)
    Y = one_hot(y, N_CLASSES)
    files = []
    for site, rows_of_site in enumerate(np.array_split(np.arange(rows), N_SITES)):
        files.append(directory / f"site{site}.npz")
        np.savez(files[-1], X=X[rows_of_site], Y=Y[rows_of_site])
    return X, Y, files


def hidden_for(megabytes: float) -> int:
    """Hidden units H making ``ffn.init(50, 2, hidden=(H,))``'s model list ~``megabytes`` MB."""
    # (D H + H + 2 H + 2) parameters, twice that in optimizer slots, one step counter; float64
    per_unit = 3 * (N_FEATURES + 1 + N_CLASSES) * 8
    return max(1, round(megabytes * 1e6 / per_unit))


def model_nbytes(model: list[np.ndarray]) -> int:
    return sum(array.nbytes for array in model)


def accuracy(model: list[np.ndarray], X: np.ndarray, Y: np.ndarray) -> float:
    from fedla.algorithms.nn import ffn

    return float(np.mean(ffn.predict(model, X).argmax(axis=1) == Y.argmax(axis=1)))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f} s")


@contextmanager
def processes(workdir: Path, env: dict[str, str]):
    """Start commands as their own process groups (logs in ``workdir``); stop them all at exit.

    Yields ``start(name, command) -> Popen``. The group signal also reaches the children that
    Flower's SuperLink and SuperNodes leave in their group; their SuperExec starts a session of
    its own and exits by itself once its parent is gone.
    """
    started: list[subprocess.Popen] = []

    def start(name: str, command: list[str]) -> subprocess.Popen:
        log = open(workdir / f"{name}.log", "wb")  # the child keeps its own copy of the fd
        started.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                        cwd=workdir, start_new_session=True))
        log.close()
        return started[-1]

    try:
        yield start
    finally:
        for process in reversed(started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(started):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def read_records(result_file: Path, workdir: Path) -> Measured:
    """The round records and final model a ``RecordedFedAvg`` saved."""
    if not result_file.exists():
        logs = "\n".join(f"--- {log.name}:\n{log.read_text(errors='replace')[-1500:]}"
                         for log in sorted(workdir.glob("*.log")))
        raise RuntimeError(f"the Flower server wrote no {result_file.name}; logs:\n{logs}")
    with np.load(result_file) as records:
        starts, ends = records["starts"], records["ends"]
        seconds = [*np.diff(starts), ends[-1] - starts[-1]]
        nbytes = records["bytes_down"] + records["bytes_up"]
        model = [records[f"model_{i}"]
                 for i in range(sum(name.startswith("model_") for name in records.files))]
        train_seconds = [float(s) for s in records["train_seconds"]]
        window = (float(starts[0]), float(ends[-1]))
    return Measured([float(s) for s in seconds], [int(b) for b in nbytes], model, train_seconds,
                    window)


def run_flower_grpc(case: Case, sites: list[Path], rounds: int, workdir: Path) -> Measured:
    """Flower's ``start_server`` + 3 ``start_client`` processes."""
    env = {**SITE_BLAS_THREADS, **os.environ, "PYTHONPATH": str(FLOWER_APP)}
    address = f"127.0.0.1:{free_port()}"
    result_file = workdir / "result.npz"
    legacy = [sys.executable, "-m", "flower_fedavg.legacy"]
    with processes(workdir, env) as start:
        server = start("server", [*legacy, "server", "--address", address, "--rounds",
                                  str(rounds), "--hidden", str(case.hidden), "--n-features",
                                  str(N_FEATURES), "--n-classes", str(N_CLASSES),
                                  "--result-file", str(result_file)])
        wait_for_port(int(address.rsplit(":", 1)[1]))
        for site, data in enumerate(sites):
            start(f"client{site}", [*legacy, "client", "--address", address, "--site",
                                    str(site), "--data-file", str(data)])
        server.wait(timeout=300 + 120 * rounds)
    return read_records(result_file, workdir)


def run_flower_deployment(case: Case, sites: list[Path], rounds: int, workdir: Path) -> Measured:
    """``flower-superlink``, 3 ``flower-supernode`` and ``flwr run bench/flower_app``."""
    home = workdir / "flwr_home"
    home.mkdir()
    link_port = free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
        f'address = "127.0.0.1:{link_port}"\ninsecure = true\n')
    # Flower's processes start their own helpers (flower-superexec, flwr-serverapp) by name
    env = {**SITE_BLAS_THREADS, **os.environ, "FLWR_HOME": str(home),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result_file = workdir / "result.npz"
    run_config = (f"num-server-rounds={rounds} hidden={case.hidden} n-features={N_FEATURES} "
                  f'n-classes={N_CLASSES} result-file="{result_file}"')
    with processes(workdir, env) as start:
        start("superlink", [str(BIN / "flower-superlink"), "--insecure", "--host", "127.0.0.1",
                            "--port", str(link_port), "--disable-runtime-dependency-installation"])
        wait_for_port(link_port)
        for site, data in enumerate(sites):
            start(f"supernode{site}", [str(BIN / "flower-supernode"), "--insecure", "--superlink",
                                       f"127.0.0.1:{link_port}", "--port", str(free_port()),
                                       "--node-config", f'site={site} data-file="{data}"'])
        run = start("flwr_run", [str(BIN / "flwr"), "run", str(FLOWER_APP), "bench",
                                 "--run-config", run_config, "--stream"])
        run.wait(timeout=300 + 120 * rounds)
    return read_records(result_file, workdir)


def run_fedla(case: Case, X: np.ndarray, Y: np.ndarray, rounds: int) -> Measured:
    """fedla's FEDERATED paramserv on 3 loopback workers holding the scattered sites."""
    import fedla as fl
    from fedla.algorithms.nn import ffn

    with fl.Context(local_workers=N_SITES) as ctx:
        X_fed = ctx.scatter(X, parts=N_SITES)
        Y_fed = ctx.scatter(Y, like=X_fed)
        hidden = (case.hidden,) if case.hidden else ()
        model = fl.paramserv(ffn.init(N_FEATURES, N_CLASSES, hidden=hidden, seed=0), X_fed,
                             Y_fed, upd=ffn.UPD, agg=ffn.AGG, utype="BSP", freq="EPOCH",
                             epochs=rounds, batchsize=128,
                             hyperparams={"optimizer": "sgd", "lr": 0.1}, seed=0,
                             progress=False)
        ended = time.perf_counter()
        h = model.history
        round_bytes = [int(up + down) for up, down in zip(h.bytes_up, h.bytes_down)]
        return Measured([float(s) for s in h.round_seconds], round_bytes, list(model),
                        [float(s) for s in h.round_compute_seconds],
                        (ended - sum(h.round_seconds), ended))


FLOWER_PATHS = {"Flower deployment": run_flower_deployment,
                "Flower gRPC start_*": run_flower_grpc}
FEDLA = "fedla FEDERATED"


def measure(case: Case, X: np.ndarray, Y: np.ndarray, sites: list[Path], rounds: int,
            tmp: Path, passes: int) -> tuple[dict[str, Measured], list[str]]:
    """Every path on ``case`` in ``passes`` interleaved passes, and notes on the case.

    This machine's speed drifts by up to ~2x within minutes, so one path run after another
    compares two speeds. Each pass runs the paths back to back (after the first pass only the
    Flower paths within 2x of the faster one: the deployment runtime is ~200x slower in (a) and
    costs minutes per pass in (b)); a path's rounds from every pass are pooled, and a note gives
    each pass's own ratio.
    """
    from fedla.algorithms.nn import ffn

    size = model_nbytes(ffn.init(N_FEATURES, N_CLASSES, (case.hidden,) if case.hidden else (),
                                 seed=0))
    notes = [f"{case.name}: hidden={case.hidden or '()'}, model list {size / 1e6:.3f} MB"]
    paths = [*FLOWER_PATHS, FEDLA]
    runs: list[dict[str, Measured]] = []
    floors: list[tuple[float, float]] = []
    for number in range(passes):
        measured: dict[str, Measured] = {}
        for name in paths:
            with BusyCpu() as cpu:
                if name == FEDLA:
                    result = run_fedla(case, X, Y, rounds)
                else:
                    result = FLOWER_PATHS[name](case, sites, rounds,
                                                Path(tempfile.mkdtemp(prefix="run_", dir=tmp)))
            measured[name] = dataclasses.replace(
                result, cpu_per_round=cpu.seconds(*result.window) / len(result.round_seconds))
        runs.append(measured)
        floors.append(training_floor(case, sites))
        if number == 0:
            fastest = min(np.median(measured[name].round_seconds) for name in FLOWER_PATHS)
            paths = [name for name in FLOWER_PATHS
                     if np.median(measured[name].round_seconds) <= 2 * fastest] + [FEDLA]
    pooled = {name: pool([run[name] for run in runs if name in run])
              for name in [*FLOWER_PATHS, FEDLA]}
    reference = "Flower gRPC start_*"
    largest = {name: max(max_difference(run[name].model, run[reference].model)
                         for run in runs if name in run)
               for name in pooled if name != reference}
    differences = ", ".join(f"{name} {value:.1e}" for name, value in largest.items())
    notes.append(f"{case.name}: final models, max |difference| to Flower gRPC's of the same "
                 f"pass: {differences}")
    training = ", ".join(f"{name} {np.median(result.train_seconds):.4f}"
                         for name, result in pooled.items())
    notes.append(f"{case.name}: median s/round of local training (slowest site): {training}")
    cores = min(N_SITES, os.cpu_count() or 1)
    for number, (run, (alone, floor)) in enumerate(zip(runs, floors), start=1):
        faster = min(np.median(run[name].round_seconds) for name in FLOWER_PATHS if name in run)
        ratio = np.median(run[FEDLA].round_seconds) / faster
        notes.append(
            f"{case.name}: pass {number}: fedla {ratio:.3f}x "
            f"the faster Flower path; the 3 sites' local training alone, one after another in "
            f"this process on 1 BLAS thread, took {alone:.4f} s, so on {cores} cores no round can "
            f"be shorter than {floor:.4f} s, {floor / faster:.3f}x the faster Flower path's")
    return pooled, notes


def pool(results: list[Measured]) -> Measured:
    """One path's passes as one: every round of every pass; the last pass's model."""
    rounds = [len(result.round_seconds) for result in results]
    return Measured(
        [s for result in results for s in result.round_seconds],
        [b for result in results for b in result.round_bytes],
        results[-1].model,
        [s for result in results for s in result.train_seconds],
        results[-1].window,
        float(np.average([result.cpu_per_round for result in results], weights=rounds)),
    )


def training_floor(case: Case, sites: list[Path], repeats: int = 3) -> tuple[float, float]:
    """The sites' local training run one after another here, and that over the usable cores.

    Each site runs the Flower clients' own ``train_round`` (best of ``repeats``) with BLAS on one
    thread, as each site has it; however a runtime schedules the 3 sites, a round needs this
    much work, so (work) / (cores the 3 sites can use) is a lower bound on its seconds.
    """
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(FLOWER_APP))
    from flower_fedavg.task import init_model, load_site, train_round

    model = init_model(N_FEATURES, N_CLASSES, case.hidden)
    alone = 0.0
    with threadpool_limits(1):
        for site, path in enumerate(sites):
            X, Y = load_site(path)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                train_round(model, X, Y, site, 1)
                times.append(time.perf_counter() - start)
            alone += min(times)
    return alone, alone / min(N_SITES, os.cpu_count() or 1)


def max_difference(model: list[np.ndarray], reference: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(a - b))) for a, b in zip(model, reference))


def print_table(case_results: list[tuple[Case, dict[str, Measured]]], X: np.ndarray,
                Y: np.ndarray) -> None:
    header = (f"{'case':<12}{'path':<22}{'rounds':>7}{'median s/round':>16}"
              f"{'overhead s/round':>18}{'CPU s/round':>13}{'mean bytes/round':>18}"
              f"{'final acc':>11}{'ratio':>9}{'overhead ratio':>16}{'CPU ratio':>11}")
    print(header)
    print("-" * len(header))
    for case, measured in case_results:
        fastest = min(FLOWER_PATHS, key=lambda name: np.median(measured[name].round_seconds))
        reference = measured[fastest]
        for name, result in measured.items():
            median = float(np.median(result.round_seconds))
            print(f"{case.name:<12}{name:<22}{len(result.round_seconds):>7}{median:>16.4f}"
                  f"{overhead(result):>18.4f}{result.cpu_per_round:>13.4f}"
                  f"{np.mean(result.round_bytes):>18,.0f}"
                  f"{accuracy(result.model, X, Y):>11.4f}"
                  f"{median / np.median(reference.round_seconds):>9.3f}"
                  f"{overhead(result) / overhead(reference):>16.3f}"
                  f"{result.cpu_per_round / reference.cpu_per_round:>11.3f}")


def overhead(result: Measured) -> float:
    """Median over rounds of the round's seconds minus its slowest site's local training."""
    return float(np.median(np.subtract(result.round_seconds, result.train_seconds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, help="FedAvg rounds (default 10; 3 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 3,000 rows, 3 rounds, a 2 MB model in case (b)")
    parser.add_argument("--megabytes", type=float,
                        help="model size of case (b) in MB (default 20; 2 with --quick)")
    parser.add_argument("--passes", type=int, default=3,
                        help="interleaved passes over the paths, pooled (default 3)")
    args = parser.parse_args()
    rows = 3_000 if args.quick else 30_000
    rounds = args.rounds or (3 if args.quick else 10)
    megabytes = args.megabytes or (2.0 if args.quick else 20.0)

    from flwr import __version__ as flwr_version

    cases = [Case("(a) logreg", 0), Case(f"(b) {megabytes:g} MB", hidden_for(megabytes))]
    case_results, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench_federated_") as tmp:
        X, Y, sites = make_sites(rows, Path(tmp))
        for case in cases:
            measured, case_notes = measure(case, X, Y, sites, rounds, Path(tmp), args.passes)
            case_results.append((case, measured))
            notes.extend(case_notes)

    print(f"FedAvg, {rows:,} x {N_FEATURES} over {N_SITES} sites, {rounds} rounds x "
          f"{args.passes} passes, 1 local epoch, "
          f"batch 128, SGD lr 0.1; loopback; flwr {flwr_version}; {os.cpu_count()} cores")
    print_table(case_results, X, Y)
    for note in notes:
        print(note)
    print("ratio: median s/round over the faster Flower path's; target for fedla: <= 0.5")
    print("overhead: s/round minus the slowest site's local training that round (what moving "
          "and combining cost); overhead ratio: over the faster Flower path's")
    print(f"CPU: busy CPU seconds per round of the whole machine ({os.cpu_count()} cores), "
          "every process; CPU ratio: over the faster Flower path's")


if __name__ == "__main__":
    main()
