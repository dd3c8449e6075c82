"""Authentication, TLS and status, probed as an attacker would against real worker processes.

Tokens and certificates are made with the operator's own commands (``fedla token add``,
``fedla certs``), so those are tested end to end too.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import fedla as fl
from fedla.runtime.errors import (
    AuthenticationError,
    InvalidArgumentError,
    UnknownVariableError,
    WorkerUnavailableError,
)
from fedla.runtime.protocol.client import ClientTls, WorkerClient
from fedla.runtime.protocol.framing import UNARY_BYTES
from fedla.runtime.protocol.requests import Clear, Get, Put
from fedla.runtime.worker.auth import Authenticator, read_token_file, token_digest
from fedla.runtime.worker.principal import Principal
from tests.runtime.test_worker_process import (
    EXIT_TIMEOUT,
    START_TIMEOUT,
    _read_line,
    worker_process,
)


def _fedla(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fedla", *args], capture_output=True, text=True, timeout=60
    )


def _add_token(token_file: Path, name: str) -> str:
    result = _fedla("token", "add", name, "--file", str(token_file))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def credentials(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Token files for tenants alice and bob and operator ops, made by ``fedla token add``."""
    directory = tmp_path_factory.mktemp("tokens")
    tenants, operators = directory / "tenants.tokens", directory / "operators.tokens"
    return {
        "tenants": tenants,
        "operators": operators,
        "alice": _add_token(tenants, "alice"),
        "bob": _add_token(tenants, "bob"),
        "ops": _add_token(operators, "ops"),
    }


@pytest.fixture(scope="module")
def token_worker(
    tmp_path_factory: pytest.TempPathFactory, credentials: dict[str, object]
) -> Iterator[tuple[str, Path]]:
    """A worker with tenant and operator token files: its address and data dir."""
    data_dir = tmp_path_factory.mktemp("token-site")
    args = ("--token-file", str(credentials["tenants"]),
            "--operator-token-file", str(credentials["operators"]))
    with worker_process(data_dir, *args) as (_, address):
        yield address, data_dir


def _client(address: str, token: str | None = None, tls: ClientTls | None = None) -> WorkerClient:
    return WorkerClient(address, timeout=30, token=token, tls=tls)


def _assert_healthy(address: str, token: str, tenant: str = "any") -> None:
    client = _client(address, token)
    try:
        meta, value = client.execute(tenant, [Put("health", np.arange(6.0)), Get("health")])
        assert meta.shape == (6, 1) or meta.shape == (6,)
        np.testing.assert_array_equal(np.ravel(value), np.arange(6.0))
    finally:
        client.close()


def test_token_add_prints_the_token_once_and_stores_only_its_hash(credentials):
    entries = read_token_file(credentials["tenants"])
    assert entries == {"alice": token_digest(credentials["alice"]),
                       "bob": token_digest(credentials["bob"])}
    text = Path(credentials["tenants"]).read_text()
    assert credentials["alice"] not in text and credentials["bob"] not in text
    assert Path(credentials["tenants"]).stat().st_mode & 0o077 == 0
    assert not any(str(credentials[name]).startswith("-") for name in ("alice", "bob", "ops"))
    again = _fedla("token", "add", "alice", "--file", str(credentials["tenants"]))
    assert again.returncode != 0
    assert "tenant 'alice' already has a token" in again.stderr
    assert read_token_file(credentials["tenants"]) == entries


@pytest.mark.parametrize("line", ["alice d6949455", "alice: nothex", ": " + "a" * 64],
                         ids=["no-colon", "not-a-digest", "no-name"])
