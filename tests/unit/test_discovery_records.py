"""Signed discovery records, the gossip gate, the swarm key file and equivocation detection."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from swarmrank.discovery import records, swarm_key
from swarmrank.discovery.equivocation import HeadWatcher, audit
from swarmrank.discovery.port import TOPIC_COORDINATORS, TOPIC_NODES, Gate, View
from swarmrank.discovery.records import AnnouncedModel, CoordinatorRecord, LedgerHead, NodeRecord, RecordError
from swarmrank.protos.signing import Identity

NOW = 1_800_000_000.0


def node(identity: Identity, seq: int = 1, expires: float = NOW + 60, address: str = "127.0.0.1:1") -> NodeRecord:
    return NodeRecord(identity.public_key, address, (AnnouncedModel("smollm2-135m", "llama", "135M", "Q4_1"),), "both", 2,
                      seq, expires, p2p_addrs=("/ip4/127.0.0.1/tcp/4001",))


def coord(identity: Identity, seq: int, head_seq: int, head_hash: bytes) -> CoordinatorRecord:
    return CoordinatorRecord(identity.public_key, "127.0.0.1:50051", LedgerHead(head_seq, head_hash), seq, NOW + 60)


def test_round_trip_and_peer_binding() -> None:
    me = Identity.generate()
    raw = records.encode(node(me), me)
    signed = records.decode(raw, NOW)
    assert signed.record == node(me)
    assert signed.record.node_id == me.node_id
    assert records.peer_id_bytes(me.public_key)[6:] == me.public_key


def test_peer_id_matches_libp2p() -> None:
    pytest.importorskip("libp2p")
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    me = Identity.generate()
    pair = create_new_key_pair(me.private_seed())
    assert pair.public_key.to_bytes() == me.public_key
    assert ID.from_pubkey(pair.public_key).to_bytes() == records.peer_id_bytes(me.public_key)


@pytest.mark.parametrize("mutate, reason", [
    (lambda e: e["body"].__setitem__("grpc_address", "10.0.0.1:1"), "bad_signature"),
    (lambda e: e.__setitem__("sig", "00" * 64), "bad_signature"),
    (lambda e: e.__setitem__("kind", "coordinator"), "malformed"),
    (lambda e: e["body"].__setitem__("seq", -1), "malformed"),
    (lambda e: e["body"].__setitem__("models", []), "malformed"),
])
def test_tampered_records_are_refused(mutate, reason) -> None:
    me = Identity.generate()
    envelope = json.loads(records.encode(node(me), me))
    mutate(envelope)
    with pytest.raises(RecordError) as err:
        records.decode(json.dumps(envelope).encode(), NOW)
    assert err.value.reason == reason


def test_a_node_record_cannot_pass_as_a_coordinator_record() -> None:
    me = Identity.generate()
    raw = records.encode(coord(me, 1, 1, b"\x01" * 32), me)
    envelope = json.loads(raw)
    envelope["kind"] = "node"
    with pytest.raises(RecordError):
        records.decode(json.dumps(envelope).encode(), NOW)


def test_expired_oversized_and_long_lived() -> None:
    me = Identity.generate()
    with pytest.raises(RecordError) as err:
        records.decode(records.encode(node(me, expires=NOW - 1), me), NOW)
    assert err.value.reason == "expired"
    with pytest.raises(RecordError) as err:
        records.decode(records.encode(node(me, expires=NOW + 3600), me), NOW)
    assert err.value.reason == "too_long_lived"
    with pytest.raises(RecordError) as err:
        records.decode(b"{" + b" " * records.MAX_RECORD_BYTES + b"}", NOW)
    assert err.value.reason == "oversized"
    with pytest.raises(ValueError):
        records.encode(node(me, address="x" * 200), me)  # fine size-wise ...
        records.encode(NodeRecord(me.public_key, "a", tuple(AnnouncedModel("m" * 250, "f" * 250) for _ in range(16)),
                                  "both", 1, 1, NOW + 60), me)  # ... this one is not


def test_records_receivers_would_refuse_are_not_sent() -> None:
    me = Identity.generate()
    with pytest.raises(RecordError):
        records.encode(NodeRecord(me.public_key, "a", (), "both", 1, 1, NOW + 60), me)  # no model
    raw = records.encode(NodeRecord(me.public_key, "a", (AnnouncedModel("m"),), "generate_and_judge", 1, 1, NOW + 60), me)
    assert records.decode(raw, NOW).record.role == "generate_and_judge"


def test_record_must_be_signed_by_its_own_key() -> None:
    me, other = Identity.generate(), Identity.generate()
    with pytest.raises(ValueError):
        records.encode(node(other), me)


def test_gate_checks_publisher_topic_and_rate() -> None:
    me, other = Identity.generate(), Identity.generate()
    raw = records.encode(node(me), me)
    gate = Gate(rate=1.0, burst=3.0)
    assert gate.check(TOPIC_NODES, records.peer_id_bytes(me.public_key), raw, NOW) is not None
    assert gate.check(TOPIC_NODES, records.peer_id_bytes(other.public_key), raw, NOW) is None
    assert gate.counters["peer_mismatch"] == 1
    assert gate.check(TOPIC_COORDINATORS, records.peer_id_bytes(me.public_key), raw, NOW) is None
    assert gate.counters["wrong_topic"] == 1
    # me has used 2 of 3 tokens (the mismatch was charged to other): one more, then flooding.
    assert gate.check(TOPIC_NODES, records.peer_id_bytes(me.public_key), raw, NOW) is not None
    assert gate.check(TOPIC_NODES, records.peer_id_bytes(me.public_key), raw, NOW) is None
    assert gate.counters["flooding"] == 1
    assert gate.check(TOPIC_NODES, records.peer_id_bytes(me.public_key), raw, NOW + 1.0) is not None


def test_view_keeps_newest_and_drops_stale_and_expired() -> None:
    me = Identity.generate()
    view = View()
    view.ingest(records.decode(records.encode(node(me, seq=5, address="127.0.0.1:5"), me), NOW), NOW)
    view.ingest(records.decode(records.encode(node(me, seq=3, address="127.0.0.1:3"), me), NOW), NOW)
    assert view.nodes.counters["stale"] == 1
    assert [n.grpc_address for n in (s.record for s in view.nodes.live(NOW))] == ["127.0.0.1:5"]
    view.ingest(records.decode(records.encode(node(me, seq=6, address="127.0.0.1:6"), me), NOW), NOW)
    assert [s.record.grpc_address for s in view.nodes.live(NOW)] == ["127.0.0.1:6"]
    assert view.nodes.live(NOW + 61) == []


def test_equivocation_on_two_forged_heads() -> None:
    """A coordinator signs two different heads for ledger entry 7: the second is evidence."""
    c = Identity.generate()
    watcher = HeadWatcher()
    first = records.decode(records.encode(coord(c, seq=10, head_seq=7, head_hash=b"\xaa" * 32), c), NOW)
    second = records.decode(records.encode(coord(c, seq=11, head_seq=7, head_hash=b"\xbb" * 32), c), NOW)
    assert watcher.observe(first) is None
    evidence = watcher.observe(second)
    assert evidence is not None and evidence.kind == "equivocation" and evidence.ledger_seq == 7
    # The evidence is self-contained: both records verify on their own and disagree.
    a, b = records.decode(evidence.first, NOW).record, records.decode(evidence.second, NOW).record
    assert isinstance(a, CoordinatorRecord) and isinstance(b, CoordinatorRecord)
    assert a.head.seq == b.head.seq and a.head.entry_hash != b.head.entry_hash
    # Re-announcing the same head is not equivocation; moving forward is fine.
    assert watcher.observe(records.decode(records.encode(coord(c, 12, 7, b"\xaa" * 32), c), NOW)) is None
    assert watcher.observe(records.decode(records.encode(coord(c, 13, 9, b"\xcc" * 32), c), NOW)) is None
    assert watcher.heads()[c.node_id].head.seq == 9


def test_rollback_is_detected_and_other_coordinators_are_independent() -> None:
    c, d = Identity.generate(), Identity.generate()
    watcher = HeadWatcher()
    assert watcher.observe(records.decode(records.encode(coord(c, 1, 9, b"\x01" * 32), c), NOW)) is None
    assert watcher.observe(records.decode(records.encode(coord(d, 1, 3, b"\x02" * 32), d), NOW)) is None
    evidence = watcher.observe(records.decode(records.encode(coord(c, 2, 4, b"\x03" * 32), c), NOW))
    assert evidence is not None and evidence.kind == "rollback"
    assert len(watcher.evidence) == 1


def test_view_logs_and_counts_equivocation() -> None:
    c = Identity.generate()
    view = View()
    view.ingest(records.decode(records.encode(coord(c, 1, 2, b"\x01" * 32), c), NOW), NOW)
    assert view.ingest(records.decode(records.encode(coord(c, 2, 2, b"\x02" * 32), c), NOW), NOW) is not None
    assert len(view.heads.evidence) == 1


def test_audit_of_a_copied_ledger() -> None:
    c = Identity.generate()
    seen = [coord(c, 1, 1, b"\x01" * 32), coord(c, 2, 2, b"\x02" * 32), coord(c, 3, 3, b"\x03" * 32)]
    assert audit({1: b"\x01" * 32, 2: b"\x02" * 32, 3: b"\x03" * 32}, seen) == []
    findings = audit({1: b"\x01" * 32, 2: b"\xff" * 32}, seen)
    assert [(f.ledger_seq, "differs" in f.problem) for f in findings] == [(2, True), (3, False)]


def test_swarm_key_file(tmp_path: Path) -> None:
    (tmp_path / "swarm").mkdir()
    key = swarm_key.create(tmp_path / "swarm")  # a swarm directory gets its swarm.key
    path = tmp_path / "swarm" / "swarm.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = path.read_text().splitlines()
    assert lines[:2] == ["/key/swarm/psk/1.0.0/", "/base16/"] and len(lines[2]) == 64
    assert swarm_key.load(path) == key == swarm_key.load(tmp_path / "swarm")  # a swarm directory works too
    with pytest.raises(FileExistsError):
        swarm_key.create(path)
    os.chmod(path, 0o644)
    with pytest.raises(swarm_key.SwarmKeyError, match="readable by others"):
        swarm_key.load(path)


@pytest.mark.parametrize("text", ["", "/key/swarm/psk/1.0.0/\n/base64/\nAAAA\n", "/key/swarm/psk/1.0.0/\n/base16/\nzz\n",
                                  "/key/swarm/psk/1.0.0/\n/base16/\n" + "ab" * 31 + "\n"])
def test_bad_swarm_keys(text: str) -> None:
    with pytest.raises(swarm_key.SwarmKeyError):
        swarm_key.parse(text)


def test_no_bootstrap_and_no_key_means_no_libp2p(tmp_path: Path) -> None:
    from swarmrank.discovery.config import open_discovery

    me = Identity.generate()
    assert open_discovery(me, bootstrap=[], key_path=None, listen="/ip4/127.0.0.1/tcp/0") is None
    with pytest.raises(ValueError, match="--swarm-key"):
        open_discovery(me, bootstrap=["/ip4/127.0.0.1/tcp/1/p2p/x"], key_path=None, listen="/ip4/127.0.0.1/tcp/0")
    with pytest.raises(swarm_key.SwarmKeyError, match="no swarm key"):
        open_discovery(me, bootstrap=[], key_path=tmp_path / "missing.key", listen="/ip4/127.0.0.1/tcp/0")


def test_bootstrap_flag_is_repeatable() -> None:
    from swarmrank.cli.main import _settings_from, build_parser

    args = build_parser().parse_args(["node", "start", "--bootstrap", "/ip4/1.2.3.4/tcp/1/p2p/a",
                                      "--bootstrap", "/ip4/1.2.3.4/tcp/2/p2p/b", "--swarm-key", "k"])
    from swarmrank.node.settings import NodeSettings

    settings = _settings_from(args, NodeSettings)
    assert settings.bootstrap == ["/ip4/1.2.3.4/tcp/1/p2p/a", "/ip4/1.2.3.4/tcp/2/p2p/b"]
    assert settings.swarm_key == Path("k")
