"""A swarm directory (``swarmrank swarm init DIR``): everything the coordinator of a private swarm
serves with, and what its operator's commands read.

    ca.crt  ca.key              the swarm's certificate authority (key 0600)
    coordinator.crt/.key        the coordinator's certificate chain and TLS key (key 0600)
    admin.key                   the first admin API key (0600)
    swarm.key                   the libp2p private-network key (go-libp2p PSK format, 0600)
    swarm.json                  swarm id, CA fingerprint, advertised names, the admin key's hash
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from . import credentials, pki

FILES = ("ca.crt", "ca.key", "coordinator.crt", "coordinator.key", "admin.key", "swarm.key", "swarm.json")
DEFAULT_PORT = 50051


@dataclass(frozen=True)
class SwarmInfo:
    directory: Path
    swarm_id: str
    ca_fingerprint: str
    advertise: tuple[str, ...]
    admin_key_id: str
    admin_key_hash: bytes

    @property
    def ca_path(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def coordinator_address(self) -> str:
        """Where operator commands dial by default: the first advertised name."""
        host = self.advertise[0] if self.advertise else "127.0.0.1"
        return f"[{host}]:{DEFAULT_PORT}" if ":" in host else f"{host}:{DEFAULT_PORT}"

    def admin_key(self) -> str:
        return pki.read_private(self.directory / "admin.key").decode().strip()


@dataclass(frozen=True)
class CoordinatorCredentials:
    info: SwarmInfo
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate
    ca_pem: bytes
    key_pem: bytes
    chain_pem: bytes  # the coordinator's certificate followed by the CA's (nodes pin the CA from it)


def init(directory: Path, advertise: list[str]) -> tuple[SwarmInfo, str]:
    """Create a swarm in ``directory`` (empty or missing); returns it and the admin API key."""
    directory = Path(directory).expanduser()
    existing = [f for f in FILES if (directory / f).exists()]
    if existing:
        raise FileExistsError(f"{directory} already holds a swarm ({', '.join(existing)}); refusing to overwrite it")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    swarm_id = pki.new_swarm_id()
    ca_key, ca_cert = pki.create_ca(swarm_id)
    coord_key, coord_cert = pki.issue_coordinator_cert(ca_key, ca_cert, swarm_id, advertise)
    admin = credentials.new_api_key()
    pki.write_private(directory / "ca.key", pki.key_pem(ca_key))
    pki.write_private(directory / "coordinator.key", pki.key_pem(coord_key))
    pki.write_private(directory / "admin.key", (str(admin) + "\n").encode())
    pki.write_private(directory / "swarm.key", pki.psk_file(secrets.token_bytes(32)))
    (directory / "ca.crt").write_bytes(pki.cert_pem(ca_cert))
    (directory / "coordinator.crt").write_bytes(pki.cert_pem(coord_cert) + pki.cert_pem(ca_cert))
    info = SwarmInfo(directory, swarm_id, pki.fingerprint(ca_cert), tuple(advertise), admin.key_id,
                     credentials.secret_hash(admin.secret))
    (directory / "swarm.json").write_text(json.dumps({
        "swarm_id": swarm_id, "ca_fingerprint": info.ca_fingerprint, "advertise": advertise,
        "admin_key_id": admin.key_id, "admin_key_sha256": info.admin_key_hash.hex(),
    }, indent=2) + "\n")
    return info, str(admin)


def load_info(directory: Path) -> SwarmInfo:
    directory = Path(directory).expanduser()
    path = directory / "swarm.json"
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not a swarm directory (no swarm.json; create one with 'swarmrank swarm init')")
    d = json.loads(path.read_text())
    return SwarmInfo(directory, d["swarm_id"], d["ca_fingerprint"], tuple(d.get("advertise", [])), d["admin_key_id"],
                     bytes.fromhex(d["admin_key_sha256"]))


def load_coordinator(directory: Path) -> CoordinatorCredentials:
    info = load_info(directory)
    ca_pem = (info.directory / "ca.crt").read_bytes()
    ca_cert = pki.load_cert(ca_pem)
    if pki.fingerprint(ca_cert) != info.ca_fingerprint:
        raise pki.PkiError(f"{info.directory / 'ca.crt'} does not match the fingerprint in swarm.json")
    ca_key = pki.load_key(pki.read_private(info.directory / "ca.key"))
    key_pem = pki.read_private(info.directory / "coordinator.key")
    return CoordinatorCredentials(info, ca_key, ca_cert, ca_pem, key_pem, (info.directory / "coordinator.crt").read_bytes())