def test_a_malformed_token_file_is_refused_with_its_line(tmp_path, line):
    path = tmp_path / "tokens"
    path.write_text(f"# comment\n\n{line}\n")
    with pytest.raises(InvalidArgumentError, match=r"tokens:3: expected 'tenant_name: "):
        read_token_file(path)
    result = _fedla("worker", "--port", "0", "--data-dir", str(tmp_path), "--token-file", str(path))
    assert result.returncode != 0 and result.stdout == ""
    assert "tokens:3: expected" in result.stderr


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["missing", "wrong"])
@pytest.mark.parametrize("size", ["unary", "streamed"])
def test_missing_or_wrong_token_is_refused_before_any_work(token_worker, credentials, token, size):
    address, _ = token_worker
    value = np.ones(2 * UNARY_BYTES // 8 if size == "streamed" else 10)
    attacker = _client(address, token)
    try:
        with pytest.raises(AuthenticationError, match="token|credential"):
            attacker.execute("alice", [Put("planted", value)])
        with pytest.raises(AuthenticationError):
            attacker.execute("alice", [Clear(all=True)])
        with pytest.raises(AuthenticationError):
            attacker.status()
    finally:
        attacker.close()
    alice = _client(address, credentials["alice"])
    try:
        with pytest.raises(UnknownVariableError):  # nothing was stored under any name
            alice.execute("alice", [Get("planted")])
    finally:
        alice.close()
    _assert_healthy(address, credentials["alice"])


def test_operator_token_is_not_a_tenant_credential(token_worker, credentials):
    address, _ = token_worker
    client = _client(address, credentials["ops"])
    try:
        with pytest.raises(AuthenticationError):
            client.execute("ops", [Put("x", 1.0)])
    finally:
        client.close()


def test_same_tenant_id_with_different_tokens_sees_nothing_of_the_other(token_worker, credentials):
    address, _ = token_worker
    alice = _client(address, credentials["alice"])
    bob = _client(address, credentials["bob"])
    try:
        alice.execute("shared", [Put("secret", np.arange(4.0))])
        with pytest.raises(UnknownVariableError):
            bob.execute("shared", [Get("secret")])
        bob.execute("shared", [Put("mine", np.ones(2)), Clear(all=True)])
        (kept,) = alice.execute("shared", [Get("secret")])  # bob's CLEAR(all) left alice's data
        np.testing.assert_array_equal(np.ravel(kept), np.arange(4.0))
        # The envelope's tenant field does not choose the scope: alice is alice under any id.
        (same,) = alice.execute("some-other-id", [Get("secret")])
        np.testing.assert_array_equal(np.ravel(same), np.arange(4.0))
        alice.execute("shared", [Clear(all=True)])
    finally:
        alice.close()
        bob.close()


def test_two_contexts_with_one_tenant_id_and_different_tokens(token_worker, credentials):
    address, _ = token_worker
    A = np.arange(20.0).reshape(10, 2)
    ctx_a = fl.Context(workers=[address], tenant="shared", token=credentials["alice"])
    ctx_b = fl.Context(workers=[address], tenant="shared", token=credentials["bob"])
    try:
        X = ctx_a.scatter(A)
        np.testing.assert_allclose((X.T @ X).compute(), A.T @ A)
        Y = ctx_b.scatter(np.ones((10, 2)))
        np.testing.assert_allclose((Y.T @ Y).compute(), np.full((2, 2), 10.0))
        ctx_b.close()  # CLEAR(all) of bob's scope
        np.testing.assert_allclose(((X * 2).T @ X).compute(), 2 * A.T @ A, rtol=1e-12)
    finally:
        ctx_b.close()
        ctx_a.close()


def test_status_shows_a_tenant_only_itself_and_an_operator_everyone(token_worker, credentials):
    address, data_dir = token_worker
    alice, bob = _client(address, credentials["alice"]), _client(address, credentials["bob"])
    operator = _client(address, credentials["ops"])
    try:
        alice.execute("a", [Put("a1", np.ones(3)), Put("a2", np.ones(3))])
        bob.execute("b", [Put("b1", np.ones(5))])
        own = alice.status()
        everyone = operator.status()
        assert [(t.tenant, t.variables) for t in own.tenants] == [("alice", 2)]
        assert not own.HasField("read_cache") and not own.HasField("lineage_cache")
        assert {t.tenant for t in everyone.tenants} >= {"alice", "bob"}
        assert everyone.HasField("lineage_cache")
        for status in (own, everyone):
            assert status.data_dir == data_dir.name
            assert all(not t.tenant_hint for t in status.tenants)
            raw = status.SerializeToString()
            assert str(data_dir) not in status.data_dir
            for secret in ("alice", "bob", "ops"):
                token = str(credentials[secret])
                assert token.encode() not in raw
                assert token_digest(token).encode() not in raw
        cli = _fedla("status", address, f"--token={credentials['alice']}")
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "alice" in cli.stdout and "bob" not in cli.stdout
        assert str(data_dir) not in cli.stdout and credentials["alice"] not in cli.stdout
        cli = _fedla("status", address, f"--token={credentials['ops']}")
        assert "alice" in cli.stdout and "bob" in cli.stdout and "lineage cache" in cli.stdout
    finally:
        alice.execute("a", [Clear(all=True)])
        bob.execute("b", [Clear(all=True)])
        for client in (alice, bob, operator):
            client.close()


def test_status_without_credentials_names_only_the_callers_own_tenant(tmp_path):
    with worker_process(tmp_path) as (_, address):
        client = _client(address)
        try:
            client.execute("me", [Put("x", 1.0)])
            client.execute("someone-else", [Put("y", 1.0)])
            status = client.status("me")
        finally:
            client.close()
    assert sorted(t.tenant for t in status.tenants) == ["", "me"]
    assert status.data_dir == tmp_path.name
    assert b"someone-else" not in status.SerializeToString()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two development CAs made by ``fedla certs``: the worker's and a stranger's."""
    ours, theirs = tmp_path_factory.mktemp("certs-ours"), tmp_path_factory.mktemp("certs-theirs")
    for directory, client in ((ours, "site-analyst"), (theirs, "intruder")):
        result = _fedla("certs", str(directory), "--host", "worker.example", "--client", client)
        assert result.returncode == 0, result.stderr
    again = _fedla("certs", str(ours))
    assert again.returncode != 0 and "refusing to overwrite" in again.stderr
    return ours, theirs


@pytest.fixture(scope="module")
def mtls_worker(
    tmp_path_factory: pytest.TempPathFactory, certs: tuple[Path, Path]
) -> Iterator[str]:
    ours, _ = certs
    args = ("--tls-cert", str(ours / "server.pem"), "--tls-key", str(ours / "server.key"),
            "--tls-client-ca", str(ours / "ca.pem"))
    with worker_process(tmp_path_factory.mktemp("mtls-site"), *args) as (_, address):
        yield address


def test_client_certificate_subject_is_the_tenant(mtls_worker, certs):
    ours, _ = certs
    tls = ClientTls(ours / "ca.pem", ours / "client.pem", ours / "client.key")
    client = _client(mtls_worker, tls=tls)
    try:
        client.execute("claimed-1", [Put("x", np.arange(3.0))])
        (value,) = client.execute("claimed-2", [Get("x")])  # same certificate, same scope
        np.testing.assert_array_equal(np.ravel(value), np.arange(3.0))
        assert [t.tenant for t in client.status().tenants] == ["site-analyst"]
    finally:
        client.close()
    with fl.Context(workers=[mtls_worker], tls_ca=ours / "ca.pem", tls_cert=ours / "client.pem",
                    tls_key=ours / "client.key") as ctx:
        A = np.arange(8.0).reshape(4, 2)
        X = ctx.scatter(A)
        np.testing.assert_allclose((X.T @ X).compute(), A.T @ A)


@pytest.mark.parametrize("who", ["other-ca", "no-cert", "plaintext"])
def test_client_without_a_certificate_of_the_workers_ca_is_refused(mtls_worker, certs, who):
    ours, theirs = certs
    tls = {
        "other-ca": ClientTls(ours / "ca.pem", theirs / "client.pem", theirs / "client.key"),
        "no-cert": ClientTls(ours / "ca.pem"),
        "plaintext": None,
    }[who]
    client = _client(mtls_worker, tls=tls)
    try:
        with pytest.raises((WorkerUnavailableError, AuthenticationError)):
            client.execute("site-analyst", [Put("planted", np.ones(3))])
    finally:
        client.close()
    good = _client(mtls_worker, tls=ClientTls(ours / "ca.pem", ours / "client.pem",
                                              ours / "client.key"))
    try:
        with pytest.raises(UnknownVariableError):
            good.execute("site-analyst", [Get("planted")])
    finally:
        good.close()


def test_a_worker_certificate_from_another_ca_is_not_trusted(mtls_worker, certs):
    ours, theirs = certs
    client = _client(mtls_worker, tls=ClientTls(theirs / "ca.pem", ours / "client.pem",
                                                ours / "client.key"))
    try:
        with pytest.raises(WorkerUnavailableError):
            client.execute("x", [Put("x", 1.0)])
    finally:
        client.close()


def test_serving_all_interfaces_without_credentials_needs_insecure(tmp_path):
    refused = _fedla("worker", "--port", "0", "--data-dir", str(tmp_path), "--host", "0.0.0.0")
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert "refusing to serve 0.0.0.0 without credentials" in refused.stderr
    assert "--insecure" in refused.stderr and "Traceback" not in refused.stderr

    command = [sys.executable, "-m", "fedla", "worker", "--port", "0", "--data-dir",
               str(tmp_path), "--host", "0.0.0.0", "--insecure"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = _read_line(process.stdout, START_TIMEOUT)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=EXIT_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert line.startswith("fedla worker listening on 0.0.0.0:")
    assert "WARNING" in stderr and "INSECURE" in stderr and "without credentials" in stderr


def test_serving_all_interfaces_with_a_token_file_needs_no_insecure(tmp_path, credentials):
    args = ("--host", "0.0.0.0", "--token-file", str(credentials["tenants"]))
    with worker_process(tmp_path, *args) as (_, address):
        port = address.rsplit(":", 1)[1]
        _assert_healthy(f"127.0.0.1:{port}", credentials["bob"])



def _authenticator(client_certificates: bool = False) -> Authenticator:
    return Authenticator({"alice": token_digest("a-token"), "bob": token_digest("b-token")},
                         {"ops": token_digest("o-token")}, client_certificates)


@pytest.mark.parametrize(
    "metadata, auth_context, operator, expected",
    [
        ([("authorization", "Bearer a-token")], {}, False, Principal("alice")),
        ([("authorization", "Bearer b-token")], {}, True, Principal("bob")),
        ([("authorization", "Bearer o-token")], {}, True, Principal("ops", operator=True)),
        ([], {"x509_common_name": [b"carol"]}, False, Principal("carol")),
        # A presented token decides, even over a verified certificate.
        ([("authorization", "Bearer a-token")], {"x509_common_name": [b"carol"]}, False,
         Principal("alice")),
    ],
    ids=["tenant", "tenant-at-status", "operator", "certificate", "token-over-certificate"],
)
def test_authenticator_identifies_the_credential(metadata, auth_context, operator, expected):
    got = _authenticator(client_certificates=True).identify(metadata, auth_context,
                                                            operator=operator)
    assert got == expected


@pytest.mark.parametrize(
    "metadata, auth_context",
    [([], {}), ([("authorization", "Bearer o-token")], {}),
     ([("authorization", "Bearer a-token ")], {}), ([("x-tenant", "alice")], {}),
     ([], {"x509_common_name": [b"carol"]})],
    ids=["nothing", "operator-token-on-a-call", "altered-token", "other-header",
         "certificate-without-client-ca"],
)
def test_authenticator_refuses_anything_else(metadata, auth_context):
    with pytest.raises(AuthenticationError):
        _authenticator().identify(metadata, auth_context)


def test_without_credentials_the_envelope_names_the_tenant():
    assert Authenticator({}, {}).identify([("authorization", "Bearer x")], {}) is None


def test_a_refused_credential_is_in_the_audit_log(tmp_path, credentials):
    """Calls refused before any request is decoded (here: a wrong token) are audited too."""
    log = tmp_path / "audit.jsonl"
    args = ("--token-file", str(credentials["tenants"]), "--audit-log", str(log))
    with worker_process(tmp_path, *args) as (_, address):
        client = _client(address, "not-a-token")
        try:
            with pytest.raises(AuthenticationError):
                client.execute("alice", [Get("x")])
        finally:
            client.close()
        _assert_healthy(address, str(credentials["alice"]))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    refused = [entry for entry in lines if entry["request"] == "CALL"]
    assert len(refused) == 1 and refused[0]["outcome"] == "refused", lines
    assert refused[0]["tenant"] == "" and "AuthenticationError" not in refused[0]["reason"]
    assert "token" in refused[0]["reason"].lower()
    assert any(entry["request"] == "PUT" and entry["tenant"] == "alice" for entry in lines)
