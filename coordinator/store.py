"""SQLite persistence (the embedded default): nodes, reputation changes, round results.

WAL mode with synchronous=FULL: a committed write survives a killed coordinator (and a power cut).
One connection guarded by a lock; calls are short (sub-millisecond to a few ms for an fsync).
The ``ReputationStore`` protocol is what the round logic needs, so a different store (or the
trust layer's ledger) can stand behind it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Protocol

from swarmrank.protos.types import ModelInfo, Preference

from .domain import Candidate, Failure, Judgment, NodeRecord, RankedCandidate, RoundResult
from .reputation import Change

SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    address TEXT NOT NULL,
    models TEXT NOT NULL,
    max_concurrency INTEGER NOT NULL,
    registered_unix REAL NOT NULL,
    last_seen_unix REAL NOT NULL,
    reputation REAL NOT NULL,
    rounds INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS reputation_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    round_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    before REAL NOT NULL,
    after REAL NOT NULL,
    reason TEXT NOT NULL,
    at_unix REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    round_id TEXT PRIMARY KEY,
    created_unix REAL NOT NULL,
    result TEXT NOT NULL
);
"""


class ReputationStore(Protocol):
    def apply_changes(self, round_id: str, changes: Sequence[Change], players: Iterable[str]) -> None: ...


def _b(x: bytes) -> str:
    return x.hex()


def round_to_json(r: RoundResult) -> str:
    def enc(o: object) -> object:
        if isinstance(o, bytes):
            return _b(o)
        raise TypeError(type(o))

    return json.dumps(asdict(r), default=enc, separators=(",", ":"))


def round_from_json(text: str) -> RoundResult:
    d = json.loads(text)

    def cand(c: dict) -> Candidate:  # type: ignore[type-arg]
        return Candidate(**{**c, "nonce": bytes.fromhex(c["nonce"]), "signature": bytes.fromhex(c["signature"])})

    return RoundResult(
        **{
            **d,
            "candidates": tuple(
                RankedCandidate(**{**rc, "candidate": cand(rc["candidate"])}) for rc in d["candidates"]
            ),
            "judgments": tuple(
                Judgment(**{
                    **j,
                    "preference": Preference(j["preference"]),
                    "nonce": bytes.fromhex(j["nonce"]),
                    "signature": bytes.fromhex(j["signature"]),
                })
                for j in d["judgments"]
            ),
            "failures": tuple(Failure(**f) for f in d["failures"]),
        }
    )


class Store:
    def __init__(self, path: Path) -> None:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self.path = path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def upsert_node(self, n: NodeRecord) -> None:
        models = json.dumps([asdict(m) for m in n.models])
        with self._lock:
            self._db.execute(
                "INSERT INTO nodes VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(node_id) DO UPDATE SET "
                "address=excluded.address, models=excluded.models, max_concurrency=excluded.max_concurrency, "
                "last_seen_unix=excluded.last_seen_unix",
                (n.node_id, n.public_key, n.address, models, n.max_concurrency, n.registered_unix,
                 n.last_seen_unix, n.reputation, n.rounds),
            )

    def touch(self, node_id: str, last_seen_unix: float) -> None:
        with self._lock:
            self._db.execute("UPDATE nodes SET last_seen_unix=? WHERE node_id=?", (last_seen_unix, node_id))

    def load_nodes(self) -> list[NodeRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT node_id, public_key, address, models, max_concurrency, registered_unix, last_seen_unix, "
                "reputation, rounds FROM nodes"
            ).fetchall()
        return [
            NodeRecord(r[0], bytes(r[1]), r[2], tuple(ModelInfo(**m) for m in json.loads(r[3])), r[4], r[5], r[6], r[7], r[8])
            for r in rows
        ]

    def apply_changes(self, round_id: str, changes: Sequence[Change], players: Iterable[str]) -> None:
        """Record the round's reputation changes and play counts in one transaction."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for c in changes:
                    self._db.execute(
                        "INSERT INTO reputation_changes (round_id, node_id, before, after, reason, at_unix) VALUES (?,?,?,?,?,?)",
                        (round_id, c.node_id, c.before, c.after, c.reason, now),
                    )
                    self._db.execute("UPDATE nodes SET reputation=? WHERE node_id=?", (c.after, c.node_id))
                for node_id in set(players):
                    self._db.execute("UPDATE nodes SET rounds=rounds+1 WHERE node_id=?", (node_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def save_round(self, result: RoundResult) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO rounds VALUES (?,?,?)", (result.round_id, result.created_unix, round_to_json(result))
            )

    def load_round(self, round_id: str) -> RoundResult | None:
        with self._lock:
            row = self._db.execute("SELECT result FROM rounds WHERE round_id=?", (round_id,)).fetchone()
        return round_from_json(row[0]) if row else None
