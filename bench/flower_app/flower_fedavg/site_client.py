"""The NumPyClient of one site: FedAvg's local training on the site's rows, no evaluation."""

from __future__ import annotations

import time

import numpy as np
from flwr.client import NumPyClient

from flower_fedavg.task import train_round


class SiteClient(NumPyClient):
    """Site ``site`` holding features ``X`` and one-hot labels ``Y``."""

    def __init__(self, site: int, X: np.ndarray, Y: np.ndarray) -> None:
        self.site, self.X, self.Y = site, X, Y

    def fit(self, parameters: list[np.ndarray], config: dict) -> tuple[list, int, dict]:
        start = time.perf_counter()
        local, samples = train_round(parameters, self.X, self.Y, self.site,
                                     int(config["server_round"]))
        return local, samples, {"train_seconds": time.perf_counter() - start}
