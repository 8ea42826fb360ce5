"""A swarm's certificate authority and the certificates it issues (pure crypto, no network).

Roles live in a URI subject-alternative name: ``swarmrank://<swarm>/coordinator`` or
``swarmrank://<swarm>/node/<node_id>``. Node certificates also carry fixed DNS names under
``.swarmrank.invalid`` (never a real host), so the coordinator dials a node by address while TLS
checks a name the CA only ever gives to nodes; a node's certificate request cannot choose its names.
TLS keys are ECDSA P-256 (what every TLS stack speaks); a node's Ed25519 identity is bound to its
certificate by a signature over the request (``protos.signing.join_bytes``), checked by the caller.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SCHEME = "swarmrank://"
NODE_NAME = "node.swarmrank.invalid"
COORDINATOR_NAME = "coordinator.swarmrank.invalid"
CA_LIFETIME = datetime.timedelta(days=3650)
SERVER_LIFETIME = datetime.timedelta(days=365)
MAX_CSR_BYTES = 4096
CLOCK_SKEW = datetime.timedelta(minutes=5)


class PkiError(ValueError):
    """A certificate, request or key file is malformed, of the wrong kind, or unsafe."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def coordinator_uri(swarm_id: str) -> str:
    return f"{SCHEME}{swarm_id}/coordinator"


def node_uri(swarm_id: str, node_id: str) -> str:
    return f"{SCHEME}{swarm_id}/node/{node_id}"


@dataclass(frozen=True)
class Role:
    swarm_id: str
    kind: str      # "coordinator" or "node"
    node_id: str   # empty for the coordinator


def parse_role(uri: str) -> Role | None:
    """The role a URI SAN names, or None when it is not one of ours."""
    if not uri.startswith(SCHEME):
        return None
    parts = uri[len(SCHEME):].split("/")
    if len(parts) == 2 and parts[1] == "coordinator" and parts[0]:
        return Role(parts[0], "coordinator", "")
    if len(parts) == 3 and parts[1] == "node" and parts[0] and parts[2]:
        return Role(parts[0], "node", parts[2])
    return None


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("not an ECDSA private key")
    return key


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate: {exc}") from None


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, hex: what a join token pins."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def new_swarm_id() -> str:
    return secrets.token_hex(8)


def _builder(subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, lifetime: datetime.timedelta) -> x509.CertificateBuilder:
    now = _now()
    skew = min(CLOCK_SKEW, lifetime / 10)  # a little slack for peers' clocks, never most of a short lifetime
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer).public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - skew).not_valid_after(now + lifetime))


def create_ca(swarm_id: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"swarmrank CA {swarm_id}")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - CLOCK_SKEW).not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(builder: x509.CertificateBuilder, names: list[x509.GeneralName], ca_key: ec.EllipticCurvePrivateKey,
          ca_cert: x509.Certificate) -> x509.Certificate:
    return (builder
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key, hashes.SHA256()))


def _host_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def issue_coordinator_cert(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, swarm_id: str,
                           advertise: list[str]) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The coordinator's certificate: server for clients (the ``advertise`` names plus loopback),
    server for nodes (the fixed coordinator name) and client towards nodes (the coordinator role)."""
    key = new_key()
    hosts = list(dict.fromkeys([*advertise, "localhost", "127.0.0.1", "::1", COORDINATOR_NAME]))
    names = [_host_name(h) for h in hosts] + [x509.UniformResourceIdentifier(coordinator_uri(swarm_id))]
    cert = _leaf(_builder(f"swarmrank coordinator {swarm_id}", ca_cert.subject, key.public_key(), SERVER_LIFETIME),
                 names, ca_key, ca_cert)
    return key, cert


def make_csr(key: ec.EllipticCurvePrivateKey) -> bytes:
    """A certificate request (DER). Its names are ignored: the CA decides them."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "swarmrank node")])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def issue_node_cert(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, swarm_id: str, node_id: str,
                    csr_der: bytes, lifetime: datetime.timedelta) -> x509.Certificate:
    """A short-lived node certificate for the key in ``csr_der`` (whose self-signature must verify)."""
    if len(csr_der) > MAX_CSR_BYTES:
        raise PkiError(f"certificate request larger than {MAX_CSR_BYTES} bytes")
    try:
        csr = x509.load_der_x509_csr(csr_der)
    except ValueError:
        raise PkiError("malformed certificate request") from None
    public_key = csr.public_key()
    if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey) or \
            not isinstance(public_key.curve, ec.SECP256R1):
        raise PkiError("the certificate request must be a self-signed ECDSA P-256 request")
    names: list[x509.GeneralName] = [x509.DNSName(NODE_NAME), x509.DNSName(f"{node_id}.{NODE_NAME}"),
                                     x509.UniformResourceIdentifier(node_uri(swarm_id, node_id))]
    return _leaf(_builder(f"swarmrank node {node_id}", ca_cert.subject, public_key, lifetime), names, ca_key, ca_cert)


def roles_of(cert: x509.Certificate) -> list[Role]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [r for r in (parse_role(u) for u in san.get_values_for_type(x509.UniformResourceIdentifier)) if r]


def remaining_fraction(cert: x509.Certificate) -> float:
    """How much of the certificate's lifetime is left (0 when expired)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    total = (end - start).total_seconds()
    return max(0.0, (end - _now()).total_seconds() / total) if total > 0 else 0.0


# --- files ---------------------------------------------------------------------------------------

def write_private(path: Path, data: bytes) -> None:
    """Write a secret 0600 from the first byte (parent 0700); never overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def replace_private(path: Path, data: bytes) -> None:
    """Atomically replace a secret (renewed key), 0600."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    write_private(tmp, data)
    os.replace(tmp, path)


def read_private(path: Path) -> bytes:
    """Read a secret, refusing one that others can read."""
    path = Path(path).expanduser()
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise PermissionError(f"private file {path} is readable by others (mode {mode:o}); chmod 600 it")
    return path.read_bytes()


def psk_file(key: bytes) -> bytes:
    """A libp2p private-network key in go-libp2p's format (three lines)."""
    if len(key) != 32:
        raise PkiError("a libp2p swarm key is 32 bytes")
    return b"/key/swarm/psk/1.0.0/\n/base16/\n" + key.hex().encode() + b"\n"
