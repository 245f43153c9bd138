"""TLS for the local registry: its own certificate authority, a server certificate, and
the CA file this process verifies the registry's HTTP API against.

The registry serves HTTPS only, so its password never crosses a network in clear, also
when the engine is remote (its API is then reached over the engine's network). A new CA
and certificate are made each time the registry container is created; the CA's private
key is never kept. The engine pushes to ``localhost:PORT``, an address Docker allows
without certificate checks (loopback registries are "insecure-allowed"), so it speaks
HTTPS to the registry as is; labkit, reaching it by network address, verifies the
certificate against the CA.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from labkit.engine import settings
from labkit.registry.server_config import CONFIG_DIR

#: Where the certificate and its key live inside the registry container.
CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"
CA_FILE = "ca.crt"
VALID_DAYS = 365


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def make_certificates(hosts: list[str], common_name: str = "labkit registry") -> dict[str, str]:
    """A fresh CA and a server certificate for ``hosts`` (names or IP addresses), as PEM:
    ``{CA_FILE: ..., CERT_FILE: ..., KEY_FILE: ...}``. The CA's key is discarded."""
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{common_name} CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(_san(hosts), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return {CA_FILE: ca.public_bytes(serialization.Encoding.PEM).decode(),
            CERT_FILE: cert.public_bytes(serialization.Encoding.PEM).decode(),
            KEY_FILE: _pem(key)}


def certificate_hosts(pem: str | None) -> list[str]:
    """The names and addresses a PEM certificate is valid for ([] when there is none)."""
    if not pem:
        return []
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return []
    return ([str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
            + list(san.get_values_for_type(x509.DNSName)))


#: Reads one file of a container through the engine: ``read(container, path)``.
FileReader = Callable[[Any, str], "str | None"]


def fits(container: Any, read: FileReader, host: str) -> bool:
    """True when a registry container serves a certificate naming ``host``."""
    return host in certificate_hosts(read(container, f"{CONFIG_DIR}/{CERT_FILE}"))


def ca_path(container_id: str) -> Path:
    """Where this process keeps the CA of one registry container (a public certificate)."""
    return settings().state_dir / f"{settings().namespace}-registry-ca-{container_id[:12]}.pem"


def keep_ca(container: Any, read: FileReader) -> Path | None:
    """The CA file of a registry container, copied from it on first use (``read(container,
    path)`` reads a file through the engine, whose connection is itself verified); the CA
    files of this namespace's earlier registry containers are removed. None: no CA there."""
    path = ca_path(container.id)
    if path.is_file():
        return path
    pem = read(container, f"{CONFIG_DIR}/{CA_FILE}")
    if not pem:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"{settings().namespace}-registry-ca-*.pem"):
        old.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(pem)
    tmp.replace(path)
    return path
