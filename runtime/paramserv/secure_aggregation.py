"""Secure aggregation by pairwise additive masking: the coordinator learns only the sum.

The protocol of Bonawitz et al. [1]_ for an honest-but-curious coordinator, as message passing
between ``SecAggSite`` (one per site) and ``SecAggCoordinator``; every message is plain data
(bytes, ints, dicts and numpy arrays) that the executor relays over the network.

Setup (once per set of keys; the sites are ``0 .. n_sites-1``)::

    published = {i: site_i.public_keys()}                         # site -> coordinator
    bundle = coordinator.collect_public_keys(published)           # coordinator -> every site
    outbox = {i: site_i.share_keys(bundle)}                       # site -> coordinator
    inbox = coordinator.relay_shares(outbox)                      # coordinator -> each site
    site_i.receive_shares(inbox[i])

Each round::

    masked = {i: site_i.mask(update_i, round_, coordinator.participants)}   # the live sites
    dropped = coordinator.dropped(masked)                                   # participants missing
    reveals = {i: site_i.reveal(dropped) for i in masked}                   # >= threshold of them
    total = coordinator.unmask_sum(masked, reveals, round_, like)

What each step does:

- Keys: a site draws two X25519 key pairs, ``c`` (to encrypt shares) and ``s`` (for masks), and
  publishes both public keys. It Shamir-shares the ``s`` private key with threshold ``t`` over
  ``GF(2**521 - 1)`` (``shamir``), and encrypts share ``j`` for site ``j`` with AES-GCM under
  ``HKDF-SHA256(X25519(c_i, c_j))``, sender and recipient bound as associated data. Private keys
  leave a ``SecAggSite`` only as such shares.
- Fixed point: each float is ``round(x * 2**32)`` as int64, added mod ``2**64`` as uint64. So
  values and the round's sum must lie in ``(-2**31, 2**31)`` (``mask`` checks
  ``|x| * len(participants) < 2**31``) and each value is rounded to ``2**-33``: the decoded sum
  of ``n`` updates is within ``n * 2**-33`` (about ``1.2e-10 n``) of the float sum.
- Masks: sites ``i < j`` share ``k_ij = X25519(s_i, s_j)``; per round the mask is the keystream of
  ChaCha20 under ``HKDF-SHA256(k_ij, round, i, j)`` read as uint64, added by ``i`` and subtracted
  by ``j``, so the masks cancel in the sum. ChaCha20 (from ``cryptography``) rather than a numpy
  generator: PCG64 and Philox are not cryptographic, and PCG64's seed can be recovered from its
  outputs, which a masked vector with known entries (zeros, say) would leak.
- Dropouts: for a participant that sent no masked vector, at least ``t`` live sites reveal their
  shares of its ``s`` key; the coordinator reconstructs it, checks it against the published
  public key, recomputes its masks with the live sites and removes them.

Departures from [1]_, and what they cost:

- No self mask ``b_u``. Without it, a site that the coordinator declares dropped although its
  masked vector arrives later (slow, not gone) is unmasked by the same reveal: an honest
  coordinator never does this, a malicious one can, for one site per lie. The self mask closes
  that at the price of a share round per round (``b_u`` must be fresh each round) and twice the
  reveals; we target the honest-but-curious coordinator and keep one share phase per key set.
- No signatures on public keys (no PKI): an active coordinator could substitute keys. Use mTLS
  between sites and coordinator, and treat the coordinator as honest-but-curious.
- Keys are reused across rounds (the round number goes into every mask). Once a site's ``s`` key
  has been reconstructed, its masks of every round are known, so it must set up new keys before
  it contributes again: sites refuse to mask with it and the coordinator refuses its vectors.

References
----------
.. [1] K. Bonawitz, V. Ivanov, B. Kreuter, A. Marcedone, H. B. McMahan, S. Patel, D. Ramage,
   A. Segal and K. Seth, "Practical Secure Aggregation for Privacy-Preserving Machine Learning",
   ACM CCS 2017. https://eprint.iacr.org/2017/281
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fedla.runtime.errors import FedlaError, InvalidArgumentError
from fedla.runtime.paramserv.shamir import PRIME, reconstruct_secret, split_secret

FRACTION_BITS = 32
_SCALE = float(2**FRACTION_BITS)
_LIMIT = 2.0**31  # |fixed-point value| and |sum| stay below this
_SHARE_BYTES = (PRIME.bit_length() + 7) // 8  # 66
_NONCE_BYTES = 12


class SecureAggregationError(FedlaError, RuntimeError):
    """The protocol cannot go on (too few reveals, a bad share, a key set that was revealed)."""


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _pair_info(kind: bytes, a: int, b: int, round_: int = 0) -> bytes:
    lo, hi = min(a, b), max(a, b)
    return b"fedla-secagg " + kind + round_.to_bytes(8, "big") + lo.to_bytes(4, "big") + \
        hi.to_bytes(4, "big")


def _share_aad(sender: int, recipient: int) -> bytes:
    """Associated data of a share: binds the ciphertext to its sender and recipient."""
    return b"fedla-secagg share" + sender.to_bytes(4, "big") + recipient.to_bytes(4, "big")


def _check_round(round_: Any) -> int:
    if isinstance(round_, bool) or not isinstance(round_, (int, np.integer)) or not (
            0 <= round_ < 2**64):
        raise InvalidArgumentError(
            f"The 'round_' parameter must be an int in the range [0, 2**64). Got {round_!r} "
            f"instead."
        )
    return int(round_)


def _pair_mask(private: X25519PrivateKey, peer_public: bytes, a: int, b: int, round_: int,
               size: int) -> np.ndarray:
    """The uint64 mask of sites ``a`` and ``b`` in ``round_`` (the same at both ends)."""
    shared = private.exchange(X25519PublicKey.from_public_bytes(peer_public))
    key = _derive(shared, _pair_info(b"mask", a, b, round_))
    # the key is unique per pair and round, so a zero nonce (and counter) is safe
    stream = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    return np.frombuffer(stream.update(bytes(8 * size)), dtype="<u8").astype(np.uint64)


def _check_site_id(value: Any, n_sites: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not (
            0 <= value < n_sites):
        raise InvalidArgumentError(
            f"{what} must be a site id, an int in the range [0, {n_sites}). Got {value!r} instead."
        )
    return int(value)


def _check_sizes(n_sites: int, threshold: int, where: str) -> None:
    if isinstance(n_sites, bool) or not isinstance(n_sites, int) or n_sites < 2:
        raise InvalidArgumentError(
            f"The 'n_sites' parameter of {where} must be an int in the range [2, inf). "
            f"Got {n_sites!r} instead."
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not (
            1 <= threshold <= n_sites):
        raise InvalidArgumentError(
            f"The 'threshold' parameter of {where} must be an int in the range "
            f"[1, n_sites={n_sites}]. Got {threshold!r} instead."
        )


class SecAggSite:
    """The site's side of secure aggregation: keys, shares of its key, masking, reveals.

    Parameters
    ----------
    site_id : int
        This site, in ``[0, n_sites)``.
    n_sites : int
        Number of sites in the key set.
    threshold : int
        ``t``: live sites needed to remove a dropped site's masks, in ``[1, n_sites]``. Bonawitz
        et al. take ``t > n_sites / 2``, so that a minority cannot reconstruct anyone's key.

    Notes
    -----
    Keys come from the operating system's secure generator; there is no seed on purpose.
    """

    def __init__(self, site_id: int, n_sites: int, threshold: int) -> None:
        _check_sizes(n_sites, threshold, "SecAggSite")
        self.site_id = _check_site_id(site_id, n_sites, "The 'site_id' parameter of SecAggSite")
        self.n_sites, self.threshold = n_sites, threshold
        self._c = X25519PrivateKey.generate()
        self._s = X25519PrivateKey.generate()
        self._public: dict[int, dict[str, bytes]] = {}
        self._shares: dict[int, int] = {}  # sender -> this site's share of the sender's s key
        self._revealed: set[int] = set()

    def public_keys(self) -> dict[str, bytes]:
        """``{"c": ..., "s": ...}``: the raw 32-byte X25519 public keys to publish."""
        return {"c": self._c.public_key().public_bytes_raw(),
                "s": self._s.public_key().public_bytes_raw()}

    def share_keys(self, all_public: Mapping[int, Mapping[str, bytes]]) -> dict[int, bytes]:
        """Shamir-share this site's ``s`` private key; one ciphertext per other site.

        Parameters
        ----------
        all_public : dict of int to dict
            Every site's ``public_keys()``, as relayed by the coordinator (this site included).

        Returns
        -------
        dict of int to bytes
            ``{recipient: nonce + AES-GCM ciphertext of the recipient's share}``.
        """
        self._public = _checked_public(all_public, self.n_sites)
        if self._public.get(self.site_id) != self.public_keys():
            raise SecureAggregationError(
                f"The public keys relayed for site {self.site_id} are not this site's. Relay "
                f"every site's public_keys() unchanged."
            )
        secret = int.from_bytes(self._s.private_bytes_raw(), "big")
        shares = split_secret(secret, self.n_sites, self.threshold)
        self._shares[self.site_id] = shares[self.site_id + 1]
        out = {}
        for j in sorted(self._public):
            if j != self.site_id:
                nonce = os.urandom(_NONCE_BYTES)
                plain = shares[j + 1].to_bytes(_SHARE_BYTES, "big")
                out[j] = nonce + self._share_cipher(j).encrypt(
                    nonce, plain, _share_aad(self.site_id, j))
        return out

    def receive_shares(self, from_others: Mapping[int, bytes]) -> None:
        """Decrypt and keep this site's shares of the other sites' keys (``{sender: bytes}``)."""
        if not self._public:
            raise SecureAggregationError("Call share_keys before receive_shares.")
        for sender, message in from_others.items():
            sender = _check_site_id(sender, self.n_sites, "A sender of receive_shares")
            if sender not in self._public or sender == self.site_id:
                raise SecureAggregationError(
                    f"Site {self.site_id} got a share from site {sender}, which did not publish "
                    f"keys in this key set (or is this site)."
                )
            try:
                plain = self._share_cipher(sender).decrypt(
                    message[:_NONCE_BYTES], message[_NONCE_BYTES:],
                    _share_aad(sender, self.site_id))
            except InvalidTag:
                raise SecureAggregationError(
                    f"The share from site {sender} to site {self.site_id} does not decrypt: it was "
                    f"altered or sent to the wrong site."
                ) from None
            self._shares[sender] = int.from_bytes(plain, "big")

    def mask(self, update: Sequence[Any], round_: int, participants: Iterable[int]
             ) -> list[np.ndarray]:
        """The site's update in fixed point plus its pairwise masks, as uint64 arrays.

        Parameters
        ----------
        update : list of ndarray
            Floats with ``|x| * len(participants) < 2**31`` (to average, send ``weight * x`` and
            the weight as one more array, then divide the sums).
        round_ : int
            The round number, in ``[0, 2**64)``; masks differ every round.
        participants : list of int
            The sites of the key set taking part (``SecAggCoordinator.participants``).

        Returns
        -------
        list of ndarray of uint64
            Same shapes as ``update``.
        """
        round_ = _check_round(round_)
        participants = sorted({_check_site_id(p, self.n_sites, "A participant")
                               for p in participants})
        if self.site_id not in participants:
            raise InvalidArgumentError(
                f"The participants {participants} do not include this site ({self.site_id})."
            )
        missing = [p for p in participants if p not in self._shares]
        if missing:
            raise SecureAggregationError(
                f"Site {self.site_id} holds no share of site(s) {missing}'s key, so their masks "
                f"could not be removed if they dropped. Pass only sites that completed the share "
                f"phase (SecAggCoordinator.participants)."
            )
        revealed = sorted(self._revealed.intersection(participants))
        if revealed:
            raise SecureAggregationError(
                f"The mask keys of site(s) {revealed} were reconstructed after they dropped; "
                f"they must set up new keys (new SecAggSite objects, a new share phase) before "
                f"taking part again."
            )
        arrays = [np.asarray(a, dtype=np.float64) for a in update]
        flat = np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)
        bound = _LIMIT / len(participants)
        if flat.size and not np.all(np.abs(flat) < bound):
            raise InvalidArgumentError(
                f"Secure aggregation encodes values in fixed point: every |value| must be below "
                f"2**31 / {len(participants)} participants = {bound:.6g} so the sum cannot "
                f"overflow. Got max |value| = {np.abs(flat).max():.6g}. Clip or scale the update."
            )
        masked = np.rint(flat * _SCALE).astype(np.int64).view(np.uint64)
        for j in participants:
            if j != self.site_id:
                mask = _pair_mask(self._s, self._public[j]["s"], self.site_id, j, round_,
                                  flat.size)
                masked = masked + mask if self.site_id < j else masked - mask
        return _split(masked, arrays)

    def reveal(self, dropped: Iterable[int]) -> dict[int, int]:
        """The site's shares of the ``s`` keys of the ``dropped`` sites (``{site: share}``).

        After this, the site refuses to mask together with them: their keys are no longer secret.
        """
        out = {}
        for d in dropped:
            d = _check_site_id(d, self.n_sites, "A dropped site")
            if d == self.site_id or d not in self._shares:
                raise SecureAggregationError(
                    f"Site {self.site_id} cannot reveal a share of site {d}'s key: "
                    + ("it is this site." if d == self.site_id else "it holds none.")
                )
            out[d] = self._shares[d]
            self._revealed.add(d)
        return out

    def _share_cipher(self, other: int) -> AESGCM:
        shared = self._c.exchange(X25519PublicKey.from_public_bytes(self._public[other]["c"]))
        return AESGCM(_derive(shared, _pair_info(b"share-key", self.site_id, other)))


class SecAggCoordinator:
    """The coordinator's side: relays keys and shares, sums masked vectors, removes dropped masks.

    Parameters
    ----------
    n_sites : int
        Number of sites in the key set.
    threshold : int
        ``t``, as given to every ``SecAggSite``.
    """

    def __init__(self, n_sites: int, threshold: int) -> None:
        _check_sizes(n_sites, threshold, "SecAggCoordinator")
        self.n_sites, self.threshold = n_sites, threshold
        self._public: dict[int, dict[str, bytes]] = {}
        self._participants: list[int] = []
        self._revealed: set[int] = set()

    def collect_public_keys(self, published: Mapping[int, Mapping[str, bytes]]
                            ) -> dict[int, dict[str, bytes]]:
        """Keep the sites' public keys; return the bundle to send to every site."""
        self._public = _checked_public(published, self.n_sites)
        if len(self._public) < self.threshold:
            raise SecureAggregationError(
                f"Only {len(self._public)} sites published keys; the threshold is "
                f"{self.threshold}."
            )
        return {i: dict(k) for i, k in self._public.items()}

    def relay_shares(self, sent: Mapping[int, Mapping[int, bytes]]) -> dict[int, dict[int, bytes]]:
        """Route each site's encrypted shares (``{sender: {recipient: bytes}}``) to recipients.

        The senders become the participants: only their keys can be reconstructed. Returns
        ``{recipient: {sender: bytes}}`` for every participant.
        """
        senders = sorted(s for s in sent if s in self._public)
        if len(senders) != len(sent) or len(senders) < self.threshold:
            raise SecureAggregationError(
                f"Shares came from sites {sorted(sent)}; the sites that published keys are "
                f"{sorted(self._public)} and at least threshold={self.threshold} must share."
            )
        self._participants = senders
        return {r: {s: bytes(sent[s][r]) for s in senders if s != r and r in sent[s]}
                for r in senders}

    @property
    def participants(self) -> list[int]:
        """The sites that completed the share phase, sorted: pass them to ``SecAggSite.mask``."""
        return list(self._participants)

    def dropped(self, masked: Iterable[int]) -> list[int]:
        """The participants that did not send a masked vector (ids of ``masked`` are the live)."""
        live = set(masked)
        return [p for p in self._participants if p not in live]

    def unmask_sum(self, masked: Mapping[int, Sequence[np.ndarray]],
                   dropped_reveals: Mapping[int, Mapping[int, int]], round_: int,
                   like: Sequence[Any], participants: Iterable[int] | None = None
                   ) -> list[np.ndarray]:
        """The sum of the live sites' updates, as floats.

        Parameters
        ----------
        masked : dict of int to list of ndarray
            ``SecAggSite.mask`` of every live site this round.
        dropped_reveals : dict of int to dict of int to int
            ``{live site: its reveal(dropped)}`` from at least ``threshold`` live sites; may be
            empty when no participant dropped.
        round_ : int
            The round the vectors were masked for.
        like : list of ndarray
            Shapes and dtypes of the result (the model, say).
        participants : list of int, optional
            The sites the round's vectors were masked for (``SecAggSite.mask``'s
            ``participants``), when the round sampled a subset; default ``participants``.

        Returns
        -------
        list of ndarray
            ``sum over live sites of update``, within ``len(masked) * 2**-33`` per entry.
        """
        round_ = _check_round(round_)
        live = sorted(masked)
        strangers = [i for i in live if i not in self._participants]
        if strangers:
            raise SecureAggregationError(
                f"Masked vectors came from site(s) {strangers}, which are not participants "
                f"({self._participants})."
            )
        revealed = sorted(self._revealed.intersection(live))
        if revealed:
            raise SecureAggregationError(
                f"The mask keys of site(s) {revealed} were reconstructed in an earlier round; "
                f"their vectors are not protected. They must set up new keys first."
            )
        like = [np.asarray(a) for a in like]
        size = sum(a.size for a in like)
        total = np.zeros(size, dtype=np.uint64)
        for i in live:
            vector = np.concatenate([np.asarray(a, dtype=np.uint64).ravel() for a in masked[i]])
            if vector.size != size:
                raise InvalidArgumentError(
                    f"The masked vector of site {i} has {vector.size} entries; 'like' has {size}."
                )
            total += vector
        expected = self._participants if participants is None else sorted(set(participants))
        for d in [p for p in expected if p not in set(live)]:
            private = self._reconstruct(d, live, dropped_reveals)
            for u in live:
                mask = _pair_mask(private, self._public[u]["s"], d, u, round_, size)
                total = total - mask if u < d else total + mask  # u added +mask when u < d
            self._revealed.add(d)
        decoded = _split(total.view(np.int64) / _SCALE, like)
        return [d.astype(a.dtype) for d, a in zip(decoded, like)]

    def _reconstruct(self, d: int, live: list[int], reveals: Mapping[int, Mapping[int, int]]
                     ) -> X25519PrivateKey:
        shares = {u + 1: int(reveals[u][d]) for u in live if d in reveals.get(u, {})}
        if len(shares) < self.threshold:
            raise SecureAggregationError(
                f"Cannot remove the masks of dropped site {d}: {len(shares)} live site(s) revealed "
                f"a share of its key but the threshold is {self.threshold}. Collect reveal() from "
                f"at least {self.threshold} of the live sites {live}"
                + (" (too few sites are left: the round cannot be recovered)."
                   if len(live) < self.threshold else ".")
            )
        secret = reconstruct_secret(dict(sorted(shares.items())[: self.threshold]))
        if secret >= 2**256:
            raise SecureAggregationError(f"The revealed shares of site {d}'s key are inconsistent.")
        private = X25519PrivateKey.from_private_bytes(secret.to_bytes(32, "big"))
        if private.public_key().public_bytes_raw() != self._public[d]["s"]:
            raise SecureAggregationError(
                f"The revealed shares do not reconstruct site {d}'s published key: a live site "
                f"sent a wrong share."
            )
        return private


def _checked_public(published: Mapping[int, Mapping[str, bytes]], n_sites: int
                    ) -> dict[int, dict[str, bytes]]:
    out = {}
    for i, keys in published.items():
        i = _check_site_id(i, n_sites, "A key of the public-key bundle")
        if set(keys) != {"c", "s"} or any(len(bytes(k)) != 32 for k in keys.values()):
            raise InvalidArgumentError(
                f"Site {i}'s public keys must be {{'c': 32 bytes, 's': 32 bytes}} as returned by "
                f"SecAggSite.public_keys(). Got {sorted(keys)} instead."
            )
        out[i] = {name: bytes(k) for name, k in keys.items()}
    return out


def _split(flat: np.ndarray, like: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``flat`` cut into pieces with the shapes of ``like`` (views, ``flat``'s dtype)."""
    out, start = [], 0
    for a in like:
        out.append(flat[start:start + a.size].reshape(a.shape))
        start += a.size
    return out
