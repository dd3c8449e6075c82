"""paramserv LOCAL vs a single-process numpy loop vs PyTorch (CPU), on scikit-learn's digits.

    python bench/bench_paramserv.py            # ffn 10 epochs, cnn 15 epochs
    python bench/bench_paramserv.py --quick    # 2 epochs each, a smoke run

Digits (8x8 images / 16) with ``train_test_split(test_size=0.2, random_state=0)``; float32;
Adam (lr 3e-3) on mean cross-entropy; 64 samples per model update everywhere: paramserv runs
BSP with k=2 workers of batchsize 32 (their gradients are averaged into one update), the numpy
loop and PyTorch take batches of 64. Same architectures: ffn = 64-128-10 (ReLU), cnn =
conv3x3(16)-relu-maxpool-conv3x3(32)-relu-maxpool-affine(128)-relu-dropout(keep 0.75)-affine(10).

Samples/s are training samples over wall time: paramserv's includes starting its k worker
processes (not the one-time start of its fork server: a warm-up run does that); the test
evaluation is outside every timing. The numpy loop calls the same ``gradients``/``aggregate`` as
the workers, with its BLAS pool limited to 1 thread (faster for these small products, as in each
paramserv worker); PyTorch runs once with 1 thread and once with its default threads. Prints one
table; the PyTorch rows are skipped with a note when torch is not installed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def load_digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from fedla.algorithms.nn.labels import one_hot

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        (X / 16.0).astype(np.float32), y, test_size=0.2, random_state=0)
    return X_train, one_hot(y_train, 10, dtype=np.float32), X_test, y_test


def hyperparams(model: str) -> dict:
    base = {"optimizer": "adam", "lr": 3e-3}
    return {**base, "keep_prob": 0.75, "C": 1, "Hin": 8, "Win": 8} if model == "cnn" else base


def init(model: str, seed: int) -> list:
    from fedla.algorithms.nn import cnn, ffn

    if model == "cnn":
        return cnn.init(1, 8, 8, 10, seed=seed, dtype=np.float32)
    return ffn.init(64, 10, (128,), seed=seed, dtype=np.float32)


def run_paramserv(model: str, data, epochs: int) -> tuple[float, float]:
    import fedla as fl
    from fedla.algorithms.nn import cnn, ffn

    module = cnn if model == "cnn" else ffn
    X_train, Y_train, X_test, y_test = data
    start = time.perf_counter()
    trained = fl.paramserv(init(model, 0), X_train, Y_train, upd=module.UPD, agg=module.AGG,
                           utype="BSP", freq="BATCH", epochs=epochs, batchsize=32, k=2,
                           hyperparams=hyperparams(model), seed=0, progress=False)
    seconds = time.perf_counter() - start
    accuracy = float(np.mean(module.predict(trained, X_test).argmax(axis=1) == y_test))
    return len(X_train) * epochs / seconds, accuracy


def run_numpy(model: str, data, epochs: int) -> tuple[float, float]:
    from threadpoolctl import threadpool_limits

    from fedla.algorithms.nn import cnn, ffn

    module = cnn if model == "cnn" else ffn
    X_train, Y_train, X_test, y_test = data
    params = init(model, 0)
    hyper = hyperparams(model)
    with threadpool_limits(1):
        start = time.perf_counter()
        for epoch in range(epochs):
            for step, i in enumerate(range(0, len(X_train), 64)):
                grads = module.gradients(params, {**hyper, "seed": epoch * 1000 + step},
                                         X_train[i:i + 64], Y_train[i:i + 64])
                params = module.aggregate(params, hyper, grads)
        seconds = time.perf_counter() - start
    accuracy = float(np.mean(module.predict(params, X_test).argmax(axis=1) == y_test))
    return len(X_train) * epochs / seconds, accuracy


def run_torch(model: str, data, epochs: int, threads: int | None = None) -> tuple[float, float]:
    import torch

    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads)
    try:
        return _train_torch(model, data, epochs)
    finally:
        torch.set_num_threads(default_threads)


def _train_torch(model: str, data, epochs: int) -> tuple[float, float]:
    import torch
    from torch import nn

    torch.manual_seed(0)
    X_train, Y_train, X_test, y_test = data
    if model == "cnn":
        net = nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10),
        )
    else:
        net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    X, y = torch.from_numpy(X_train), torch.from_numpy(Y_train.argmax(axis=1))
    net.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for i in range(0, len(X), 64):
            optimizer.zero_grad()
            loss_fn(net(X[i:i + 64]), y[i:i + 64]).backward()
            optimizer.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        predicted = net(torch.from_numpy(X_test)).argmax(dim=1).numpy()
    return len(X_train) * epochs / seconds, float(np.mean(predicted == y_test))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs per model")
    args = parser.parse_args()
    data = load_digits_split()
    try:
        import torch

        torch_note = f"torch {torch.__version__}"
    except ImportError:
        torch = None
        torch_note = "skipped: torch is not installed (pip install torch==2.13.0)"
    engines = [("paramserv LOCAL BSP k=2", "2 x 32", run_paramserv),
               ("numpy loop, 1 process", "64", run_numpy)]
    if torch is not None:
        engines.append(("PyTorch CPU, 1 thread", "64",
                        lambda model, data, epochs: run_torch(model, data, epochs, threads=1)))
        engines.append((f"PyTorch CPU, {torch.get_num_threads()} threads", "64", run_torch))
    for model in ("ffn", "cnn"):  # warm-up: paramserv's fork server, imports, torch kernels
        small = (data[0][:128], data[1][:128], data[2], data[3])
        for _, _, run in engines:
            run(model, small, 1)
    rows = []
    for model, epochs in (("ffn", 10), ("cnn", 15)):
        epochs = 2 if args.quick else epochs
        for name, batch, run in engines:
            samples_per_second, accuracy = run(model, data, epochs)
            rows.append((model, name, batch, epochs, samples_per_second, accuracy))
    print(f"digits: {len(data[0])} train / {len(data[2])} test rows, float32, Adam lr 3e-3, "
          f"{os.cpu_count()} cores")
    header = f"{'model':<6}{'engine':<28}{'batch':>8}{'epochs':>8}{'samples/s':>12}{'test acc':>10}"
    print(header)
    print("-" * len(header))
    for model, name, batch, epochs, samples_per_second, accuracy in rows:
        print(f"{model:<6}{name:<28}{batch:>8}{epochs:>8}{samples_per_second:>12,.0f}"
              f"{accuracy:>10.4f}")
    if torch is None:
        print(f"PyTorch rows {torch_note}")
    else:
        print(f"PyTorch: {torch_note}")


if __name__ == "__main__":
    main()
