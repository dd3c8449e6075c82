"""Flower's older gRPC path: ``start_server`` and ``start_client`` (deprecated since flwr 1.13).

    python -m flower_fedavg.legacy server --address 127.0.0.1:PORT --rounds 10 --hidden 0 \
        --n-features 50 --n-classes 2 --result-file out.npz
    python -m flower_fedavg.legacy client --address 127.0.0.1:PORT --site 0 --data-file site0.npz

The bench starts one server and three clients as separate processes; the server saves its round
records and the final model to ``--result-file`` (see ``RecordedFedAvg``).
"""

from __future__ import annotations

import argparse

from flwr.client import start_client
from flwr.server import ServerConfig, start_server

from flower_fedavg.recorded_fedavg import RecordedFedAvg
from flower_fedavg.site_client import SiteClient
from flower_fedavg.task import init_model, load_site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)
    server = roles.add_parser("server")
    server.add_argument("--address", required=True)
    server.add_argument("--rounds", type=int, required=True)
    server.add_argument("--hidden", type=int, required=True)
    server.add_argument("--n-features", type=int, required=True)
    server.add_argument("--n-classes", type=int, required=True)
    server.add_argument("--result-file", required=True)
    client = roles.add_parser("client")
    client.add_argument("--address", required=True)
    client.add_argument("--site", type=int, required=True)
    client.add_argument("--data-file", required=True)
    args = parser.parse_args()
    if args.role == "server":
        model = init_model(args.n_features, args.n_classes, args.hidden)
        start_server(server_address=args.address, config=ServerConfig(num_rounds=args.rounds),
                     strategy=RecordedFedAvg(model, args.rounds, args.result_file))
    else:
        X, Y = load_site(args.data_file)
        start_client(server_address=args.address, client=SiteClient(args.site, X, Y).to_client(),
                     insecure=True)


if __name__ == "__main__":
    main()
