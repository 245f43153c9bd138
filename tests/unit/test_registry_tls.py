"""The local registry's certificates: names covered, and a chain Python's TLS accepts."""

from __future__ import annotations

import ssl

from labkit.registry import server_config as registry_config
from labkit.registry import tls as registry_tls


def test_certificate_names_every_host_given():
    pems = registry_tls.make_certificates(["localhost", "127.0.0.1", "::1", "172.17.0.5"])
    assert set(registry_tls.certificate_hosts(pems[registry_tls.CERT_FILE])) == {
        "localhost", "127.0.0.1", "::1", "172.17.0.5"}
    assert registry_tls.certificate_hosts(None) == []
    assert registry_tls.certificate_hosts("not a certificate") == []


def _handshake(client: ssl.SSLObject, server: ssl.SSLObject, pipes) -> None:
    """Run a TLS handshake between two in-memory ends, moving bytes until both are done."""
    (c_in, c_out), (s_in, s_out) = pipes
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


def _pipes():
    return (ssl.MemoryBIO(), ssl.MemoryBIO()), (ssl.MemoryBIO(), ssl.MemoryBIO())


def _server(tmp_path, pems) -> ssl.SSLContext:
    (tmp_path / "tls.crt").write_text(pems[registry_tls.CERT_FILE])
    (tmp_path / "tls.key").write_text(pems[registry_tls.KEY_FILE])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    return server


def test_a_client_verifying_against_the_ca_accepts_the_registry(tmp_path):
    pems = registry_tls.make_certificates(["localhost", "172.17.0.5"])
    server, client = _server(tmp_path, pems), ssl.create_default_context(
        cadata=pems[registry_tls.CA_FILE])
    for host in ("localhost", "172.17.0.5"):
        pipes = _pipes()
        c = client.wrap_bio(*pipes[0], server_hostname=host)
        s = server.wrap_bio(*pipes[1], server_side=True)
        _handshake(c, s, pipes)
        assert c.getpeercert()["subject"] == ((("commonName", "labkit registry"),),)


def test_another_ca_or_another_host_is_refused(tmp_path):
    pems = registry_tls.make_certificates(["localhost"])
    other = registry_tls.make_certificates(["localhost"])[registry_tls.CA_FILE]
    server = _server(tmp_path, pems)
    for ca, host in ((other, "localhost"), (pems[registry_tls.CA_FILE], "172.17.0.9")):
        pipes = _pipes()
        c = ssl.create_default_context(cadata=ca).wrap_bio(*pipes[0], server_hostname=host)
        s = server.wrap_bio(*pipes[1], server_side=True)
        try:
            _handshake(c, s, pipes)
        except ssl.SSLCertVerificationError:
            continue
        raise AssertionError(f"accepted a certificate it must refuse ({host})")


def test_the_registry_serves_https_only_with_that_certificate():
    config = registry_config.config_yaml()
    assert f"certificate: {registry_config.CONFIG_DIR}/{registry_tls.CERT_FILE}" in config
    assert f"key: {registry_config.CONFIG_DIR}/{registry_tls.KEY_FILE}" in config
