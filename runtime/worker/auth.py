"""Who may call a worker: token files, bearer tokens, mTLS client certificates -> ``Principal``.

A token file (``fedla worker --token-file F``, ``fedla token add NAME --file F``) holds one line
``tenant_name: <sha256 hex of the token>`` per tenant; the worker keeps only the digests. A
coordinator sends ``authorization: Bearer <token>`` as call metadata on every RPC. The digest of
the presented token is compared in constant time (``hmac.compare_digest``) with every entry, so
neither the timing nor the order of entries tells which name came close.

With a client CA (``--tls-client-ca``) gRPC has verified the client certificate before a call
reaches the servicer; its subject's common name is the tenant. A tenant's identity always comes
from its credential, never from the ``tenant`` field of a request body.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedla.runtime.errors import AuthenticationError, InvalidArgumentError
from fedla.runtime.worker.principal import Principal

AUTHORIZATION_KEY = "authorization"
"""Call metadata key of the bearer token (gRPC metadata keys are lower case)."""

BEARER_PREFIX = "Bearer "

TOKEN_BYTES = 32
"""Random bytes in a token made by ``fedla token add`` (43 URL-safe characters)."""

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


def token_digest(token: str) -> str:
    """The hex SHA-256 of ``token``: what a token file stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_token_file(path: str | Path) -> dict[str, str]:
    """Parse a token file into ``{tenant_name: sha256 hex}``.

    Blank lines and lines starting with ``#`` are skipped.

    Raises
    ------
    InvalidArgumentError
        A line is not ``name: <64 hex digits>``, or a name appears twice.
    """
    entries: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, _, digest = (part.strip() for part in text.partition(":"))
        if not _NAME.fullmatch(name) or not _DIGEST.fullmatch(digest.lower()):
            raise InvalidArgumentError(
                f"{path}:{number}: expected 'tenant_name: <sha256 hex of the token>'; "
                "make entries with 'fedla token add NAME --file FILE'"
            )
        if name in entries:
            raise InvalidArgumentError(f"{path}:{number}: tenant {name!r} appears twice")
        entries[name] = digest.lower()
    return entries


def add_token(path: str | Path, name: str) -> str:
    """Make a random token for tenant ``name``, append its digest to ``path``; return the token.

    The file is created readable by its owner only. The token itself is stored nowhere.

    Raises
    ------
    InvalidArgumentError
        ``name`` is not a valid tenant name or already has a token in the file.
    """
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"The tenant name must be 1-128 letters, digits or '._@-', starting with a letter or "
            f"digit. Got {name!r} instead."
        )
    path = Path(path)
    existing = read_token_file(path) if path.exists() else {}
    if name in existing:
        raise InvalidArgumentError(
            f"tenant {name!r} already has a token in {path}; remove its line to replace it"
        )
    token = secrets.token_urlsafe(TOKEN_BYTES)
    while token.startswith("-"):  # a leading '-' reads as an option: `fedla status --token -x`
        token = secrets.token_urlsafe(TOKEN_BYTES)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "a") as file:
        file.write(f"{name}: {token_digest(token)}\n")
    return token


@dataclass(frozen=True)
class Authenticator:
    """Turns a call's metadata and TLS auth context into the caller's ``Principal``.

    Parameters
    ----------
    tokens : mapping of str to str
        Tenant name -> token digest (``read_token_file``).
    operator_tokens : mapping of str to str
        Operator name -> token digest; these callers may see every tenant in ``Status``.
    client_certificates : bool
        The server verifies client certificates against a CA (``--tls-client-ca``); their
        subject's common name is the tenant.
    """

    tokens: Mapping[str, str]
    operator_tokens: Mapping[str, str]
    client_certificates: bool = False

    @property
    def required(self) -> bool:
        """Whether tenants must present a credential (else the envelope names the tenant)."""
        return bool(self.tokens) or self.client_certificates

    def identify(
        self,
        metadata: Iterable[tuple[str, str | bytes]],
        auth_context: Mapping[str, Sequence[bytes]],
        *,
        operator: bool = False,
    ) -> Principal | None:
        """The authenticated caller, or None when no credentials are configured.

        A bearer token is checked first (against the operator tokens too when ``operator``),
        then the verified client certificate. None means the worker runs without credentials
        (loopback only, or ``--insecure``) and the envelope's tenant field names the scope.

        Raises
        ------
        AuthenticationError
            Credentials are configured and the caller presented none or an unknown one.
        """
        token = _bearer_token(metadata)
        if token is not None and (self.tokens or (operator and self.operator_tokens)):
            digest = token_digest(token)
            if operator:
                name = _match(digest, self.operator_tokens)
                if name is not None:
                    return Principal(name, operator=True)
            name = _match(digest, self.tokens)
            if name is not None:
                return Principal(name)
            raise AuthenticationError(
                "the bearer token matches no tenant of this worker; check the coordinator's "
                "token (Context(token=...) or FEDLA_TOKEN)"
            )
        if self.client_certificates:
            subject = _certificate_subject(auth_context)
            if subject:
                return Principal(subject)
        if self.required:
            raise AuthenticationError(
                "this worker requires a credential: pass Context(token=...) (or set "
                "FEDLA_TOKEN)" + (" or a client certificate (Context(tls_cert=..., "
                                  "tls_key=...))" if self.client_certificates else "")
            )
        return None


def _bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str | None:
    for key, value in metadata:
        if key == AUTHORIZATION_KEY:
            text = value.decode(errors="replace") if isinstance(value, bytes) else value
            return text[len(BEARER_PREFIX):] if text.startswith(BEARER_PREFIX) else text
    return None


def _match(digest: str, entries: Mapping[str, str]) -> str | None:
    """The name whose digest equals ``digest``; compares with every entry, in constant time."""
    found = None
    for name, expected in entries.items():
        if hmac.compare_digest(digest, expected):
            found = name
    return found


def _certificate_subject(auth_context: Mapping[str, Sequence[bytes]]) -> str | None:
    """The verified client certificate's common name (gRPC's ``x509_common_name``)."""
    values = auth_context.get("x509_common_name") or ()
    return values[0].decode(errors="replace") if values else None
