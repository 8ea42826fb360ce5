"""Signed node and coordinator records: what the swarm gossips (pure: no libp2p, no I/O).

A record is JSON ``{"v": 1, "kind": ..., "body": {...}, "sig": hex}``. The signature is Ed25519 by
the key named in the body, over a domain tag plus the canonical body, so a node record can never
pass as a coordinator record and the key in the record is the key that signed it. Every record has
a sequence number (a newer announcement supersedes an older one; an older one arriving late is
stale) and an expiry (gossip is lossy, so records are re-announced before they expire and a silent
peer drops out of everyone's view). A record is at most ``MAX_RECORD_BYTES``.

The libp2p peer id of an Ed25519 key is computable without libp2p (an identity multihash of the
protobuf-encoded public key), so the pubsub layer can check that the peer that published a record
is the peer the record names.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from swarmrank.protos import signing
from swarmrank.protos.signing import Identity

VERSION = 1
MAX_RECORD_BYTES = 4096
MAX_LIFETIME = 600.0  # seconds a record may claim to stay valid
CLOCK_SKEW = 30.0
MAX_MODELS = 16
MAX_ADDRS = 8
MAX_TEXT = 256

Kind = Literal["node", "coordinator"]


class RecordError(ValueError):
    """A record that must be ignored; ``reason`` is a short counter name."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def peer_id_bytes(public_key: bytes) -> bytes:
    """The libp2p peer id of an Ed25519 key: identity multihash (0x00, len 36) of the key's protobuf
    (field 1 = KeyType Ed25519 (1), field 2 = the 32 key bytes)."""
    if len(public_key) != signing.PUBLIC_KEY_BYTES:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return b"\x00\x24\x08\x01\x12\x20" + public_key


@dataclass(frozen=True)
class AnnouncedModel:
    name: str
    family: str = ""
    parameters: str = ""
    quantization: str = ""


@dataclass(frozen=True)
class LedgerHead:
    seq: int
    entry_hash: bytes


@dataclass(frozen=True)
class NodeRecord:
    public_key: bytes
    grpc_address: str
    models: tuple[AnnouncedModel, ...]
    role: str
    capacity: int
    seq: int
    expires_unix: float
    cert_fingerprint: str = ""
    p2p_addrs: tuple[str, ...] = ()

    @property
    def node_id(self) -> str:
        return signing.node_id_for(self.public_key)


@dataclass(frozen=True)
class CoordinatorRecord:
    public_key: bytes
    grpc_address: str
    head: LedgerHead
    seq: int
    expires_unix: float
    p2p_addrs: tuple[str, ...] = ()

    @property
    def coordinator_id(self) -> str:
        return signing.node_id_for(self.public_key)


Record = NodeRecord | CoordinatorRecord


@dataclass(frozen=True)
class Signed:
    """A verified record and the exact bytes that were signed (evidence for auditors)."""

    record: Record
    raw: bytes


def _tag(kind: Kind) -> bytes:
    return b"swarmrank/1/record/" + kind.encode() + b"\x00"


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def _body(record: Record) -> tuple[Kind, dict[str, Any]]:
    common = {"public_key": record.public_key.hex(), "grpc_address": record.grpc_address, "seq": record.seq,
              "expires_unix": record.expires_unix, "p2p_addrs": list(record.p2p_addrs)}
    if isinstance(record, NodeRecord):
        return "node", {**common, "role": record.role, "capacity": record.capacity,
                        "cert_fingerprint": record.cert_fingerprint,
                        "models": [[m.name, m.family, m.parameters, m.quantization] for m in record.models]}
    return "coordinator", {**common, "head_seq": record.head.seq, "head_hash": record.head.entry_hash.hex()}


def encode(record: Record, identity: Identity) -> bytes:
    """Sign and serialise; refuses records that others would reject (wrong key, too big)."""
    if record.public_key != identity.public_key:
        raise ValueError("a record must name the key that signs it")
    kind, body = _body(record)
    _parse(kind, json.loads(_canonical(body)))  # what receivers will check: fail here, not silently there
    raw = json.dumps({"v": VERSION, "kind": kind, "body": body,
                      "sig": identity.sign(_tag(kind) + _canonical(body)).hex()}, separators=(",", ":")).encode()
    if len(raw) > MAX_RECORD_BYTES:
        raise ValueError(f"record is {len(raw)} bytes, over the {MAX_RECORD_BYTES}-byte limit")
    return raw


def _text(body: dict[str, Any], name: str, limit: int = MAX_TEXT) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit:
        raise RecordError("malformed", f"field {name} must be a string of at most {limit} characters")
    return value


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise RecordError("malformed", f"field {name} must be a non-negative integer")
    return value


