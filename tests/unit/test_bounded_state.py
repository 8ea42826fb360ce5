"""Ledger head signing and the group-commit path of the registry (pure or on a temp SQLite file)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from swarmrank.coordinator import ledger, reputation
from swarmrank.coordinator.registry import Registry
from swarmrank.coordinator.store import Store
from swarmrank.protos.signing import Identity


def test_only_the_last_entry_of_a_transaction_is_signed_and_the_chain_covers_the_rest(tmp_path: Path) -> None:
    key = Identity.generate()
    store = Store(tmp_path / "l.db", key)
    store.commit([{"kind": "round", "round": f"r{i}", "ts": 1.0} for i in range(5)], {})
    store.close()
    db = sqlite3.connect(tmp_path / "l.db")
    sigs = [bytes(r[0]) for r in db.execute("SELECT signature FROM ledger ORDER BY seq")]
    assert [bool(s) for s in sigs] == [True, False, False, False, False, True]
    assert ledger.verify(tmp_path / "l.db", key.public_key).ok
    db.execute("UPDATE ledger SET signature = x'' WHERE seq = 6")  # strip the head's signature
    db.commit()
    v = ledger.verify(tmp_path / "l.db", key.public_key)
    assert not v.ok and v.first_bad_seq == 2 and "unsigned" in v.reason


def test_group_commit_keeps_the_table_equal_to_the_ledger_replay(tmp_path: Path) -> None:
    key = Identity.generate()
    store = Store(tmp_path / "g.db", key)
    registry = Registry(store, 5.0)
    from swarmrank.coordinator.domain import NodeRecord
    from swarmrank.coordinator.trust import Trust
    from swarmrank.protos.types import ModelInfo

    nodes = [NodeRecord(f"n{i}", bytes([i]) * 32, "127.0.0.1:1", (ModelInfo("m"),), 1, 0.0, 0.0,
                        Trust(0.0, 0.0, "refused", 0.0, 0)) for i in range(4)]
    async def many() -> None:  # 50 concurrent records on the same nodes: one or a few transactions
        await registry.record([reputation.Event("admit", n.node_id, 1.0, "calibration", 1.0) for n in nodes], new_nodes=nodes)
        await asyncio.gather(*(registry.record(
            [reputation.Event("evidence", f"n{i % 4}", 2.0 + i, "round", (i % 3) / 2, f"r{i}", "generator")],
            players=[f"n{i % 4}"], summaries=[{"kind": "round", "round": f"r{i}", "ts": 2.0 + i}]) for i in range(50)))

    asyncio.run(many())
    store.close()
    assert ledger.verify(tmp_path / "g.db", key.public_key).ok
    assert ledger.replay_and_compare(tmp_path / "g.db").mismatches == []
    assert sum(n.rounds for n in registry.all()) == 50


def test_prune_archives_old_transcripts_and_the_ledger_still_verifies(tmp_path: Path) -> None:
    import json

    from swarmrank.coordinator.domain import RoundResult
    from swarmrank.coordinator.store import round_to_json

    key = Identity.generate()
    store = Store(tmp_path / "p.db", key)
    results = [RoundResult(round_id=f"r{i}", prompt="q", answer="a", winner_node_id="n", winner_candidate_id="c0",
                           confidence=0.5, candidates=(), judgments=(), failures=(), elapsed_seconds=0.1,
                           created_unix=float(i)) for i in range(10)]
    store.commit([{"kind": "round", "round": r.round_id, "ts": r.created_unix} for r in results], {},
                 rounds=[(r, False, round_to_json(r)) for r in results])
    before = store.sizes()
    assert before["rounds"] == 10 and before["ledger_entries"] == 11 and before["db_bytes"] > 0
    assert store.prune_rounds(6.0, tmp_path / "archive.jsonl") == 6
    after = store.sizes()
    assert after["rounds"] == 4 and after["ledger_entries"] == 11
    archived = [json.loads(line)["round_id"] for line in (tmp_path / "archive.jsonl").read_text().splitlines()]
    assert archived == [f"r{i}" for i in range(6)]
    assert store.load_round("r7") is not None and store.load_round("r2") is None
    store.close()
    assert ledger.verify(tmp_path / "p.db", key.public_key).ok


def test_round_transcript_is_the_same_text_as_asdict_and_round_trips() -> None:
    """``round_to_json`` is written field by field for speed: it must stay equal to the generic
    ``dataclasses.asdict`` encoding (a field added to a dataclass and not to it fails here)."""
    import dataclasses
    import json

    from swarmrank.coordinator.domain import Candidate, Failure, Judgment, RankedCandidate, RoundResult
    from swarmrank.coordinator.store import round_from_json, round_to_json
    from swarmrank.protos.types import Preference

    cands = [Candidate(f"c{i}", f"n{i}", "m", f"answer {i} é", bytes([i]) * 16, bytes([i]) * 64, i + 3, 0.25 * i)
             for i in range(3)]
    ranked = tuple(RankedCandidate(c, 0.5 - i, 0.1 * i, 0.3, i + 1) for i, c in enumerate(cands))
    judgments = tuple(Judgment(f"n{i}", f"t-{i}", i % 3, (i + 1) % 3, list(Preference)[i % 3], 0.75, "why", 0.5 + i,
                               bytes([9]) * 16, bytes([i]) * 64) for i in range(4))
    r = RoundResult("r1", "q?", "answer 0 é", "n0", "c0", 0.625, ranked, judgments, (Failure("n4", "judge", "late"),),
                    0.0123, 1700000000.5)
    generic = json.dumps(dataclasses.asdict(r), default=lambda o: o.hex(), separators=(",", ":"))
    assert round_to_json(r) == generic
    assert round_from_json(round_to_json(r)) == r


def test_durability_sets_sqlite_synchronous(tmp_path: Path) -> None:
    import pytest

    for durability, level in (("full", 2), ("normal", 1)):
        store = Store(tmp_path / f"{durability}.db", Identity.generate(), durability)  # type: ignore[arg-type]
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == level
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        store.close()
    with pytest.raises(ValueError, match="durability"):
        Store(tmp_path / "x.db", Identity.generate(), "off")  # type: ignore[arg-type]


def test_non_blocking_commit_writes_nothing_while_the_store_is_busy(tmp_path: Path) -> None:
    """The registry commits a lone round on the event loop only if nothing else holds the store
    (a prune in a thread): ``blocking=False`` then returns False and leaves the ledger as it was."""
    store = Store(tmp_path / "b.db", Identity.generate())
    assert not store.fsyncs
    body = [{"kind": "round", "round": "r1", "ts": 1.0}]
    with store._lock:
        assert store.commit(body, {}, blocking=False) is False
    assert store.sizes()["ledger_entries"] == 1  # the genesis entry only
    assert store.commit(body, {}, blocking=False) is True
    assert store.sizes()["ledger_entries"] == 2
    store.close()


def test_non_blocking_commit_does_not_wait_for_another_connections_write_lock(tmp_path: Path) -> None:
    """Access control writes the same file through its own connection: while that holds the write
    lock, ``blocking=False`` gives up at once (the registry then commits from a thread) instead of
    stalling the event loop for SQLite's busy timeout, and the store stays usable."""
    import sqlite3

    store = Store(tmp_path / "c.db", Identity.generate())
    other = sqlite3.connect(str(tmp_path / "c.db"), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    body = [{"kind": "round", "round": "r1", "ts": 1.0}]
    assert store.commit(body, {}, blocking=False) is False
    other.execute("COMMIT")
    other.close()
    assert store.sizes()["ledger_entries"] == 1
    assert store.commit(body, {}, blocking=False) is True
    assert store.sizes()["ledger_entries"] == 2
    assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] == 10_000
    store.close()
