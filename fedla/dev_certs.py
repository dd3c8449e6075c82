"""``fedla certs DIR --host NAME``: a development CA with a server and a client certificate.

For trying TLS and mTLS, not for production: the CA key sits next to the certificates it signed.
Files (PEM): ``ca.pem`` ``ca.key``, ``server.pem`` ``server.key`` (SANs: the hosts plus
``localhost`` and ``127.0.0.1``), ``client.pem`` ``client.key`` (common name = the tenant).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 365


def make_dev_certs(
    directory: str | Path, hosts: Sequence[str], client_name: str = "fedla-client"
) -> dict[str, Path]:
    """Write a CA, a server certificate for ``hosts`` and a client certificate into ``directory``.

    Parameters
    ----------
    directory : str or Path
        Created if missing; existing files of the same names are refused.
    hosts : sequence of str
        DNS names or IP addresses the workers are reached by.
    client_name : str, default "fedla-client"
        Common name of the client certificate: the tenant a worker with ``--tls-client-ca``
        sees.

    Returns
    -------
    dict of str to Path
        ``{"ca": ..., "ca_key": ..., "server": ..., "server_key": ..., "client": ...,
        "client_key": ...}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "ca": directory / "ca.pem", "ca_key": directory / "ca.key",
        "server": directory / "server.pem", "server_key": directory / "server.key",
        "client": directory / "client.pem", "client_key": directory / "client.key",
    }
    taken = [str(path) for path in paths.values() if path.exists()]
    if taken:
        raise FileExistsError(f"refusing to overwrite {', '.join(taken)}; choose another DIR")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedla development CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths["ca"], paths["ca_key"], ca, ca_key)

    names = list(dict.fromkeys([*hosts, "localhost", "127.0.0.1"]))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        _builder(_name(names[0]), ca_name, server_key)
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths["server"], paths["server_key"], server, server_key)

    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        _builder(_name(client_name), ca_name, client_key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write(paths["client"], paths["client_key"], client, client_key)
    return paths


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write(
    cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> None:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