def _addrs(body: dict[str, Any]) -> tuple[str, ...]:
    value = body.get("p2p_addrs", [])
    if not isinstance(value, list) or len(value) > MAX_ADDRS or not all(isinstance(a, str) and len(a) <= MAX_TEXT for a in value):
        raise RecordError("malformed", f"p2p_addrs must be at most {MAX_ADDRS} strings")
    return tuple(value)


def _parse(kind: Kind, body: dict[str, Any]) -> Record:
    try:
        public_key = bytes.fromhex(_text(body, "public_key", 64))
    except ValueError:
        raise RecordError("malformed", "public_key is not hex") from None
    if len(public_key) != signing.PUBLIC_KEY_BYTES:
        raise RecordError("malformed", "public_key must be 32 bytes")
    expires = body.get("expires_unix")
    if not isinstance(expires, (int, float)) or isinstance(expires, bool):
        raise RecordError("malformed", "expires_unix must be a number")
    address, seq, addrs = _text(body, "grpc_address"), _int(body, "seq"), _addrs(body)
    if kind == "node":
        models_raw = body.get("models", [])
        if (not isinstance(models_raw, list) or not 1 <= len(models_raw) <= MAX_MODELS
                or not all(isinstance(m, list) and len(m) == 4 and all(isinstance(x, str) and len(x) <= MAX_TEXT for x in m)
                           for m in models_raw)):
            raise RecordError("malformed", f"models must be 1..{MAX_MODELS} [name, family, parameters, quantization] lists")
        capacity = _int(body, "capacity")
        return NodeRecord(public_key, address, tuple(AnnouncedModel(*m) for m in models_raw), _text(body, "role", 32),
                          capacity, seq, float(expires), _text(body, "cert_fingerprint", 128), addrs)
    try:
        head_hash = bytes.fromhex(_text(body, "head_hash", 64))
    except ValueError:
        raise RecordError("malformed", "head_hash is not hex") from None
    if len(head_hash) != 32:
        raise RecordError("malformed", "head_hash must be 32 bytes")
    return CoordinatorRecord(public_key, address, LedgerHead(_int(body, "head_seq"), head_hash), seq, float(expires), addrs)


def decode(raw: bytes, now: float | None = None) -> Signed:
    """Parse and verify a record; raises ``RecordError`` for anything that must be ignored."""
    now = time.time() if now is None else now
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordError("oversized", f"record is {len(raw)} bytes, over the {MAX_RECORD_BYTES}-byte limit")
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise RecordError("malformed", "record is not JSON") from None
    if not isinstance(envelope, dict) or envelope.get("v") != VERSION:
        raise RecordError("malformed", f"not a version {VERSION} record")
    kind, body, sig = envelope.get("kind"), envelope.get("body"), envelope.get("sig")
    if kind not in ("node", "coordinator") or not isinstance(body, dict) or not isinstance(sig, str):
        raise RecordError("malformed", "record needs kind, body and sig")
    record = _parse(kind, body)
    try:
        signature = bytes.fromhex(sig)
    except ValueError:
        raise RecordError("bad_signature", "signature is not hex") from None
    if not signing.verify(record.public_key, signature, _tag(kind) + _canonical(body)):
        raise RecordError("bad_signature", "signature does not verify against the record's key")
    if record.expires_unix <= now:
        raise RecordError("expired", f"record expired {now - record.expires_unix:.0f}s ago")
    if record.expires_unix > now + MAX_LIFETIME + CLOCK_SKEW:
        raise RecordError("too_long_lived", f"record claims validity beyond {MAX_LIFETIME:.0f}s")
    return Signed(record, raw)


@dataclass
class RecordBook:
    """The latest valid record per key; older sequence numbers are stale, expired records drop out."""

    records: dict[bytes, Signed] = field(default_factory=dict)
    counters: Counter[str] = field(default_factory=Counter)

    def offer(self, signed: Signed, now: float | None = None) -> bool:
        """True if ``signed`` is new or newer than what we hold."""
        now = time.time() if now is None else now
        key = signed.record.public_key
        held = self.records.get(key)
        if held is not None and held.record.expires_unix > now and signed.record.seq <= held.record.seq:
            self.counters["duplicate" if signed.record.seq == held.record.seq else "stale"] += 1
            return False
        self.records[key] = signed
        self.counters["accepted"] += 1
        return True

    def live(self, now: float | None = None) -> list[Signed]:
        now = time.time() if now is None else now
        for key in [k for k, s in self.records.items() if s.record.expires_unix <= now]:
            del self.records[key]
            self.counters["expired_dropped"] += 1
        return list(self.records.values())
