"""FedAvg of fedla's ffn on Flower, for bench/bench_federated.py."""
