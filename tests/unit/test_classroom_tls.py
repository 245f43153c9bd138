"""HTTP or HTTPS for a classroom hub: `scripts/classroom.sh tls`, the decision `start` makes.

On loopback the hub may serve plain HTTP; anywhere else it serves HTTPS, with the given
certificate or one the script makes with openssl for that address (key 0600, fingerprint
printed), and plain HTTP only with CLASSROOM_ALLOW_HTTP=1. The hub's own configuration
refuses plain HTTP off loopback too. Nothing is started: only the script's decision and the
certificate openssl makes are checked (by Python's ssl module, not by openssl).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import secrets
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "classroom.sh"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture()
def name() -> str:
    name = f"labkit-tls-test-{secrets.token_hex(3)}"
    yield name
    shutil.rmtree(ROOT / ".cache" / "classroom" / name, ignore_errors=True)


def tls(name: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("CLASSROOM_") and k != "LEARNERS"}
    return subprocess.run([str(SCRIPT), "tls"], env=clean | {"CLASSROOM_NAME": name, **env},
                          capture_output=True, text=True, timeout=120)


def certificate(name: str) -> tuple[Path, Path]:
    folder = ROOT / ".cache" / "classroom" / name / "tls"
    return folder / "hub.crt", folder / "hub.key"


def fingerprint(cert: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def subject_alt_names(cert: Path) -> list[tuple[str, str]]:
    parsed = x509.load_pem_x509_certificate(cert.read_bytes())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ([("DNS", n) for n in names.get_values_for_type(x509.DNSName)]
            + [("IP Address", str(n)) for n in names.get_values_for_type(x509.IPAddress)])


def handshake(cert: Path, key: Path, address: str) -> str:
    """A TLS handshake with a server using cert/key, by a client that trusts cert and
    checks it names ``address``: "ok", or why it failed."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve() -> None:
            conn, _ = listener.accept()
            with contextlib.suppress(OSError), server.wrap_socket(conn, server_side=True):
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                    client.wrap_socket(raw, server_hostname=address):
                return "ok"
        except ssl.SSLCertVerificationError as failed:
            return failed.verify_message
        finally:
            thread.join(timeout=10)


@pytest.mark.parametrize("ip", ["", "127.0.0.1", "::1", "localhost"])
def test_loopback_serves_plain_http_and_makes_no_certificate(name: str, ip: str) -> None:
    done = tls(name, **({"CLASSROOM_IP": ip} if ip else {}))
    assert done.returncode == 0, done.stderr
    assert "HTTPS" not in done.stdout and "WARNING" not in done.stdout
    assert not certificate(name)[0].exists()


def test_off_loopback_a_self_signed_certificate_for_that_address(name: str) -> None:
    done = tls(name, CLASSROOM_IP="192.0.2.10")
    assert done.returncode == 0, done.stderr
    cert, key = certificate(name)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.parent.stat().st_mode) == 0o700
    assert ("IP Address", "192.0.2.10") in subject_alt_names(cert)
    # the fingerprint printed is the certificate's (SHA-256 of its DER form)
    assert fingerprint(cert) in done.stdout, done.stdout
    # a browser that trusts this certificate accepts it for that address, and no other
    assert handshake(cert, key, "192.0.2.10") == "ok"
    assert "match" in handshake(cert, key, "192.0.2.11")
    # started again on the same address: the same certificate, learners keep trusting it
    again = tls(name, CLASSROOM_IP="192.0.2.10")
    assert again.returncode == 0 and fingerprint(cert) in again.stdout
    assert "made a self-signed" not in again.stdout
    # another address: a new certificate for it
    moved = tls(name, CLASSROOM_IP="198.51.100.7")
    assert moved.returncode == 0, moved.stderr
    assert ("IP Address", "198.51.100.7") in subject_alt_names(cert)
    assert fingerprint(cert) in moved.stdout


