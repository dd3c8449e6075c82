"""Fuzz a real ``fedla worker`` over raw gRPC and count what came back.

    python bench/fuzz_worker.py                    # 10,000 cases
    python bench/fuzz_worker.py --examples 500 --seed 7

The generators of ``tests/runtime/fuzz_harness.py`` (mutated valid batches and random bytes, on
``Call`` and ``Execute``), driven by ``random`` from ``--seed``. Prints one table of counts by
outcome; every disallowed case (other error, hang, crash, unhealthy worker after it) is printed
with its seed, so ``fuzz_case(RandomDraw(seed))`` reproduces it. Exits 1 if there was one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.*

from tests.runtime.fuzz_harness import (  # noqa: E402
    FuzzTarget,
    Outcome,
    RandomDraw,
    fuzz_case,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first case")
    args = parser.parse_args()
    counts = dict.fromkeys(Outcome, 0)
    kinds = {"mutated": 0, "random": 0}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fedla-fuzz-") as data_dir:
        target = FuzzTarget(Path(data_dir))
        try:
            for seed in range(args.seed, args.seed + args.examples):
                case = fuzz_case(RandomDraw(seed))
                kinds[case.kind.split("/")[0]] += 1
                outcome, detail = target.send(case)
                counts[outcome] += 1
                if not outcome.allowed:
                    print(f"seed {seed}: {outcome.value}: {detail}\n  {case!r}", flush=True)
                if outcome is Outcome.CRASH:
                    break
        finally:
            target.close()
    elapsed = time.perf_counter() - started
    total = sum(counts.values())
    print(f"\n{total} cases ({kinds['mutated']} mutated valid batches, {kinds['random']} random "
          f"bytes) in {elapsed:.1f} s, seeds {args.seed}..{args.seed + args.examples - 1}\n")
    print(f"| {'outcome':<16} | {'count':>6} |")
    print(f"|{'-' * 18}|{'-' * 8}|")
    for outcome, count in counts.items():
        print(f"| {outcome.value:<16} | {count:>6} |")
    return 0 if all(o.allowed or not n for o, n in counts.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
