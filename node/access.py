"""Who may call a node of a private swarm: Generate and Judge only for the swarm's coordinator.

The TLS handshake already refused any peer without a certificate from the swarm CA; this policy
(run by the gRPC guard before every call) checks the role the certificate names."""

from __future__ import annotations

import grpc

from swarmrank.rpc.guard import Refused
from swarmrank.rpc.tls import PeerCert

COORDINATOR_ONLY = {"/swarmrank.v1.Node/Generate", "/swarmrank.v1.Node/Judge"}


class NodePolicy:
    def __init__(self, swarm_id: str) -> None:
        self.swarm_id = swarm_id

    def authorize(self, method: str, peer: PeerCert | None, bearer: str | None) -> object:
        name = method.rsplit("/", 1)[-1]
        if peer is None:  # only reachable if the server were not mTLS
            raise Refused(grpc.StatusCode.UNAUTHENTICATED, f"{name} needs a certificate of this swarm", "cert_missing")
        role = peer.role(self.swarm_id)
        if role is None:
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, f"{name}: the certificate names no role in swarm {self.swarm_id}",
                          "wrong_swarm")
        if method in COORDINATOR_ONLY and role.kind != "coordinator":
            raise Refused(grpc.StatusCode.PERMISSION_DENIED, f"{name} is served only to the swarm's coordinator, not to a "
                                                             f"{role.kind} certificate", "wrong_role")
        return role
