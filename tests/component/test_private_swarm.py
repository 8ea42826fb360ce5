"""A private swarm on 127.0.0.1 with real TLS: a coordinator serving its swarm directory, nodes that
joined with a token and serve mTLS, clients with API keys; and every refusal the issue lists."""

from __future__ import annotations

import asyncio
import datetime
import logging
import sqlite3
import time
from pathlib import Path

import grpc
from pydantic import SecretStr
import pytest

from helpers import BackgroundLoop, RunningCoordinator, RunningNode, build_bigram_onnx, coordinator_settings, wait_for
from swarmrank.client import AdminClient, Client, PermissionDenied, RateLimited, Unauthenticated, Unavailable
from swarmrank.coordinator import ledger
from swarmrank.node import membership as node_membership
from swarmrank.node.backends.onnx import OnnxBackend
from swarmrank.node.settings import NodeSettings
from swarmrank.protos import limits, signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc, node_pb2, node_pb2_grpc
from swarmrank.rpc import pki, swarm_dir, tls
from swarmrank.rpc.tls import InsecureRefused

CORPORA = {"paris": "Paris is the capital of France.\0" * 8, "rome": "Rome? No: Paris. Rome is in Italy.\0" * 8,
           "lyon": "Lyon, Lille, Nice, Nantes, Toulouse.\0" * 8}


class PrivateSwarm:
    def __init__(self, bg, tmp_path: Path, **coordinator_overrides: object) -> None:
        self.bg = bg
        self.tmp = tmp_path
        self.info, self.admin_key = swarm_dir.init(tmp_path / "swarm", [])
        self.coord = RunningCoordinator(bg, coordinator_settings(tmp_path, swarm=self.info.directory, heartbeat_interval=0.5,
                                                                 seed=7, **coordinator_overrides))
        self.address = self.coord.address
        self.nodes: list[RunningNode] = []

    def admin(self, api_key: str | None = None) -> AdminClient:
        return AdminClient(self.address, api_key=api_key or self.admin_key, ca=self.info.ca_path)

    def client(self, api_key: str | None = None, **kw: object) -> Client:
        return Client(self.address, api_key=api_key or self.admin_key, ca=self.info.ca_path, retries=0, **kw)  # type: ignore[arg-type]

    def add_node(self, name: str, token: str) -> RunningNode:
        model = build_bigram_onnx(self.tmp / f"{name}.onnx", CORPORA[name])
        node = RunningNode(self.bg, NodeSettings(listen="127.0.0.1:0", key_path=self.tmp / f"{name}.key", model=name,
                                                 coordinator=self.address, join=SecretStr(token), tls_dir=self.tmp / f"{name}-tls",
                                                 default_max_tokens=40), OnnxBackend(model, name=name))
        self.nodes.append(node)
        return node

    def healthy(self) -> int:
        with self.client() as c:
            return sum(n.state == "healthy" for n in c.nodes())

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()
        self.coord.stop()


def private_swarm(bg, tmp_path: Path) -> PrivateSwarm:
    """A coordinator and three nodes that joined by token (stop it when done)."""
    swarm = PrivateSwarm(bg, tmp_path)
    try:
        with swarm.admin() as admin:
            token = admin.create_join_token(ttl_seconds=600, uses=3).token
        for name in CORPORA:
            swarm.add_node(name, token)
        wait_for(lambda: swarm.healthy() == 3, timeout=120)
    except BaseException:
        swarm.stop()
        raise
    return swarm


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory):
    """Shared by the tests that ask, read and get refused; each adds only what no other test counts
    (its own API keys, join tokens, identities). Starting a private swarm costs seconds."""
    loop = BackgroundLoop()
    try:
        swarm = private_swarm(loop, tmp_path_factory.mktemp("private"))
        yield swarm
        swarm.stop()
    finally:
        loop.close()


@pytest.fixture()
def own_private(bg, tmp_path):
    """A private swarm for one test that changes its membership."""
    swarm = private_swarm(bg, tmp_path)
    yield swarm
    swarm.stop()


def node_channel(swarm: PrivateSwarm, address: str, key_pem: bytes, chain_pem: bytes, name: str,
                 ca_pem: bytes | None = None) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(ca_pem or swarm.info.ca_path.read_bytes(), key_pem, chain_pem)
    return grpc.secure_channel(address, creds, options=[*limits.GRPC_OPTIONS, *tls.name_override(name)])