def test_every_address_gets_a_certificate_naming_this_machines_addresses(name: str) -> None:
    # make test starts engines beside the unit tests: a bridge address may come or go while
    # the certificate is made, so only the addresses there before and after must be named
    before = set(addresses())
    done = tls(name, CLASSROOM_IP="0.0.0.0")
    assert done.returncode == 0, done.stderr
    names = subject_alt_names(certificate(name)[0])
    assert ("DNS", os.uname().nodename) in names
    machine = before & set(addresses())
    assert machine
    assert {("IP Address", str(ipaddress.ip_address(a))) for a in machine} <= set(names)


def addresses() -> list[str]:
    """This machine's addresses, as ``hostname -I`` lists them."""
    return subprocess.run(["hostname", "-I"], capture_output=True, text=True,
                          check=True).stdout.split()


def test_a_given_certificate_is_used_as_it_is(name: str, tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=given", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    done = tls(name, CLASSROOM_IP="192.0.2.10", CLASSROOM_SSL_CERT=str(cert),
               CLASSROOM_SSL_KEY=str(key))
    assert done.returncode == 0, done.stderr
    assert fingerprint(cert) in done.stdout
    assert not certificate(name)[0].exists()


@pytest.mark.parametrize("given", [{"CLASSROOM_SSL_CERT": "/dev/null"},
                                   {"CLASSROOM_SSL_KEY": "/dev/null"},
                                   {"CLASSROOM_SSL_CERT": "/nonexistent/c.pem",
                                    "CLASSROOM_SSL_KEY": "/nonexistent/k.pem"}])
def test_half_a_certificate_is_refused_in_one_sentence(name: str, given: dict) -> None:
    done = tls(name, CLASSROOM_IP="192.0.2.10", **given)
    assert done.returncode != 0
    assert re.fullmatch(r"classroom: [^\n]+\.\n", done.stderr), done.stderr
    assert "CLASSROOM_SSL_CERT" in done.stderr
    assert not certificate(name)[0].exists()


def test_plain_http_off_loopback_only_when_asked_for(name: str) -> None:
    done = tls(name, CLASSROOM_IP="192.0.2.10", CLASSROOM_ALLOW_HTTP="1")
    assert done.returncode == 0, done.stderr
    assert "WARNING: plain HTTP on 192.0.2.10" in done.stdout
    assert not certificate(name)[0].exists()


def hub_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Load classroom/jupyterhub_config.py as JupyterHub does (get_config), nothing started."""
    code = ("import runpy, sys; from traitlets.config import Config; c = Config();"
            "runpy.run_path(sys.argv[1], init_globals={'get_config': lambda: c});"
            "print(c.JupyterHub.get('ssl_cert', 'NO-SSL'))")
    base = {k: v for k, v in os.environ.items() if not k.startswith("CLASSROOM_")}
    base |= {"CLASSROOM_NAME": "t", "CLASSROOM_STATE": str(tmp_path),
             "CLASSROOM_HUB_IP": "172.17.0.1"}
    return subprocess.run([sys.executable, "-c", code,
                           str(ROOT / "classroom" / "jupyterhub_config.py")],
                          env=base | env, capture_output=True, text=True, timeout=60)


def test_the_hub_config_refuses_plain_http_off_loopback(tmp_path: Path) -> None:
    refused = hub_config(tmp_path, CLASSROOM_IP="192.0.2.10")
    assert refused.returncode != 0
    assert "refusing plain HTTP on 192.0.2.10" in refused.stderr, refused.stderr
    allowed = hub_config(tmp_path, CLASSROOM_IP="192.0.2.10", CLASSROOM_ALLOW_HTTP="1")
    assert allowed.returncode == 0, allowed.stderr
    local = hub_config(tmp_path)
    assert local.returncode == 0 and "NO-SSL" in local.stdout, local.stderr
    https = hub_config(tmp_path, CLASSROOM_IP="192.0.2.10", CLASSROOM_SSL_CERT="/c.pem",
                       CLASSROOM_SSL_KEY="/k.pem")
    assert https.returncode == 0 and "/c.pem" in https.stdout, https.stderr
