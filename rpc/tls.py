"""TLS for gRPC: credentials, the peer certificate of a call, CA pinning, and the plaintext policy."""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from cryptography import x509

from . import pki

log = logging.getLogger("swarmrank.rpc.tls")

MAX_PEER_CACHE = 4096


def server_credentials(key_pem: bytes, chain_pem: bytes, ca_pem: bytes, *, require_client_cert: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key_pem, chain_pem)], root_certificates=ca_pem, require_client_auth=require_client_cert)


def dynamic_server_credentials(current: Callable[[], tuple[bytes, bytes]], ca_pem: bytes) -> grpc.ServerCredentials:
    """mTLS server credentials whose certificate can change (a renewed node certificate): each new
    handshake asks ``current()`` for (key PEM, chain PEM)."""
    served: list[tuple[bytes, bytes]] = [current()]

    def config(pair: tuple[bytes, bytes]) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca_pem)

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        pair = current()
        if pair == served[0]:
            return None
        served[0] = pair
        return config(pair)

    # grpc keeps the current configuration when the fetcher returns None (its stubs say otherwise)
    return grpc.dynamic_ssl_server_credentials(config(served[0]), fetch,  # type: ignore[arg-type]
                                               require_client_authentication=True)


def channel_credentials(ca_pem: bytes | None, key_pem: bytes | None = None, chain_pem: bytes | None = None) -> grpc.ChannelCredentials:
    """TLS towards a server; ``ca_pem`` None trusts the system store; a key and chain add a client certificate."""
    return grpc.ssl_channel_credentials(ca_pem, key_pem, chain_pem)


def name_override(name: str) -> list[tuple[str, str]]:
    """Channel options that check the server certificate for ``name`` instead of the dialled host."""
    return [("grpc.ssl_target_name_override", name), ("grpc.default_authority", name)]


@dataclass(frozen=True)
class PeerCert:
    serial: int
    roles: tuple[pki.Role, ...]

    def role(self, swarm_id: str) -> pki.Role | None:
        return next((r for r in self.roles if r.swarm_id == swarm_id), None)


class PeerCerts:
    """The verified client certificate of a call (gRPC already checked it against the CA), parsed once
    per distinct certificate."""

    def __init__(self) -> None:
        self._cache: OrderedDict[bytes, PeerCert] = OrderedDict()

    def of(self, context: grpc.aio.ServicerContext[Any, Any]) -> PeerCert | None:
        pems = list(context.auth_context().get("x509_pem_cert") or ())
        if not pems:
            return None
        pem = pems[0]
        cached = self._cache.get(pem)
        if cached is None:
            cert = pki.load_cert(pem)
            cached = PeerCert(cert.serial_number, tuple(pki.roles_of(cert)))
            self._cache[pem] = cached
            while len(self._cache) > MAX_PEER_CACHE:
                self._cache.popitem(last=False)
        return cached


def fetch_pinned_ca(address: str, ca_fingerprint: str, timeout: float = 10.0) -> bytes:
    """Connect to ``address`` without trusting anything yet, take the CA certificate from the chain
    the server sends, and return it (PEM) only if its SHA-256 matches the pin. gRPC then verifies the
    server against that CA as usual."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nothing is trusted from this connection but a cert matching the pin
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=host or None) as conn:
        chain = conn._sslobj.get_unverified_chain() or []  # type: ignore[attr-defined]
        ders = [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]
    for der in ders:
        cert = x509.load_der_x509_certificate(der)
        if pki.fingerprint(cert) == ca_fingerprint:
            return pki.cert_pem(cert)
    raise pki.PkiError(f"the server at {address} does not present the CA pinned by the join token "
                       f"(fingerprint {ca_fingerprint[:16]}…); wrong coordinator or wrong token")


def is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class InsecureRefused(ValueError):
    pass


def check_plaintext(listen: str, insecure: bool, what: str) -> None:
    """Plaintext is for loopback; elsewhere only with ``--insecure``, and then with a warning on every start."""
    if is_loopback(listen):
        return
    if not insecure:
        raise InsecureRefused(f"refusing to serve the {what} in plaintext on {listen}: join a swarm (TLS) or pass --insecure")
    log.warning("INSECURE: the %s serves plaintext gRPC on %s; anyone who reaches it can use it", what, listen)
