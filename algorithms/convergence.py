"""How iterative algorithms report progress and non-convergence.

``progress`` is a tqdm bar over the iterations that only shows with ``verbose=True``; every
iteration is also logged at DEBUG level to the algorithm's logger, so a run can be traced without
a bar. Running out of iterations raises a ``ConvergenceWarning`` that says which limit to raise.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from tqdm.auto import tqdm


class ConvergenceWarning(UserWarning):
    """An iterative algorithm stopped at its iteration limit before meeting its tolerance."""


class Progress:
    """Iteration progress of one algorithm: a tqdm bar (when verbose) plus DEBUG log lines."""

    def __init__(self, algorithm: str, total: int | None, verbose: bool, unit: str = "it") -> None:
        self.algorithm = algorithm
        self.logger = logging.getLogger(f"fedla.algorithms.{algorithm}")
        self.bar = tqdm(total=total, desc=algorithm, unit=unit, disable=not verbose, leave=True)
        self.verbose = verbose

    def step(self, **stats: Any) -> None:
        """Advance by one iteration and show ``stats`` (objective, gradient norm, ...)."""
        shown = {key: _short(value) for key, value in stats.items()}
        self.logger.debug("%s iteration %d: %s", self.algorithm, self.bar.n + 1, shown)
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def note(self, message: str) -> None:
        """Print ``message`` under the bar when verbose; always log it at DEBUG level."""
        report(self.algorithm, message, self.verbose)

    def close(self) -> None:
        """Finish the bar."""
        self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def report(algorithm: str, message: str, verbose: bool) -> None:
    """Print ``message`` when verbose (tqdm-safe); always log it at DEBUG level."""
    logging.getLogger(f"fedla.algorithms.{algorithm}").debug("%s: %s", algorithm, message)
    if verbose:
        tqdm.write(f"{algorithm}: {message}")


def warn_not_converged(algorithm: str, iterations: int, remedy: str) -> None:
    """Warn that ``algorithm`` hit its iteration limit; ``remedy`` says what to change."""
    warnings.warn(
        f"{algorithm} did not converge within {iterations} iterations. {remedy}",
        ConvergenceWarning,
        stacklevel=3,
    )


def _short(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
