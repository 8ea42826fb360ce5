"""SQLite persistence (the embedded default): nodes, the ledger, round results.

WAL mode. ``durability="full"`` (synchronous=FULL) fsyncs every commit: a committed transaction
survives a killed coordinator and a power cut. ``"normal"`` (synchronous=NORMAL) skips that fsync:
a committed transaction still survives a killed coordinator (SIGKILL; it is in the OS's page
cache), only an OS crash or power cut may lose the last ones (the database stays consistent: the
ledger loses a tail, never its chain). One connection guarded by a lock. Reputation only changes through ``commit``, which appends
the ledger entries and updates the node table in the same transaction, so the table is always the
replay of the ledger.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from swarmrank.protos.signing import Identity
from swarmrank.protos.types import Preference

from .domain import Candidate, Failure, Judgment, NodeRecord, RankedCandidate, RoundResult
from .ledger import SCHEMA as LEDGER_SCHEMA
from .ledger import LedgerWriter
from .node_table import SCHEMA as NODES_SCHEMA
from .node_table import TRUST_COLUMNS, model_from_json, node_row, trust_from_row
from .trust import Trust

Durability = Literal["full", "normal"]
SYNCHRONOUS: dict[str, str] = {"full": "FULL", "normal": "NORMAL"}

BUSY_TIMEOUT_MS = 10_000  # how long a write waits for another connection's lock (off the event loop)

SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    round_id TEXT PRIMARY KEY,
    created_unix REAL NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0,
    result TEXT NOT NULL
);
"""


def _judgment(j: Judgment) -> dict[str, Any]:
    return {"judge_node_id": j.judge_node_id, "comparison_id": j.comparison_id, "answer_a": j.answer_a,
            "answer_b": j.answer_b, "preference": j.preference, "confidence": j.confidence, "rationale": j.rationale,
            "weight": j.weight, "nonce": j.nonce.hex(), "signature": j.signature.hex(),
            "proof": [h.hex() for h in j.proof], "leaf_index": j.leaf_index, "leaf_count": j.leaf_count}


def _ranked(rc: RankedCandidate) -> dict[str, Any]:
    c = rc.candidate
    return {"candidate": {"candidate_id": c.candidate_id, "node_id": c.node_id, "model": c.model, "text": c.text,
                          "nonce": c.nonce.hex(), "signature": c.signature.hex(), "completion_tokens": c.completion_tokens,
                          "elapsed_seconds": c.elapsed_seconds},
            "strength": rc.strength, "standard_error": rc.standard_error, "win_probability": rc.win_probability,
            "rank": rc.rank}


def round_to_json(r: RoundResult) -> str:
    """The stored transcript. Written out field by field: ``dataclasses.asdict`` deep-copies every
    value and took milliseconds per round on the hot path (``tests/unit/test_bounded_state.py``
    checks that both give the same text)."""
    d = {"round_id": r.round_id, "prompt": r.prompt, "answer": r.answer, "winner_node_id": r.winner_node_id,
         "winner_candidate_id": r.winner_candidate_id, "confidence": r.confidence,
         "candidates": [_ranked(c) for c in r.candidates], "judgments": [_judgment(j) for j in r.judgments],
         "failures": [{"node_id": f.node_id, "stage": f.stage, "reason": f.reason} for f in r.failures],
         "elapsed_seconds": r.elapsed_seconds, "created_unix": r.created_unix}
    return json.dumps(d, separators=(",", ":"))


def round_from_json(text: str) -> RoundResult:
    d = json.loads(text)

    def cand(c: dict[str, Any]) -> Candidate:
        return Candidate(**{**c, "nonce": bytes.fromhex(c["nonce"]), "signature": bytes.fromhex(c["signature"])})

    return RoundResult(**{
        **d,
        "candidates": tuple(RankedCandidate(**{**rc, "candidate": cand(rc["candidate"])}) for rc in d["candidates"]),
        "judgments": tuple(
            Judgment(**{**j, "preference": Preference(j["preference"]), "nonce": bytes.fromhex(j["nonce"]),
                        "signature": bytes.fromhex(j["signature"]),
                        "proof": tuple(bytes.fromhex(h) for h in j.get("proof", ()))})
            for j in d["judgments"]
        ),
        "failures": tuple(Failure(**f) for f in d["failures"]),
    })