def issue(swarm: PrivateSwarm, node_id: str) -> tuple[bytes, bytes]:
    """A genuine node certificate of this swarm, made with the CA key (as an attacker who joined would hold)."""
    creds = swarm_dir.load_coordinator(swarm.info.directory)
    key = pki.new_key()
    cert = pki.issue_node_cert(creds.ca_key, creds.ca_cert, creds.info.swarm_id, node_id, pki.make_csr(key),
                               datetime.timedelta(hours=1))
    return pki.key_pem(key), pki.cert_pem(cert) + creds.ca_pem


def node_port_address(swarm: PrivateSwarm) -> str:
    meta = node_membership.load(swarm.tmp / "paris-tls")
    assert meta is not None
    return f"127.0.0.1:{meta.node_port}"


def test_a_round_runs_over_mtls_with_nodes_that_joined_by_token(private: PrivateSwarm) -> None:
    with private.client() as client:
        answer = client.ask("The capital of France", k=3, timeout=120)
    assert len(answer.candidates) >= 2 and answer.judgments
    for node in private.nodes:
        m = node_membership.load(private.tmp / f"{['paris', 'rome', 'lyon'][private.nodes.index(node)]}-tls")
        assert m is not None and (m.tls_dir / "node-tls.key").stat().st_mode & 0o777 == 0o600
        roles = pki.roles_of(pki.load_cert(m.chain_pem))
        assert roles == [pki.Role(private.info.swarm_id, "node", node.node_id)]


