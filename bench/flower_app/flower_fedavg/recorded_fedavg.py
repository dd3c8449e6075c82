"""Flower's FedAvg that records, per round, its start and end times and the parameter bytes moved.

A round starts when the server configures it (``configure_fit``) and ends when its results are
aggregated (``aggregate_fit``); the bench takes the time between round starts (the last round: to
its end). Each round also keeps the local training seconds of its slowest client (the part of a
round no runtime can save). Bytes are the serialized parameters (``Parameters.tensors``, numpy's
``.npy`` bytes of each array) sent down to every client of the round plus those returned up; gRPC
and protobuf framing are not counted. After the last round everything is saved to
``result_file`` (``.npz``), with the final model, for the bench to read.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from flwr.common import Parameters, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg

N_SITES = 3


def parameter_bytes(parameters: Parameters) -> int:
    """Bytes of the serialized arrays of ``parameters``."""
    return sum(len(tensor) for tensor in parameters.tensors)


class RecordedFedAvg(FedAvg):
    """FedAvg over all ``N_SITES`` clients every round, weighted by samples, no evaluation."""

    def __init__(self, model: list[np.ndarray], rounds: int, result_file: str | Path) -> None:
        super().__init__(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=N_SITES,
                         min_evaluate_clients=0, min_available_clients=N_SITES,
                         on_fit_config_fn=lambda server_round: {"server_round": server_round},
                         accept_failures=False,
                         initial_parameters=ndarrays_to_parameters(model))
        self.rounds, self.result_file = rounds, Path(result_file)
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.bytes_down: list[int] = []
        self.bytes_up: list[int] = []
        self.train_seconds: list[float] = []

    def configure_fit(self, server_round, parameters, client_manager):
        instructions = super().configure_fit(server_round, parameters, client_manager)
        self.starts.append(time.perf_counter())  # after sampling, which waits for the clients
        self.bytes_down.append(sum(parameter_bytes(fit_ins.parameters)
                                   for _, fit_ins in instructions))
        return instructions

    def aggregate_fit(self, server_round, results, failures):
        if failures:
            raise RuntimeError(f"round {server_round}: {len(failures)} of {N_SITES} clients "
                               f"failed: {failures!r}")
        self.bytes_up.append(sum(parameter_bytes(fit_res.parameters) for _, fit_res in results))
        self.train_seconds.append(max(float(fit_res.metrics["train_seconds"])
                                      for _, fit_res in results))
        aggregated, metrics = super().aggregate_fit(server_round, results, failures)
        self.ends.append(time.perf_counter())
        if server_round == self.rounds:
            self.save(parameters_to_ndarrays(aggregated))
        return aggregated, metrics

    def save(self, model: list[np.ndarray]) -> None:
        """Write the round records and the final ``model`` to ``result_file``."""
        np.savez(self.result_file, starts=np.array(self.starts), ends=np.array(self.ends),
                 bytes_down=np.array(self.bytes_down), bytes_up=np.array(self.bytes_up),
                 train_seconds=np.array(self.train_seconds),
                 **{f"model_{i}": array for i, array in enumerate(model)})
