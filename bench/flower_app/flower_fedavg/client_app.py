"""The ClientApp of Flower's deployment runtime: a ``SiteClient`` on its SuperNode's partition.

Node config (``flower-supernode --node-config``): ``site`` (0, 1, 2) and ``data-file`` (the
site's ``.npz``).
"""

from __future__ import annotations

from flwr.client import Client, ClientApp
from flwr.common import Context

from flower_fedavg.site_client import SiteClient
from flower_fedavg.task import load_site


def client_fn(context: Context) -> Client:
    X, Y = load_site(str(context.node_config["data-file"]))
    return SiteClient(int(context.node_config["site"]), X, Y).to_client()


app = ClientApp(client_fn=client_fn)
