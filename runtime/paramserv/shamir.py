"""Shamir secret sharing over the prime field of the Mersenne prime ``2**521 - 1``.

A secret ``s < P`` is the constant term of a random polynomial ``f`` of degree ``t - 1`` over
``GF(P)``; share ``j`` is ``(x_j, f(x_j))`` with ``x_j = j + 1``. Any ``t`` shares give ``s`` back
by Lagrange interpolation at 0; ``t - 1`` shares are independent of ``s`` (they fit a polynomial
through every candidate secret equally well), so they reveal nothing about it [1]_.

``P = 2**521 - 1`` is prime (a Mersenne prime) and larger than ``2**256``, so any 32-byte key is a
field element. Secure aggregation shares X25519 private keys with it.

References
----------
.. [1] A. Shamir, "How to Share a Secret", Communications of the ACM 22(11), 1979.
"""

from __future__ import annotations

import secrets

from fedla.runtime.errors import InvalidArgumentError

PRIME = 2**521 - 1


def split_secret(secret: int, n: int, threshold: int) -> dict[int, int]:
    """Split ``secret`` into ``n`` shares, any ``threshold`` of which recover it.

    Parameters
    ----------
    secret : int
        In ``[0, PRIME)``.
    n : int
        Number of shares; share ``j`` (for ``j`` in ``0 .. n-1``) is evaluated at ``x = j + 1``.
    threshold : int
        Shares needed to recover, in ``[1, n]``.

    Returns
    -------
    dict of int to int
        ``{x: f(x)}`` for ``x = 1 .. n``.
    """
    if not 0 <= secret < PRIME:
        raise InvalidArgumentError(
            f"The 'secret' parameter of split_secret must be an int in the range [0, 2**521 - 1). "
            f"Got an int of {secret.bit_length()} bits instead."
        )
    if not 1 <= threshold <= n:
        raise InvalidArgumentError(
            f"The 'threshold' parameter of split_secret must be an int in the range [1, n={n}]. "
            f"Got {threshold!r} instead."
        )
    coefficients = [secret] + [secrets.randbelow(PRIME) for _ in range(threshold - 1)]
    shares = {}
    for x in range(1, n + 1):
        y = 0
        for c in reversed(coefficients):  # Horner
            y = (y * x + c) % PRIME
        shares[x] = y
    return shares


def reconstruct_secret(shares: dict[int, int]) -> int:
    """The constant term of the polynomial through ``shares`` (``{x: y}``, distinct ``x > 0``).

    With at least ``threshold`` genuine shares this is the secret; with fewer it is a field
    element unrelated to it (nothing here can tell: check the result, e.g. against a public key).
    """
    if not shares:
        raise InvalidArgumentError("reconstruct_secret needs at least one share; got none.")
    secret = 0
    for xj, yj in shares.items():
        num, den = 1, 1
        for xm in shares:
            if xm != xj:
                num = num * (-xm) % PRIME
                den = den * (xj - xm) % PRIME
        secret = (secret + yj * num * pow(den, -1, PRIME)) % PRIME
    return secret
