"""A node's membership of a private swarm: its TLS key and short-lived certificate.

First start: ``--join TOKEN`` pins the swarm CA by the token's fingerprint (taken from the chain the
coordinator presents, nothing else trusted), sends a certificate request signed by the node's
Ed25519 identity, and keeps key, certificate and CA in ``--tls-dir``. Later starts reuse them; the
registration loop renews the certificate at half its lifetime while the node is healthy.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

from swarmrank.protos import limits, signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import access_pb2 as apb
from swarmrank.protos.v1 import access_pb2_grpc
from swarmrank.rpc import credentials, pki, tls

log = logging.getLogger("swarmrank.node.membership")

JOIN_TIMEOUT = 30.0
RENEW_AT = 0.5  # renew when less than this fraction of the lifetime is left


class JoinFailed(ConnectionError):
    pass


@dataclass
class Membership:
    tls_dir: Path
    swarm_id: str
    node_port: int
    ca_pem: bytes
    key_pem: bytes
    chain_pem: bytes

    def server_credentials(self) -> grpc.ServerCredentials:
        return tls.dynamic_server_credentials(lambda: (self.key_pem, self.chain_pem), self.ca_pem)

    def coordinator_channel(self, coordinator: str, extra_options: list[tuple[str, int]]) -> grpc.aio.Channel:
        """mTLS to the coordinator's node port (the host the operator gave, the port the coordinator told us)."""
        host = coordinator.rpartition(":")[0]
        creds = tls.channel_credentials(self.ca_pem, self.key_pem, self.chain_pem)
        return grpc.aio.secure_channel(f"{host}:{self.node_port}", creds,
                                       options=[*limits.GRPC_OPTIONS, *extra_options, *tls.name_override(pki.COORDINATOR_NAME)])

    def renew_due(self) -> bool:
        return pki.remaining_fraction(pki.load_cert(self.chain_pem)) < RENEW_AT

    def expired(self) -> bool:
        return pki.remaining_fraction(pki.load_cert(self.chain_pem)) <= 0

    async def renew(self, channel: grpc.aio.Channel, identity: Identity) -> None:
        key = pki.new_key()
        csr = pki.make_csr(key)
        reply = await access_pb2_grpc.AccessStub(channel).Renew(
            apb.RenewRequest(public_key=identity.public_key, csr=csr, signature=identity.sign(signing.join_bytes("renew", csr))),
            timeout=JOIN_TIMEOUT)
        self._store(pki.key_pem(key), reply)
        log.info("certificate renewed (valid for %.0fs)", pki.load_cert(self.chain_pem).not_valid_after_utc.timestamp()
                 - pki.load_cert(self.chain_pem).not_valid_before_utc.timestamp())

    def _store(self, key_pem: bytes, reply: apb.CertificateResponse) -> None:
        if reply.ca_pem != self.ca_pem:
            raise JoinFailed("the coordinator answered with a different CA")
        leaf = pki.load_cert(reply.certificate_pem)
        if not any(r.kind == "node" and r.swarm_id == self.swarm_id for r in pki.roles_of(leaf)):
            raise JoinFailed("the coordinator issued a certificate without a node role")
        pki.replace_private(self.tls_dir / "node-tls.key", key_pem)
        (self.tls_dir / "node.crt").write_bytes(reply.certificate_pem)
        self.key_pem, self.chain_pem = key_pem, reply.certificate_pem


def load(tls_dir: Path) -> Membership | None:
    tls_dir = Path(tls_dir).expanduser()
    meta = tls_dir / "membership.json"
    if not meta.is_file():
        return None
    d = json.loads(meta.read_text())
    return Membership(tls_dir, d["swarm_id"], int(d["node_port"]), (tls_dir / "ca.crt").read_bytes(),
                      pki.read_private(tls_dir / "node-tls.key"), (tls_dir / "node.crt").read_bytes())


async def join(tls_dir: Path, coordinator: str, token_text: str, identity: Identity) -> Membership:
    """Trade a join token for a node certificate (see the module docstring)."""
    token = credentials.parse_join_token(token_text)
    if not coordinator:
        raise JoinFailed("--join needs --coordinator HOST:PORT")
    try:
        ca_pem = await asyncio.to_thread(tls.fetch_pinned_ca, coordinator, token.ca_fingerprint, JOIN_TIMEOUT)
    except OSError as exc:
        raise JoinFailed(f"cannot reach the coordinator at {coordinator} over TLS: {exc}") from None
    key = pki.new_key()
    csr = pki.make_csr(key)
    request = apb.JoinRequest(token=str(token), public_key=identity.public_key, csr=csr,
                              signature=identity.sign(signing.join_bytes(token.token_id, csr)))
    async with grpc.aio.secure_channel(coordinator, tls.channel_credentials(ca_pem),
                                       options=[*limits.GRPC_OPTIONS, *tls.name_override(pki.COORDINATOR_NAME)]) as channel:
        try:
            reply = await access_pb2_grpc.AccessStub(channel).Join(request, timeout=JOIN_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            raise JoinFailed(f"the coordinator refused to join: {exc.code().name}: {exc.details()}") from None
    tls_dir = Path(tls_dir).expanduser()
    tls_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for stale in ("node-tls.key", "node.crt", "ca.crt", "membership.json"):
        (tls_dir / stale).unlink(missing_ok=True)
    membership = Membership(tls_dir, reply.swarm_id, reply.node_port, ca_pem, b"", b"")
    membership._store(pki.key_pem(key), reply)
    (tls_dir / "ca.crt").write_bytes(ca_pem)
    (tls_dir / "membership.json").write_text(json.dumps({"swarm_id": reply.swarm_id, "node_port": reply.node_port,
                                                         "ca_fingerprint": token.ca_fingerprint}) + "\n")
    log.info("joined swarm %s (token %s); certificate in %s", reply.swarm_id, token.token_id, tls_dir)
    return membership


async def obtain(tls_dir: Path, coordinator: str, token_text: str, identity: Identity) -> Membership | None:
    """The membership to serve with: the stored one (when it is for the token's swarm and not
    expired), a new one from the token, or None (no swarm: plaintext)."""
    current = load(tls_dir)
    if token_text:
        fingerprint = credentials.parse_join_token(token_text).ca_fingerprint
        if current is not None and pki.fingerprint(pki.load_cert(current.ca_pem)) == fingerprint and not current.expired():
            return current
        return await join(tls_dir, coordinator, token_text, identity)
    if current is not None and current.expired():
        raise JoinFailed(f"the certificate in {tls_dir} has expired; start again with --join and a new token")
    return current
