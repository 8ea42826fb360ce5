"""The tamper-evident ledger: an append-only, hash-chained log of signed entries.

Entry n stores ``body`` (canonical JSON), ``prev_hash`` (the hash of entry n-1; 32 zero bytes for
the first), ``entry_hash = SHA-256(tag || prev_hash || n || body)`` and the coordinator's Ed25519
signature of ``entry_hash`` on the last entry each transaction appends (the chain binds the entries
before it; an entry with no signed entry after it fails verification). Changing a body breaks its hash; deleting or reordering entries breaks
the sequence numbers and the chain; forging an entry needs the coordinator's key. The first entry
("genesis") names the coordinator's public key; ``verify`` can also pin an expected key.

Every reputation event and every round summary is an entry; the node table is a deterministic
replay of the events (``reputation.replay``).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarmrank.protos import signing
from swarmrank.protos.signing import Identity

from . import consensus, reputation
from .domain import RoundResult
from .node_table import TRUST_COLUMNS, trust_from_row
from .trust import GENERATOR_TOPIC_PRIOR, RECORD_PRIOR, TOPIC_PRIOR, Trust

ZERO_HASH = bytes(32)
TAG = b"swarmrank/ledger/1\x00"

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    seq INTEGER PRIMARY KEY,
    body TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    entry_hash BLOB NOT NULL,
    signature BLOB NOT NULL
);
"""


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: bytes, seq: int, body: str) -> bytes:
    return hashlib.sha256(TAG + prev_hash + struct.pack(">q", seq) + body.encode("utf-8")).digest()


def genesis_body(identity: Identity) -> dict[str, Any]:
    rule = {"probation": reputation.PROBATION, "quarantine": reputation.QUARANTINE, "rates": reputation.RATES,
            "min_truths": reputation.MIN_TRUTHS, "accuracy_line": reputation.ACCURACY_LINE,
            "penalty": reputation.PENALTY, "decay_seconds": reputation.DECAY_SECONDS,
            "proven_after": reputation.PROVEN_AFTER, "probation_weight_cap": reputation.PROBATION_WEIGHT_CAP,
            "top_judges": reputation.TOP_JUDGES, "recorded": reputation.RECORDED,
            "lead": consensus.LEAD, "topic_prior": TOPIC_PRIOR if math.isfinite(TOPIC_PRIOR) else "off",
            "generator_topic_prior": GENERATOR_TOPIC_PRIOR, "top_voters": consensus.TOP_VOTERS}
    return {"kind": "genesis", "coordinator_key": identity.public_key.hex(), "rule": rule}


def round_summary(result: RoundResult, ts: float, *, spot_check: bool, generators: Sequence[str], judgments: int,
                  failures: int) -> dict[str, Any]:
    """The ledger entry that closes a round: enough to audit it without storing its texts."""
    return {
        "kind": "round", "round": result.round_id, "ts": ts, "spot_check": spot_check,
        "answer_sha256": signing.sha256(result.answer).hex(), "winner": result.winner_node_id,
        "confidence": round(result.confidence, 6), "generators": sorted(generators),
        "judgments": judgments, "failures": failures,
    }