class Store:
    def __init__(self, path: Path, identity: Identity, durability: Durability = "normal") -> None:
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        self._db.execute("PRAGMA journal_mode=WAL")
        if durability not in SYNCHRONOUS:
            raise ValueError(f"durability must be one of {sorted(SYNCHRONOUS)}, got {durability!r}")
        self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS[durability]}")
        self.fsyncs = durability == "full"  # every commit waits for the disk
        self._db.executescript(NODES_SCHEMA + SCHEMA + LEDGER_SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(nodes)")}
        for column, kind in (("judge_biased", "INTEGER NOT NULL DEFAULT 0"), ("judge_topics", "TEXT NOT NULL DEFAULT '[]'"),
                             ("generator_topics", "TEXT NOT NULL DEFAULT '[]'"), ("judge_disputed_sum", "REAL NOT NULL DEFAULT 0"),
                             ("judge_disputed_n", "INTEGER NOT NULL DEFAULT 0")):
            if column not in columns:  # a database from an older version
                self._db.execute(f"ALTER TABLE nodes ADD COLUMN {column} {kind}")
        if "judge_disputed_n" not in columns:  # its judge spot checks were all "spot_check" events: disputed on replay
            self._db.execute("UPDATE nodes SET judge_disputed_sum = judge_sum, judge_disputed_n = judge_n")
        self._ledger = LedgerWriter(self._db, identity)
        self.path = path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def update_node(self, n: NodeRecord) -> None:
        """Refresh where a known node is and what it serves (never its trust: see ``commit``)."""
        with self._lock:
            self._db.execute(
                "UPDATE nodes SET address=?, models=?, max_concurrency=?, last_seen_unix=? WHERE node_id=?",
                (n.address, json.dumps([asdict(m) for m in n.models]), n.max_concurrency, n.last_seen_unix, n.node_id),
            )

    def touch(self, node_id: str, last_seen_unix: float) -> None:
        self.touch_many({node_id: last_seen_unix})

    def touch_many(self, seen: Mapping[str, float]) -> None:
        """Last-seen times of many nodes in one transaction (heartbeats are batched: one fsync each)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("UPDATE nodes SET last_seen_unix=? WHERE node_id=?",
                                     [(t, node_id) for node_id, t in seen.items()])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def load_nodes(self) -> list[NodeRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT node_id, public_key, address, models, max_concurrency, registered_unix, last_seen_unix, "
                f"{TRUST_COLUMNS}, rounds FROM nodes"
            ).fetchall()
        return [
            NodeRecord(r[0], bytes(r[1]), r[2], tuple(model_from_json(m) for m in json.loads(r[3])), r[4], r[5], r[6],
                       trust_from_row(r[7:21]), r[21])
            for r in rows
        ]

    def commit(
        self,
        bodies: Sequence[dict[str, Any]],
        trusts: Mapping[str, Trust],
        *,
        new_nodes: Iterable[NodeRecord] = (),
        players: Iterable[str] = (),
        rounds: Sequence[tuple[RoundResult, bool, str]] = (),
        blocking: bool = True,
    ) -> bool:
        """Append ledger entries, apply their effect on the node table and save the rounds they
        summarise (result, hidden, its ``round_to_json`` transcript: the caller already encoded it
        to hash it), atomically: one transaction, one fsync for all of it. With ``blocking=False``,
        returns False at once, writing nothing, when another thread holds the store or another
        connection (access control shares the file in a swarm) holds its write lock: the caller is
        then on the event loop and must not wait out SQLite's busy timeout."""
        if not self._lock.acquire(blocking=blocking):
            return False
        try:
            if not self._begin_write(blocking):
                return False
            try:
                for n in new_nodes:
                    self._db.execute("INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", node_row(n))
                self._ledger.append(self._db, list(bodies))
                for node_id, t in trusts.items():
                    self._db.execute(
                        "UPDATE nodes SET generator_score=?, judge_score=?, status=?, truths_passed=?, trust_updated_unix=?, "
                        "generator_sum=?, generator_n=?, judge_sum=?, judge_n=?, judge_biased=?, judge_topics=?, generator_topics=?, "
                        "judge_disputed_sum=?, judge_disputed_n=? WHERE node_id=?",
                        (t.generator, t.judge, t.status, t.truths_passed, t.updated_unix, t.generator_sum, t.generator_n,
                         t.judge_sum, t.judge_n, t.judge_biased, json.dumps(t.judge_topics), json.dumps(t.generator_topics),
                         t.judge_disputed_sum, t.judge_disputed_n, node_id),
                    )
                for node_id, count in Counter(players).items():
                    self._db.execute("UPDATE nodes SET rounds=rounds+? WHERE node_id=?", (count, node_id))
                for result, hidden, transcript in rounds:
                    self._db.execute("INSERT OR REPLACE INTO rounds VALUES (?,?,?,?)",
                                     (result.round_id, result.created_unix, int(hidden), transcript))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._ledger.reload(self._db)
                raise
        finally:
            self._lock.release()
        return True

    def _begin_write(self, blocking: bool) -> bool:
        """BEGIN IMMEDIATE; without ``blocking``, False instead of waiting for another connection."""
        if blocking:
            self._db.execute("BEGIN IMMEDIATE")
            return True
        self._db.execute("PRAGMA busy_timeout=0")
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # "database is locked"
            return False
        finally:
            self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return True

    def save_round(self, result: RoundResult, *, hidden: bool = False) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO rounds VALUES (?,?,?,?)",
                             (result.round_id, result.created_unix, int(hidden), round_to_json(result)))

    def load_round(self, round_id: str) -> RoundResult | None:
        """A public round (spot checks stay hidden: answering for them would reveal which were tests)."""
        with self._lock:
            row = self._db.execute("SELECT result FROM rounds WHERE round_id=? AND hidden=0", (round_id,)).fetchone()
        return round_from_json(row[0]) if row else None

    def sizes(self) -> dict[str, int]:
        """How big the state is (a gauge for metrics): rows per table and bytes on disk."""
        with self._lock:
            rounds = int(self._db.execute("SELECT count(*) FROM rounds").fetchone()[0])
            entries = int(self._db.execute("SELECT count(*) FROM ledger").fetchone()[0])
            nodes = int(self._db.execute("SELECT count(*) FROM nodes").fetchone()[0])
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return {"rounds": rounds, "ledger_entries": entries, "nodes": nodes,
                "db_bytes": sum(f.stat().st_size for f in files if f.exists())}

    def prune_rounds(self, older_than_unix: float, archive: Path | None = None) -> int:
        """Delete round transcripts created before ``older_than_unix`` (appending them to the JSONL
        ``archive`` first when given). The ledger keeps each round's summary and the SHA-256 of its
        transcript, so an archived transcript can still be checked against the chain."""
        with self._lock:
            rows = self._db.execute("SELECT round_id, result FROM rounds WHERE created_unix < ? ORDER BY created_unix",
                                    (older_than_unix,)).fetchall()
            if not rows:
                return 0
            if archive is not None:
                with open(archive, "a", encoding="utf-8") as out:
                    for _, result in rows:
                        out.write(result + "\n")
                    out.flush()
                    os.fsync(out.fileno())
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM rounds WHERE round_id=?", [(r[0],) for r in rows])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def recent_rounds(self, limit: int) -> list[RoundResult]:
        """The newest public rounds, newest first (for the dashboard)."""
        with self._lock:
            rows = self._db.execute("SELECT result FROM rounds WHERE hidden=0 ORDER BY created_unix DESC LIMIT ?",
                                    (limit,)).fetchall()
        return [round_from_json(r[0]) for r in rows]

    def ledger_head(self) -> tuple[int, bytes]:
        """The sequence number and hash of the newest ledger entry."""
        with self._lock:
            row = self._db.execute("SELECT seq, entry_hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), bytes(row[1])) if row else (0, b"")
