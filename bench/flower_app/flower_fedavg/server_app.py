"""The ServerApp of Flower's deployment runtime: ``RecordedFedAvg`` for ``num-server-rounds``.

Run config: ``num-server-rounds``, ``hidden`` (0: logistic regression), ``n-features``,
``n-classes`` and ``result-file`` (where the round records and the final model go).
"""

from __future__ import annotations

from flwr.common import Context
from flwr.server import ServerApp, ServerAppComponents, ServerConfig

from flower_fedavg.recorded_fedavg import RecordedFedAvg
from flower_fedavg.task import init_model


def server_fn(context: Context) -> ServerAppComponents:
    config = context.run_config
    rounds = int(config["num-server-rounds"])
    model = init_model(int(config["n-features"]), int(config["n-classes"]), int(config["hidden"]))
    strategy = RecordedFedAvg(model, rounds, str(config["result-file"]))
    return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))


app = ServerApp(server_fn=server_fn)