class LedgerWriter:
    """Appends entries inside the caller's transaction (see ``Store.commit``)."""

    def __init__(self, db: sqlite3.Connection, identity: Identity) -> None:
        self._identity = identity
        row = db.execute("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq, self._hash = (int(row[0]), bytes(row[1])) if row else (0, ZERO_HASH)
        if row is None:
            db.execute("BEGIN IMMEDIATE")
            self.append(db, [genesis_body(identity)])
            db.execute("COMMIT")

    def append(self, db: sqlite3.Connection, bodies: list[dict[str, Any]]) -> None:
        seq, prev = self._seq, self._hash
        rows = []
        for i, body in enumerate(bodies):
            seq += 1
            text = canonical(body)
            h = entry_hash(prev, seq, text)
            # Only the last entry of a transaction is signed: the hash chain binds every entry before
            # it to that signature (a round's ~15 entries cost one signature, not fifteen).
            rows.append((seq, text, prev, h, self._identity.sign(h) if i == len(bodies) - 1 else b""))
            prev = h
        db.executemany("INSERT INTO ledger VALUES (?,?,?,?,?)", rows)
        self._seq, self._hash = seq, prev  # the caller commits; on rollback it must call reload()

    def reload(self, db: sqlite3.Connection) -> None:
        row = db.execute("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        self._seq, self._hash = (int(row[0]), bytes(row[1])) if row else (0, ZERO_HASH)


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str = ""
    coordinator_key: str = ""


def _rows(db_path: Path) -> Iterator[tuple[int, str, bytes, bytes, bytes]]:
    db = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        for seq, body, prev, h, sig in db.execute("SELECT seq, body, prev_hash, entry_hash, signature FROM ledger ORDER BY rowid"):
            yield int(seq), body, bytes(prev), bytes(h), bytes(sig)
    finally:
        db.close()


def verify(db_path: Path, public_key: bytes | None = None) -> Verification:
    """Check the whole chain; report the first entry that is out of place, altered or unsigned."""
    expected_prev, expected_seq, key, count = ZERO_HASH, 1, public_key, 0
    unsigned_from: int | None = None
    for seq, body, prev, h, sig in _rows(db_path):
        count += 1

        def bad(reason: str, at: int = seq) -> Verification:
            return Verification(False, count, at, reason, key.hex() if key else "")

        if seq != expected_seq:
            return bad(f"expected entry {expected_seq} here, found {seq} (an entry was deleted or moved)", expected_seq)
        if prev != expected_prev:
            return bad("its prev_hash does not match the entry before it (entries deleted or reordered)")
        if entry_hash(prev, seq, body) != h:
            return bad("its hash does not match its content (the entry was altered)")
        if seq == 1:
            genesis = json.loads(body)
            if genesis.get("kind") != "genesis":
                return bad("the first entry is not a genesis entry")
            declared = bytes.fromhex(genesis["coordinator_key"])
            if key is not None and declared != key:
                return bad("genesis names a different coordinator key than the pinned one")
            key = declared
        assert key is not None
        if sig:
            if not signing.verify(key, sig, h):
                return bad("its signature does not verify with the coordinator key")
            unsigned_from = None
        elif unsigned_from is None:
            unsigned_from = seq
        expected_prev, expected_seq = h, seq + 1
    if unsigned_from is not None:  # a signed entry must close every run of unsigned ones
        return Verification(False, count, unsigned_from, "no signed entry after it (unsigned entries)", key.hex() if key else "")
    return Verification(True, count, None, "", key.hex() if key else "")


def events(db_path: Path) -> list[reputation.Event]:
    """The reputation events recorded in the ledger, in order (round summaries are skipped)."""
    out = []
    for _, body, *_ in _rows(db_path):
        data = json.loads(body)
        if data.get("kind") in ("admit", "refuse", "evidence", "penalty"):
            out.append(reputation.Event.from_body(data))
    return out


@dataclass(frozen=True)
class ReplayReport:
    table: dict[str, Trust]
    mismatches: list[str]  # nodes whose stored trust differs from the replay


def replay_and_compare(db_path: Path) -> ReplayReport:
    """Rebuild every node's trust from the ledger and compare it with the stored node table."""
    table = reputation.replay(events(db_path))
    db = sqlite3.connect(f"file:{Path(db_path)}?mode=ro", uri=True)
    try:
        stored = {r[0]: trust_from_row(r[1:]) for r in db.execute(f"SELECT node_id, {TRUST_COLUMNS} FROM nodes")}
    finally:
        db.close()
    mismatches = sorted(n for n in set(table) | set(stored) if table.get(n) != stored.get(n))
    return ReplayReport(table, mismatches)