def test_api_key_refusals(private: PrivateSwarm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with private.admin() as admin:
        ask_key, info = admin.create_key("alice", "ask", 0)
        slow_key, _ = admin.create_key("slow", "ask", 2)
        gone_key, _ = admin.create_key("gone", "ask", 0)
        admin.revoke_key("gone")
        assert {k.name: k.revoked for k in admin.list_keys()} == {"admin": False, "alice": False, "slow": False, "gone": True}
    assert info.scope == "ask"
    cases = [("", Unauthenticated, "API key is required"), ("not-a-key", Unauthenticated, "malformed API key"),
             ("srk_" + "0" * 16 + "_" + "1" * 64, Unauthenticated, "unknown API key"),
             (ask_key[:-1] + ("0" if ask_key[-1] != "0" else "1"), Unauthenticated, "unknown API key"),
             (gone_key, Unauthenticated, "revoked")]
    for key, error, message in cases:
        with Client(private.address, api_key=key or None, ca=private.info.ca_path, retries=0) as c:
            with pytest.raises(error, match=message):
                c.nodes()
    with Client(private.address, ca=private.info.ca_path, retries=0) as c, pytest.raises(Unauthenticated):
        list(c.stream("The capital of France"))  # streaming calls are guarded too
    with private.client(ask_key) as c:  # the right key works
        assert len(c.nodes()) == 3
    with private.admin(ask_key) as admin, pytest.raises(PermissionDenied, match="needs admin") as refused:
        admin.create_key("mallory", "admin", 0)
    assert not isinstance(refused.value, Unauthenticated) and refused.value.code == "PERMISSION_DENIED"
    with private.client(slow_key) as c:
        c.nodes()
        c.nodes()
        with pytest.raises(RateLimited, match="over its rate of 2/min"):
            c.nodes()
    with private.client(ask_key) as c:  # another key is not disturbed by the limited one
        assert len(c.nodes()) == 3
    logged = caplog.text
    assert "refused" in logged and "rate_limited" not in ask_key
    for secret in (ask_key, slow_key, gone_key, private.admin_key):
        assert secret.rsplit("_", 1)[1] not in logged  # no secret in the logs


def test_join_token_refusals(private: PrivateSwarm, tmp_path: Path) -> None:
    identity = Identity.generate()

    def join(token: str) -> None:
        private.bg.run(node_membership.join(tmp_path / "t", private.address, token, identity))

    with private.admin() as admin:
        once = admin.create_join_token(600, 1)
        short = admin.create_join_token(1, 1)
        revoked = admin.create_join_token(600, 1)
        admin.revoke_join_token(revoked.token_id)
    join(once.token)
    with pytest.raises(node_membership.JoinFailed, match="UNAUTHENTICATED: the join token has been used already"):
        join(once.token)
    with pytest.raises(node_membership.JoinFailed, match="UNAUTHENTICATED: the join token is revoked"):
        join(revoked.token)
    wait_for(lambda: time.time() > short.expires_unix + 0.1, timeout=30)
    with pytest.raises(node_membership.JoinFailed, match="UNAUTHENTICATED: the join token has expired"):
        join(short.token)
    with pytest.raises(ValueError, match="malformed join token"):
        join("SRJ1.nonsense")
    prefix, fp, token_id, secret = once.token.split(".")
    with pytest.raises(node_membership.JoinFailed, match="UNAUTHENTICATED: unknown join token"):
        join(".".join([prefix, fp, token_id, "0" * 64]))
    other = swarm_dir.init(tmp_path / "other", [])[0]
    with pytest.raises(pki.PkiError, match="does not present the CA pinned"):
        join(".".join([prefix, other.ca_fingerprint, token_id, secret]))
    # The refusals disturbed nothing: rounds still run.
    with private.client() as client:
        assert client.ask("The capital of France", k=3, timeout=120).text


def test_coordinator_node_port_wants_a_node_certificate_of_this_swarm(private: PrivateSwarm, tmp_path: Path) -> None:
    address = node_port_address(private)
    creds = swarm_dir.load_coordinator(private.info.directory)
    request = cpb.HeartbeatRequest(node_id=private.nodes[0].node_id, timestamp_unix=time.time())
    # the coordinator's own certificate is not a node's
    with node_channel(private, address, creds.key_pem, creds.chain_pem, pki.COORDINATOR_NAME) as ch:
        with pytest.raises(grpc.RpcError) as e:
            coordinator_pb2_grpc.CoordinatorStub(ch).Heartbeat(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and "needs a node certificate" in e.value.details()
    # a genuine node certificate speaking for another node
    key_pem, chain_pem = issue(private, "f" * 32)
    with node_channel(private, address, key_pem, chain_pem, pki.COORDINATOR_NAME) as ch:
        with pytest.raises(grpc.RpcError) as e:
            coordinator_pb2_grpc.CoordinatorStub(ch).Heartbeat(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and "belongs to node ffff" in e.value.details()
    # a certificate from another CA does not get through the handshake
    other = swarm_dir.init(tmp_path / "other", [])[0]
    other_creds = swarm_dir.load_coordinator(other.directory)
    okey = pki.new_key()
    ocert = pki.issue_node_cert(other_creds.ca_key, other_creds.ca_cert, other.swarm_id, private.nodes[0].node_id,
                                pki.make_csr(okey), datetime.timedelta(hours=1))
    with node_channel(private, address, pki.key_pem(okey), pki.cert_pem(ocert), pki.COORDINATOR_NAME) as ch:
        with pytest.raises(grpc.RpcError) as e:
            coordinator_pb2_grpc.CoordinatorStub(ch).Heartbeat(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    # Register/Heartbeat on the client port (no client certificate) are refused with a pointer
    with grpc.secure_channel(private.address, grpc.ssl_channel_credentials(private.info.ca_path.read_bytes())) as ch:
        with pytest.raises(grpc.RpcError) as e:
            coordinator_pb2_grpc.CoordinatorStub(ch).Heartbeat(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "node certificate" in e.value.details()


def test_coordinator_port_does_not_speak_plaintext(private: PrivateSwarm) -> None:
    for address in (private.address, node_port_address(private)):
        with grpc.insecure_channel(address) as ch:
            with pytest.raises(grpc.RpcError) as e:
                coordinator_pb2_grpc.CoordinatorStub(ch).ListNodes(cpb.ListNodesRequest(), timeout=10)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    with Client(private.address, api_key=private.admin_key, retries=0) as c, pytest.raises(Unavailable):
        c.nodes()  # a plaintext SDK client with a valid key gets nowhere either


def test_node_serves_generate_only_to_the_coordinator(private: PrivateSwarm) -> None:
    node = private.nodes[0]
    request = node_pb2.GenerateRequest(round_id="r1", nonce=b"n" * 16, prompt="Hello?", max_tokens=4)
    key_pem, chain_pem = issue(private, "e" * 32)  # a certificate of this swarm, but a node's
    with node_channel(private, node.address, key_pem, chain_pem, pki.NODE_NAME) as ch:
        stub = node_pb2_grpc.NodeStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            list(stub.Generate(request, timeout=10))
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and "only to the swarm's coordinator" in e.value.details()
        with pytest.raises(grpc.RpcError) as e:
            stub.Judge(node_pb2.JudgeRequest(round_id="r1", nonce=b"n" * 16, question="q"), timeout=10)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert stub.Describe(node_pb2.DescribeRequest(), timeout=10).models  # describing is fine for the swarm
    with grpc.secure_channel(node.address, grpc.ssl_channel_credentials(private.info.ca_path.read_bytes()),
                             options=tls.name_override(pki.NODE_NAME)) as ch:  # no client certificate at all
        with pytest.raises(grpc.RpcError) as e:
            list(node_pb2_grpc.NodeStub(ch).Generate(request, timeout=10))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    creds = swarm_dir.load_coordinator(private.info.directory)  # the coordinator's certificate is served
    with node_channel(private, node.address, creds.key_pem, creds.chain_pem, pki.NODE_NAME) as ch:
        events = list(node_pb2_grpc.NodeStub(ch).Generate(request, timeout=30))
    assert events[-1].candidate.node_id == node.node_id


def test_removing_a_node_revokes_it_at_once_and_is_in_the_ledger(own_private: PrivateSwarm) -> None:
    private = own_private
    victim = private.nodes[0]
    with private.admin() as admin:
        assert admin.remove_node(victim.node_id, "test") >= 1
        with pytest.raises(Exception, match="no node"):
            admin.remove_node("0" * 32)
    with private.client() as c:
        assert {n.node_id: n.state for n in c.nodes()}[victim.node_id] != "healthy"
        for _ in range(2):  # rounds go on without it
            answer = c.ask("The capital of France", k=2, timeout=120)
            assert victim.node_id not in {x.node_id for x in answer.candidates}
        # its heartbeats (several intervals by now) are refused, so it never becomes healthy again
        assert {n.node_id: n.state for n in c.nodes()}[victim.node_id] != "healthy"
    db = private.tmp / "c.db"
    assert ledger.verify(db).ok
    conn = sqlite3.connect(db)
    bodies = [b for (b,) in conn.execute("SELECT body FROM ledger")]
    conn.close()
    assert any('"kind":"node_removed"' in b and victim.node_id in b for b in bodies)


def test_node_renews_its_short_lived_certificate_while_healthy(bg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 20 s certificates renewed once 90% of the lifetime is left: after ~2 s (the node's real check on
    # its real certificate; the default threshold, half the lifetime, would make the test wait ~10 s)
    monkeypatch.setattr(node_membership, "RENEW_AT", 0.9)
    swarm = PrivateSwarm(bg, tmp_path, node_cert_hours=20 / 3600)
    try:
        with swarm.admin() as admin:
            token = admin.create_join_token(600, 1).token
        node = swarm.add_node("paris", token)
        first = (tmp_path / "paris-tls" / "node.crt").read_bytes()
        wait_for(lambda: (tmp_path / "paris-tls" / "node.crt").read_bytes() != first, timeout=120, interval=0.5)
        conn = sqlite3.connect(tmp_path / "c.db")
        issued = conn.execute("SELECT COUNT(*) FROM node_certificates WHERE node_id=?", (node.node_id,)).fetchone()[0]
        conn.close()
        assert issued >= 2
        wait_for(lambda: swarm.healthy() == 1, timeout=60)  # still healthy on the renewed certificate
    finally:
        swarm.stop()


def test_plaintext_off_loopback_needs_insecure(bg, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(InsecureRefused, match="--insecure"):
        RunningCoordinator(bg, coordinator_settings(tmp_path, listen="0.0.0.0:0"))
    caplog.set_level(logging.WARNING)
    coord = RunningCoordinator(bg, coordinator_settings(tmp_path, listen="0.0.0.0:0", insecure=True))
    coord.stop()
    assert "INSECURE" in caplog.text
